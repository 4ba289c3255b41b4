/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2astore.h - A2A tasks kept in the pool's session store, so they
 * survive a restart of agentpoold (docs/a2a.md, "Tasks in the session
 * store").
 *
 * A pool with a2a and sessions on has a session store (sessionStore,
 * sstore.h; default SQLite beside the socket).  Each task is one small
 * JSON record in that store under its own key space, "a2a:task:<id>",
 * written (sstore_put, never waited for) at each change of state; the
 * store's sessionTtl expires it there.  At start-up the pool's records
 * are listed and read back (sstore_list over the "a2a:task:" keys, then
 * a get each), in the background: a task recorded while it ran is read
 * back FAILED ("agentpoold stopped before it was answered").  The owner
 * is in the record, so ListTasks and GetTask still show a caller only
 * its own tasks.  A store that fails the reading (down, not connected
 * yet, timed out) is read again from the start after a backoff, until
 * every record is read; meanwhile the pool is loading
 * (a2astore_loading): a task it does not know may be one not read back
 * yet.  Never blocks: every store operation is asynchronous.
 */
#ifndef AP_A2ASTORE_H
#define AP_A2ASTORE_H

#include <stdint.h>

struct a2a_task;
struct pool;

/* The key space of task records in a session store. */
#define A2ASTORE_PREFIX "a2a:task:"
/* The wait before reading the records again after the store failed. */
#define A2ASTORE_RETRY_MIN_MS 250
#define A2ASTORE_RETRY_MAX_MS 5000

/* Writes t's record into its pool's store, when it has one. */
void a2astore_save(const struct a2a_task *t);
/* Starts reading pool p's task records back into the task table (when
 * p has a2a and a store). */
void a2astore_load(struct pool *p);
/* On the front door's tick (a2a_tick): starts the passes of the loaders
 * whose backoff after a failed reading is over. */
void a2astore_tick(uint64_t now_ms);
/* Whether p's task records are still being read back. */
int a2astore_loading(const struct pool *p);
/* p goes: its loader stops (freed now, or by its last callback). */
void a2astore_pool_free(struct pool *p);

#endif
