/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hist.c - sliding-window and fixed-bound histograms (see hist.h).
 *
 * Bucket layout (HIST_SUB = 32): bucket b = g x 32 + s.  Group 0 holds
 * the values 0..31 one per bucket; group g >= 1 holds [2^(g+4), 2^(g+5))
 * in 32 buckets 2^(g-1) wide.  So bucket b == v for every v < 64, and
 * the index of a larger v is its top 6 bits (the leading one giving the
 * group).  Window invariant: a slot whose epoch is e + 1 holds exactly
 * the values recorded during interval e; a slot is part of the window at
 * interval now when its interval is within the last HIST_WINDOW_SLOTS;
 * `cur` caches the slot of the interval last written (time never goes
 * back), so recording divides only when an interval starts.
 */
#include "hist.h"
#include "ap_common.h"

#include <string.h>

unsigned hist_bucket_of(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb >= HIST_MAX_BITS)
        return HIST_NBUCKETS - 1;
    unsigned g = msb - HIST_SUB_BITS + 1;
    unsigned s = (unsigned)(v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1);
    return g * HIST_SUB + s;
}

uint64_t hist_bucket_low(unsigned b)
{
    unsigned g = b / HIST_SUB, s = b % HIST_SUB;
    if (g == 0)
        return s;
    return (uint64_t)(HIST_SUB + s) << (g - 1);
}

uint64_t hist_bucket_high(unsigned b)
{
    unsigned g = b / HIST_SUB;
    if (g == 0)
        return hist_bucket_low(b);
    return hist_bucket_low(b) + ((uint64_t)1 << (g - 1)) - 1;
}

void hist_window_init(hist_window *w, uint64_t interval_ms)
{
    memset(w, 0, sizeof(*w));
    w->interval_ms = interval_ms ? interval_ms : 1;
    w->cur = -1;
}

/* The slot for now_ms, cleared if it held an older interval.  The slot
 * last written is remembered, so the division happens once per interval. */
static hist_interval *current_slot(hist_window *w, uint64_t now_ms)
{
    if (AP_LIKELY(w->cur >= 0 && now_ms - w->cur_start_ms < w->interval_ms))
        return &w->slot[w->cur];
    uint64_t e = now_ms / w->interval_ms;
    hist_interval *iv = &w->slot[e % HIST_WINDOW_SLOTS];
    if (iv->epoch != e + 1) {
        memset(iv->count, 0, sizeof(iv->count));
        iv->epoch = e + 1;
        iv->n = 0;
        iv->max = 0;
    }
    w->cur = (int)(e % HIST_WINDOW_SLOTS);
    w->cur_start_ms = e * w->interval_ms;
    return iv;
}

void hist_window_record(hist_window *w, uint64_t now_ms, uint64_t v)
{
    hist_interval *iv = current_slot(w, now_ms);
    iv->count[hist_bucket_of(v)]++;
    iv->n++;
    if (v > iv->max)
        iv->max = v;
}

/* The slots in the window at now_ms, into live[]; returns how many. */
static unsigned live_slots(const hist_window *w, uint64_t now_ms, const hist_interval **live)
{
    uint64_t e = now_ms / w->interval_ms;
    unsigned n = 0;
    for (unsigned i = 0; i < HIST_WINDOW_SLOTS; i++) {
        const hist_interval *iv = &w->slot[i];
        if (iv->epoch == 0 || iv->n == 0)
            continue;
        uint64_t ie = iv->epoch - 1;
        if (ie <= e && e - ie < HIST_WINDOW_SLOTS)
            live[n++] = iv;
    }
    return n;
}

/* Fills val[k] with the percentile q[k] (ascending) over the live slots;
 * max and count are set too. */
