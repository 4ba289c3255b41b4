/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rate.h - event counts over the last seconds: a ring of per-second
 * counters, for throughput in pool.stats.
 *
 * RATE_SLOTS counters, one per second of a monotonic clock, each stamped
 * with the second it counts, so a slot left over from a lap before is
 * never mistaken for a recent one and nothing needs clearing on a timer.
 * rate_sum(r, now, N) counts the events of the current second and the
 * N-1 seconds before it, so for a pool younger than N - 1 seconds it is
 * every event so far, and the rate over N seconds is rate_sum / N.
 * Adding is O(1); summing is O(N).  Plain memory, no allocation, no
 * clock (time is passed in), no logging.
 */
#ifndef AP_RATE_H
#define AP_RATE_H

#include <stdint.h>

#define RATE_SLOTS 64
#define RATE_MAX_WINDOW 60  /* longest window rate_sum() answers, seconds */

typedef struct {
    uint64_t stamp[RATE_SLOTS];   /* second + 1; 0: never used */
    uint64_t count[RATE_SLOTS];
    uint64_t total;               /* every event added, ever */
} rate_ring;

/* Empties r. */
void rate_init(rate_ring *r);
/* Counts n events at now_ms (monotonic, never going back). */
void rate_add(rate_ring *r, uint64_t now_ms, uint64_t n);
/* Events in the current second and the seconds-1 before it, as of
 * now_ms; seconds is clamped to 1..RATE_MAX_WINDOW. */
uint64_t rate_sum(const rate_ring *r, uint64_t now_ms, unsigned seconds);

#endif
