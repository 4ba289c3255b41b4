/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * drift.h - the agent code each generation runs, and workers that start
 * with other code.
 *
 * Every worker says in READY which code it loaded (bridge/codeid.h: a
 * hash of its Python modules' files).  The first worker ready in a reload
 * epoch (the start counts as one) sets that epoch's identity, which is
 * logged; a later worker of the same epoch with another identity means
 * files changed on disk without a reload (a half-finished deploy reached
 * a respawn or a recycle).  That is logged as an error, counted
 * (codeDrift) and marked on the worker; with pinCode it is refused: the
 * caller kills it as a failed start, so a recycled slot keeps its old
 * process and a respawned one backs off until a reload (which starts a
 * new epoch) or the files are restored.  The last two epochs are kept, so
 * an aborted reload falls back to its predecessor's identity.  Called by
 * worker.c (on READY), control.c and metrics.c (to read).  Per pool.
 */
#ifndef AP_DRIFT_H
#define AP_DRIFT_H

#include <stdint.h>

struct worker;
struct pool;

/* p's state (p->drift): each pool has its own code and epochs. */
void drift_init(struct pool *p);
void drift_free(struct pool *p);
/* Records w's identity `code` ("" or NULL: unknown, never drift) and
 * checks it against its epoch's.  Returns 0 to accept w, -1 when pinCode
 * refuses it (logged).  Marks w->proc.code_drift on a mismatch. */
int drift_worker_ready(struct worker *w, const char *code);
/* The identity of p's current epoch ("" until a worker was ready). */
const char *drift_identity(const struct pool *p);
/* p's workers that started with other code, since start. */
uint64_t drift_total(const struct pool *p);
/* p's live workers marked as drifted. */
int drift_live_workers(const struct pool *p);

#endif
