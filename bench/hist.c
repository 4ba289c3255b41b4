/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hist.c - the log-linear latency histogram (see hist.h for the layout
 * and the precision it promises).
 *
 * Index of a value v:
 *   v < 256:  v itself (exact buckets of width 1);
 *   v >= 256: with e = floor(log2 v) and s = v >> (e - 7) (128..255),
 *             256 + (e - 8) * 128 + (s - 128).
 * Nothing here allocates or fails; callers own the memory.
 */
#include "hist.h"

#include <math.h>
#include <string.h>

void hist_reset(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t v)
{
    if (v > HIST_MAX_VALUE)
        v = HIST_MAX_VALUE;
    if (v < 256)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - HIST_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift);
    return 256u + (e - 8u) * 128u + (sub - 128u);
}

uint64_t hist_bucket_low(unsigned index)
{
    if (index < 256)
        return index;
    unsigned j = index - 256u;
    unsigned e = 8u + j / 128u;
    uint64_t sub = 128u + j % 128u;
    return sub << (e - HIST_SUB_BITS);
}

uint64_t hist_bucket_high(unsigned index)
{
    if (index < 256)
        return index;
    unsigned e = 8u + (index - 256u) / 128u;
    return hist_bucket_low(index) + (1ull << (e - HIST_SUB_BITS)) - 1u;
}

void hist_record(hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->total++;
    if (v > HIST_MAX_VALUE)
        h->overflow++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->sum = h->sum + v < h->sum ? UINT64_MAX : h->sum + v;
}

void hist_merge(hist *dst, const hist *src)
{
    if (src->total == 0)
        return;
    for (unsigned i = 0; i < HIST_COUNTS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->overflow += src->overflow;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->sum = dst->sum + src->sum < dst->sum ? UINT64_MAX : dst->sum + src->sum;
}

uint64_t hist_percentile(const hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    if (p < 0.0)
        p = 0.0;
    /* The epsilon keeps 99.9% of 1000 at rank 999 despite 99.9 not being
     * exact in binary. */
    double r = ceil(p * (double)h->total / 100.0 - 1e-7);
    uint64_t rank = r < 1.0 ? 1 : (uint64_t)r;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_COUNTS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_bucket_high(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

double hist_mean(const hist *h)
{
    return h->total ? (double)h->sum / (double)h->total : 0.0;
}
