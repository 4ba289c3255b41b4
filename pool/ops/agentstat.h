/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agentstat.h - the master's cache of each worker's agent.metrics answer,
 * for detailed stats.
 *
 * When someone reads detailed stats (pool.stats {"detailed": true},
 * /stats) the master asks every worker that can answer soon (taking
 * messages, not being killed; a sync worker only when it holds no
 * message) whose cached answer is older than AGENTSTAT_FRESH_MS for
 * agent.metrics: a REQUEST frame of that type which no client sent.
 * Heartbeats never ask, so an agent's metrics() runs only for a reader.
 * The ask is no message: it is not in the message table, takes no slot,
 * is never retried, queued, counted in pool.stats' messages or types,
 * timed out or dead-lettered.  Its id is the master's own, below
 * 2^32 (a message's id is (sequence << 32) | index with sequence >= 1),
 * and each process has at most one outstanding, so the answer is matched
 * by worker and exact id.  The last answer of the current process is
 * kept with the time it came (shown with its age), bounded to AGENTSTAT_MAX_BYTES (a larger
 * one is replaced by {"error":"too large","bytes":N}; an ERROR answer is
 * kept as {"error":<its error object>}).
 */
#ifndef AP_AGENTSTAT_H
#define AP_AGENTSTAT_H

#include "ap_frame.h"
#include "worker.h"

#include <stdint.h>

struct pool;

struct cJSON;

#define AGENTSTAT_MAX_BYTES 8192
/* A cached answer younger than this is shown without asking again, ms. */
#define AGENTSTAT_FRESH_MS 250
/* How long a detailed stats read waits for the answers, at most, ms. */
#define AGENTSTAT_WAIT_MS 1000
/* Readers waiting at once; more are answered from the cache at once. */
#define AGENTSTAT_MAX_WAITERS 32

/* reply_now 1: the answers are in (or waiting is over), answer now; 0: at
 * exit, only free arg. */
typedef void (*agentstat_done_fn)(void *arg, int reply_now);
/* A detailed stats read: asks every worker that can answer soon and
 * whose cache is not fresh.  Returns 1 when done(arg) will be called once
 * those answers are in (or after AGENTSTAT_WAIT_MS); 0 when the caller
 * should answer now (nothing outstanding, done NULL, or too many waiting:
 * done is then never called). */
int agentstat_refresh(agentstat_done_fn done, void *arg);
/* Whether frame h (RESULT or ERROR) from w answers our ask. */
int agentstat_owns(const worker *w, const ap_frame_hdr *h);
/* Caches that answer (h->len payload bytes). */
void agentstat_answer(worker *w, const ap_frame_hdr *h, const char *payload);
/* Adds `agent`: {"metrics": cached or null, "at": wall ms or null,
 * "ageMs": its age or null, "health": the last health() answer or null} to a detailed stats
 * worker object (now and wall: the caller's clocks). */
void agentstat_add_json(struct cJSON *o, const worker *w, uint64_t now_ms, uint64_t wall_ms);
/* Frees the cache (at exit), calling every waiter with answer 0. */
/* Frees p's entries (the pool is freed). */
void agentstat_pool_free(struct pool *p);
void agentstat_free(void);

#endif
