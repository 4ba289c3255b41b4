/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_recycle.c - cmocka tests for the recycling policies and the
 * make-before-break hand-over (pool/workers/recycle.c), with a fake worker table,
 * RSS readings and a clock the test sets (tests/unit/fake_server.h), and
 * random() wrapped (-Wl,--wrap=random) so each worker's spread is the
 * test's choice.  Spawns, drains and kills are recorded, never done.
 */
#include "fake_server.h"
#include "recycle.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

/* n serving workers with `spare` spare entries, every policy off. */
static void setup(int n, int spare)
{
    fake_server_setup(n, 1, spare, 16);
    fake_cfg.max_messages_per_worker = 0;
    fake_cfg.worker_recycle_interval = 0;
    fake_cfg.max_worker_rss = 0;
    fake_cfg.max_worker_rss_hard = 0;
    fake_cfg.recycle_jitter = 0;
    fake_cfg.max_concurrent_recycles = 1;
    fake_cfg.graceful_timeout = 30000;
}

static void teardown(void)
{
    fake_server_teardown();
}

/* w is being recycled for `why`, its replacement spawned into entry e. */
static void assert_recycling(int w, int e, const char *why)
{
    worker *old = &fake_pool.workers[w], *rep = &fake_pool.workers[e];
    assert_ptr_equal(old->replaced_by, rep);
    assert_ptr_equal(rep->replaces, old);
    assert_int_equal(rep->slot, old->slot);
    assert_string_equal(rep->name, old->name);
    assert_int_equal(rep->state, WORKER_STARTING);
    assert_string_equal(old->proc.recycle_reason, why);
    assert_true(worker_is_accepting(old)); /* it serves until the replacement is ready */
}

static void test_message_limit_recycles_after_the_limiting_answer(void **state)
{
    (void)state;
    setup(1, 1);
    fake_cfg.max_messages_per_worker = 100;
    worker *w = &fake_pool.workers[0];
    w->load.processed = 99;
    recycle_after_answer(w);
    assert_int_equal(fake_calls("worker_spawn"), 0);
    w->load.processed = 100;
    recycle_after_answer(w);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    assert_int_equal(fake_call_nth("worker_spawn", 0)->arg, 1);
    assert_recycling(0, 1, "processed maxMessagesPerWorker messages");
    assert_int_equal(fake_pool.stats.recycles, 1);
    assert_int_equal(recycle_active(&fake_pool), 1);
    /* further answers do not start a second recycle */
    w->load.processed = 150;
    recycle_after_answer(w);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    teardown();
}

static void test_policies_off_never_recycle(void **state)
{
    (void)state;
    setup(2, 2);
    fake_pool.workers[0].load.processed = 1000000;
    fake_rss[0] = (uint64_t)1 << 40;
    recycle_after_answer(&fake_pool.workers[0]);
    recycle_tick(&fake_pool, fake_now + 365ull * 24 * 3600 * 1000);
    assert_int_equal(fake_calls("worker_spawn"), 0);
    assert_int_equal(fake_calls("worker_kill_for_memory"), 0);
    teardown();
}

static void test_spread_lowers_each_workers_limits_by_its_own_draw(void **state)
{
    (void)state;
    setup(2, 2);
    fake_cfg.max_messages_per_worker = 1000;
    fake_cfg.max_concurrent_recycles = 2;
    fake_cfg.recycle_jitter = 10; /* up to 10% lower, drawn per process */
    fake_random_value = 50;
    recycle_new_process(&fake_pool.workers[0]);
    assert_int_equal(fake_pool.workers[0].proc.spread_permille, 50);
    fake_random_value = 101 + 7; /* draws are taken modulo 101: 0..100 permille */
    recycle_new_process(&fake_pool.workers[1]);
    assert_int_equal(fake_pool.workers[1].proc.spread_permille, 7);
    fake_pool.workers[0].load.processed = 949;
    fake_pool.workers[1].load.processed = 949;
    recycle_after_answer(&fake_pool.workers[0]);
    recycle_after_answer(&fake_pool.workers[1]);
    assert_int_equal(fake_calls("worker_spawn"), 0);
    fake_pool.workers[0].load.processed = 950; /* 1000 less 5% */
    recycle_after_answer(&fake_pool.workers[0]);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    fake_pool.workers[1].load.processed = 992;
    recycle_after_answer(&fake_pool.workers[1]);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    fake_pool.workers[1].load.processed = 993; /* 1000 less 0.7% */
    recycle_after_answer(&fake_pool.workers[1]);
    assert_int_equal(fake_calls("worker_spawn"), 2);
    teardown();
}

