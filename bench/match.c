/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * match.c - the per-connection in-flight table (see match.h for the id
 * layout and what each match result means).
 *
 * Invariants: a slot is either on the free stack or busy, never both;
 * in_use + nfree == depth; in ordered mode the ring holds exactly the
 * busy slots, oldest at `head`.  The only allocation is in match_init().
 */
#include "match.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <string.h>

int match_init(match_table *t, uint32_t conn, uint32_t nconns, uint32_t depth, int ordered)
{
    if (depth == 0 || nconns == 0 || conn >= nconns)
        return AP_ERR;
    memset(t, 0, sizeof(*t));
    t->depth = depth;
    t->conn = conn;
    t->nconns = nconns;
    t->ordered = ordered;
    t->slots = ap_calloc(depth, sizeof(*t->slots));
    t->free = ap_calloc(depth, sizeof(*t->free));
    if (ordered)
        t->ring = ap_calloc(depth, sizeof(*t->ring));
    /* pushed in reverse so slot 0 is taken first */
    for (uint32_t i = 0; i < depth; i++)
        t->free[i] = depth - 1 - i;
    t->nfree = depth;
    return AP_OK;
}

void match_free(match_table *t)
{
    ap_free(t->slots);
    ap_free(t->free);
    ap_free(t->ring);
    memset(t, 0, sizeof(*t));
}

uint64_t match_id_of(const match_table *t, uint32_t slot)
{
    return (t->slots[slot].gen * t->nconns + t->conn) * t->depth + slot;
}

int match_acquire(match_table *t, uint64_t start_ns, uint64_t *id)
{
    if (t->nfree == 0)
        return -1;
    uint32_t s = t->free[--t->nfree];
    match_slot *sl = &t->slots[s];
    sl->gen = sl->next_gen++;
    sl->start_ns = start_ns;
    sl->chunks = 0;
    sl->busy = 1;
    if (t->ordered)
        t->ring[(t->head + t->in_use) % t->depth] = s;
    t->in_use++;
    *id = match_id_of(t, s);
    return (int)s;
}

/* Marks slot s free; the caller has checked it is busy. */
static void match_release(match_table *t, uint32_t s)
{
    t->slots[s].busy = 0;
    t->free[t->nfree++] = s;
    t->in_use--;
}

/* Decodes id into its slot *s and says whether that slot is in flight
 * with the id's generation. */
static match_result match_find(const match_table *t, uint64_t id, uint64_t *s)
{
    *s = id % t->depth;
    uint64_t q = id / t->depth;
    if (q % t->nconns != t->conn)
        return MATCH_UNKNOWN;
    uint64_t gen = q / t->nconns;
    const match_slot *sl = &t->slots[*s];
    if (gen >= sl->next_gen)
        return MATCH_UNKNOWN;
    if (!sl->busy || gen != sl->gen)
        return MATCH_DUPLICATE;
    return MATCH_OK;
}

match_result match_chunk(match_table *t, uint64_t id, uint64_t *start_ns, uint64_t *before)
{
    uint64_t s;
    match_result r = match_find(t, id, &s);
    if (r != MATCH_OK)
        return r;
    *start_ns = t->slots[s].start_ns;
    *before = t->slots[s].chunks++;
    return MATCH_OK;
}

match_result match_complete(match_table *t, uint64_t id, uint64_t *start_ns)
{
    uint64_t s;
    match_result r = match_find(t, id, &s);
    if (r != MATCH_OK)
        return r;
    match_slot *sl = &t->slots[s];
    if (t->ordered) {
        /* only the head may complete in ordered mode; an id elsewhere in
         * the ring would break the order, so it is not accepted here */
        if (t->ring[t->head] != s)
            return MATCH_UNKNOWN;
        t->head = (t->head + 1) % t->depth;
    }
    *start_ns = sl->start_ns;
    match_release(t, (uint32_t)s);
    return MATCH_OK;
}

int match_complete_head(match_table *t, uint64_t *start_ns)
{
    if (!t->ordered || t->in_use == 0)
        return AP_ERR;
    uint32_t s = t->ring[t->head];
    t->head = (t->head + 1) % t->depth;
    *start_ns = t->slots[s].start_ns;
    match_release(t, s);
    return AP_OK;
}

uint32_t match_fail_all(match_table *t, void (*fn)(void *ctx, uint64_t start_ns), void *ctx)
{
    uint32_t n = 0;
    uint64_t start;
    if (t->ordered) {
        while (match_complete_head(t, &start) == AP_OK) {
            fn(ctx, start);
            n++;
        }
        return n;
    }
    for (uint32_t i = 0; i < t->depth && t->in_use > 0; i++) {
        if (t->slots[i].busy) {
            start = t->slots[i].start_ns;
            match_release(t, i);
            fn(ctx, start);
            n++;
        }
    }
    return n;
}

uint32_t match_ring_at(const match_table *t, uint32_t i)
{
    return t->ring[(t->head + i) % t->depth];
}

int match_oldest(const match_table *t, uint64_t *start_ns)
{
    if (t->in_use == 0)
        return AP_ERR;
    if (t->ordered) {
        *start_ns = t->slots[t->ring[t->head]].start_ns;
        return AP_OK;
    }
    uint64_t best = UINT64_MAX;
    for (uint32_t i = 0; i < t->depth; i++)
        if (t->slots[i].busy && t->slots[i].start_ns < best)
            best = t->slots[i].start_ns;
    *start_ns = best;
    return AP_OK;
}
