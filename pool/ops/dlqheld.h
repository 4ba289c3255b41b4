/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dlqheld.h - dead letters the file could not take, held in memory.
 *
 * When a record cannot be written to the dead-letter file at all (the
 * file refused or unopenable, a full disk, an I/O error), retry.c hands
 * it here instead of losing it: a copy is kept, oldest first, at most
 * DLQHELD_MAX_RECORDS records and DLQHELD_MAX_BYTES bytes of them; a
 * record past either bound is dropped and counted (logged by the
 * caller).  Every later dead letter, and the tick once a second, first
 * try to write the held records to the file, in order, stopping at the
 * first that fails.  Counts are in pool.stats (deadLetters.held,
 * heldDropped) and pool.health (deadLettersHeld).  The master alone
 * calls it; nothing here blocks but dlq_append's one fsync per record.
 */
#ifndef AP_DLQHELD_H
#define AP_DLQHELD_H

#include "dlq.h"

#include <stdint.h>

#define DLQHELD_MAX_RECORDS 1024
#define DLQHELD_MAX_BYTES ((size_t)64 << 20)

/* Keeps a copy of e for owner (nothing of e is kept).  AP_OK when kept, AP_ERR when
 * a bound was reached: dropped and counted. */
int dlqheld_keep(const void *owner, const dlq_entry *e);
/* Writes owner's held records to d oldest first, removing each that was
 * written, until one fails (its error in err) or none is left.  Returns
 * how many were written; d NULL: none. */
unsigned dlqheld_flush(const void *owner, dlq *d, char *err, size_t errlen);
/* owner's records held now (NULL: everyone's). */
uint64_t dlqheld_count(const void *owner);
/* Records dropped because the bounds were reached, since start (all owners). */
uint64_t dlqheld_dropped(void);
/* Frees owner's held records (at exit, or its pool is gone: they are
 * lost, and logged as such, naming `whose`). */
void dlqheld_free(const void *owner, const char *whose);

#endif
