/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hist.h - fixed-memory distributions of durations, for pool.stats and
 * /metrics.
 *
 * Two kinds, both plain memory that never grows and never allocates:
 *
 * hist_window: percentiles over a sliding window.  A ring of
 *   HIST_WINDOW_SLOTS log-linear histograms, one per interval (10 s in
 *   the master): the window is the current interval and the ones before
 *   it, so it spans (SLOTS-1) x interval to SLOTS x interval.  Values
 *   below 2^HIST_SUB_BITS are counted exactly; above, each power of two
 *   is cut into 2^HIST_SUB_BITS equal buckets, so a bucket is never wider
 *   than 1/32 of its lower bound.  A percentile is reported as the
 *   highest value of its bucket, capped at the window's exact maximum:
 *   reported r and true v satisfy v <= r <= v + v/32, and p50 <= p90 <=
 *   p99 <= max always.  Values of 2^HIST_MAX_BITS or more are counted in
 *   the top bucket (max still holds them exactly).
 *
 * hist_fixed: a cumulative histogram with fixed upper bounds
 *   (Prometheus's `le` buckets), plus an exact count and sum, since the
 *   start.
 *
 * Why not bench/hist.h, which uses the same log-linear bucket scheme:
 * the master needs a sliding window (a ring of per-interval slots cleared
 * as time passes, uint32 counters, 1/32 precision: it runs for months)
 * and Prometheus's cumulative `le` buckets, while the bench needs one
 * cumulative histogram per run at 1/128 precision with exact min, mean
 * and overflow that threads merge; one type for both would carry either
 * the window or the merge as dead weight in the other.
 *
 * Recording is O(1): an index computation and an increment (hist_fixed
 * scans its few bounds); a window slot is cleared when its interval is
 * first written.  Time is always passed in (monotonic ms); nothing here
 * reads a clock, logs or fails.  Units are the caller's (the master uses
 * nanoseconds).
 */
#ifndef AP_HIST_H
#define AP_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)           /* buckets per power of two */
#define HIST_MAX_BITS 46                          /* 2^46 ns: 19.5 hours */
#define HIST_NBUCKETS ((HIST_MAX_BITS - HIST_SUB_BITS + 1) * HIST_SUB)
#define HIST_WINDOW_SLOTS 6

typedef struct {
    uint64_t epoch;                 /* interval number + 1; 0: never written */
    uint64_t n;                     /* values recorded in this interval */
    uint64_t max;                   /* exact */
    uint32_t count[HIST_NBUCKETS];
} hist_interval;

typedef struct {
    uint64_t interval_ms;
    uint64_t cur_start_ms;          /* start of the interval slot[cur] holds */
    int cur;                        /* slot last written, -1: none yet */
    hist_interval slot[HIST_WINDOW_SLOTS];
} hist_window;

/* What a window holds now: values counted and its percentiles. */
typedef struct {
    uint64_t count;
    uint64_t p50, p90, p99, max;
} hist_summary;

/* Empties w; interval_ms (> 0) is the length of one slot. */
void hist_window_init(hist_window *w, uint64_t interval_ms);
/* Counts value v at time now_ms (monotonic, never going back). */
void hist_window_record(hist_window *w, uint64_t now_ms, uint64_t v);
/* Adds src's intervals live at now_ms into dst (same interval_ms, dst
 * initialized): a window over several sources, for their summary. */
void hist_window_add(hist_window *dst, const hist_window *src, uint64_t now_ms);
/* The window as of now_ms; all zero when it holds nothing. */
void hist_window_summary(const hist_window *w, uint64_t now_ms, hist_summary *out);
/* One percentile (0 < q <= 1) of the window as of now_ms; 0 when empty. */
uint64_t hist_window_quantile(const hist_window *w, uint64_t now_ms, double q);

/* The bucket of v, and the lowest and highest value of bucket b. */
unsigned hist_bucket_of(uint64_t v);
uint64_t hist_bucket_low(unsigned b);
uint64_t hist_bucket_high(unsigned b);

#define HIST_FIXED_MAX_BOUNDS 24

typedef struct {
    unsigned nbounds;
    uint64_t bound[HIST_FIXED_MAX_BOUNDS];      /* ascending, inclusive */
    uint64_t count[HIST_FIXED_MAX_BOUNDS + 1];  /* per bucket; the last: above every bound */
    uint64_t n;
    uint64_t sum_units;                         /* the sum is sum_giga x 1e9 + sum_units */
    uint64_t sum_giga;
} hist_fixed;

/* Empties h with upper bounds bound[0..n).  AP_ERR (h unusable) when n
 * is 0 or over HIST_FIXED_MAX_BOUNDS, or the bounds do not ascend
 * strictly. */
int hist_fixed_init(hist_fixed *h, const uint64_t *bound, unsigned n);
/* Counts v. */
void hist_fixed_record(hist_fixed *h, uint64_t v);
/* Values counted that are <= bound[i]; for i == nbounds, every value. */
uint64_t hist_fixed_cumulative(const hist_fixed *h, unsigned i);
/* The sum of every value counted, divided by `scale` (1e9 turns ns into
 * seconds), as a double. */
double hist_fixed_sum(const hist_fixed *h, double scale);

#endif