/* (A new process's RSS sample starts at zero with the rest of
 * worker_proc: worker.c's process_reset, not recycle.c.) */
static void test_new_process_without_jitter_has_no_spread(void **state)
{
    (void)state;
    setup(1, 0);
    worker *w = &fake_pool.workers[0];
    w->proc.spread_permille = 77;
    fake_random_value = 50;
    recycle_new_process(w);
    assert_int_equal(w->proc.spread_permille, 0);
    teardown();
}

static void test_age_limit_recycles_at_workerRecycleInterval(void **state)
{
    (void)state;
    setup(1, 1);
    fake_cfg.worker_recycle_interval = 60000;
    uint64_t born = fake_pool.workers[0].proc.started_ms;
    fake_now = born + 59999;
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 0);
    fake_now = born + 60000;
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    assert_recycling(0, 1, "older than workerRecycleInterval");
    teardown();
}

static void test_memory_limit_recycles_on_a_sample_over_maxWorkerRss(void **state)
{
    (void)state;
    setup(1, 1);
    fake_cfg.max_worker_rss = 1000;
    fake_rss[0] = 999;
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_pool.workers[0].proc.rss_bytes, 999);
    assert_int_equal(fake_calls("worker_spawn"), 0);
    /* RSS is read once a second: a later rise is seen at the next sample */
    fake_rss[0] = 1000;
    recycle_tick(&fake_pool, fake_now + 999);
    assert_int_equal(fake_pool.workers[0].proc.rss_bytes, 999);
    assert_int_equal(fake_calls("worker_spawn"), 0);
    recycle_tick(&fake_pool, fake_now + 1000);
    assert_int_equal(fake_pool.workers[0].proc.rss_bytes, 1000);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    assert_recycling(0, 1, "RSS over maxWorkerRss");
    teardown();
}

static void test_hard_memory_limit_kills_instead_of_recycling(void **state)
{
    (void)state;
    setup(2, 2);
    fake_cfg.max_worker_rss = 1000;
    fake_cfg.max_worker_rss_hard = 2000;
    fake_rss[0] = 2000;
    fake_rss[1] = 1999;
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_kill_for_memory"), 1);
    const fake_call *c = fake_call_nth("worker_kill_for_memory", 0);
    assert_ptr_equal(c->w, &fake_pool.workers[0]);
    assert_string_equal(c->text, "uses 2000 bytes, over maxWorkerRssHard (2000)");
    /* worker 1 is only over the soft limit: recycled; worker 0 is not */
    assert_int_equal(fake_calls("worker_spawn"), 1);
    assert_null(fake_pool.workers[0].replaced_by);
    assert_non_null(fake_pool.workers[1].replaced_by);
    /* a worker already being killed is not killed again */
    recycle_tick(&fake_pool, fake_now + 1000);
    assert_int_equal(fake_calls("worker_kill_for_memory"), 1);
    teardown();
}

static void test_at_most_maxConcurrentRecycles_at_once(void **state)
{
    (void)state;
    setup(3, 3);
    fake_cfg.max_messages_per_worker = 10;
    for (int i = 0; i < 3; i++)
        fake_pool.workers[i].load.processed = 10;
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    assert_int_equal(recycle_active(&fake_pool), 1);
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    /* the first hand-over ends: the next may start */
    worker *rep = fake_pool.workers[0].replaced_by;
    assert_non_null(rep);
    fake_worker_state(rep, WORKER_READY);
    recycle_replacement_ready(rep);
    fake_worker_state(&fake_pool.workers[0], WORKER_STOPPING);
    fake_worker_state(&fake_pool.workers[0], WORKER_DEAD);
    assert_int_equal(recycle_process_ended(&fake_pool.workers[0]), 1);
    assert_int_equal(recycle_active(&fake_pool), 0);
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 2);
    /* with two allowed, the third starts beside the second */
    fake_cfg.max_concurrent_recycles = 2;
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 3);
    assert_int_equal(recycle_active(&fake_pool), 2);
    teardown();
}

