/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_supervisor.c - cmocka tests for restart intensity, backoff, the
 * restart history and the restart strategies (one-for-one, one-for-all,
 * rest-for-one) of pool/workers/supervisor.c, with a fake worker table
 * and a clock the test moves (tests/unit/fake_server.h): no process is
 * started or waited for.  Each pool is supervised on its own: a second
 * pool (fake_pool_add) shows one pool's crash loop leaves the other alone.
 */
#include "fake_server.h"
#include "supervisor.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cJSON.h>
#include <signal.h>
#include <string.h>

#define SIGNALLED(sig) (sig)
#define EXITED(code) ((code) << 8)

static void setup(int n, int64_t max_restarts, int64_t window, int64_t history)
{
    fake_server_setup(n, 1, 2, 16);
    fake_cfg.max_restarts = max_restarts;
    fake_cfg.restart_window = window;
    fake_cfg.history_size = history;
    supervisor_init(&fake_pool);
}

static void teardown(void)
{
    supervisor_free(&fake_pool);
    fake_server_teardown();
}

static int64_t crash(int i)
{
    return supervisor_worker_ended(&fake_pool.workers[i], SIGNALLED(SIGSEGV), SUP_CRASHED);
}

static void test_crashes_within_max_restarts_respawn_at_once(void **state)
{
    (void)state;
    setup(2, 3, 10000, 100);
    fake_now = 10; /* the monotonic clock just after boot: the ring's empty places are not times */
    for (int k = 0; k < 3; k++) {
        assert_int_equal(crash(k % 2), 0);
        fake_now += 1000;
    }
    assert_false(supervisor_in_backoff(&fake_pool));
    assert_int_equal(supervisor_recent_restarts(&fake_pool, fake_now), 3);
    teardown();
}

static void test_more_than_max_restarts_in_the_window_backs_off_doubling(void **state)
{
    (void)state;
    setup(2, 3, 10000, 100);
    for (int k = 0; k < 3; k++)
        crash(0);
    int errors = fake_log_count[AP_LOG_ERROR];
    assert_int_equal(crash(0), 500);
    assert_true(supervisor_in_backoff(&fake_pool));
    assert_int_equal(fake_log_count[AP_LOG_ERROR], errors + 1);
    assert_string_equal(fake_log_last[AP_LOG_ERROR],
                        "pool default: more than 3 worker restarts within 10000 ms: the pool backs off (degraded)");
    assert_int_equal(crash(1), 1000);
    assert_int_equal(crash(0), 2000);
    for (int k = 0; k < 20; k++)
        assert_true(crash(0) <= 60000);
    assert_int_equal(crash(0), 60000);
    assert_int_equal(fake_log_count[AP_LOG_ERROR], errors + 1); /* said once */
    teardown();
}

static void test_restarts_spread_wider_than_the_window_never_back_off(void **state)
{
    (void)state;
    setup(1, 3, 9000, 100);
    /* every fourth end exactly a window after the first of them */
    for (int k = 0; k < 14; k++) {
        assert_int_equal(crash(0), 0);
        fake_now += 3000;
    }
    assert_false(supervisor_in_backoff(&fake_pool));
    teardown();
}

static void test_tick_leaves_backoff_after_a_quiet_window_only(void **state)
{
    (void)state;
    setup(1, 1, 5000, 100);
    crash(0);
    assert_int_equal(crash(0), 500);
    assert_true(supervisor_in_backoff(&fake_pool));
    uint64_t last = fake_now;
    supervisor_tick(&fake_pool, last + 4999);
    assert_true(supervisor_in_backoff(&fake_pool));
    supervisor_tick(&fake_pool, last + 5000);
    assert_false(supervisor_in_backoff(&fake_pool));
    /* the next crash starts from no backoff: the ring's times are old */
    fake_now = last + 5000;
    assert_int_equal(crash(0), 0);
    /* and when it backs off again, the delay starts over */
    assert_int_equal(crash(0), 500);
    teardown();
}

static void test_tick_without_backoff_changes_nothing(void **state)
{
    (void)state;
    setup(1, 1, 5000, 100);
    crash(0);
    supervisor_tick(&fake_pool, fake_now + 100000);
    assert_false(supervisor_in_backoff(&fake_pool));
    assert_int_equal(crash(0), 500); /* the tick did not forget the first crash */
    teardown();
}

