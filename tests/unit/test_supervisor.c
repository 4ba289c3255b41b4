/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_supervisor.c - cmocka tests for restart intensity, backoff, the
 * restart history and one-for-all (pool/workers/supervisor.c), with a fake worker
 * table and a clock the test moves (tests/unit/fake_server.h): no
 * process is started or waited for.
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
