/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hist.h - a fixed-size log-linear latency histogram (HdrHistogram-like).
 *
 * Values are microseconds from 0 to HIST_MAX_VALUE (100 s).  Values below
 * 256 are counted exactly; above, each power of two [2^e, 2^(e+1)) is cut
 * into 128 equal buckets, so a bucket is never wider than 1/128 of its
 * lower bound.  A percentile is reported as the highest value of the
 * bucket holding it, capped at the largest value recorded: the reported
 * r and the true v satisfy v <= r <= v + v/128 (better than 2 significant
 * digits).  max, min and the sum (for the mean) are exact.  Values above
 * HIST_MAX_VALUE go to the top bucket and are counted in `overflow`; max
 * still records them exactly.
 *
 * Why not pool/ops/hist.h, which uses the same bucket scheme: the bench
 * records one run and reports any percentile of all of it at 1/128
 * precision, with exact min, mean and overflow, merging the per-tick
 * histogram into the run's; the master's keeps a sliding window of
 * time slots at 1/32 precision and Prometheus buckets, which a run
 * that ends has no use for (and its window would drop early samples).
 *
 * The struct is plain memory (about 21 KiB: 2623 counters), no allocation: embed it or
 * declare it static.  Recording is an index computation and an
 * increment; nothing here can fail.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7                         /* 128 buckets per power of two */
#define HIST_MAX_VALUE 100000000ull             /* 100 s in microseconds */
#define HIST_MAX_EXP 26                         /* 2^26 <= HIST_MAX_VALUE < 2^27 */
/* buckets up to and including the one holding HIST_MAX_VALUE */
#define HIST_COUNTS (256 + (HIST_MAX_EXP - 8) * 128 + (int)(HIST_MAX_VALUE >> (HIST_MAX_EXP - HIST_SUB_BITS)) - 128 + 1)

typedef struct {
    uint64_t counts[HIST_COUNTS];
    uint64_t total;    /* values recorded */
    uint64_t overflow; /* of which above HIST_MAX_VALUE */
    uint64_t min, max; /* exact; min is UINT64_MAX while empty */
    uint64_t sum;      /* for the mean; saturates */
} hist;

/* Empties h. */
void hist_reset(hist *h);
/* Counts one value (microseconds). */
void hist_record(hist *h, uint64_t v);
/* Adds everything src counted to dst. */
void hist_merge(hist *dst, const hist *src);
/* The value at percentile p (0..100): the highest value of the bucket
 * that holds the ceil(p/100 * total)-th smallest value (at least the
 * first), capped at max.  0 when h is empty; p >= 100 gives max. */
uint64_t hist_percentile(const hist *h, double p);
/* The mean in microseconds; 0 when empty. */
double hist_mean(const hist *h);

/* Bucket arithmetic, exposed for the unit tests: the bucket of v and the
 * lowest and highest values that share it. */
unsigned hist_index(uint64_t v);
uint64_t hist_bucket_low(unsigned index);
uint64_t hist_bucket_high(unsigned index);

#endif