static void test_failures_to_start_back_off_on_their_own(void **state)
{
    (void)state;
    setup(1, 100, 10000, 100);
    worker *w = &fake_pool.workers[0];
    static const int64_t want[] = {0, 250, 500, 1000, 2000};
    for (unsigned f = 0; f < 5; f++) {
        w->start_failures = f;
        assert_int_equal(supervisor_worker_ended(w, EXITED(AP_EXIT_START_FAILED), SUP_START_FAILED), want[f]);
    }
    w->start_failures = 40;
    assert_int_equal(supervisor_worker_ended(w, EXITED(AP_EXIT_START_FAILED), SUP_START_FAILED), 30000);
    assert_false(supervisor_in_backoff(&fake_pool));
    teardown();
}

static void test_start_backoff_and_intensity_backoff_take_the_longer(void **state)
{
    (void)state;
    setup(1, 1, 10000, 100);
    worker *w = &fake_pool.workers[0];
    crash(0);
    w->start_failures = 1; /* 250, below the pool's 500 */
    assert_int_equal(supervisor_worker_ended(w, SIGNALLED(SIGKILL), SUP_START_FAILED), 500);
    w->start_failures = 6; /* 8000, above the pool's 1000 */
    assert_int_equal(supervisor_worker_ended(w, SIGNALLED(SIGKILL), SUP_START_FAILED), 8000);
    teardown();
}

static void test_expected_ends_are_not_respawned_nor_counted(void **state)
{
    (void)state;
    setup(1, 1, 10000, 100);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(supervisor_worker_ended(&fake_pool.workers[0], 0, SUP_STOPPED), -1);
        assert_int_equal(supervisor_worker_ended(&fake_pool.workers[0], 0, SUP_RECYCLED), -1);
    }
    assert_false(supervisor_in_backoff(&fake_pool));
    assert_int_equal(supervisor_recent_restarts(&fake_pool, fake_now), 0);
    assert_int_equal(supervisor_ends(&fake_pool, SUP_STOPPED), 10);
    assert_int_equal(supervisor_ends(&fake_pool, SUP_RECYCLED), 10);
    assert_int_equal(crash(0), 0); /* the first unexpected end of the window */
    teardown();
}

static void test_restart_on_failure_false_never_respawns(void **state)
{
    (void)state;
    setup(1, 1, 10000, 100);
    fake_cfg.restart_on_failure = 0;
    for (int k = 0; k < 5; k++)
        assert_int_equal(crash(0), -1);
    assert_int_equal(supervisor_worker_ended(&fake_pool.workers[0], SIGNALLED(SIGKILL), SUP_KILLED_STUCK), -1);
    assert_string_equal(fake_log_last[AP_LOG_WARN], "worker-0: restartOnFailure is false: not respawning it");
    assert_false(supervisor_in_backoff(&fake_pool));
    assert_int_equal(supervisor_ends(&fake_pool, SUP_CRASHED), 5); /* still in the history */
    teardown();
}

static void test_recent_restarts_counts_unexpected_ends_within_the_window(void **state)
{
    (void)state;
    setup(1, 100, 10000, 100);
    crash(0);
    fake_now += 5000;
    supervisor_worker_ended(&fake_pool.workers[0], SIGNALLED(SIGKILL), SUP_KILLED_MEMORY);
    supervisor_worker_ended(&fake_pool.workers[0], 0, SUP_STOPPED);
    supervisor_worker_ended(&fake_pool.workers[0], 0, SUP_RECYCLED);
    assert_int_equal(supervisor_recent_restarts(&fake_pool, fake_now), 2);
    assert_int_equal(supervisor_recent_restarts(&fake_pool, fake_now + 4999), 2);
    assert_int_equal(supervisor_recent_restarts(&fake_pool, fake_now + 5000), 1);
    assert_int_equal(supervisor_recent_restarts(&fake_pool, fake_now + 10000), 0);
    teardown();
}

static void test_history_keeps_the_last_history_size_ends_oldest_first(void **state)
{
    (void)state;
    static const char *const reasons[] = {"crashed", "start_failed", "killed_stuck", "killed_memory", "recycled"};
    setup(1, 100, 10000, 3);
    worker *w = &fake_pool.workers[0];
    for (int k = 0; k < 5; k++) {
        w->proc.pid = 2000 + k;
        w->proc.generation = (uint32_t)k + 1;
        supervisor_worker_ended(w, k % 2 ? EXITED(k) : SIGNALLED(9), (sup_reason)(SUP_CRASHED + k));
        fake_now += 10;
    }
    cJSON *h = supervisor_history_json(&fake_pool, cJSON_CreateArray());
    assert_int_equal(cJSON_GetArraySize(h), 3);
    for (int k = 0; k < 3; k++) {
        cJSON *e = cJSON_GetArrayItem(h, k);
        int orig = k + 2;
        assert_int_equal(cJSON_GetObjectItem(e, "pid")->valueint, 2000 + orig);
        assert_int_equal(cJSON_GetObjectItem(e, "generation")->valueint, orig + 1);
        assert_string_equal(cJSON_GetObjectItem(e, "worker")->valuestring, "worker-0");
        assert_string_equal(cJSON_GetObjectItem(e, "reason")->valuestring, reasons[orig]);
        if (orig % 2) {
            assert_int_equal(cJSON_GetObjectItem(e, "exitStatus")->valueint, orig);
            assert_null(cJSON_GetObjectItem(e, "signal"));
        } else {
            assert_int_equal(cJSON_GetObjectItem(e, "signal")->valueint, 9);
            assert_null(cJSON_GetObjectItem(e, "exitStatus"));
        }
    }
    cJSON_Delete(h);
    for (int k = 0; k < 5; k++)
        assert_int_equal(supervisor_ends(&fake_pool, (sup_reason)(SUP_CRASHED + k)), 1);
    teardown();
}

