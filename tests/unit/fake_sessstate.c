/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_sessstate.c - sessstate.c's functions for unit tests of the
 * master (see fake_server.h): pools there keep no session state, so a
 * session's message is always ready to be sent, never waits for a store
 * and never has its answer held.
 */
#include "fake_server.h"
#include "sessstate.h"

#include <stddef.h>
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

int sessstate_open(pool_t *p, int wait_ready)
{
    (void)p;
    (void)wait_ready;
    return 0;
}

void sessstate_close(pool_t *p)
{
    (void)p;
}

int sessstate_ready(const msg *m)
{
    (void)m;
    return 1;
}

void sessstate_wait(msg *m)
{
    fail_msg("sessstate_wait for message %llu: no state is kept here", (unsigned long long)m->id);
}

int sessstate_text(const msg *m, const char **text, uint32_t *len)
{
    (void)m;
    *text = NULL;
    *len = 0;
    return 0;
}

void sessstate_frame(worker *w, const ap_frame_hdr *h, const char *payload)
{
    (void)w;
    (void)h;
    (void)payload;
}

int sessstate_answer(msg *m, const ap_frame_hdr *h, const char *payload, struct evbuffer *src)
{
    (void)m;
    (void)h;
    (void)payload;
    (void)src;
    return 0;
}

void sessstate_fresh(pool_t *p, struct session *s)
{
    (void)p;
    (void)s;
}

void sessstate_trim(pool_t *p)
{
    (void)p;
}
