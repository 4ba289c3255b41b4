/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_sched.c - cmocka tests for admission and the queue pump
 * (pool/path/sched.c), with the real dispatch.c, msg.c and queue.c and a fake
 * worker table (tests/unit/fake_server.h): where a message goes (a worker
 * with room, the queue, or refused for the queue's capacity or
 * maxPendingBytes), the FIFO order, the resume hysteresis, pending-bytes
 * accounting, the deferred pump, and that the strategies see the table's
 * states and prefetch room as dispatch.h says.  With two pools: each
 * message goes to its own pool's workers and queue, a deferred pump runs
 * only the pools it was asked for, and a message leaving one pool lets
 * the other's connections waiting for room (maxPendingBytes is the
 * server's) be pumped.
 */
#include "fake_server.h"
#include "sched.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* The fake master with n workers of `slots` slots, the dispatcher fresh. */
static void setup(int n, int slots, int spare, size_t queue_cap)
{
    fake_server_setup(n, slots, spare, queue_cap);
    dispatch_init(&fake_pool.dispatch, 1);
}

static msg *admit(int id, sched_result want)
{
    msg *m = fake_msg(id, "t");
    assert_int_equal(sched_admit(m, 1), want);
    return m;
}

/* The request id of the k-th message sent to a worker, and to which. */
static int sent_id(int k, int *worker_index)
{
    const fake_call *c = fake_call_nth("worker_send", k);
    assert_non_null(c);
    if (worker_index)
        *worker_index = c->w->index;
    for (uint32_t i = 0; i < server.msgs.cap; i++) {
        msg *m = server.msgs.slots[i];
        if (m && m->id == c->msg_id)
            return atoi(m->line + m->id_off);
    }
    fail_msg("sent message %d is gone", k);
    return -1;
}

/* Frees w's oldest message as an answer would (without a pump). */
static void finish_oldest_of(worker *w)
{
    msg *m = msg_from_qlink(w->running.next);
    worker_release(w, m);
    sched_release(m);
    msg_free(&server.msgs, m);
}

static void finish_oldest(int i)
{
    finish_oldest_of(&fake_pool.workers[i]);
}

static void test_admit_sends_to_a_free_slot_then_queues(void **state)
{
    (void)state;
    setup(2, 1, 0, 8);
    msg *a = admit(1, SCHED_SENT);
    msg *b = admit(2, SCHED_SENT);
    msg *c = admit(3, SCHED_QUEUED);
    assert_int_equal(a->state, MSG_RUNNING);
    assert_ptr_equal(a->worker, &fake_pool.workers[0]);
    assert_ptr_equal(b->worker, &fake_pool.workers[1]);
    assert_int_equal(c->state, MSG_QUEUED);
    assert_null(c->worker);
    assert_int_equal(fake_pool.queue.depth, 1);
    assert_int_equal(fake_calls("worker_send"), 2);
    assert_int_equal(fake_pool.stats.accepted, 3);
    assert_int_equal(server.pending_bytes, (uint64_t)a->line_len + b->line_len + c->line_len);
    fake_server_teardown();
}

static void test_admit_queues_behind_older_messages_although_a_slot_is_free(void **state)
{
    (void)state;
    setup(1, 1, 0, 8);
    admit(1, SCHED_SENT);
    admit(2, SCHED_QUEUED);
    finish_oldest(0); /* a slot is free, but 2 is waiting */
    admit(3, SCHED_QUEUED);
    assert_int_equal(fake_calls("worker_send"), 1);
    sched_pump(&fake_pool);
    assert_int_equal(sent_id(1, NULL), 2);
    assert_int_equal(fake_pool.queue.depth, 1);
    assert_int_equal(msg_from_qlink(queue_peek(&fake_pool.queue))->line[6], '3');
    fake_server_teardown();
}

static void test_admit_full_queue_refuses_and_counts_only_when_asked(void **state)
{
    (void)state;
    setup(1, 1, 0, 2);
    msg *a = admit(1, SCHED_SENT);
    admit(2, SCHED_QUEUED);
    admit(3, SCHED_QUEUED);
    uint64_t bytes = server.pending_bytes;
    msg *d = fake_msg(4, "t");
    assert_int_equal(sched_admit(d, 1), SCHED_FULL);
    assert_int_equal(fake_pool.queue.rejected, 1);
    assert_int_equal(sched_admit(d, 0), SCHED_FULL);
    assert_int_equal(fake_pool.queue.rejected, 1);
    /* nothing else changed */
    assert_int_equal(d->state, MSG_NEW);
    assert_int_equal(fake_pool.queue.depth, 2);
    assert_int_equal(server.pending_bytes, bytes);
    assert_int_equal(fake_pool.stats.accepted, 3);
    assert_int_equal(a->state, MSG_RUNNING);
    fake_server_teardown();
}

