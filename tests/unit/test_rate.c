/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_rate.c - cmocka tests for the per-second event counters
 * (pool/ops/rate.c, linked alone; it allocates nothing).
 *
 * The window is the current second and the seconds-1 before it: events
 * leave it exactly when their second does, partial seconds count, a slot
 * left from a lap of the ring is never counted again, windows are
 * clamped to 1..RATE_MAX_WINDOW, and a window longer than the pool's age
 * holds every event so far.  A randomized run checks every sum against a
 * list of every event's time.  Time is made up.
 */
#include "rate.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>

static void test_empty(void **state)
{
    (void)state;
    rate_ring r;
    rate_init(&r);
    assert_int_equal(rate_sum(&r, 0, 1), 0);
    assert_int_equal(rate_sum(&r, 123456789, 60), 0);
    assert_int_equal(r.total, 0);
}

static void test_seconds_leave_the_window(void **state)
{
    (void)state;
    rate_ring r;
    rate_init(&r);
    rate_add(&r, 0, 1);
    rate_add(&r, 999, 2);
    assert_int_equal(rate_sum(&r, 999, 1), 3);
    assert_int_equal(rate_sum(&r, 1000, 1), 0);
    assert_int_equal(rate_sum(&r, 1000, 2), 3);
    assert_int_equal(rate_sum(&r, 9999, 10), 3);
    assert_int_equal(rate_sum(&r, 10000, 10), 0);
    assert_int_equal(rate_sum(&r, 59999, 60), 3);
    assert_int_equal(rate_sum(&r, 60000, 60), 0);
    assert_int_equal(r.total, 3);
}

static void test_steady_stream(void **state)
{
    (void)state;
    rate_ring r;
    rate_init(&r);
    for (uint64_t s = 0; s < 100; s++)
        rate_add(&r, s * 1000 + 500, 5);
    uint64_t now = 99 * 1000 + 700;
    assert_int_equal(rate_sum(&r, now, 1), 5);
    assert_int_equal(rate_sum(&r, now, 10), 50);
    assert_int_equal(rate_sum(&r, now, 60), 300);
    /* clamped */
    assert_int_equal(rate_sum(&r, now, 0), 5);
    assert_int_equal(rate_sum(&r, now, 61), 300);
    assert_int_equal(rate_sum(&r, now, 1000), 300);
    assert_int_equal(r.total, 500);
}

static void test_a_lap_is_not_counted_again(void **state)
{
    (void)state;
    rate_ring r;
    rate_init(&r);
    rate_add(&r, 3000, 7);                       /* second 3 */
    uint64_t lap = (3 + RATE_SLOTS) * 1000ull;   /* same slot, a lap later */
    assert_int_equal(rate_sum(&r, lap, 1), 0);
    assert_int_equal(rate_sum(&r, lap, 60), 0);
    rate_add(&r, lap, 1);
    assert_int_equal(rate_sum(&r, lap, 1), 1);
}

static void test_young_pool_counts_everything(void **state)
{
    (void)state;
    rate_ring r;
    rate_init(&r);
    rate_add(&r, 100, 4);
    rate_add(&r, 2100, 6);
    assert_int_equal(rate_sum(&r, 2500, 60), 10);
    assert_int_equal(rate_sum(&r, 2500, 10), 10);
    assert_int_equal(rate_sum(&r, 2500, 2), 6);
}

static void test_random_against_a_list(void **state)
{
    (void)state;
    enum { N = 20000 };
    uint64_t *t = malloc(N * sizeof(uint64_t));
    assert_non_null(t);
    rate_ring r;
    rate_init(&r);
    uint64_t now = 0;
    srand(5);
    for (unsigned i = 0; i < N; i++) {
        now += (uint64_t)(rand() % 40);
        t[i] = now;
        rate_add(&r, now, 1);
        if (i % 97 == 0) {
            const unsigned windows[3] = {1, 10, 60};
            for (int k = 0; k < 3; k++) {
                uint64_t first = now / 1000 >= windows[k] - 1 ? (now / 1000 - (windows[k] - 1)) * 1000 : 0;
                uint64_t want = 0;
                for (unsigned j = 0; j <= i; j++)
                    want += t[j] >= first;
                assert_int_equal(rate_sum(&r, now, windows[k]), want);
            }
        }
    }
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_seconds_leave_the_window),
        cmocka_unit_test(test_steady_stream),
        cmocka_unit_test(test_a_lap_is_not_counted_again),
        cmocka_unit_test(test_young_pool_counts_everything),
        cmocka_unit_test(test_random_against_a_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
