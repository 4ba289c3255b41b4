/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_hist.c - cmocka tests of the latency histogram: bucket layout,
 * exact percentiles for known inputs, the documented precision bound
 * (v <= reported <= v + v/128), max and overflow, merging.
 */
#include "hist.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static hist *new_hist(void)
{
    hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    hist_reset(h);
    return h;
}

static void test_empty(void **state)
{
    (void)state;
    hist *h = new_hist();
    assert_int_equal(hist_percentile(h, 50), 0);
    assert_int_equal(hist_percentile(h, 100), 0);
    assert_true(hist_mean(h) == 0.0);
    assert_int_equal(h->total, 0);
    free(h);
}

static void test_bucket_layout(void **state)
{
    (void)state;
    /* exact below 256 */
    for (uint64_t v = 0; v < 256; v++) {
        assert_int_equal(hist_index(v), v);
        assert_int_equal(hist_bucket_low((unsigned)v), v);
        assert_int_equal(hist_bucket_high((unsigned)v), v);
    }
    /* [256, 512): width 2 */
    assert_int_equal(hist_index(256), 256);
    assert_int_equal(hist_index(257), 256);
    assert_int_equal(hist_index(258), 257);
    assert_int_equal(hist_bucket_low(256), 256);
    assert_int_equal(hist_bucket_high(256), 257);
    assert_int_equal(hist_index(511), 383);
    /* [512, 1024): width 4 */
    assert_int_equal(hist_index(512), 384);
    assert_int_equal(hist_bucket_low(384), 512);
    assert_int_equal(hist_bucket_high(384), 515);
    /* the top: 100 s lands in the last bucket */
    assert_int_equal(hist_index(HIST_MAX_VALUE), HIST_COUNTS - 1);
    assert_int_equal(hist_index(HIST_MAX_VALUE * 10), HIST_COUNTS - 1);
    assert_true(hist_bucket_low(HIST_COUNTS - 1) <= HIST_MAX_VALUE);
    assert_true(hist_bucket_high(HIST_COUNTS - 1) >= HIST_MAX_VALUE);
    /* buckets tile the range with no gap and no overlap */
    for (unsigned i = 1; i < HIST_COUNTS; i++)
        assert_int_equal(hist_bucket_low(i), hist_bucket_high(i - 1) + 1);
}

/* The documented precision: every value v up to 100 s lies in a bucket
 * [low, high] with high - v <= v / 128. */
static void test_precision_bound(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull; /* xorshift64 */
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* log-uniform over 1 us .. 100 s */
        unsigned bits = (unsigned)(x % 27);
        uint64_t v = (x >> 8) & ((1ull << bits) - 1);
        if (v > HIST_MAX_VALUE)
            v = HIST_MAX_VALUE;
        unsigned idx = hist_index(v);
        uint64_t lo = hist_bucket_low(idx), hi = hist_bucket_high(idx);
        assert_true(lo <= v);
        assert_true(v <= hi);
        assert_true((hi - v) * 128 <= v);
    }
}

static void test_known_percentiles(void **state)
{
    (void)state;
    hist *h = new_hist();
    for (uint64_t v = 1; v <= 1000; v++)
        hist_record(h, v);
    assert_int_equal(h->total, 1000);
    assert_int_equal(h->min, 1);
    assert_int_equal(h->max, 1000);
    assert_true(hist_mean(h) == 500.5);
    /* rank 500 is the value 500, bucket [500, 501] */
    assert_int_equal(hist_percentile(h, 50), 501);
    /* rank 900: bucket [900, 903] */
    assert_int_equal(hist_percentile(h, 90), 903);
    /* rank 990: bucket [988, 991] */
    assert_int_equal(hist_percentile(h, 99), 991);
    /* rank 999: bucket [996, 999] (99.9 is not exact in binary) */
    assert_int_equal(hist_percentile(h, 99.9), 999);
    assert_int_equal(hist_percentile(h, 100), 1000);
    /* rank 1 */
    assert_int_equal(hist_percentile(h, 0), 1);
    assert_int_equal(hist_percentile(h, 0.1), 1);
    /* exact region: rank 100 is 100 */
    assert_int_equal(hist_percentile(h, 10), 100);
    /* every percentile respects the bound against the exact answer */
    for (int p = 1; p <= 100; p++) {
        uint64_t exact = (uint64_t)(p * 10);
        uint64_t got = hist_percentile(h, p);
        assert_true(got >= exact);
        assert_true((got - exact) * 128 <= exact);
    }
    free(h);
}

static void test_capped_at_max(void **state)
{
    (void)state;
    hist *h = new_hist();
    hist_record(h, 1000); /* bucket [1000, 1003] */
    assert_int_equal(hist_percentile(h, 50), 1000);
    assert_int_equal(hist_percentile(h, 99.9), 1000);
    free(h);
}

static void test_max_and_overflow(void **state)
{
    (void)state;
    hist *h = new_hist();
    hist_record(h, 1);
    hist_record(h, 123456789012ull); /* 34 hours: above the range */
    assert_int_equal(h->overflow, 1);
    assert_int_equal(h->max, 123456789012ull);
    assert_int_equal(hist_percentile(h, 50), 1);
    assert_int_equal(hist_percentile(h, 100), 123456789012ull);
    /* the top bucket's high is below max, so it is reported as is */
    assert_int_equal(hist_percentile(h, 99), hist_bucket_high(HIST_COUNTS - 1));
    free(h);
}

static void test_merge(void **state)
{
    (void)state;
    hist *a = new_hist(), *b = new_hist(), *all = new_hist(), *empty = new_hist();
    for (uint64_t v = 1; v <= 1000; v++) {
        hist_record(v <= 400 ? a : b, v * 37);
        hist_record(all, v * 37);
    }
    hist_merge(a, b);
    assert_memory_equal(a->counts, all->counts, sizeof(all->counts));
    assert_int_equal(a->total, all->total);
    assert_int_equal(a->min, all->min);
    assert_int_equal(a->max, all->max);
    assert_int_equal(a->sum, all->sum);
    assert_int_equal(hist_percentile(a, 99), hist_percentile(all, 99));
    /* merging an empty one changes nothing, merging into one copies */
    hist_merge(a, empty);
    assert_int_equal(a->min, 37);
    hist_merge(empty, all);
    assert_int_equal(empty->total, 1000);
    assert_int_equal(empty->min, 37);
    assert_int_equal(empty->max, 37000);
    assert_int_equal(hist_percentile(empty, 50), hist_percentile(all, 50));
    free(a);
    free(b);
    free(all);
    free(empty);
}

static void test_reset(void **state)
{
    (void)state;
    hist *h = new_hist();
    hist_record(h, 5);
    hist_reset(h);
    assert_int_equal(h->total, 0);
    assert_int_equal(h->max, 0);
    assert_int_equal(h->min, UINT64_MAX);
    assert_int_equal(hist_percentile(h, 50), 0);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_bucket_layout),
        cmocka_unit_test(test_precision_bound),
        cmocka_unit_test(test_known_percentiles),
        cmocka_unit_test(test_capped_at_max),
        cmocka_unit_test(test_max_and_overflow),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
