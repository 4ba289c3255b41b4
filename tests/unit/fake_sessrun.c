/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_sessrun.c - sessrun.c's functions for unit tests of modules that
 * call it but whose messages name no session (see fake_server.h): a
 * message here never has one, so nothing waits for a session, no worker
 * is preferred and no end has a next message.  test_sessrun links the
 * real sessrun.c instead.
 */
#include "fake_server.h"
#include "sessrun.h"

#include <stddef.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

int sessrun_must_wait(const msg *m)
{
    assert_null(m->sess);
    return 0;
}

void sessrun_wait(msg *m)
{
    fail_msg("sessrun_wait for message %llu, which names no session", (unsigned long long)m->id);
}

void sessrun_begin(msg *m)
{
    fail_msg("sessrun_begin for message %llu, which names no session", (unsigned long long)m->id);
}

void sessrun_end(msg *m)
{
    fail_msg("sessrun_end for message %llu, which names no session", (unsigned long long)m->id);
}

void sessrun_take_over(msg *m, msg *n)
{
    assert_null(m->sess);
    (void)n;
}

int sessrun_preferred(const msg *m)
{
    assert_null(m->sess);
    return -1;
}

void sessrun_sent(msg *m, int i)
{
    (void)m;
    (void)i;
}
