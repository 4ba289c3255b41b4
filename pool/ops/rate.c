/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rate.c - per-second event counters (see rate.h).
 *
 * Invariant: a slot stamped s + 1 holds exactly the events added during
 * second s, and only the slot s % RATE_SLOTS can hold second s.
 * RATE_SLOTS > RATE_MAX_WINDOW, so a window never wraps onto itself.
 */
#include "rate.h"

#include <string.h>

void rate_init(rate_ring *r)
{
    memset(r, 0, sizeof(*r));
}

void rate_add(rate_ring *r, uint64_t now_ms, uint64_t n)
{
    uint64_t s = now_ms / 1000;
    unsigned i = (unsigned)(s % RATE_SLOTS);
    if (r->stamp[i] != s + 1) {
        r->stamp[i] = s + 1;
        r->count[i] = 0;
    }
    r->count[i] += n;
    r->total += n;
}

uint64_t rate_sum(const rate_ring *r, uint64_t now_ms, unsigned seconds)
{
    if (seconds < 1)
        seconds = 1;
    if (seconds > RATE_MAX_WINDOW)
        seconds = RATE_MAX_WINDOW;
    uint64_t s = now_ms / 1000, sum = 0;
    for (unsigned k = 0; k < seconds && k <= s; k++) {
        uint64_t want = s - k;
        unsigned i = (unsigned)(want % RATE_SLOTS);
        if (r->stamp[i] == want + 1)
            sum += r->count[i];
    }
    return sum;
}
