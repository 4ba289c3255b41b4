/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dispatch.c - the three strategies (see dispatch.h).
 *
 * round-robin: the next accepting worker with a free slot after the last
 *   one chosen, so picks rotate exactly when every worker has room.
 * least-busy: fewest messages in flight; ties go to the one that has
 *   processed fewest (the seed's rule), then to the lowest index.
 * random: uniform among the workers with a free slot (one pass,
 *   reservoir sampling, no allocation).
 * Each sees "room" through has_room, which dispatch_pick widens to
 * prefetch room for its second pass only.
 */
#include "dispatch.h"

static const dispatch_load *load_at(const void *base, size_t stride, int i)
{
    return (const dispatch_load *)((const char *)base + (size_t)i * stride);
}

static int has_room(const dispatch_state *st, const dispatch_load *l)
{
    return l->accepting && !l->suspect && l->in_flight < l->slots + (st->room ? l->ahead : 0);
}

void dispatch_init(dispatch_state *st, uint64_t seed)
{
    st->room = 0;
    st->next = 0;
    st->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 3; i++)
        st->picks[i] = 0;
    st->none = 0;
    st->ahead = 0;
}

static uint64_t next_rand(dispatch_state *st)
{
    uint64_t x = st->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    st->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

int dispatch_round_robin(dispatch_state *st, const void *base, size_t stride, int n)
{
    for (int k = 0; k < n; k++) {
        int i = (int)((st->next + (unsigned)k) % (unsigned)n);
        if (has_room(st, load_at(base, stride, i))) {
            st->next = (unsigned)(i + 1) % (unsigned)n;
            return i;
        }
    }
    return -1;
}

int dispatch_least_busy(dispatch_state *st, const void *base, size_t stride, int n)
{
    int best = -1;
    const dispatch_load *b = NULL;
    for (int i = 0; i < n; i++) {
        const dispatch_load *l = load_at(base, stride, i);
        if (!has_room(st, l))
            continue;
        if (b == NULL || l->in_flight < b->in_flight ||
            (l->in_flight == b->in_flight && l->processed < b->processed)) {
            best = i;
            b = l;
        }
    }
    return best;
}

int dispatch_random(dispatch_state *st, const void *base, size_t stride, int n)
{
    int chosen = -1, seen = 0;
    for (int i = 0; i < n; i++) {
        if (!has_room(st, load_at(base, stride, i)))
            continue;
        seen++;
        if (next_rand(st) % (uint64_t)seen == 0)
            chosen = i;
    }
    return chosen;
}

static int run_strategy(dispatch_state *st, int strategy, const void *base, size_t stride, int n)
{
    switch (strategy) {
    case 1: return dispatch_least_busy(st, base, stride, n);
    case 2: return dispatch_random(st, base, stride, n);
    default: return dispatch_round_robin(st, base, stride, n);
    }
}

int dispatch_pick(dispatch_state *st, int strategy, const void *base, size_t stride, int n)
{
    if (strategy < 0 || strategy > 2)
        strategy = 0;
    int i = run_strategy(st, strategy, base, stride, n);
    if (i < 0) {
        st->room = 1;
        i = run_strategy(st, strategy, base, stride, n);
        st->room = 0;
        if (i >= 0)
            st->ahead++;
    }
    if (i < 0)
        st->none++;
    else
        st->picks[strategy]++;
    return i;
}
