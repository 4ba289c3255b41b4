/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * recycle.h - replacing healthy workers on purpose, make before break.
 *
 * Policies are named predicates in uWSGI's manner, each saying why a
 * worker is due: processed maxMessagesPerWorker messages, older than
 * workerRecycleInterval, or RSS over maxWorkerRss.  Every limit has a
 * per-worker spread (recycleJitter percent, drawn at spawn) so workers
 * started together do not recycle together, and at most
 * maxConcurrentRecycles run at once.  A recycle forks the replacement
 * into a spare table entry first; only when it is ready does the old
 * worker stop taking messages (DRAINING), finish what it holds, and get
 * STOP.  If the replacement cannot start, the old worker keeps serving.
 * maxWorkerRssHard is not a recycle: the worker is killed at once and
 * what it held is retried as after a crash.
 */
#ifndef AP_RECYCLE_H
#define AP_RECYCLE_H

#include "worker.h"

#include <stdint.h>

struct pool;

/* Checks the message-count predicate after w answered (hot path: cheap). */
void recycle_after_answer(worker *w);
/* Periodic: samples RSS, checks age and memory, enforces
 * gracefulTimeout on stopping workers, starts due recycles. */
void recycle_tick(struct pool *p, uint64_t now_ms);
/* Starts replacing w (reason for the log).  AP_ERR when it cannot now
 * (no spare entry, too many recycles at once, w not serving). */
int recycle_start(worker *w, const char *reason);
/* w (a replacement) is ready: the worker it replaces stops taking
 * messages and drains.  Nothing when w replaces nobody. */
void recycle_replacement_ready(worker *w);
/* w's process died: ends the hand-over it was part of.  Returns 1 when
 * w's table entry no longer owns the slot (the replacement took it, or w
 * was a replacement that never got ready and the old worker serves on,
 * to be tried again later), else 0. */
int recycle_process_ended(worker *w);
/* Draws w's spread for its limits (at spawn). */
void recycle_new_process(worker *w);
/* Recycles in progress (old worker still alive). */
int recycle_active(const struct pool *p);

#endif