static void test_start_refuses_without_spare_entry_or_when_not_serving(void **state)
{
    (void)state;
    setup(2, 0);
    assert_int_equal(recycle_start(&fake_pool.workers[0], "why"), AP_ERR); /* no spare */
    teardown();

    setup(2, 1);
    server.state = SERVER_DRAINING;
    assert_int_equal(recycle_start(&fake_pool.workers[0], "why"), AP_ERR);
    server.state = SERVER_READY;
    fake_worker_state(&fake_pool.workers[0], WORKER_DRAINING);
    assert_int_equal(recycle_start(&fake_pool.workers[0], "why"), AP_ERR);
    fake_pool.workers[1].recycle_after_ms = fake_now + 1;
    assert_int_equal(recycle_start(&fake_pool.workers[1], "why"), AP_ERR);
    assert_int_equal(fake_calls("worker_spawn"), 0);
    fake_pool.workers[1].recycle_after_ms = fake_now;
    assert_int_equal(recycle_start(&fake_pool.workers[1], "why"), AP_OK);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    teardown();
}

static void test_failed_spawn_leaves_the_old_worker_serving(void **state)
{
    (void)state;
    setup(1, 1);
    fake_spawn_result = AP_ERR;
    fake_pool.workers[0].proc.replace_pending = 1;
    assert_int_equal(recycle_start(&fake_pool.workers[0], "why"), AP_ERR);
    assert_null(fake_pool.workers[0].replaced_by);
    assert_null(fake_pool.workers[1].replaces);
    assert_int_equal(fake_pool.workers[1].slot, -1); /* the spare is spare again */
    assert_true(fake_pool.workers[0].proc.replace_pending); /* still to be done */
    assert_int_equal(fake_pool.stats.recycles, 0);
    assert_int_equal(recycle_active(&fake_pool), 0);
    teardown();
}

/* Was a bug (found by this test): when worker_spawn itself fails (socketpair, pipes or fork:
 * EMFILE, EAGAIN), recycle_start sets no backoff, so a worker past
 * maxMessagesPerWorker tries to fork a replacement after every answer it
 * gives (and recycle_tick every 100 ms for the other policies), logging
 * an error each time.  recycle.c promises that a replacement that fails
 * to start is tried again only after RECYCLE_RETRY_MIN_MS, doubling,
 * "never in a loop"; that holds only for a replacement that was forked
 * and died before it was ready. */
static void test_failed_spawn_backs_off_before_the_next_attempt(void **state)
{
    (void)state;
    setup(1, 1);
    fake_cfg.max_messages_per_worker = 10;
    worker *w = &fake_pool.workers[0];
    w->load.processed = 10;
    fake_spawn_result = AP_ERR;
    recycle_after_answer(w);
    assert_int_equal(fake_calls("worker_spawn"), 1);
    for (int k = 0; k < 20; k++) {
        w->load.processed++;
        recycle_after_answer(w);
        recycle_tick(&fake_pool, fake_now);
    }
    assert_int_equal(fake_calls("worker_spawn"), 1);
    teardown();
}

static void test_one_for_all_mark_is_recycled_by_the_tick(void **state)
{
    (void)state;
    setup(1, 1);
    fake_pool.workers[0].proc.replace_pending = 1;
    recycle_tick(&fake_pool, fake_now);
    assert_recycling(0, 1, "one-for-all: another worker died");
    assert_false(fake_pool.workers[0].proc.replace_pending);
    teardown();
}

/* The old worker of a hand-over is gone: its replacement serves the slot
 * and its entry is free again, as worker.c leaves them. */
static void finish_hand_over(worker *old)
{
    worker *rep = old->replaced_by;
    fake_worker_state(rep, WORKER_READY);
    recycle_replacement_ready(rep);
    fake_worker_state(old, WORKER_STOPPING);
    fake_worker_state(old, WORKER_DEAD);
    assert_int_equal(recycle_process_ended(old), 1);
    worker_assign(old, -1);
}

/* After slot 0 died under rest-for-one, slots 1-4 are marked; the table's
 * order is not the slot order (entry 0 holds slot 3, entry 3 slot 0). */
