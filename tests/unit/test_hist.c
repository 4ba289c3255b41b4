/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_hist.c - cmocka tests for the duration histograms (pool/ops/hist.c,
 * linked alone; it allocates nothing).
 *
 * Bucket layout: every value lands in a bucket whose bounds hold it,
 * buckets are contiguous and ascending, never wider than 1/32 of their
 * lower bound, exact below 64, and clamped at the top.  Sliding window:
 * exact percentiles for values counted exactly, percentiles within a
 * bucket of the true ones otherwise (checked against a sorted copy),
 * p50 <= p90 <= p99 <= max on random data, the window's age limits (a
 * slot counts for six intervals, then not), and slot reuse clearing the
 * old interval.  Merging (hist_window_add, the totals over pools): two
 * windows added into an empty one summarize as one window that recorded
 * every value.  Fixed-bound histogram: bad bounds refused, inclusive
 * upper bounds, cumulative counts, and an exact sum across the 1e9 carry.
 * Time is made up: the module reads no clock.
 */
#include "hist.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static hist_window *new_window(void)
{
    hist_window *w = malloc(sizeof(*w));
    assert_non_null(w);
    hist_window_init(w, 10000);
    return w;
}

static uint64_t rnd64(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void test_buckets_hold_their_values(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 200000; v++) {
        unsigned b = hist_bucket_of(v);
        assert_true(b < HIST_NBUCKETS);
        assert_true(hist_bucket_low(b) <= v);
        assert_true(v <= hist_bucket_high(b));
        if (v < 64)
            assert_int_equal(b, v);
    }
    uint64_t s = 42;
    for (int i = 0; i < 100000; i++) {
        uint64_t v = rnd64(&s) >> (rnd64(&s) % 64);
        unsigned b = hist_bucket_of(v);
        if (v < ((uint64_t)1 << HIST_MAX_BITS)) {
            assert_true(hist_bucket_low(b) <= v);
            assert_true(v <= hist_bucket_high(b));
        } else {
            assert_int_equal(b, HIST_NBUCKETS - 1);
        }
    }
}

static void test_buckets_contiguous_and_narrow(void **state)
{
    (void)state;
    assert_int_equal(hist_bucket_low(0), 0);
    for (unsigned b = 0; b + 1 < HIST_NBUCKETS; b++) {
        assert_int_equal(hist_bucket_high(b) + 1, hist_bucket_low(b + 1));
        uint64_t width = hist_bucket_high(b) - hist_bucket_low(b) + 1;
        if (b >= HIST_SUB)
            assert_true(width * HIST_SUB <= hist_bucket_low(b));
        assert_int_equal(hist_bucket_of(hist_bucket_low(b)), b);
        assert_int_equal(hist_bucket_of(hist_bucket_high(b)), b);
    }
    assert_int_equal(hist_bucket_high(HIST_NBUCKETS - 1), ((uint64_t)1 << HIST_MAX_BITS) - 1);
    assert_int_equal(hist_bucket_of(UINT64_MAX), HIST_NBUCKETS - 1);
}

static void test_empty_window(void **state)
{
    (void)state;
    hist_window *w = new_window();
    hist_summary s;
    memset(&s, 0xff, sizeof(s));
    hist_window_summary(w, 123456, &s);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.p50, 0);
    assert_int_equal(s.p90, 0);
    assert_int_equal(s.p99, 0);
    assert_int_equal(s.max, 0);
    assert_int_equal(hist_window_quantile(w, 123456, 0.5), 0);
    free(w);
}

