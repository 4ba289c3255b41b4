/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2atask.h - the A2A tasks: a bounded table in the master, and each
 * task's run through the pool (docs/a2a.md).
 *
 * A task is one A2A message made into one agentpool request of type
 * "a2a.message" (its data the A2A message; "session" its contextId when
 * the pool has sessions on), fed to an origin client of its own
 * (client.h), so it takes the socket's whole admission path and ends in
 * answer.c with exactly one answer line, read back with reply_read.  The
 * task outlives the HTTP request that made it (returnImmediately, a
 * client that leaves): its origin client is the task's, not the
 * connection's.  States, changed only by a2atask's own transition:
 * SUBMITTED -> WORKING (fed and not answered at once) -> one terminal
 * state: COMPLETED (ok; for a stream the handler's return value),
 * FAILED (worker_crashed, timeout, agent_error,
 * store_unavailable, anything else), CANCELED (cancelled; CancelTask sets
 * it at once), REJECTED (refused before it ran: queue_full, circuit_open,
 * rate_limited, session_busy, too_many_sessions, shutting_down, ...).
 * When a task reaches a terminal state its done() (one waiter: a blocking
 * SendMessage) is told once.
 *
 * Bounded: at most a2aMaxTasks; a terminal task is kept a2aTaskTtl after
 * it ended, then swept (a2atask_sweep, at each A2A request); making room
 * drops the oldest terminal tasks nobody waits on.  Lookups are linear
 * over the table (bounded by a2aMaxTasks).  Never blocks.
 */
#ifndef AP_A2ATASK_H
#define AP_A2ATASK_H

#include "config.h"
#include "queue.h"
#include "scan.h"

#include <stddef.h>
#include <stdint.h>

struct client;
struct pool;

typedef enum {
    A2A_SUBMITTED = 0,
    A2A_WORKING,
    A2A_COMPLETED,
    A2A_FAILED,
    A2A_CANCELED,
    A2A_REJECTED,
    A2A_STATE_COUNT
} a2a_state;

#define A2ATASK_ID_MAX 40
#define A2ATASK_OWNER_MAX 128

struct a2a_task;
/* Told once when t reaches a terminal state. */
typedef void a2atask_done_fn(struct a2a_task *t, void *arg);
/* A stream's watcher: one chunk of the handler (its JSON, as the worker
 * wrote it, and its seq). */
typedef void a2atask_chunk_fn(struct a2a_task *t, const char *json, size_t len, uint32_t seq, void *arg);
/* A stream's watcher: whether it can take another line now (0: its
 * connection's output is full; it calls a2atask_resume once drained). */
typedef int a2atask_room_fn(void *arg);

typedef struct a2a_task {
    char id[A2ATASK_ID_MAX];
    char context[SCAN_SESSION_MAX + 1];
    char owner[A2ATASK_OWNER_MAX]; /* "key:ID" or "peer:ADDRESS": who may see it */
    char pool[CONFIG_POOL_NAME_MAX + 1];
    uint64_t serial;            /* creation order: ListTasks' order and cursor */
    uint64_t created_ms, updated_ms;
    a2a_state state;
    char *message;              /* the user's message as JSON text (taskId and contextId set) */
    char *result;               /* COMPLETED: the handler's result, JSON text */
    char *error;                /* the other terminal states: the error object, JSON text */
    struct client *c;           /* its origin client while it has one */
    a2atask_done_fn *done;      /* its one watcher (done_arg): a blocking SendMessage or a stream */
    a2atask_chunk_fn *chunk;    /* a stream's (NULL: chunks are not asked for, or nobody watches) */
    a2atask_room_fn *room;
    void *done_arg;
    queue_link link;            /* in the table, oldest first */
} a2a_task;

/* Whether s is a terminal state. */
int a2atask_terminal(a2a_state s);
/* Drops the terminal tasks past a2aTaskTtl that nobody waits on. */
void a2atask_sweep(uint64_t now_ms);
/* Makes a new task for pool p, owned by owner, in context (NULL: a new
 * context id is made), its message the cJSON-printed text msg (its
 * taskId and contextId are set here), and feeds it: its request line
 * carries secret (the API key, NULL when none) as "key", and "stream":
 * stream (its chunks then go to t->chunk while one is set).  Returns the
 * task (possibly terminal already: refused at once), or NULL when the
 * table is full of tasks still running (why filled). */
a2a_task *a2atask_start(struct pool *p, const char *owner, const char *context, struct cJSON *msg, int stream,
                        const char *secret, size_t slen, char *why, size_t cap);
/* t's stream watcher has room again: the lines waiting are taken. */
void a2atask_resume(a2a_task *t);
/* t's watcher leaves (its connection closed): t goes on, unwatched. */
void a2atask_unwatch(a2a_task *t);
/* The task with id seen by owner, or NULL. */
a2a_task *a2atask_find(const char *id, const char *owner);
/* Cancels t (not terminal) as pool.cancel does and marks it CANCELED.
 * AP_ERR (nothing changed) when it is terminal already. */
int a2atask_cancel(a2a_task *t);
/* The next older task than t (NULL: the newest), or NULL. */
a2a_task *a2atask_older(const a2a_task *t);
/* The state's name: A2A 1.0 (TASK_STATE_COMPLETED) or 0.3 (completed). */
const char *a2atask_state_name(a2a_state s, int v1);
/* Frees every task (their work cancelled) and the table (shutdown). */
void a2atask_stop(void);

#endif