static void test_marked_workers_are_replaced_in_slot_order_at_most_max_at_once(void **state)
{
    (void)state;
    setup(5, 3);
    fake_cfg.restart_strategy = RESTART_REST_FOR_ONE;
    fake_cfg.max_concurrent_recycles = 2;
    worker *w = fake_pool.workers;
    worker_assign(&w[0], 3);
    worker_assign(&w[3], 0);
    for (int i = 0; i < 5; i++)
        w[i].proc.replace_pending = w[i].slot != 0;

    recycle_tick(&fake_pool, fake_now);
    /* slots 1 and 2 first, in that order; slots 3 and 4 wait */
    assert_int_equal(fake_calls("worker_spawn"), 2);
    assert_ptr_equal(fake_call_nth("worker_spawn", 0)->w, w[1].replaced_by);
    assert_ptr_equal(fake_call_nth("worker_spawn", 1)->w, w[2].replaced_by);
    assert_recycling(1, w[1].replaced_by->index, "rest-for-one: a worker of an earlier slot died");
    assert_recycling(2, w[2].replaced_by->index, "rest-for-one: a worker of an earlier slot died");
    assert_null(w[0].replaced_by);
    assert_null(w[4].replaced_by);
    assert_true(w[0].proc.replace_pending);
    assert_true(w[4].proc.replace_pending);
    assert_int_equal(recycle_active(&fake_pool), 2);
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 2); /* no room for a third */

    /* slot 1's hand-over ends: slot 3 (entry 0) is next, not slot 4 */
    finish_hand_over(&w[1]);
    assert_int_equal(recycle_active(&fake_pool), 1);
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 3);
    assert_ptr_equal(fake_call_nth("worker_spawn", 2)->w, w[0].replaced_by);
    assert_int_equal(w[0].replaced_by->slot, 3);
    assert_null(w[4].replaced_by);
    assert_int_equal(recycle_active(&fake_pool), 2);

    finish_hand_over(&w[2]);
    recycle_tick(&fake_pool, fake_now);
    assert_int_equal(fake_calls("worker_spawn"), 4);
    assert_ptr_equal(fake_call_nth("worker_spawn", 3)->w, w[4].replaced_by);
    assert_int_equal(w[4].replaced_by->slot, 4);
    /* slot 0, the one that died, is not replaced again */
    assert_null(w[3].replaced_by);
    for (int i = 0; i < 5; i++)
        assert_false(w[i].proc.replace_pending);
    teardown();
}

static void test_replacement_ready_drains_the_old_worker(void **state)
{
    (void)state;
    setup(1, 1);
    worker *old = &fake_pool.workers[0];
    old->recycle_failures = 3;
    assert_int_equal(recycle_start(old, "why"), AP_OK);
    worker *rep = old->replaced_by;
    fake_worker_state(rep, WORKER_READY);
    recycle_replacement_ready(rep);
    assert_int_equal(fake_calls("worker_drain"), 1);
    assert_ptr_equal(fake_call_nth("worker_drain", 0)->w, old);
    assert_int_equal(old->state, WORKER_DRAINING);
    assert_null(rep->replaces);
    assert_ptr_equal(old->replaced_by, rep); /* until the old process is gone */
    assert_int_equal(old->recycle_failures, 0);
    /* a worker that replaces nobody: nothing */
    recycle_replacement_ready(old);
    assert_int_equal(fake_calls("worker_drain"), 1);
    teardown();
}

static void test_replacement_ready_leaves_an_old_worker_no_longer_serving_alone(void **state)
{
    (void)state;
    setup(1, 1);
    worker *old = &fake_pool.workers[0];
    assert_int_equal(recycle_start(old, "why"), AP_OK);
    worker *rep = old->replaced_by;
    fake_worker_state(old, WORKER_STOPPING); /* found stuck meanwhile */
    fake_worker_state(rep, WORKER_READY);
    recycle_replacement_ready(rep);
    assert_int_equal(fake_calls("worker_drain"), 0);
    assert_int_equal(old->state, WORKER_STOPPING);
    teardown();
}

static void test_old_process_end_gives_the_slot_to_the_replacement(void **state)
{
    (void)state;
    setup(1, 1);
    worker *old = &fake_pool.workers[0];
    assert_int_equal(recycle_start(old, "why"), AP_OK);
    worker *rep = old->replaced_by;
    /* the old one dies mid-hand-over, before its replacement is ready */
    assert_int_equal(recycle_process_ended(old), 1);
    assert_null(old->replaced_by);
    assert_null(rep->replaces);
    assert_int_equal(rep->slot, 0);
    assert_int_equal(fake_calls("reload_replacement_failed"), 0);
    teardown();
}