static void test_exact_percentiles_for_small_values(void **state)
{
    (void)state;
    hist_window *w = new_window();
    for (uint64_t v = 60; v >= 1; v--)
        hist_window_record(w, 5000, v);
    hist_summary s;
    hist_window_summary(w, 5000, &s);
    assert_int_equal(s.count, 60);
    assert_int_equal(s.p50, 30); /* rank ceil(0.5 x 60) = 30 */
    assert_int_equal(s.p90, 54);
    assert_int_equal(s.p99, 60); /* rank ceil(59.4) = 60 */
    assert_int_equal(s.max, 60);
    assert_int_equal(hist_window_quantile(w, 5000, 1.0), 60);
    assert_int_equal(hist_window_quantile(w, 5000, 0.01), 1);
    /* one value: every percentile is it */
    hist_window_init(w, 10000);
    hist_window_record(w, 0, 123456789);
    hist_window_summary(w, 0, &s);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.p50, 123456789);
    assert_int_equal(s.p99, 123456789);
    assert_int_equal(s.max, 123456789);
    free(w);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_percentiles_within_a_bucket(void **state)
{
    (void)state;
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof(uint64_t));
    assert_non_null(v);
    hist_window *w = new_window();
    uint64_t s = 7;
    for (int round = 0; round < 20; round++) {
        hist_window_init(w, 10000);
        unsigned n = 1 + (unsigned)(rnd64(&s) % N);
        uint64_t t = 0;
        for (unsigned i = 0; i < n; i++) {
            v[i] = rnd64(&s) % (round % 2 ? 1000000000ull : 5000000ull);
            hist_window_record(w, t, v[i]);
            t += rnd64(&s) % 3; /* all within one slot's life */
        }
        qsort(v, n, sizeof(uint64_t), cmp_u64);
        hist_summary sum;
        hist_window_summary(w, t, &sum);
        assert_int_equal(sum.count, n);
        assert_int_equal(sum.max, v[n - 1]);
        const double q[3] = {0.5, 0.9, 0.99};
        const uint64_t got[3] = {sum.p50, sum.p90, sum.p99};
        for (int k = 0; k < 3; k++) {
            uint64_t rank = (uint64_t)(q[k] * n);
            if ((double)rank < q[k] * n)
                rank++;
            if (rank < 1)
                rank = 1;
            uint64_t truth = v[rank - 1];
            assert_true(got[k] >= truth);
            assert_true(got[k] <= truth + truth / 32 + 1);
            assert_true(got[k] <= sum.max);
        }
        assert_true(sum.p50 <= sum.p90);
        assert_true(sum.p90 <= sum.p99);
        assert_true(sum.p99 <= sum.max);
    }
    free(w);
    free(v);
}

static void test_window_ages_out(void **state)
{
    (void)state;
    hist_window *w = new_window(); /* 10 s slots, 6 of them */
    hist_summary s;
    hist_window_record(w, 1000, 500);       /* interval 0 */
    hist_window_record(w, 25000, 700);      /* interval 2 */
    hist_window_summary(w, 59999, &s);      /* interval 5: both count */
    assert_int_equal(s.count, 2);
    assert_int_equal(s.max, 700);
    hist_window_summary(w, 60000, &s);      /* interval 6: the first is out */
    assert_int_equal(s.count, 1);
    assert_int_equal(s.p50, 700);
    hist_window_summary(w, 80000, &s);      /* interval 8: both out */
    assert_int_equal(s.count, 0);
    assert_int_equal(s.max, 0);
    free(w);
}

static void test_slot_reuse_clears_the_old_interval(void **state)
{
    (void)state;
    hist_window *w = new_window();
    for (int i = 0; i < 1000; i++)
        hist_window_record(w, 3000, 9000000); /* interval 0, slot 0 */
    hist_window_record(w, 61000, 5);          /* interval 6, slot 0 again */
    hist_summary s;
    hist_window_summary(w, 61000, &s);
    assert_int_equal(s.count, 1);
    assert_int_equal(s.p99, 5);
    assert_int_equal(s.max, 5);
    /* a window over several slots merges them */
    hist_window_record(w, 71000, 10);
    hist_window_record(w, 81000, 20);
    hist_window_summary(w, 81000, &s);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.p50, 10);
    assert_int_equal(s.max, 20);
    free(w);
}

static void assert_summaries_equal(const hist_window *a, const hist_window *b, uint64_t now)
{
    hist_summary x, y;
    hist_window_summary(a, now, &x);
    hist_window_summary(b, now, &y);
    assert_int_equal(x.count, y.count);
    assert_int_equal(x.p50, y.p50);
    assert_int_equal(x.p90, y.p90);
    assert_int_equal(x.p99, y.p99);
    assert_int_equal(x.max, y.max);
    static const double q[] = {0.01, 0.25, 0.75, 0.999, 1.0};
    for (unsigned k = 0; k < sizeof(q) / sizeof(q[0]); k++)
        assert_int_equal(hist_window_quantile(a, now, q[k]), hist_window_quantile(b, now, q[k]));
}

/* Values recorded over nine intervals, each into pool a's window or pool
 * b's (and every one into `all`): a and b added into an empty window
 * summarize as `all` at every moment of the last intervals, those aged
 * out of the window included (they are added by neither). */
static void test_added_windows_summarize_as_one(void **state)
{
    (void)state;
    hist_window *a = new_window(), *b = new_window(), *all = new_window(), *sum = new_window();
    uint64_t s = 7, t = 1000000;
    for (int i = 0; i < 20000; i++) {
        t += rnd64(&s) % 9; /* about 90 s in all: nine 10-second intervals */
        uint64_t v = rnd64(&s) >> (rnd64(&s) % 64);
        /* a takes most, b some; whole intervals of b's are empty */
        hist_window *one = (t / 10000) % 3 == 1 || rnd64(&s) % 4 ? a : b;
        hist_window_record(one, t, v);
        hist_window_record(all, t, v);
    }
    for (uint64_t now = t; now < t + 60000; now += 5000) {
        hist_window_init(sum, 10000);
        hist_window_add(sum, a, now);
        hist_window_add(sum, b, now);
        assert_summaries_equal(sum, all, now);
    }
    hist_summary x;
    hist_window_init(sum, 10000);
    hist_window_add(sum, a, t);
    hist_window_summary(sum, t, &x);
    hist_summary y;
    hist_window_summary(a, t, &y);
    assert_int_equal(x.count, y.count); /* one source: itself */
    assert_true(x.count > 0);
    hist_summary z;
    hist_window_summary(all, t, &z);
    assert_true(x.count < z.count); /* b's values were not in a */
    free(a);
    free(b);
    free(all);
    free(sum);
}

