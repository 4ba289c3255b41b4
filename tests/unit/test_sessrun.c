/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_sessrun.c - cmocka tests for how a session's messages move
 * (pool/path/sessrun.c) with the real sched.c, dispatch.c, session.c,
 * msg.c and queue.c in the fake world (tests/unit/fake_server.h: one
 * pool, a worker table filled by hand, answers recorded by fake_answer.c).
 * cancel_message and answer_refuse are recorded here: the first does what
 * cancel.h says to the message (answered at once when not running,
 * detached when running), so what sessrun.c asks of it is visible.
 *
 * Proved: a session's messages are admitted one at a time (later ones
 * wait in its FIFO, holding places of the queue's bound, refused past
 * it), the next one goes to the head of the pool queue when one ends and
 * is sent before older queued messages of others; a waiting message that
 * ends (timeout) frees its place; interrupt cancels the running message
 * once and the waiting ones before the newest, and the newest runs next;
 * affinity prefers the previous worker while it has a free slot (a hit),
 * else the strategy picks (a move); a copy taking a message's place
 * (retryOnTimeout) is the session's running message; sessions off is
 * bad_request.  Built with AP_ALLOC_TEST: nothing leaks.
 */
#include "fake_server.h"
#include "cancel.h"
#include "client.h"
#include "retry.h"
#include "sched.h"
#include "session.h"
#include "sessrun.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

/* ---- the fakes this test needs ---------------------------------------- */

cancel_found cancel_message(msg *m, const char *by, const char *who)
{
    (void)who;
    char why[160];
    fake_record("cancel_message", m->worker, m, m->state, by);
    if (m->state != MSG_RUNNING) {
        snprintf(why, sizeof(why), "cancelled by %s before it ran", by);
        answer_error(m, ERR_CANCELLED, why, NULL);
        return CANCEL_QUEUED;
    }
    snprintf(why, sizeof(why), "cancelled by %s while it ran", by);
    answer_detach(m, ERR_CANCELLED, why, NULL);
    return CANCEL_RUNNING;
}

void answer_refuse(client *c, const char *line, const scan_result *r, reply_code code, const char *why,
                   const char *extra, pool_t *p, int type_idx)
{
    (void)c;
    (void)line;
    (void)r;
    (void)extra;
    (void)p;
    fake_record("answer_refuse", NULL, NULL, code, why);
    (void)type_idx;
}

void retry_disarm(msg *m)
{
    (void)m;
}

/* ---- helpers -------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    return 0;
}

static void world(int n, int slots, size_t queue_cap, session_busy_mode busy)
{
    fake_server_setup(n, slots, 0, queue_cap);
    dispatch_init(&fake_pool.dispatch, 1);
    fake_cfg.sessions = 1;
    fake_cfg.session_busy = busy;
    fake_cfg.max_sessions = 16;
    fake_pool.sessions = session_table_new(16);
}

static void world_end(void)
{
    fake_server_teardown();
    session_table_free(fake_pool.sessions);
    fake_pool.sessions = NULL;
}

/* A message of session key (NULL: none), admitted; its result checked. */
static msg *admit(int id, const char *key, sched_result want)
{
    msg *m = fake_msg(id, "t");
    if (key) {
        m->sess = session_ref(fake_pool.sessions, key, strlen(key));
        assert_non_null(m->sess);
    }
    assert_int_equal(sched_admit(m, 1), want);
    return m;
}

/* Which worker entry message id was sent to last, -1 if never. */
static int sent_to(int id)
{
    int at = -1;
    msg *m = fake_msg_by_id(id);
    for (int k = 0; fake_call_nth("worker_send", k); k++)
        if (m && fake_call_nth("worker_send", k)->msg_id == m->id)
            at = fake_call_nth("worker_send", k)->w->index;
    return at;
}

