/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * match.h - the in-flight request table of one connection: hands out
 * request ids and matches answers back to them.
 *
 * A connection has `depth` slots.  A request takes a free slot; its id is
 *
 *     id = (gen * nconns + conn) * depth + slot
 *
 * where gen counts the uses of that slot.  An answer's id is decoded the
 * same way, which tells apart, with no search and no allocation:
 *   MATCH_OK        the slot is in flight with that generation;
 *   MATCH_DUPLICATE an id this table issued and already saw answered
 *                   (or failed when its connection was lost);
 *   MATCH_UNKNOWN   an id it never issued: another connection's, a
 *                   generation not reached yet, or not a number at all.
 * A slot is only reused after its answer, so a dropped answer keeps its
 * slot (and its start time) until the end of the run, where
 * match_oldest() reports it.  A stream's chunks are matched the same way
 * (match_chunk) but leave the slot in flight, counted in it.
 *
 * HTTP/1.1 answers come back in order and carry no id, so the table also
 * keeps the slots in issue order (a ring); match_complete_head() takes
 * the oldest.  The ring is only kept in ordered mode, where answers never
 * complete out of order.
 *
 * All memory is taken by match_init(); nothing afterwards allocates.
 */
#ifndef BENCH_MATCH_H
#define BENCH_MATCH_H

#include <stddef.h>
#include <stdint.h>

typedef enum { MATCH_OK = 0, MATCH_UNKNOWN = 1, MATCH_DUPLICATE = 2 } match_result;

typedef struct {
    uint64_t start_ns;  /* when the request counts as sent (caller's clock) */
    uint64_t gen;       /* generation of the id in flight, or of the last one */
    uint64_t next_gen;  /* generations issued so far */
    uint64_t chunks;    /* chunks matched to the request in flight */
    uint32_t busy;
} match_slot;

typedef struct {
    uint32_t depth, conn, nconns;
    uint32_t in_use;
    int ordered;
    match_slot *slots;
    uint32_t *free;      /* stack of free slot numbers */
    uint32_t nfree;
    uint32_t *ring;      /* ordered mode: slot numbers in issue order */
    uint32_t head;
} match_table;

/* Prepares t for connection `conn` of `nconns`, with `depth` slots;
 * `ordered` keeps the issue order (HTTP).  Returns AP_OK, or AP_ERR when
 * the arguments are out of range (depth 0, conn >= nconns) with t
 * untouched. */
int match_init(match_table *t, uint32_t conn, uint32_t nconns, uint32_t depth, int ordered);
/* Frees what match_init() took. */
void match_free(match_table *t);

/* Takes a free slot for a request counted from start_ns and writes its
 * id to *id.  Returns the slot number, or -1 when all slots are busy
 * (nothing changed). */
int match_acquire(match_table *t, uint64_t start_ns, uint64_t *id);
/* Matches an answer's id.  On MATCH_OK the slot is freed and its start
 * time written to *start_ns; otherwise nothing changes. */
match_result match_complete(match_table *t, uint64_t id, uint64_t *start_ns);
/* A stream's chunk for id: matched as by match_complete (in ordered mode
 * any slot in flight, not only the oldest), but the slot stays in flight.
 * On MATCH_OK writes its start time and how many chunks it had matched
 * before this one (0: this is the first), and counts this one. */
match_result match_chunk(match_table *t, uint64_t id, uint64_t *start_ns, uint64_t *before);
/* Ordered mode: frees the oldest slot in flight and writes its start
 * time.  Returns AP_ERR when nothing is in flight. */
int match_complete_head(match_table *t, uint64_t *start_ns);
/* Frees every slot in flight without an answer, oldest first in ordered
 * mode, calling fn(ctx, start_ns) for each: used to fail what a lost
 * connection held.  Returns how many were freed. */
uint32_t match_fail_all(match_table *t, void (*fn)(void *ctx, uint64_t start_ns), void *ctx);
/* Ordered mode: the slot number of the i-th oldest request in flight
 * (i < in_use), to write it again after a reconnect. */
uint32_t match_ring_at(const match_table *t, uint32_t i);
/* The id of the request in slot `slot` (in flight or last issued). */
uint64_t match_id_of(const match_table *t, uint32_t slot);
/* The smallest start time among the slots in flight; AP_ERR when none. */
int match_oldest(const match_table *t, uint64_t *start_ns);

#endif
