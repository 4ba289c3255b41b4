/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_answer.c - answer.c's functions for unit tests (see
 * fake_server.h).  answer_end records the answer, then does what the real
 * one does to the message that the modules under test can see: its timer
 * disarmed, off its worker, its pending bytes released, off the queue or
 * the retry list or its session's FIFO (sessrun_end), freed, a pump asked for.  No connection exists: the
 * client side (output, breaker, metrics, access log) is left out.
 */
#include "fake_server.h"
#include "retry.h"
#include "sched.h"
#include "sessrun.h"

void answer_end(msg *m, const answer *a)
{
    fake_record_answer(m, a, 0);
    fake_record("answer_end", m->worker, m, a->kind, NULL);
    retry_disarm(m);
    if (msg_on_worker(m))
        worker_release(m->worker, m);
    sched_release(m);
    if (m->state == MSG_QUEUED)
        queue_remove(&m->pool->queue, &m->qlink);
    else if (m->state == MSG_RETRY_WAIT)
        link_del(&m->qlink);
    if (m->sess)
        sessrun_end(m);
    m->client = NULL;
    pool_t *p = m->pool;
    msg_free(&server.msgs, m);
    sched_pump_soon(p);
}

void answer_detach(msg *m, reply_code code, const char *message, const char *extra)
{
    answer a = {ANSWER_ERROR, code, NULL, 0, message, extra, NULL};
    fake_record_answer(m, &a, 1);
    fake_record("answer_detach", m->worker, m, code, message);
    m->client = NULL;
    m->detached = 1;
}
