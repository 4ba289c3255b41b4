/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_sched.c - sched.c's functions for tests of the modules that call
 * it (see fake_server.h): pumps are recorded, not run; sched_release
 * keeps sched.h's accounting of pending bytes so a test can check that
 * every byte taken is given back.
 */
#include "fake_server.h"
#include "sched.h"

/* Recorded with arg = the pool's index, text its name. */
void sched_pump(pool_t *p)
{
    fake_record("sched_pump", NULL, NULL, p->index, p->name);
}

void sched_pump_soon(pool_t *p)
{
    fake_record("sched_pump_soon", NULL, NULL, p->index, p->name);
}

void sched_release(msg *m)
{
    if (m->state == MSG_QUEUED || m->state == MSG_RUNNING || m->state == MSG_RETRY_WAIT ||
        m->state == MSG_SESSION_WAIT)
        server.pending_bytes -= m->line_len;
}
