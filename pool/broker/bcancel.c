/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bcancel.c - the ring of remembered cancels (see bcancel.h).  A lookup
 * walks the ring (at most its capacity, 4096 in the broker): cancels are
 * rare and the ring is only asked for entries being taken in.
 */
#include "bcancel.h"
#include "ap_alloc.h"

#include <string.h>

void bcancel_init(bcancel_ring *r, unsigned cap)
{
    memset(r, 0, sizeof(*r));
    r->cap = cap ? cap : 1;
}

void bcancel_add(bcancel_ring *r, const char *eid, size_t len, uint64_t now, uint64_t until_ms)
{
    if (len > BENTRY_ID_MAX)
        return;
    if (r->slots == NULL)
        r->slots = ap_calloc(r->cap, sizeof(bcancel_slot));
    while (r->n > 0 && r->slots[r->head].until_ms <= now) {
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
    if (r->n == r->cap) { /* full: the oldest goes */
        r->head = (r->head + 1) % r->cap;
        r->n--;
    }
    bcancel_slot *x = &r->slots[(r->head + r->n) % r->cap];
    memcpy(x->eid, eid, len);
    x->eid[len] = '\0';
    x->until_ms = until_ms;
    r->n++;
}

int bcancel_has(const bcancel_ring *r, const char *eid, uint64_t now)
{
    for (unsigned i = 0; i < r->n; i++) {
        const bcancel_slot *x = &r->slots[(r->head + i) % r->cap];
        if (x->until_ms > now && strcmp(x->eid, eid) == 0)
            return 1;
    }
    return 0;
}

unsigned bcancel_count(const bcancel_ring *r)
{
    return r->n;
}

void bcancel_free(bcancel_ring *r)
{
    ap_free(r->slots);
    r->slots = NULL;
    r->n = r->head = 0;
}