/* Workers 0-3 serve; 1 drains, 2 is being replaced already; 4-5 spare. */
static void setup_one_for_all(void)
{
    setup(4, 1, 10000, 100);
    fake_cfg.restart_strategy = RESTART_ONE_FOR_ALL;
    fake_worker_state(&fake_pool.workers[1], WORKER_DRAINING);
    fake_pool.workers[2].replaced_by = &fake_pool.workers[4];
}

static void test_one_for_all_marks_every_other_serving_worker(void **state)
{
    (void)state;
    setup_one_for_all();
    crash(0);
    assert_false(fake_pool.workers[0].proc.replace_pending); /* the one that died */
    assert_false(fake_pool.workers[1].proc.replace_pending); /* draining */
    assert_false(fake_pool.workers[2].proc.replace_pending); /* already replaced */
    assert_true(fake_pool.workers[3].proc.replace_pending);
    assert_false(fake_pool.workers[4].proc.replace_pending);
    assert_false(fake_pool.workers[5].proc.replace_pending);
    assert_string_equal(fake_log_last[AP_LOG_WARN], "one-for-all: worker-0 crashed; replacing the 1 other worker");
    teardown();
}

static void test_one_for_all_ignores_expected_ends_start_up_and_one_for_one(void **state)
{
    (void)state;
    for (int k = 0; k < 4; k++) {
        setup_one_for_all();
        if (k == 0)
            supervisor_worker_ended(&fake_pool.workers[0], 0, SUP_STOPPED);
        else if (k == 1)
            supervisor_worker_ended(&fake_pool.workers[0], 0, SUP_RECYCLED);
        else if (k == 2) {
            server.state = SERVER_STARTING;
            crash(0);
        } else {
            fake_cfg.restart_strategy = RESTART_ONE_FOR_ONE;
            crash(0);
        }
        for (int i = 0; i < 6; i++)
            assert_false(fake_pool.workers[i].proc.replace_pending);
        teardown();
    }
}

/* Which entries of fake_pool are marked replace_pending, as "0 4". */
static const char *marked(void)
{
    static char buf[64];
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < fake_pool.nworkers; i++)
        if (fake_pool.workers[i].proc.replace_pending)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%d", n ? " " : "", i);
    return buf;
}

/* Five serving workers whose table order is not their slot order
 * (entry 0 holds slot 3, entry 3 holds slot 0), two spare entries. */
static void setup_strategy(int64_t strategy)
{
    setup(5, 5, 10000, 100);
    fake_cfg.restart_strategy = strategy;
    worker_assign(&fake_pool.workers[0], 3);
    worker_assign(&fake_pool.workers[3], 0);
}

static void test_rest_for_one_marks_exactly_the_later_slots(void **state)
{
    (void)state;
    setup_strategy(RESTART_REST_FOR_ONE);
    crash(2); /* slot 2: slots 3 (entry 0) and 4 (entry 4) depend on it */
    assert_string_equal(marked(), "0 4");
    assert_string_equal(fake_log_last[AP_LOG_WARN], "rest-for-one: worker-2 crashed; replacing the 2 later workers");
    assert_string_equal(supervisor_replace_reason(&fake_pool), "rest-for-one: a worker of an earlier slot died");
    teardown();

    setup_strategy(RESTART_REST_FOR_ONE);
    crash(3); /* slot 0: every other slot is later */
    assert_string_equal(marked(), "0 1 2 4");
    teardown();

    setup_strategy(RESTART_REST_FOR_ONE);
    int warns = fake_log_count[AP_LOG_WARN];
    crash(4); /* the last slot: nothing depends on it */
    assert_string_equal(marked(), "");
    assert_int_equal(fake_log_count[AP_LOG_WARN], warns);
    teardown();
}

