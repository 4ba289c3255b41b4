/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * suspect.h - workers that do not take what was sent to them
 * (dispatchAckMs): marked suspect, skipped by dispatch, until the
 * kernel shows they read again.  Called from the server's tick only.
 */
#ifndef AP_SUSPECT_H
#define AP_SUSPECT_H

#include <stdint.h>

struct pool;

/* Judges every worker taking messages: marks suspect one that has left
 * what it was sent unread for dispatchAckMs (logged, counted; a sync
 * worker's messages it has not started go back to the queue), clears
 * one that read again.  Never fails; a worker whose socket cannot be
 * asked is left as it was. */
void suspect_tick(struct pool *p, uint64_t now);
/* Workers suspect now. */
unsigned suspect_count(const struct pool *p);

#endif
