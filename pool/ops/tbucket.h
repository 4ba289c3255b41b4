/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tbucket.h - a token bucket counted per minute, in exact integers.
 *
 * A bucket of `per_minute` tokens refills continuously at per_minute
 * tokens a minute and holds at most per_minute (a full minute's worth
 * is the burst).  The level is kept in units of 1/60000 token, so a
 * millisecond adds exactly per_minute units: no rounding, no drift.
 * tbucket_take() admits one request when a whole token is there;
 * tbucket_charge() takes any amount after the fact (usage reported when
 * a message ends) and may drive the level below zero: a debt the refill
 * pays back before the next admission.  per_minute 0 is "no limit".
 * Pure: time is passed in (monotonic ms, never going back), no
 * allocation, no logging.  Used by apikey.c for ratePerMinute and
 * tokensPerMinute.
 */
#ifndef AP_TBUCKET_H
#define AP_TBUCKET_H

#include <stdint.h>

/* The largest per_minute accepted (keeps every level inside int64). */
#define TBUCKET_MAX_PER_MINUTE 1000000000ull
/* The most tokens one charge may take (larger ones are cut to it). */
#define TBUCKET_MAX_CHARGE (1ull << 40)

typedef struct {
    uint64_t per_minute;        /* 0: no limit */
    int64_t level;              /* units of 1/60000 token; may be negative (a debt) */
    uint64_t at_ms;             /* when level was last brought up to date */
} tbucket;

/* A full bucket of per_minute (capped at TBUCKET_MAX_PER_MINUTE) at now_ms. */
void tbucket_init(tbucket *b, uint64_t per_minute, uint64_t now_ms);
/* A new rate for a bucket in use (a keys file reread): the level is
 * kept, cut to the new capacity. */
void tbucket_set_rate(tbucket *b, uint64_t per_minute, uint64_t now_ms);
/* Takes one token: 0 when there was one (or no limit), else 1 with
 * *retry_ms, the ms until one will be there (at least 1). */
int tbucket_take(tbucket *b, uint64_t now_ms, uint64_t *retry_ms);
/* Whether a request may start now: the level is positive (no debt) or
 * there is no limit; else *retry_ms says when it will be.  Takes nothing. */
int tbucket_ready(tbucket *b, uint64_t now_ms, uint64_t *retry_ms);
/* Takes n tokens (cut to TBUCKET_MAX_CHARGE), going into debt if need be. */
void tbucket_charge(tbucket *b, uint64_t n, uint64_t now_ms);
/* Whole tokens in the bucket now (0 when in debt; per_minute 0: 0). */
uint64_t tbucket_tokens(tbucket *b, uint64_t now_ms);

#endif