static void test_admit_refuses_past_max_pending_bytes_even_with_a_free_worker(void **state)
{
    (void)state;
    setup(4, 1, 0, 8);
    msg *a = admit(1, SCHED_SENT);
    fake_cfg.max_pending_bytes = 2 * (int64_t)a->line_len; /* exactly two messages */
    admit(2, SCHED_SENT);
    msg *c = fake_msg(3, "t");
    assert_int_equal(sched_admit(c, 1), SCHED_FULL);
    assert_int_equal(fake_pool.queue.rejected, 1);
    assert_int_equal(sched_admit(c, 0), SCHED_FULL);
    assert_int_equal(fake_pool.queue.rejected, 1);
    assert_int_equal(fake_calls("worker_send"), 2);
    assert_int_equal(c->state, MSG_NEW);
    assert_int_equal(server.pending_bytes, 2 * (uint64_t)a->line_len);
    assert_int_equal(fake_pool.stats.accepted, 2);
    /* once a message leaves, the bytes are there again */
    finish_oldest(0);
    assert_int_equal(sched_admit(c, 1), SCHED_SENT);
    fake_server_teardown();
}

static void test_pump_sends_queued_messages_oldest_first(void **state)
{
    (void)state;
    setup(2, 1, 0, 16);
    for (int id = 1; id <= 8; id++)
        admit(id, id <= 2 ? SCHED_SENT : SCHED_QUEUED);
    int want = 3;
    for (int round = 0; round < 3; round++) {
        finish_oldest(0);
        finish_oldest(1);
        sched_pump(&fake_pool);
        int w0, w1;
        assert_int_equal(sent_id(2 + 2 * round, &w0), want++);
        assert_int_equal(sent_id(3 + 2 * round, &w1), want++);
        assert_int_not_equal(w0, w1);
    }
    assert_int_equal(fake_pool.queue.depth, 0);
    assert_int_equal(fake_calls("worker_send"), 8);
    fake_server_teardown();
}

static void test_pump_stops_when_no_worker_has_room(void **state)
{
    (void)state;
    setup(2, 1, 0, 16);
    for (int id = 1; id <= 5; id++)
        admit(id, id <= 2 ? SCHED_SENT : SCHED_QUEUED);
    sched_pump(&fake_pool);
    assert_int_equal(fake_calls("worker_send"), 2);
    finish_oldest(1);
    sched_pump(&fake_pool);
    int w;
    assert_int_equal(sent_id(2, &w), 3);
    assert_int_equal(w, 1);
    assert_int_equal(fake_pool.queue.depth, 2);
    fake_server_teardown();
}

static void test_room_to_resume_needs_a_quarter_of_queue_and_bytes_free(void **state)
{
    (void)state;
    setup(0, 1, 0, 8);
    fake_cfg.max_pending_bytes = 1000;
    fake_pool.queue.depth = 7;
    assert_false(sched_room_to_resume(&fake_pool));
    fake_pool.queue.depth = 6;
    assert_true(sched_room_to_resume(&fake_pool));
    server.pending_bytes = 751;
    assert_false(sched_room_to_resume(&fake_pool));
    server.pending_bytes = 750;
    assert_true(sched_room_to_resume(&fake_pool));
    fake_pool.queue.depth = 0;
    fake_server_teardown();
}

static void test_pump_resumes_waiting_connections_only_past_the_hysteresis(void **state)
{
    (void)state;
    queue_link waiter;
    setup(1, 1, 0, 4);
    admit(1, SCHED_SENT);
    for (int id = 2; id <= 5; id++)
        admit(id, SCHED_QUEUED);
    /* nobody waits for room: nobody is told */
    finish_oldest(0);
    sched_pump(&fake_pool); /* depth 3 of 4: the resume mark */
    assert_int_equal(fake_calls("client_room_available"), 0);
    link_add_tail(&fake_pool.room_waiters, &waiter);
    admit(6, SCHED_QUEUED); /* full again: depth 4 */
    sched_pump(&fake_pool);
    assert_int_equal(fake_calls("client_room_available"), 0);
    finish_oldest(0);
    sched_pump(&fake_pool); /* depth 3: a quarter free */
    assert_int_equal(fake_calls("client_room_available"), 1);
    link_del(&waiter);
    fake_server_teardown();
}

static void test_release_gives_back_bytes_of_admitted_messages_only(void **state)
{
    (void)state;
    static const struct {
        msg_state s;
        int admitted;
    } cases[] = {{MSG_NEW, 0}, {MSG_HELD, 0}, {MSG_QUEUED, 1}, {MSG_RUNNING, 1}, {MSG_RETRY_WAIT, 1}};
    setup(0, 1, 0, 8);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        msg *m = fake_msg((int)k, "t");
        server.pending_bytes = 10000;
        msg_set_state(&server.msgs, m, cases[k].s);
        sched_release(m);
        assert_int_equal(server.pending_bytes, 10000 - (cases[k].admitted ? m->line_len : 0));
        msg_free(&server.msgs, m);
    }
    server.pending_bytes = 0;
    fake_server_teardown();
}

