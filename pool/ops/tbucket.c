/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tbucket.c - a token bucket counted per minute (see tbucket.h).
 *
 * Everything is integer arithmetic on units of 1/60000 token: one ms of
 * refill is per_minute units, a token 60000 units, a full bucket
 * per_minute x 60000 units (at most 6e13, far inside int64).  The
 * refill is applied lazily, when the bucket is looked at.  No state of
 * its own.
 */
#include "tbucket.h"

#include <stdint.h>

#define UNITS_PER_TOKEN 60000

static int64_t capacity(const tbucket *b)
{
    return (int64_t)b->per_minute * UNITS_PER_TOKEN;
}

/* Brings the level up to now_ms.  The units missing to a full bucket
 * are at most 6e13 + |INT64_MIN / 2| (the deepest debt), so a refill that
 * falls short of full is below that plus one ms of refill: no overflow. */
static void refill(tbucket *b, uint64_t now_ms)
{
    if (now_ms <= b->at_ms || b->per_minute == 0)
        return;
    uint64_t dt = now_ms - b->at_ms;
    int64_t cap = capacity(b);
    b->at_ms = now_ms;
    if (b->level >= cap)
        return;
    uint64_t need = (uint64_t)(cap - b->level);
    if (dt > need / b->per_minute)
        b->level = cap;
    else
        b->level += (int64_t)(dt * b->per_minute);
}

/* ms until the level reaches `want` units (at least 1). */
static uint64_t wait_for(const tbucket *b, int64_t want)
{
    uint64_t missing = (uint64_t)(want - b->level);
    uint64_t ms = (missing + b->per_minute - 1) / b->per_minute;
    return ms ? ms : 1;
}

void tbucket_init(tbucket *b, uint64_t per_minute, uint64_t now_ms)
{
    b->per_minute = per_minute > TBUCKET_MAX_PER_MINUTE ? TBUCKET_MAX_PER_MINUTE : per_minute;
    b->level = capacity(b);
    b->at_ms = now_ms;
}

void tbucket_set_rate(tbucket *b, uint64_t per_minute, uint64_t now_ms)
{
    if (b->per_minute == 0) { /* was unlimited: starts full */
        tbucket_init(b, per_minute, now_ms);
        return;
    }
    refill(b, now_ms);
    b->per_minute = per_minute > TBUCKET_MAX_PER_MINUTE ? TBUCKET_MAX_PER_MINUTE : per_minute;
    if (b->level > capacity(b))
        b->level = capacity(b);
}

int tbucket_take(tbucket *b, uint64_t now_ms, uint64_t *retry_ms)
{
    if (b->per_minute == 0)
        return 0;
    refill(b, now_ms);
    if (b->level >= UNITS_PER_TOKEN) {
        b->level -= UNITS_PER_TOKEN;
        return 0;
    }
    *retry_ms = wait_for(b, UNITS_PER_TOKEN);
    return 1;
}

int tbucket_ready(tbucket *b, uint64_t now_ms, uint64_t *retry_ms)
{
    if (b->per_minute == 0)
        return 1;
    refill(b, now_ms);
    if (b->level > 0)
        return 1;
    *retry_ms = wait_for(b, 1);
    return 0;
}

void tbucket_charge(tbucket *b, uint64_t n, uint64_t now_ms)
{
    if (b->per_minute == 0 || n == 0)
        return;
    refill(b, now_ms);
    if (n > TBUCKET_MAX_CHARGE)
        n = TBUCKET_MAX_CHARGE;
    int64_t units = (int64_t)n * UNITS_PER_TOKEN;
    /* a debt is bounded by what one minute's refill cannot pay in ~1.5e5
     * years: keep it inside int64 */
    if (b->level - units < INT64_MIN / 2)
        b->level = INT64_MIN / 2;
    else
        b->level -= units;
}

uint64_t tbucket_tokens(tbucket *b, uint64_t now_ms)
{
    if (b->per_minute == 0)
        return 0;
    refill(b, now_ms);
    return b->level > 0 ? (uint64_t)(b->level / UNITS_PER_TOKEN) : 0;
}
