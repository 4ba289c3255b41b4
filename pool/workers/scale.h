/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scale.h - how many workers the pool runs, between minWorkers and
 * maxWorkers.
 *
 * Automatic: a worker is added when the oldest queued message has waited
 * longer than scaleUpAfter (at most one addition per scaleUpAfter), and
 * the highest-numbered worker is retired after idleTimeout without a
 * message, never below minWorkers.  By hand: SIGTTIN adds one, SIGTTOU
 * removes one, pool.scale {"workers": N} sets the count (clamped to the
 * limits).  Slots stay numbered 0..size-1: growing adds the next slot,
 * shrinking drains the highest (it finishes what it holds, then stops).
 */
#ifndef AP_SCALE_H
#define AP_SCALE_H

#include <stdint.h>

struct pool;

typedef struct {
    int requested;
    int before;
    int after;
    int clamped;
} scale_result;

/* Sets the pool to n workers, clamped to [minWorkers, maxWorkers]. */
scale_result scale_to(struct pool *p, int n, const char *why);
/* Periodic: queue-wait scale-up and idle scale-down. */
void scale_tick(struct pool *p, uint64_t now_ms);

#endif