static void test_adding_an_empty_window_changes_nothing(void **state)
{
    (void)state;
    hist_window *a = new_window(), *empty = new_window(), *sum = new_window();
    for (uint64_t v = 1; v <= 1000; v++)
        hist_window_record(a, 50000 + v, v * 1000);
    hist_window_add(sum, empty, 60000);
    hist_window_add(sum, a, 60000);
    hist_window_add(sum, empty, 60000);
    assert_summaries_equal(sum, a, 60000);
    free(a);
    free(empty);
    free(sum);
}

static void test_fixed_refuses_bad_bounds(void **state)
{
    (void)state;
    hist_fixed h;
    const uint64_t up[3] = {1, 2, 3}, flat[3] = {1, 2, 2}, down[2] = {5, 4};
    uint64_t many[HIST_FIXED_MAX_BOUNDS + 1];
    for (unsigned i = 0; i < AP_ARRAY_LEN(many); i++)
        many[i] = i + 1;
    assert_int_equal(hist_fixed_init(&h, up, 0), AP_ERR);
    assert_int_equal(hist_fixed_init(&h, flat, 3), AP_ERR);
    assert_int_equal(hist_fixed_init(&h, down, 2), AP_ERR);
    assert_int_equal(hist_fixed_init(&h, many, HIST_FIXED_MAX_BOUNDS + 1), AP_ERR);
    assert_int_equal(hist_fixed_init(&h, many, HIST_FIXED_MAX_BOUNDS), AP_OK);
    assert_int_equal(hist_fixed_init(&h, up, 3), AP_OK);
}

static void test_fixed_counts_cumulative_and_inclusive(void **state)
{
    (void)state;
    hist_fixed h;
    const uint64_t b[3] = {10, 100, 1000};
    assert_int_equal(hist_fixed_init(&h, b, 3), AP_OK);
    const uint64_t vals[] = {0, 10, 11, 100, 101, 1000, 1001, 5000000};
    for (unsigned i = 0; i < AP_ARRAY_LEN(vals); i++)
        hist_fixed_record(&h, vals[i]);
    assert_int_equal(h.n, 8);
    assert_int_equal(hist_fixed_cumulative(&h, 0), 2); /* 0, 10: le is inclusive */
    assert_int_equal(hist_fixed_cumulative(&h, 1), 4);
    assert_int_equal(hist_fixed_cumulative(&h, 2), 6);
    assert_int_equal(hist_fixed_cumulative(&h, 3), 8); /* +Inf */
    assert_int_equal(hist_fixed_cumulative(&h, 99), 8);
    assert_true(hist_fixed_sum(&h, 1.0) == 5002223.0);
}

static void test_fixed_sum_is_exact_across_the_carry(void **state)
{
    (void)state;
    hist_fixed h;
    const uint64_t b[1] = {1};
    assert_int_equal(hist_fixed_init(&h, b, 1), AP_OK);
    hist_fixed_record(&h, 999999999);
    hist_fixed_record(&h, 999999999);
    assert_int_equal(h.sum_giga, 1);
    assert_int_equal(h.sum_units, 999999998);
    hist_fixed_record(&h, 3000000002ull);
    assert_int_equal(h.sum_giga, 5);
    assert_int_equal(h.sum_units, 0);
    assert_true(hist_fixed_sum(&h, 1e9) == 5.0);
    for (int i = 0; i < 1000; i++)
        hist_fixed_record(&h, 1234567);
    assert_int_equal(h.sum_giga, 6);
    assert_int_equal(h.sum_units, 234567000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_hold_their_values),
        cmocka_unit_test(test_buckets_contiguous_and_narrow),
        cmocka_unit_test(test_empty_window),
        cmocka_unit_test(test_exact_percentiles_for_small_values),
        cmocka_unit_test(test_percentiles_within_a_bucket),
        cmocka_unit_test(test_window_ages_out),
        cmocka_unit_test(test_slot_reuse_clears_the_old_interval),
        cmocka_unit_test(test_added_windows_summarize_as_one),
        cmocka_unit_test(test_adding_an_empty_window_changes_nothing),
        cmocka_unit_test(test_fixed_refuses_bad_bounds),
        cmocka_unit_test(test_fixed_counts_cumulative_and_inclusive),
        cmocka_unit_test(test_fixed_sum_is_exact_across_the_carry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