static void test_pending_bytes_return_to_zero_after_every_message_leaves(void **state)
{
    (void)state;
    setup(2, 2, 0, 16);
    for (int id = 1; id <= 10; id++)
        sched_admit(fake_msg(id, id % 2 ? "short" : "a-longer-type"), 1);
    while (fake_pool.queue.depth > 0 || fake_pool.workers[0].proc.running_count || fake_pool.workers[1].proc.running_count) {
        for (int i = 0; i < 2; i++)
            if (fake_pool.workers[i].proc.running_count)
                finish_oldest(i);
        sched_pump(&fake_pool);
    }
    assert_int_equal(server.pending_bytes, 0);
    assert_int_equal(fake_calls("worker_send"), 10);
    fake_server_teardown();
}

static void test_strategies_skip_workers_not_accepting_or_full(void **state)
{
    (void)state;
    for (int strategy = LB_ROUND_ROBIN; strategy <= LB_RANDOM; strategy++) {
        setup(4, 2, 0, 16);
        fake_cfg.strategy = strategy;
        fake_worker_state(&fake_pool.workers[0], WORKER_DRAINING);
        fake_worker_state(&fake_pool.workers[1], WORKER_STOPPING);
        fake_worker_state(&fake_pool.workers[3], WORKER_DEAD);
        for (int id = 1; id <= 4; id++)
            admit(id, id <= 2 ? SCHED_SENT : SCHED_QUEUED);
        for (int k = 0; k < 2; k++) {
            int w;
            sent_id(k, &w);
            assert_int_equal(w, 2);
        }
        assert_int_equal(fake_pool.workers[2].state, WORKER_BUSY);
        fake_server_teardown();
    }
}

static void test_least_busy_through_the_table(void **state)
{
    (void)state;
    setup(3, 4, 0, 16);
    fake_cfg.strategy = LB_LEAST_BUSY;
    /* 0 and 1 each hold two, 2 holds one: 2, then the lowest index of the ties */
    fake_pool.workers[0].load.in_flight = 2;
    fake_pool.workers[1].load.in_flight = 2;
    fake_pool.workers[2].load.in_flight = 1;
    int w;
    admit(1, SCHED_SENT);
    sent_id(0, &w);
    assert_int_equal(w, 2);
    admit(2, SCHED_SENT);
    sent_id(1, &w);
    assert_int_equal(w, 0);
    fake_server_teardown();
}

static void test_prefetch_room_only_when_no_worker_is_idle(void **state)
{
    (void)state;
    setup(2, 1, 0, 16);
    /* worker 0 runs one message and may hold one more behind it */
    admit(1, SCHED_SENT);
    assert_ptr_equal(fake_msg_by_id(1)->worker, &fake_pool.workers[0]);
    fake_pool.workers[0].load.ahead = 1;
    /* worker 1 is idle: it gets the next, although 0 has prefetch room */
    admit(2, SCHED_SENT);
    assert_ptr_equal(fake_msg_by_id(2)->worker, &fake_pool.workers[1]);
    assert_int_equal(fake_pool.dispatch.ahead, 0);
    /* nobody idle: 0's prefetch room takes it */
    admit(3, SCHED_SENT);
    assert_ptr_equal(fake_msg_by_id(3)->worker, &fake_pool.workers[0]);
    assert_int_equal(fake_pool.dispatch.ahead, 1);
    assert_int_equal(fake_pool.workers[0].load.in_flight, 2);
    /* the prefetch room is used up: queued */
    admit(4, SCHED_QUEUED);
    assert_int_equal(fake_pool.dispatch.none, 1);
    fake_server_teardown();
}

static void test_pump_soon_runs_once_at_the_end_of_the_turn_and_not_when_stopping(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    setup(1, 2, 0, 16);
    assert_int_equal(sched_init(base), AP_OK);
    for (int id = 1; id <= 4; id++)
        admit(id, id <= 2 ? SCHED_SENT : SCHED_QUEUED);
    finish_oldest(0);
    finish_oldest(0);
    sched_pump_soon(&fake_pool);
    sched_pump_soon(&fake_pool);
    assert_int_equal(fake_calls("worker_send"), 2); /* deferred */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(fake_calls("worker_send"), 4);
    assert_int_equal(fake_pool.queue.depth, 0);
    /* stopping: the deferred pump does nothing */
    admit(5, SCHED_QUEUED);
    finish_oldest(0);
    server.state = SERVER_STOPPING;
    sched_pump_soon(&fake_pool);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(fake_calls("worker_send"), 4);
    /* and it can be asked for again afterwards */
    server.state = SERVER_READY;
    sched_pump_soon(&fake_pool);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(fake_calls("worker_send"), 5);
    sched_free();
    event_base_free(base);
    fake_server_teardown();
}

