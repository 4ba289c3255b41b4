/*
 * agentstat.h - the master's cache of each worker's agent.metrics answer,
 * for detailed stats.
 *
 * With each heartbeat the master also asks every worker it pings (taking
 * messages, not being killed; a sync worker only when it holds no
 * message) for agent.metrics: a REQUEST frame of that type which no
 * client sent.  It is no message: it is not in the message table, takes
 * no slot, is never retried, queued, counted in pool.stats' messages or
 * types, timed out or dead-lettered.  Its id is the master's own, below
 * 2^32 (a message's id is (sequence << 32) | index with sequence >= 1),
 * and each process has at most one outstanding, so the answer is matched
 * by worker and exact id.  The last answer of the current process is
 * kept with the time it came, bounded to AGENTSTAT_MAX_BYTES (a larger
 * one is replaced by {"error":"too large","bytes":N}; an ERROR answer is
 * kept as {"error":<its error object>}).
 */
#ifndef AP_AGENTSTAT_H
#define AP_AGENTSTAT_H

#include "ap_frame.h"
#include "worker.h"

#include <stdint.h>

struct cJSON;

#define AGENTSTAT_MAX_BYTES 8192

/* Asks w for agent.metrics unless its previous ask is unanswered.  Called
 * by worker_heartbeat right after w's PING. */
void agentstat_ask(worker *w);
/* Whether frame h (RESULT or ERROR) from w answers our ask. */
int agentstat_owns(const worker *w, const ap_frame_hdr *h);
/* Caches that answer (h->len payload bytes). */
void agentstat_answer(worker *w, const ap_frame_hdr *h, const char *payload);
/* Adds `agent`: {"metrics": cached or null, "at": wall ms or null,
 * "health": the last health() answer or null} to a detailed stats
 * worker object (now and wall: the caller's clocks). */
void agentstat_add_json(struct cJSON *o, const worker *w, uint64_t now_ms, uint64_t wall_ms);
/* Frees the cache (at exit). */
void agentstat_free(void);

#endif
