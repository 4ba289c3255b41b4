/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * retry.h - messages that cannot finish the normal way.
 *
 * Owns three things the lifecycle promise rests on:
 *  - deadlines: `timeout` (or a request's smaller "timeoutMs") bounds a
 *    message from acceptance, queue wait included.  One libevent timer is
 *    embedded in each message; the server-wide timeout uses a libevent
 *    common timeout, so arming it is O(1) on the hot path.
 *  - retries: a message whose worker died is sent again, up to maxRetries
 *    times, after retryDelay x 2^(attempt-1) (with jitter, capped by
 *    maxRetryDelay), ahead of everything queued, unless it said
 *    "retry": false.
 *  - giving up: worker_crashed to the client with the attempts and the
 *    last exit status or signal, and a record in the dead-letter file.
 *  - crash attribution: which of the messages a dead worker held is
 *    charged with its death (retry_worker_died).
 * It decides; answer.c writes answers and worker.c kills processes.
 */
#ifndef AP_RETRY_H
#define AP_RETRY_H

#include "dlq.h"
#include "msg.h"
#include "reply.h"

struct worker;
struct pool;

/* Prepares m's timer and arms its deadline (if it has one). */
void retry_arm(msg *m);
/* p's deadline timer, shared by its messages armed for the pool's
 * timeout (after the event base exists; no event when timeout is 0).
 * AP_ERR, logged, when it cannot be made. */
int retry_start(struct pool *p);
/* Frees it (after p's last message ended). */
void retry_stop(struct pool *p);
/* Stops m's timer; call before m is freed or leaves RETRY_WAIT. */
void retry_disarm(msg *m);
/* w's process died (status from waitpid, `how` its description): every
 * message it held is dealt with.  Only the one it was running is charged
 * with the crash (retried, or failed for good); a sync worker's others go
 * back to the head of the queue with no attempt spent (retry_not_started).
 * Leaves w holding nothing. */
void retry_worker_died(struct worker *w, int status, const char *how);
/* m's worker process ended (died, or was killed) while m was RUNNING
 * and already unlinked from it: retry m, or answer it and record it for
 * good.  f describes this failure. */
void retry_worker_lost(msg *m, const msg_failure *f);
/* m was prefetched by a sync worker that died before starting it: back
 * to the head of the queue as it was, no attempt spent (or dropped when
 * its client is gone or it was answered already). */
void retry_not_started(msg *m);
/* What retry_let_go does to a sync worker running the message itself. */
typedef enum { RETRY_SYNC_KILL = 0, RETRY_SYNC_FINISH } retry_sync_policy;
/* m is RUNNING and was answered already (answer_detach: a timeout or a
 * pool.cancel): its worker is made to let go of it.  An async or gevent
 * worker's task is cancelled (CANCEL) and the worker is killed as stuck
 * if it still holds m RETRY_CANCEL_GRACE_MS later.  A sync worker skips
 * m if m is prefetched behind the one it runs (CANCEL; with
 * RETRY_SYNC_KILL the same grace, counted once m is first in line).  A
 * sync worker running m is killed as stuck (`why`, for the log) with
 * RETRY_SYNC_KILL; with RETRY_SYNC_FINISH it runs m to its end, m's own
 * deadline still bounding it, and its answer is dropped (late). */
void retry_let_go(msg *m, retry_sync_policy sync, const char *why);
/* Answers every message of p waiting out a retry delay with code (shutdown). */
unsigned retry_fail_waiting(struct pool *p, reply_code code, const char *why);
/* Opens p's dead-letter file (its deadLetterFile, else derived from the
 * socket and, with named pools, the pool's name).  AP_ERR logged when it
 * cannot be opened: the server runs on and says so. */
int retry_open_dead_letters(struct pool *p);
/* Writes e to p's dead-letter file (opened again if it is not open), after
 * the records held in memory; when the file refuses it, it is held in
 * memory (dlqheld.c) or, past that bound, lost: logged and counted either
 * way.  For messages that failed for good here and for broker entries
 * dead-lettered by their delivery count (bjob.c). */
void retry_write_dead_letter(struct pool *p, const dlq_entry *e);
/* Writes what dlqheld.c holds for p, then closes p's file (exit, or the
 * pool is gone). */
void retry_close_dead_letters(struct pool *p);
/* From the tick: once a second while p's dead letters are held in memory
 * (the file could not take them), offers them to the file again
 * (reopening it if it was never opened). */
void retry_tick(struct pool *p, uint64_t now_ms);

#endif