static void quantiles(const hist_window *w, uint64_t now_ms, const double *q, uint64_t *val, unsigned nq,
                      uint64_t *count, uint64_t *max)
{
    const hist_interval *live[HIST_WINDOW_SLOTS];
    unsigned nl = live_slots(w, now_ms, live);
    uint64_t total = 0, top = 0;
    for (unsigned i = 0; i < nl; i++) {
        total += live[i]->n;
        if (live[i]->max > top)
            top = live[i]->max;
    }
    *count = total;
    *max = top;
    for (unsigned k = 0; k < nq; k++)
        val[k] = 0;
    if (total == 0)
        return;
    uint64_t rank[8];
    for (unsigned k = 0; k < nq; k++) {
        double r = q[k] * (double)total;
        uint64_t ri = (uint64_t)r;
        if ((double)ri < r)
            ri++;
        rank[k] = ri < 1 ? 1 : ri > total ? total : ri;
    }
    uint64_t seen = 0;
    unsigned k = 0;
    for (unsigned b = 0; b < HIST_NBUCKETS && k < nq; b++) {
        for (unsigned i = 0; i < nl; i++)
            seen += live[i]->count[b];
        while (k < nq && seen >= rank[k]) {
            uint64_t hi = hist_bucket_high(b);
            val[k++] = hi < top ? hi : top;
        }
    }
    while (k < nq)
        val[k++] = top; /* unreachable: the last rank is <= total */
}

void hist_window_add(hist_window *dst, const hist_window *src, uint64_t now_ms)
{
    const hist_interval *live[HIST_WINDOW_SLOTS];
    unsigned n = live_slots(src, now_ms, live);
    for (unsigned k = 0; k < n; k++) {
        hist_interval *d = NULL;
        for (unsigned i = 0; i < HIST_WINDOW_SLOTS && d == NULL; i++)
            if (dst->slot[i].epoch == live[k]->epoch)
                d = &dst->slot[i];
        for (unsigned i = 0; i < HIST_WINDOW_SLOTS && d == NULL; i++)
            if (dst->slot[i].epoch == 0 || dst->slot[i].n == 0) {
                d = &dst->slot[i];
                memset(d, 0, sizeof(*d));
                d->epoch = live[k]->epoch;
            }
        if (d == NULL)
            continue; /* cannot happen: a window holds at most HIST_WINDOW_SLOTS live intervals */
        for (unsigned b = 0; b < HIST_NBUCKETS; b++)
            d->count[b] += live[k]->count[b];
        d->n += live[k]->n;
        if (live[k]->max > d->max)
            d->max = live[k]->max;
    }
}

void hist_window_summary(const hist_window *w, uint64_t now_ms, hist_summary *out)
{
    static const double q[3] = {0.5, 0.9, 0.99};
    uint64_t v[3];
    quantiles(w, now_ms, q, v, 3, &out->count, &out->max);
    out->p50 = v[0];
    out->p90 = v[1];
    out->p99 = v[2];
}

uint64_t hist_window_quantile(const hist_window *w, uint64_t now_ms, double q)
{
    uint64_t v, count, max;
    if (!(q > 0.0))
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    quantiles(w, now_ms, &q, &v, 1, &count, &max);
    return v;
}

int hist_fixed_init(hist_fixed *h, const uint64_t *bound, unsigned n)
{
    memset(h, 0, sizeof(*h));
    if (n == 0 || n > HIST_FIXED_MAX_BOUNDS)
        return AP_ERR;
    for (unsigned i = 0; i < n; i++) {
        if (i > 0 && bound[i] <= bound[i - 1])
            return AP_ERR;
        h->bound[i] = bound[i];
    }
    h->nbounds = n;
    return AP_OK;
}

void hist_fixed_record(hist_fixed *h, uint64_t v)
{
    unsigned i = 0;
    while (i < h->nbounds && v > h->bound[i])
        i++;
    h->count[i]++;
    h->n++;
    if (AP_UNLIKELY(v >= ((uint64_t)1 << 62))) {
        h->sum_giga += v / 1000000000u;
        v %= 1000000000u;
    }
    /* sum_units stays below 1e9 between calls, so this cannot wrap */
    h->sum_units += v;
    if (h->sum_units >= 1000000000u) {
        h->sum_giga += h->sum_units / 1000000000u;
        h->sum_units %= 1000000000u;
    }
}

uint64_t hist_fixed_cumulative(const hist_fixed *h, unsigned i)
{
    uint64_t c = 0;
    for (unsigned k = 0; k <= i && k <= h->nbounds; k++)
        c += h->count[k];
    return c;
}

double hist_fixed_sum(const hist_fixed *h, double scale)
{
    return (double)h->sum_giga * (1e9 / scale) + (double)h->sum_units / scale;
}