static void test_two_pools_admit_and_pump_apart(void **state)
{
    (void)state;
    static config cfg_b;
    static worker workers_b[1];
    static pool_t pool_b;
    struct event_base *base = event_base_new();
    assert_non_null(base);
    setup(1, 1, 0, 16);
    fake_config_baseline(&cfg_b, 16);
    fake_pool_add(&pool_b, "b", &cfg_b, workers_b, 1, 1, 0, 16);
    dispatch_init(&pool_b.dispatch, 1);
    assert_int_equal(sched_init(base), AP_OK);

    admit(1, SCHED_SENT);
    admit(2, SCHED_QUEUED);
    msg *b3 = fake_msg(3, "t");
    b3->pool = &pool_b;
    assert_int_equal(sched_admit(b3, 1), SCHED_SENT); /* pool default's queue is not b's */
    msg *b4 = fake_msg(4, "t");
    b4->pool = &pool_b;
    assert_int_equal(sched_admit(b4, 1), SCHED_QUEUED);
    assert_ptr_equal(fake_call_nth("worker_send", 0)->w, &fake_pool.workers[0]);
    assert_ptr_equal(fake_call_nth("worker_send", 1)->w, &workers_b[0]);
    assert_int_equal(fake_pool.queue.depth, 1);
    assert_int_equal(pool_b.queue.depth, 1);
    assert_int_equal(fake_pool.stats.accepted, 2);
    assert_int_equal(pool_b.stats.accepted, 2);

    event_base_loop(base, EVLOOP_NONBLOCK); /* the pumps admit() asked for: every worker is busy */
    assert_int_equal(fake_calls("worker_send"), 2);
    /* both pools have a free worker; the pump is asked for b only */
    finish_oldest(0);
    finish_oldest_of(&workers_b[0]);
    sched_pump_soon(&pool_b);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(fake_calls("worker_send"), 3);
    assert_int_equal(sent_id(2, NULL), 4);
    assert_ptr_equal(fake_call_nth("worker_send", 2)->w, &workers_b[0]);
    assert_int_equal(fake_pool.queue.depth, 1); /* default's waits for its own pump */
    sched_pump_soon(&fake_pool);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(sent_id(3, NULL), 2);
    assert_int_equal(fake_pool.queue.depth, 0);

    /* A connection waits for room in b, on maxPendingBytes: a message of
     * default leaving brings the total down to the resume mark, so b is
     * pumped; default, with no waiter, is not. */
    queue_link waiter;
    link_add_tail(&pool_b.room_waiters, &waiter);
    int64_t max = 4;
    while (max - max / 4 < (int64_t)server.pending_bytes - 1)
        max++; /* the resume mark one byte below the total: the next release crosses it */
    fake_cfg.max_pending_bytes = max;
    finish_oldest(0);
    assert_true(pool_b.pump_pending);
    assert_false(fake_pool.pump_pending);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(fake_calls("client_room_available"), 1);
    assert_string_equal(fake_call_nth("client_room_available", 0)->text, "b");
    link_del(&waiter);

    sched_free();
    event_base_free(base);
    fake_server_teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_sends_to_a_free_slot_then_queues),
        cmocka_unit_test(test_admit_queues_behind_older_messages_although_a_slot_is_free),
        cmocka_unit_test(test_admit_full_queue_refuses_and_counts_only_when_asked),
        cmocka_unit_test(test_admit_refuses_past_max_pending_bytes_even_with_a_free_worker),
        cmocka_unit_test(test_pump_sends_queued_messages_oldest_first),
        cmocka_unit_test(test_pump_stops_when_no_worker_has_room),
        cmocka_unit_test(test_room_to_resume_needs_a_quarter_of_queue_and_bytes_free),
        cmocka_unit_test(test_pump_resumes_waiting_connections_only_past_the_hysteresis),
        cmocka_unit_test(test_release_gives_back_bytes_of_admitted_messages_only),
        cmocka_unit_test(test_pending_bytes_return_to_zero_after_every_message_leaves),
        cmocka_unit_test(test_strategies_skip_workers_not_accepting_or_full),
        cmocka_unit_test(test_least_busy_through_the_table),
        cmocka_unit_test(test_prefetch_room_only_when_no_worker_is_idle),
        cmocka_unit_test(test_pump_soon_runs_once_at_the_end_of_the_turn_and_not_when_stopping),
        cmocka_unit_test(test_two_pools_admit_and_pump_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