static void ok(int id)
{
    msg *m = fake_msg_by_id(id);
    assert_non_null(m);
    answer_ok(m, "1", 1);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_one_at_a_time_and_the_next_goes_to_the_head(void **state)
{
    (void)state;
    world(1, 2, 8, SESSION_BUSY_ENQUEUE);
    session_table *t = fake_pool.sessions;
    admit(1, "s", SCHED_SENT);
    msg *m2 = admit(2, "s", SCHED_QUEUED);
    assert_int_equal(m2->state, MSG_SESSION_WAIT);
    assert_int_equal(fake_pool.queue.held, 1);
    assert_int_equal(fake_pool.queue.depth, 0);
    assert_int_equal(t->waiting, 1);
    admit(3, "other", SCHED_SENT); /* another session: not held back */
    admit(4, NULL, SCHED_QUEUED);  /* no slot left */
    assert_int_equal(server.pending_bytes, 4 * m2->line_len);
    ok(1);
    /* 2 is its session's running message now, ahead of 4 */
    assert_int_equal(m2->state, MSG_QUEUED);
    assert_ptr_equal(queue_peek(&fake_pool.queue), &m2->qlink);
    assert_int_equal(fake_pool.queue.held, 0);
    assert_int_equal(fake_pool.queue.depth, 2);
    assert_ptr_equal(m2->sess->current, m2);
    sched_pump(&fake_pool);
    assert_int_equal(sent_to(2), 0);
    assert_int_equal(fake_msg_by_id(4)->state, MSG_QUEUED);
    ok(2);
    ok(3);
    sched_pump(&fake_pool);
    ok(4);
    assert_int_equal(t->by_state[SESSION_RUNNING], 0);
    assert_int_equal(t->by_state[SESSION_IDLE], 2);
    assert_int_equal(server.pending_bytes, 0);
    assert_int_equal(fake_pool.queue.held + fake_pool.queue.depth, 0);
    world_end();
}

static void test_waiting_messages_hold_places_of_the_queue(void **state)
{
    (void)state;
    world(1, 1, 2, SESSION_BUSY_ENQUEUE);
    admit(1, "s", SCHED_SENT);
    admit(2, "s", SCHED_QUEUED);
    admit(3, "s", SCHED_QUEUED);
    /* two places held: the session and the pool queue are both full */
    msg *m4 = admit(4, "s", SCHED_FULL);
    msg *m5 = admit(5, NULL, SCHED_FULL);
    assert_int_equal(fake_pool.queue.rejected, 2);
    answer_error(m4, ERR_QUEUE_FULL, "the queue is full", NULL);
    answer_error(m5, ERR_QUEUE_FULL, "the queue is full", NULL);
    /* 2 times out while it waits: its place is free, 3 is next */
    answer_error(fake_msg_by_id(2), ERR_TIMEOUT, "no answer", NULL);
    assert_int_equal(fake_pool.queue.held, 1);
    assert_int_equal(fake_pool.sessions->waiting, 1);
    admit(6, NULL, SCHED_QUEUED);
    ok(1);
    assert_ptr_equal(queue_peek(&fake_pool.queue), &fake_msg_by_id(3)->qlink);
    sched_pump(&fake_pool);
    assert_int_equal(sent_to(3), 0);
    ok(3);
    sched_pump(&fake_pool);
    ok(6);
    assert_int_equal(fake_answer_for(2)->code, ERR_TIMEOUT);
    assert_int_equal(server.pending_bytes, 0);
    assert_int_equal(fake_pool.sessions->by_state[SESSION_RUNNING], 0);
    world_end();
}

static void test_interrupt_cancels_the_running_and_the_waiting(void **state)
{
    (void)state;
    world(1, 1, 8, SESSION_BUSY_INTERRUPT);
    session_table *t = fake_pool.sessions;
    msg *m1 = admit(1, "s", SCHED_SENT);
    admit(2, "s", SCHED_QUEUED);
    /* 1 ran: answered cancelled, detached, still the session's until let go */
    assert_int_equal(fake_calls("cancel_message"), 1);
    assert_true(m1->detached);
    assert_ptr_equal(m1->sess->current, m1);
    assert_int_equal(t->n.interrupted, 1);
    admit(3, "s", SCHED_QUEUED);
    /* 2 never ran: answered cancelled; 1 is not cancelled twice */
    assert_int_equal(fake_answer_for(2)->code, ERR_CANCELLED);
    assert_string_equal(fake_answer_for(2)->message,
                        "cancelled by a later message of its session (sessionBusy interrupt) before it ran");
    assert_int_equal(fake_calls("cancel_message"), 1);
    assert_int_equal(t->n.interrupted, 2);
    assert_int_equal(t->waiting, 1);
    /* the worker lets go of 1: 3 runs next */
    answer_drop(m1);
    sched_pump(&fake_pool);
    assert_int_equal(sent_to(3), 0);
    ok(3);
    /* a current still queued is ended at once and the new one takes its place */
    admit(4, NULL, SCHED_SENT);
    msg *m5 = admit(5, "s", SCHED_QUEUED);
    assert_int_equal(m5->state, MSG_QUEUED);
    msg *m6 = admit(6, "s", SCHED_QUEUED);
    assert_int_equal(fake_answer_for(5)->code, ERR_CANCELLED);
    assert_int_equal(m6->state, MSG_QUEUED);
    assert_ptr_equal(m6->sess->current, m6);
    assert_int_equal(fake_pool.queue.held, 0);
    ok(4);
    sched_pump(&fake_pool);
    ok(6);
    assert_int_equal(server.pending_bytes, 0);
    world_end();
}

static void test_affinity_prefers_the_previous_worker_while_it_has_room(void **state)
{
    (void)state;
    world(3, 1, 8, SESSION_BUSY_ENQUEUE);
    session_table *t = fake_pool.sessions;
    admit(1, "s", SCHED_SENT);
    int w = sent_to(1);
    ok(1);
    admit(2, "s", SCHED_SENT); /* round-robin would go on to the next worker */
    assert_int_equal(sent_to(2), w);
    assert_int_equal(t->n.hits, 1);
    ok(2);
    /* its worker is busy: the strategy picks, the session moves */
    admit(3, NULL, SCHED_SENT);
    int busy = sent_to(3);
    if (busy != w) { /* make the session's worker the busy one */
        ok(3);
        fake_pool.dispatch.next = (unsigned)w;
        admit(30, NULL, SCHED_SENT);
        assert_int_equal(sent_to(30), w);
    }
    admit(4, "s", SCHED_SENT);
    assert_int_not_equal(sent_to(4), w);
    assert_int_equal(t->n.moves, 1);
    int w2 = sent_to(4);
    ok(4);
    /* not accepting (draining, recycled): moves again */
    fake_workers[w2].load.accepting = 0;
    admit(5, "s", SCHED_SENT);
    assert_int_not_equal(sent_to(5), w2);
    assert_int_equal(t->n.moves, 2);
    ok(5);
    if (fake_msg_by_id(3))
        ok(3);
    if (fake_msg_by_id(30))
        ok(30);
    world_end();
}

static void test_a_copy_takes_the_running_place(void **state)
{
    (void)state;
    world(1, 1, 8, SESSION_BUSY_ENQUEUE);
    msg *m1 = admit(1, "s", SCHED_SENT);
    session *s = m1->sess;
    msg *n = client_take_over(m1);
    sessrun_take_over(m1, n);
    assert_null(m1->sess);
    assert_ptr_equal(n->sess, s);
    assert_ptr_equal(s->current, n);
    assert_int_equal(s->refs, 1);
    answer_drop(m1); /* the worker lets go of the old attempt: the session is not touched */
    assert_ptr_equal(s->current, n);
    msg_set_state(&server.msgs, n, MSG_QUEUED);
    queue_push_front(&fake_pool.queue, &n->qlink);
    server.pending_bytes += n->line_len;
    answer_ok(n, "1", 1);
    assert_int_equal(s->state, SESSION_IDLE);
    assert_int_equal(s->refs, 0);
    world_end();
}

static void test_sessions_off_and_reject_are_refused_at_reception(void **state)
{
    (void)state;
    world(1, 1, 8, SESSION_BUSY_REJECT);
    scan_result r;
    const char *line = "{\"type\":\"t\",\"session\":\"k\"}";
    assert_int_equal(scan_request(line, strlen(line), 8, &r), SCAN_OK);
    session *s = NULL;
    assert_int_equal(sessrun_take(FAKE_CLIENT, line, &r, &fake_pool, 0, &s), AP_OK);
    assert_non_null(s);
    msg *m1 = fake_msg(1, "t");
    m1->sess = s;
    assert_int_equal(sched_admit(m1, 1), SCHED_SENT);
    session *again = (session *)1;
    assert_int_equal(sessrun_take(FAKE_CLIENT, line, &r, &fake_pool, 0, &again), AP_ERR);
    assert_null(again);
    assert_int_equal(fake_call_nth("answer_refuse", 0)->arg, ERR_SESSION_BUSY);
    assert_int_equal(fake_pool.sessions->n.busy_rejected, 1);
    fake_cfg.sessions = 0;
    assert_int_equal(sessrun_take(FAKE_CLIENT, line, &r, &fake_pool, 0, &again), AP_ERR);
    assert_int_equal(fake_call_nth("answer_refuse", 1)->arg, ERR_BAD_REQUEST);
    assert_string_equal(fake_call_nth("answer_refuse", 1)->text, "sessions are off in pool default (set sessions: true)");
    /* a request without a session is never refused */
    line = "{\"type\":\"t\"}";
    assert_int_equal(scan_request(line, strlen(line), 8, &r), SCAN_OK);
    assert_int_equal(sessrun_take(FAKE_CLIENT, line, &r, &fake_pool, 0, &again), AP_OK);
    assert_null(again);
    ok(1);
    world_end();
}

static void test_max_sessions_refuses_when_none_is_idle(void **state)
{
    (void)state;
    world(2, 1, 8, SESSION_BUSY_ENQUEUE);
    fake_cfg.max_sessions = 1;
    scan_result r;
    const char *a = "{\"type\":\"t\",\"session\":\"a\"}", *b = "{\"type\":\"t\",\"session\":\"b\"}";
    session *s = NULL;
    assert_int_equal(scan_request(a, strlen(a), 8, &r), SCAN_OK);
    assert_int_equal(sessrun_take(FAKE_CLIENT, a, &r, &fake_pool, 0, &s), AP_OK);
    msg *m1 = fake_msg(1, "t");
    m1->sess = s;
    assert_int_equal(sched_admit(m1, 1), SCHED_SENT);
    assert_int_equal(scan_request(b, strlen(b), 8, &r), SCAN_OK);
    assert_int_equal(sessrun_take(FAKE_CLIENT, b, &r, &fake_pool, 0, &s), AP_ERR);
    assert_int_equal(fake_call_nth("answer_refuse", 0)->arg, ERR_TOO_MANY_SESSIONS);
    assert_string_equal(fake_call_nth("answer_refuse", 0)->text,
                        "pool default tracks maxSessions (1) sessions and every one has a message in flight");
    ok(1);
    assert_int_equal(sessrun_take(FAKE_CLIENT, b, &r, &fake_pool, 0, &s), AP_OK);
    assert_string_equal(s->key, "b");
    assert_int_equal(fake_pool.sessions->count, 1);
    session_unref(fake_pool.sessions, s);
    world_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_at_a_time_and_the_next_goes_to_the_head),
        cmocka_unit_test(test_waiting_messages_hold_places_of_the_queue),
        cmocka_unit_test(test_interrupt_cancels_the_running_and_the_waiting),
        cmocka_unit_test(test_affinity_prefers_the_previous_worker_while_it_has_room),
        cmocka_unit_test(test_a_copy_takes_the_running_place),
        cmocka_unit_test(test_sessions_off_and_reject_are_refused_at_reception),
        cmocka_unit_test(test_max_sessions_refuses_when_none_is_idle),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