static void test_rest_for_one_skips_draining_and_replaced_workers(void **state)
{
    (void)state;
    setup_strategy(RESTART_REST_FOR_ONE);
    fake_worker_state(&fake_pool.workers[0], WORKER_DRAINING); /* slot 3 */
    fake_pool.workers[4].replaced_by = &fake_pool.workers[5]; /* slot 4, being replaced already */
    crash(1);
    assert_string_equal(marked(), "2");
    teardown();
}

static void test_one_for_all_marks_all_others_one_for_one_none(void **state)
{
    (void)state;
    setup_strategy(RESTART_ONE_FOR_ALL);
    crash(2);
    assert_string_equal(marked(), "0 1 3 4");
    assert_string_equal(supervisor_replace_reason(&fake_pool), "one-for-all: another worker died");
    teardown();

    setup_strategy(RESTART_ONE_FOR_ONE);
    crash(2);
    assert_string_equal(marked(), "");
    teardown();
}

/* Two pools, each with its own settings and supervision: more than
 * maxRestarts crashes in pool "default" put it alone into backoff. */
static void test_a_crash_loop_backs_off_only_its_own_pool(void **state)
{
    (void)state;
    static config cfg_b;
    static worker workers_b[3];
    static pool_t pool_b;
    setup(2, 1, 10000, 100);
    fake_config_baseline(&cfg_b, 16);
    cfg_b.max_restarts = 1;
    cfg_b.restart_window = 10000;
    fake_pool_add(&pool_b, "b", &cfg_b, workers_b, 2, 1, 1, 16);
    supervisor_init(&pool_b);
    assert_int_equal(server.npools, 2);

    assert_int_equal(crash(0), 0); /* max_restarts 1: the second is one too many */
    assert_int_equal(crash(1), 500);
    assert_true(supervisor_in_backoff(&fake_pool));
    assert_string_equal(fake_log_last[AP_LOG_ERROR],
                        "pool default: more than 1 worker restarts within 10000 ms: the pool backs off (degraded)");
    assert_false(supervisor_in_backoff(&pool_b));
    assert_int_equal(supervisor_recent_restarts(&pool_b, fake_now), 0);
    assert_int_equal(supervisor_ends(&pool_b, SUP_CRASHED), 0);

    /* b's first crash is respawned at once, and counts in b only */
    assert_int_equal(supervisor_worker_ended(&workers_b[0], SIGNALLED(SIGSEGV), SUP_CRASHED), 0);
    assert_false(supervisor_in_backoff(&pool_b));
    assert_int_equal(supervisor_recent_restarts(&pool_b, fake_now), 1);
    assert_int_equal(supervisor_recent_restarts(&fake_pool, fake_now), 2);
    /* and the pool in backoff keeps doubling its own delay */
    assert_int_equal(crash(0), 1000);

    /* leaving backoff is per pool too */
    supervisor_tick(&pool_b, fake_now + 10000);
    assert_true(supervisor_in_backoff(&fake_pool));
    supervisor_tick(&fake_pool, fake_now + 10000);
    assert_false(supervisor_in_backoff(&fake_pool));
    supervisor_free(&pool_b);
    teardown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crashes_within_max_restarts_respawn_at_once),
        cmocka_unit_test(test_more_than_max_restarts_in_the_window_backs_off_doubling),
        cmocka_unit_test(test_restarts_spread_wider_than_the_window_never_back_off),
        cmocka_unit_test(test_tick_leaves_backoff_after_a_quiet_window_only),
        cmocka_unit_test(test_tick_without_backoff_changes_nothing),
        cmocka_unit_test(test_failures_to_start_back_off_on_their_own),
        cmocka_unit_test(test_start_backoff_and_intensity_backoff_take_the_longer),
        cmocka_unit_test(test_expected_ends_are_not_respawned_nor_counted),
        cmocka_unit_test(test_restart_on_failure_false_never_respawns),
        cmocka_unit_test(test_recent_restarts_counts_unexpected_ends_within_the_window),
        cmocka_unit_test(test_history_keeps_the_last_history_size_ends_oldest_first),
        cmocka_unit_test(test_one_for_all_marks_every_other_serving_worker),
        cmocka_unit_test(test_one_for_all_ignores_expected_ends_start_up_and_one_for_one),
        cmocka_unit_test(test_rest_for_one_marks_exactly_the_later_slots),
        cmocka_unit_test(test_rest_for_one_skips_draining_and_replaced_workers),
        cmocka_unit_test(test_one_for_all_marks_all_others_one_for_one_none),
        cmocka_unit_test(test_a_crash_loop_backs_off_only_its_own_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
