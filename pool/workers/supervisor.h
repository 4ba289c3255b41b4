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

void supervisor_init(void);
void supervisor_free(void);
/* Records that w's process ended (status from waitpid); under the
 * one_for_all strategy an unexpected end marks every other serving
 * worker for replacement.  Returns the delay in ms before the slot is
 * respawned, or -1 when it must not be (restartOnFailure is false, or
 * the end was expected). */
int64_t supervisor_worker_ended(const worker *w, int status, sup_reason reason);
/* Periodic: leaves backoff once the pool has stayed up a whole window. */
void supervisor_tick(uint64_t now_ms);
int supervisor_in_backoff(void);
const char *supervisor_reason_name(sup_reason r);
/* Restarts counted in the current window, and ends by reason. */
unsigned supervisor_recent_restarts(uint64_t now_ms);
uint64_t supervisor_ends(sup_reason r);
/* The history, oldest first, as a JSON array (caller frees). */
struct cJSON *supervisor_history_json(void);

#endif
