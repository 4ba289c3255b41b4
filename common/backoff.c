/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backoff.c - exponential backoff with a cap, and jitter (see
 * include/ap_backoff.h).  Doubling stops at the cap, so no attempt count
 * can overflow it.
 */
#include "ap_backoff.h"

uint64_t ap_backoff_ms(uint64_t min, uint64_t max, unsigned k)
{
    uint64_t d = min;
    for (unsigned i = 1; i < k && d < max; i++)
        d = d > max / 2 ? max : d * 2;
    return d > max ? max : d;
}

uint64_t ap_backoff_jitter(uint64_t d, uint64_t r)
{
    return d / 2 + (d ? r % (d / 2 + 1) : 0);
}
