/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_backoff.c - the one exponential backoff (common/backoff.c): the
 * doubling, the cap, attempt counts that would overflow, and the jitter's
 * range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ap_backoff.h"

static void test_doubles_from_min_per_attempt(void **state)
{
    (void)state;
    assert_int_equal(ap_backoff_ms(100, 100000, 0), 100);
    assert_int_equal(ap_backoff_ms(100, 100000, 1), 100);
    assert_int_equal(ap_backoff_ms(100, 100000, 2), 200);
    assert_int_equal(ap_backoff_ms(100, 100000, 3), 400);
    assert_int_equal(ap_backoff_ms(100, 100000, 10), 51200);
}

static void test_never_passes_the_cap_even_for_huge_attempt_counts(void **state)
{
    (void)state;
    assert_int_equal(ap_backoff_ms(100, 60000, 11), 60000);
    assert_int_equal(ap_backoff_ms(100, 60000, 4000000000u), 60000);
    assert_int_equal(ap_backoff_ms(UINT64_MAX / 2 + 1, UINT64_MAX, 3), UINT64_MAX);
}

static void test_a_cap_below_the_minimum_wins(void **state)
{
    (void)state;
    assert_int_equal(ap_backoff_ms(500, 100, 1), 100);
    assert_int_equal(ap_backoff_ms(500, 100, 5), 100);
}

static void test_zero_minimum_stays_zero(void **state)
{
    (void)state;
    assert_int_equal(ap_backoff_ms(0, 1000, 7), 0);
    assert_int_equal(ap_backoff_jitter(0, 12345), 0);
}

static void test_jitter_stays_within_half_to_whole(void **state)
{
    (void)state;
    for (uint64_t d = 1; d < 2000; d += 37)
        for (uint64_t r = 0; r < 5000; r += 13) {
            uint64_t j = ap_backoff_jitter(d, r);
            assert_true(j >= d / 2);
            assert_true(j <= d);
        }
    /* both ends are reachable */
    assert_int_equal(ap_backoff_jitter(1000, 0), 500);
    assert_int_equal(ap_backoff_jitter(1000, 500), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_from_min_per_attempt),
        cmocka_unit_test(test_never_passes_the_cap_even_for_huge_attempt_counts),
        cmocka_unit_test(test_a_cap_below_the_minimum_wins),
        cmocka_unit_test(test_zero_minimum_stays_zero),
        cmocka_unit_test(test_jitter_stays_within_half_to_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