static void test_failed_replacement_backs_off_and_the_old_worker_serves_on(void **state)
{
    (void)state;
    setup(1, 1);
    worker *old = &fake_pool.workers[0];
    static const uint64_t backoff[] = {1000, 2000, 4000};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(recycle_start(old, "why"), AP_OK);
        worker *rep = old->replaced_by;
        fake_worker_state(rep, WORKER_DEAD); /* died before it was ready */
        assert_int_equal(recycle_process_ended(rep), 1);
        assert_null(old->replaced_by);
        assert_null(old->proc.recycle_reason);
        assert_null(rep->replaces);
        assert_true(worker_is_accepting(old));
        assert_int_equal(old->recycle_failures, k + 1);
        assert_int_equal(old->recycle_after_ms, fake_now + backoff[k]);
        assert_int_equal(fake_calls("reload_replacement_failed"), k + 1);
        rep->slot = -1; /* worker.c frees the entry */
        assert_int_equal(recycle_start(old, "why"), AP_ERR); /* not before the backoff */
        fake_now = old->recycle_after_ms;
    }
    old->recycle_failures = 100;
    assert_int_equal(recycle_start(old, "why"), AP_OK);
    fake_worker_state(old->replaced_by, WORKER_DEAD);
    recycle_process_ended(old->replaced_by);
    assert_int_equal(old->recycle_after_ms, fake_now + 60000);
    teardown();
}

static void test_process_end_outside_a_hand_over_keeps_the_slot(void **state)
{
    (void)state;
    setup(2, 1);
    assert_int_equal(recycle_process_ended(&fake_pool.workers[1]), 0);
    teardown();
}

static void test_graceful_timeout_kills_a_worker_that_does_not_stop(void **state)
{
    (void)state;
    setup(2, 0);
    worker *w = &fake_pool.workers[0];
    fake_worker_state(w, WORKER_DRAINING);
    w->proc.stop_sent_ms = fake_now;
    fake_worker_state(&fake_pool.workers[1], WORKER_STOPPING);
    fake_pool.workers[1].proc.stop_sent_ms = fake_now + 10;
    recycle_tick(&fake_pool, fake_now + 29999);
    assert_int_equal(fake_calls("worker_kill_stuck"), 0);
    recycle_tick(&fake_pool, fake_now + 30000);
    assert_int_equal(fake_calls("worker_kill_stuck"), 1);
    assert_ptr_equal(fake_call_nth("worker_kill_stuck", 0)->w, w);
    assert_string_equal(fake_call_nth("worker_kill_stuck", 0)->text,
                        "it did not exit within gracefulTimeout (30000 ms) of being asked");
    recycle_tick(&fake_pool, fake_now + 30010);
    assert_int_equal(fake_calls("worker_kill_stuck"), 2);
    assert_ptr_equal(fake_call_nth("worker_kill_stuck", 1)->w, &fake_pool.workers[1]);
    /* being killed already: not again */
    recycle_tick(&fake_pool, fake_now + 60000);
    assert_int_equal(fake_calls("worker_kill_stuck"), 2);
    teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_limit_recycles_after_the_limiting_answer),
        cmocka_unit_test(test_policies_off_never_recycle),
        cmocka_unit_test(test_spread_lowers_each_workers_limits_by_its_own_draw),
        cmocka_unit_test(test_new_process_without_jitter_has_no_spread),
        cmocka_unit_test(test_age_limit_recycles_at_workerRecycleInterval),
        cmocka_unit_test(test_memory_limit_recycles_on_a_sample_over_maxWorkerRss),
        cmocka_unit_test(test_hard_memory_limit_kills_instead_of_recycling),
        cmocka_unit_test(test_at_most_maxConcurrentRecycles_at_once),
        cmocka_unit_test(test_start_refuses_without_spare_entry_or_when_not_serving),
        cmocka_unit_test(test_failed_spawn_leaves_the_old_worker_serving),
        cmocka_unit_test(test_failed_spawn_backs_off_before_the_next_attempt),
        cmocka_unit_test(test_one_for_all_mark_is_recycled_by_the_tick),
        cmocka_unit_test(test_marked_workers_are_replaced_in_slot_order_at_most_max_at_once),
        cmocka_unit_test(test_replacement_ready_drains_the_old_worker),
        cmocka_unit_test(test_replacement_ready_leaves_an_old_worker_no_longer_serving_alone),
        cmocka_unit_test(test_old_process_end_gives_the_slot_to_the_replacement),
        cmocka_unit_test(test_failed_replacement_backs_off_and_the_old_worker_serves_on),
        cmocka_unit_test(test_process_end_outside_a_hand_over_keeps_the_slot),
        cmocka_unit_test(test_graceful_timeout_kills_a_worker_that_does_not_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
