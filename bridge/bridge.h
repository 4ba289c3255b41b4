/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bridge.h - the worker process's one state struct.
 *
 * agentpool-worker (bridge/) is one process serving one Python agent for
 * the master over fd 3.  Its state lives in the single global `bridge`
 * below: the configuration parsed from argv (read-only once Python is
 * up), the frame buffers, the counters agent.metrics reports and the
 * references to the agent.  Only the worker's main thread touches it,
 * always holding the GIL.  Include Python.h before this header.
 */
#ifndef BRIDGE_BRIDGE_H
#define BRIDGE_BRIDGE_H

#include "buf.h"

#include "ap_common.h"
#include "ap_progress.h"

#include <stddef.h>
#include <stdint.h>

#define BRIDGE_MAX_PYTHON_PATHS 64
/* Longest error message text sent to the master (characters). */
#define BRIDGE_MAX_ERROR_TEXT 8192
/* Error codes in ERROR frames (the "code" member). */
#define BRIDGE_CODE_AGENT_ERROR "agent_error"
#define BRIDGE_CODE_CANCELLED "cancelled"
#define BRIDGE_CODE_STOPPING "worker_stopping"
/* pyerr.c's limit on logged agent exceptions: pairs tracked at once, and
 * the bytes of a type or class name kept for its count lines. */
#define PYERR_SLOTS 64
#define PYERR_NAME_MAX 64

/* One (message type, exception class) pair of that limit. */
typedef struct {
    uint64_t hash;              /* of both names; 0: a free slot */
    uint64_t window_start_ms;   /* ap_now_ms() when its window began */
    uint64_t last_ms;           /* its last exception (for eviction) */
    uint32_t shown;             /* logged in this window */
    uint32_t suppressed;        /* counted, not logged, not yet reported */
    char type[PYERR_NAME_MAX + 1], exc[PYERR_NAME_MAX + 1];
} pyerr_pair;

/* How the worker runs its agent (--model, the master's workerModel). */
typedef enum {
    BRIDGE_MODEL_AUTO,   /* async for an async def handler, else sync */
    BRIDGE_MODEL_SYNC,   /* one message at a time (sync_driver.c) */
    BRIDGE_MODEL_ASYNC,  /* tasks on one asyncio loop (async_driver.c) */
    BRIDGE_MODEL_GEVENT  /* greenlets on gevent's hub (gevent_driver.c) */
} bridge_model;

typedef struct {
    /* configuration from argv, read-only after start-up */
    const char *id;          /* "worker-3": the log role */
    const char *agent_spec;  /* "module:attr" */
    const char *pool;        /* --pool: the pool's name for the handler context */
    int concurrency;         /* --concurrency (async and gevent agents) */
    bridge_model model;      /* --model; resolved (never AUTO) once the agent is loaded */
    size_t max_result_bytes; /* --max-result-bytes: longest RESULT payload sent */
    const char *python_paths[BRIDGE_MAX_PYTHON_PATHS];
    int n_python_paths;
    const char *virtualenv;  /* NULL unless --virtualenv */
    int inherit_python_env;
    int log_level;           /* ap_log_level */
    int hub_blocked_warn_ms; /* --hub-blocked-warn-ms: report a loop held this long (0: off) */
    size_t stream_window;    /* --stream-window-bytes: chunk bytes in flight per stream (stream.c) */
    size_t max_session_bytes;    /* --max-session-bytes: longest session state sent (sstate.c) */
    size_t max_checkpoint_bytes; /* --max-checkpoint-bytes: longest ctx.checkpoint value (checkpoint.c) */

    /* the agent */
    PyObject *agent;         /* the instance (NULL for a plain function) */
    PyObject *handler;       /* bound handle_message, or the function */
    PyObject *a2a_handler;   /* bound handle_a2a_message(message, ctx) or NULL: takes "a2a.message" */
    int a2a_only;            /* the agent has handle_a2a_message only (handler is it too) */
    PyObject *health;        /* bound health() or NULL */
    PyObject *metrics;       /* bound metrics() or NULL */
    int is_async;
    int wants_context;       /* handle_message takes a third parameter: the Context */
    int max_inflight;        /* 1 for sync agents, concurrency for async and gevent */
    PyObject *run_until_complete; /* async: the loop's bound method */

    /* the stream to the master */
    int fd;
    ap_progress *progress;      /* the master's progress page, or NULL (sync driver) */
    buf_t in, out;
    int stopping;            /* STOP received */
    int eof;                 /* the master is gone */
    /* Set by the driver: runs after each chunk queued in `out` for message
     * id.  The sync driver writes it, returning AP_ERR with
     * StreamCancelled set when the master cancelled the message; the
     * others schedule a flush and return AP_OK. */
    int (*stream_sent)(uint64_t id);
    /* Sync driver: waits, reading fd 3, while message id's window is
     * full (stream.c's wait before its next chunk); AP_ERR with
     * StreamCancelled set when the master cancelled it or is gone. */
    int (*stream_wait)(uint64_t id);

    /* counters for agent.metrics */
    uint64_t started_ns;
    uint64_t received;       /* REQUEST frames */
    uint64_t credits;        /* CREDIT frames (streams), agent.metrics stream_credits */
    uint64_t sent;           /* RESULT + ERROR frames answering them */
    uint64_t errors;         /* ERROR frames */
    size_t inflight;         /* async and gevent: tasks or greenlets running now */
    uint64_t hub_blocked;    /* times the event loop was found held (hubwatch.c) */

    /* agent exceptions logged, per (type, class): pyerr.c */
    pyerr_pair pyerr[PYERR_SLOTS];
} bridge_state;

extern bridge_state bridge;

/* How a driver's loop ended. */
typedef enum {
    BRIDGE_END_STOP, /* STOP frame: everything answered, finish cleanly */
    BRIDGE_END_EOF   /* the master is gone: exit promptly */
} bridge_end;

/* "auto", "sync", "async" or "gevent".  Implemented in main.c. */
const char *bridge_model_name(bridge_model m);

/* Logs a frame the worker cannot accept (a corrupt header, or a kind the
 * master never sends) with its context and exits with status 1: the
 * stream can no longer be trusted.  Implemented in main.c. */
AP_NORETURN void bridge_bad_frame(unsigned kind, uint32_t len, uint64_t id, int corrupt);

#endif
