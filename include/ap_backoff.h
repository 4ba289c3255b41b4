/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_backoff.h - the one exponential backoff, for every "wait longer each
 * time" in agentpool: the supervisor's respawn delays, the retry delay of
 * a crashed message, a failed recycle's next attempt.  Pure arithmetic:
 * no clock, no state; the caller keeps the attempt count.
 */
#ifndef AP_BACKOFF_H
#define AP_BACKOFF_H

#include <stdint.h>

/* The delay before attempt k: min x 2^(k-1), never above max (k 0 and 1
 * both give min, or max when max < min).  Never overflows. */
uint64_t ap_backoff_ms(uint64_t min, uint64_t max, unsigned k);

/* d spread over [d/2, d] by r (any random number), so many waiters that
 * failed together do not all come back in the same instant. */
uint64_t ap_backoff_jitter(uint64_t d, uint64_t r);

#endif
