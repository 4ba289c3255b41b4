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
 * SUBMITTED -> WORKING (fed and not answered at once) -> INPUT_REQUIRED
 * (the handler called ctx.require_input: the answer line said
 * "inputRequired"; a2atask_continue feeds the next message: WORKING
 * again) or one terminal
 * state: COMPLETED (ok; for a stream the handler's return value),
 * FAILED (worker_crashed, timeout, agent_error,
 * store_unavailable, anything else), CANCELED (cancelled; CancelTask sets
 * it at once), REJECTED (refused before it ran: queue_full, circuit_open,
 * rate_limited, session_busy, too_many_sessions, shutting_down, ...).
 * When a task settles (a terminal state or INPUT_REQUIRED) each of its
 * watchers (blocking SendMessage callers, streams: at most
 * a2aMaxWatchers) is told once, in the order they came, and forgotten;
 * chunks go to every stream watching, in order, and are kept for GetTask
 * (A2ATASK_STREAM_KEEP_MAX); the task's lines wait while any stream has
 * no room (the slowest stream holds the task back, as a slow socket
 * reader holds its stream's credit).  When the pool has a session store
 * each change of state is also written there (a2astore.h).
 *
 * Bounded: at most a2aMaxTasks; a settled task is kept a2aTaskTtl after
 * it settled, then swept (a2atask_sweep, at each A2A request and on the
 * tick: a2a_tick); making room
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
    A2A_INPUT_REQUIRED,         /* the handler called ctx.require_input: settled, not terminal */
    A2A_COMPLETED,
    A2A_FAILED,
    A2A_CANCELED,
    A2A_REJECTED,
    A2A_STATE_COUNT
} a2a_state;

#define A2ATASK_ID_MAX 40
#define A2ATASK_OWNER_MAX 128
/* A task's history keeps its last A2ATASK_HISTORY_MAX messages (the
 * user's and the agent's input-required prompts). */
#define A2ATASK_HISTORY_MAX 64
/* The chunks a task's handler streamed are kept for GetTask (its
 * "stream" artifact) up to this many bytes of JSON per turn; past it
 * the artifact is marked truncated and later chunks only go to the
 * streams watching. */
#define A2ATASK_STREAM_KEEP_MAX (256u * 1024u)

struct a2a_task;
/* Told once when t settles: a terminal state or INPUT_REQUIRED (the
 * watcher is forgotten by then). */
typedef void a2atask_done_fn(struct a2a_task *t, void *arg);
/* A stream's watcher: one chunk of the handler (its JSON, as the worker
 * wrote it, and its seq). */
typedef void a2atask_chunk_fn(struct a2a_task *t, const char *json, size_t len, uint32_t seq, void *arg);
/* A stream's watcher: whether it can take another line now (0: its
 * connection's output is full; it calls a2atask_resume once drained). */
typedef int a2atask_room_fn(void *arg);

/* What a watcher is told (chunk and room NULL: a blocking caller). */
typedef struct {
    a2atask_done_fn *done;
    a2atask_chunk_fn *chunk;
    a2atask_room_fn *room;
} a2atask_watch_ops;

typedef struct {
    const a2atask_watch_ops *ops;
    void *arg;
} a2atask_watcher;

typedef struct a2a_task {
    char id[A2ATASK_ID_MAX];
    char context[SCAN_SESSION_MAX + 1];
    char owner[A2ATASK_OWNER_MAX]; /* "key:ID" or "peer:ADDRESS": who may see it */
    char pool[CONFIG_POOL_NAME_MAX + 1];
    uint64_t serial;            /* creation order (wall-clock us, unique): ListTasks' order and cursor */
    uint64_t created_ms, updated_ms; /* wall clock */
    a2a_state state;
    struct cJSON *history;      /* the messages, oldest first (the user's with taskId and contextId set) */
    char *result;               /* COMPLETED: the handler's result, JSON text */
    char *error;                /* the other terminal states: the error object, JSON text */
    char *prompt;               /* INPUT_REQUIRED: ctx.require_input's prompt, JSON text */
    char *chunks;               /* this turn's stream chunks kept, as the worker wrote them, comma-separated
                                 * (a JSON array's inside; parsed only when shown), or NULL */
    size_t chunk_bytes, chunk_cap;
    int chunks_truncated;
    int turns;                  /* messages fed (1, then one per continuation) */
    struct client *c;           /* its origin client while it has one */
    a2atask_watcher *watch;     /* its watchers (a2aMaxWatchers at most) */
    int nwatch, watch_cap;
    queue_link link;            /* in the table, by serial (oldest first) */
} a2a_task;

/* Whether s is a terminal state. */
int a2atask_terminal(a2a_state s);
/* Whether s ends a turn: terminal or INPUT_REQUIRED (streams end there). */
int a2atask_settled(a2a_state s);
/* Drops the settled tasks past a2aTaskTtl that nobody waits on. */
void a2atask_sweep(uint64_t now_ms);
/* Makes a new task for pool p, owned by owner, in context (NULL: a new
 * context id is made), its message the JSON object amsg[0..mlen) (text
 * scan_json_value accepted: copied without its white space and with its
 * taskId and contextId set here, into its history), and feeds it: its
 * request line carries secret (the API key, NULL when none) as "key",
 * and "stream": stream.  Returns the task (possibly terminal already:
 * refused at once), or NULL when the table is full of tasks still
 * running (why filled). */
a2a_task *a2atask_start(struct pool *p, const char *owner, const char *context, const char *amsg, size_t mlen,
                        int stream, const char *secret, size_t slen, char *why, size_t cap);
/* Continues t (INPUT_REQUIRED) with the user's next message amsg[0..mlen)
 * (as a2atask_start's): appended to the history and fed as a2atask_start
 * does, in the same context (session).  AP_ERR (nothing changed) when t
 * does not wait for input. */
int a2atask_continue(a2a_task *t, struct pool *p, const char *amsg, size_t mlen, int stream, const char *secret,
                     size_t slen);
/* Adds a watcher of t (not terminal: one waiting for input is told at
 * its next turn's end, or at its expiry): ops told with arg.  AP_ERR
 * when t has a2aMaxWatchers already. */
int a2atask_watch(a2a_task *t, const a2atask_watch_ops *ops, void *arg);
/* The watcher arg leaves (its connection closed): t goes on. */
void a2atask_unwatch(a2a_task *t, void *arg);
/* A stream watcher of t has room again: the lines waiting are taken. */
void a2atask_resume(a2a_task *t);
/* The task with id seen by owner, or NULL. */
a2a_task *a2atask_find(const char *id, const char *owner);
/* Cancels t (not terminal) as pool.cancel does and marks it CANCELED.
 * AP_ERR (nothing changed) when it is terminal already. */
int a2atask_cancel(a2a_task *t);
/* The next older task than t (NULL: the newest), or NULL. */
a2a_task *a2atask_older(const a2a_task *t);
/* The state's name: A2A 1.0 (TASK_STATE_COMPLETED) or 0.3 (completed). */
const char *a2atask_state_name(a2a_state s, int v1);
/* The state named name (either version's name), or A2A_STATE_COUNT. */
a2a_state a2atask_state_of(const char *name);
/* t's kept stream chunks as a JSON array (new), or NULL when none. */
struct cJSON *a2atask_chunks(const a2a_task *t);
/* Sets t's kept chunks from a JSON array (a record read back). */
void a2atask_set_chunks(a2a_task *t, const struct cJSON *arr);
/* Puts t back into the table (a task read from the session store at
 * start-up, a2astore.c): AP_ERR (t not taken) when one with its id is
 * there or the table has no room. */
int a2atask_restore(a2a_task *t);
/* Frees t (not in the table). */
void a2atask_free_record(a2a_task *t);
/* Frees every task (their work cancelled) and the table (shutdown). */
void a2atask_stop(void);

#endif
