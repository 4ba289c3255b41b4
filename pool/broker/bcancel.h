/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bcancel.h - the cancels a broker remembers: control entries naming an
 * entry not held here (yet), each kept until its time (claimIdleMs), so
 * an entry read or claimed after its cancel is answered cancelled
 * without running.  A bounded ring, oldest first: past its capacity the
 * oldest goes.  Pure (no clock read, no log); bjob.c uses it.
 */
#ifndef AP_BCANCEL_H
#define AP_BCANCEL_H

#include "bentry.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char eid[BENTRY_ID_MAX + 1];
    uint64_t until_ms;
} bcancel_slot;

typedef struct {
    bcancel_slot *slots; /* NULL until the first cancel */
    unsigned cap, n, head;
} bcancel_ring;

/* An empty ring of at most cap cancels (nothing allocated yet). */
void bcancel_init(bcancel_ring *r, unsigned cap);
/* Remembers eid[0..len) (len <= BENTRY_ID_MAX) until until_ms; those
 * past their time at now are dropped first, and the oldest when full. */
void bcancel_add(bcancel_ring *r, const char *eid, size_t len, uint64_t now, uint64_t until_ms);
/* Whether eid (NUL-terminated) is remembered and not past its time at now. */
int bcancel_has(const bcancel_ring *r, const char *eid, uint64_t now);
/* Cancels remembered now (some may be past their time). */
unsigned bcancel_count(const bcancel_ring *r);
void bcancel_free(bcancel_ring *r);

#endif
