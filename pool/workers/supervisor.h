/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * supervisor.h - what the pool does when a worker process ends, the way
 * Erlang/OTP supervisors do it.
 *
 * Every end is written to a bounded restart history (pool.history).
 * Unexpected ends (crashes, kills, failures to start) count toward the
 * restart intensity: more than maxRestarts within restartWindow puts the
 * pool into backoff, where respawns wait with exponential delay instead of
 * fork-looping and the pool reports "degraded"; it leaves backoff by
 * itself once no worker has died for a whole restartWindow.  Repeated
 * failures of one slot to start back off on their own as well.  The
 * supervisor decides; worker.c forks.
 */
#ifndef AP_SUPERVISOR_H
#define AP_SUPERVISOR_H

#include "worker.h"

#include <stdint.h>

struct cJSON;

typedef enum {
    SUP_STOPPED = 0,   /* asked to stop, and did */
    SUP_CRASHED,       /* died unexpectedly */
    SUP_START_FAILED,  /* could not import or start the agent */
    SUP_KILLED_STUCK,  /* killed for a timeout or a stuck loop */
    SUP_KILLED_MEMORY, /* killed for maxWorkerRssHard */
    SUP_RECYCLED,      /* replaced on purpose (a recycle limit), and stopped */
    SUP_REASON_COUNT
} sup_reason;

struct pool;

/* p's supervision state (p->sup), from its settings; freed with it. */
void supervisor_init(struct pool *p);
void supervisor_free(struct pool *p);
/* Records the end of w's process; applies the pool's restart strategy
 * and intensity.  Returns the delay before its slot's respawn (ms), or
 * -1 when it is not to be respawned. */
int64_t supervisor_worker_ended(const worker *w, int status, sup_reason reason);
/* Leaves backoff once no worker of p has died for a restartWindow. */
void supervisor_tick(struct pool *p, uint64_t now_ms);
int supervisor_in_backoff(const struct pool *p);
const char *supervisor_reason_name(sup_reason r);
/* Why a worker marked replace_pending (one-for-all, rest-for-one) is recycled. */
const char *supervisor_replace_reason(const struct pool *p);
/* Unexpected ends of p's workers within restartWindow of now. */
unsigned supervisor_recent_restarts(const struct pool *p, uint64_t now_ms);
uint64_t supervisor_ends(const struct pool *p, sup_reason r);
/* Appends p's restart history, oldest first, to arr (with "pool" when
 * the pools are named); returns arr. */
struct cJSON *supervisor_history_json(const struct pool *p, struct cJSON *arr);

#endif
