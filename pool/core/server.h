/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * server.h - the master's one mutable global state and its lifecycle.
 *
 * Everything agentpoold knows lives in `server`: the event base, the
 * worker table, the message table and queue, the connections and the
 * counters behind pool.stats.  The config it points to is read-only once
 * built; a reload swaps in a new one (reload.c).  The server's own
 * lifecycle is server_state, changed only by server.c:
 *
 *   STARTING -> READY (every initial worker ready) -> DRAINING (SIGTERM:
 *   finish what is accepted) -> STOPPING (workers told to stop) -> loop ends
 *
 * Only the master includes this header.
 */
#ifndef AP_SERVER_H
#define AP_SERVER_H

#include "config.h"
#include "dispatch.h"
#include "msg.h"
#include "queue.h"
#include "reply.h"
#include "worker.h"

#include <stdint.h>

struct event_base;
struct evconnlistener;
struct event;
struct dlq;
struct typetab;
struct breaker_set;
struct metrics;
struct httpd;
struct access_log;

typedef enum { SERVER_STARTING = 0, SERVER_READY, SERVER_DRAINING, SERVER_STOPPING } server_state;

typedef struct {
    uint64_t accepted;          /* messages admitted (queued or sent) */
    uint64_t processed;         /* answers from workers (ok or agent error) */
    uint64_t answered_ok;       /* ok answers to messages (pool.* answers are control_ok) */
    uint64_t errors[ERR_COUNT]; /* error answers by code, to every request, whoever produced them */
    uint64_t control_ok;        /* ok answers to pool.* requests */
    uint64_t control_errors[ERR_COUNT]; /* of errors[]: those answering pool.* requests */
    uint64_t cancelled;         /* queued/held messages dropped because their client left */
    uint64_t dropped_results;   /* answers nobody waited for any more (client left) */
    uint64_t late_results;      /* answers for messages already answered (timeout, pool.cancel) */
    uint64_t cancels[3];        /* pool.cancel requests by what they found: cancel_found (cancel.h) */
    uint64_t retries;           /* messages sent again after their worker died */
    uint64_t dead_lettered;     /* messages that failed for good */
    uint64_t dead_letter_errors;/* records the dead-letter file could not take (then held: dlqheld.c) */
    uint64_t failed_uncharged;  /* messages failed for good at worker deaths not charged to them (retry.c) */
    uint64_t bad_progress_pages;/* worker deaths whose progress page named a message not held (retry.c) */
    uint64_t frames_out_of_place;/* worker frames refused for the worker's state: protocol errors (worker.c) */
    uint64_t suspected;         /* times a worker was marked suspect (suspect.c) */
    uint64_t hub_blocked_past;  /* hubBlocked reports of processes whose progress page was reset (wprog.c) */
    uint64_t rerouted;          /* messages taken back from suspect workers (suspect.c) */
    uint64_t stuck_kills;       /* workers killed for a timeout or a stuck loop */
    uint64_t recycles;          /* recycles started */
    uint64_t conns_accepted;
    uint64_t conns_rejected;    /* too_many_connections: maxConnections, its admin reserve, per uid */
    uint64_t conns_refused_peer;/* peers not in allowedUids/allowedGids (privs.c) */
    uint64_t conns_rejected_uid;/* of conns_rejected: over maxConnectionsPerUid (connlimit.c) */
    uint64_t conns_idle_closed; /* closed after idleConnectionTimeout (client.c) */
    uint64_t conns_half_closed; /* peers that shut their writing side and were kept to be answered (client.c) */
    uint64_t too_large_lines;
    uint64_t output_pauses;     /* connections paused: their own unread answers passed 1 MiB */
    uint64_t budget_pauses;     /* connections paused: maxBufferedBytes passed (client.c) */
    uint64_t parked_msgs;       /* messages kept from workers while their client was parked */
    uint64_t write_timeouts;    /* connections closed: answers not taken for clientWriteTimeout */
    uint64_t spawns;
    uint64_t crashes;           /* worker processes that died unexpectedly */
    uint64_t streams;           /* streams opened: messages asked with "stream": true, and others that sent chunks */
    uint64_t chunks_sent;       /* chunk lines written to clients */
    uint64_t chunk_bytes_sent;  /* their chunks' JSON bytes */
    uint64_t chunks_collected;  /* chunks kept for a collected answer (no "stream": true) */
    uint64_t chunks_dropped;    /* chunks nobody waited for any more (client left, answered, too large) */
    uint64_t heartbeats;        /* heartbeat lines written (streamHeartbeatMs) */
    uint64_t streams_ended[ERR_COUNT + 1]; /* streams ended by code; [ERR_COUNT]: ok (stream.c) */
} server_stats;

typedef struct {
    struct event_base *base;
    config *cfg;                /* the settings in force (boot_cfg, or a reload's) */
    config boot_cfg;            /* the settings read at start */
    uint32_t reload_epoch;      /* rolling reloads started (and not aborted) */
    server_state state;
    int exit_code;
    char *worker_binary;
    pid_t pid;
    uint64_t started_ms;
    uint64_t dlq_held_retry_ms; /* next offer of held dead letters to the file (retry_tick) */

    worker *workers;            /* the worker table */
    int nworkers;               /* its entries */
    int pool_size;              /* logical workers (slots 0 .. pool_size-1) */
    uint32_t *slot_gen;         /* processes each slot has had */
    uint64_t *slot_errors;      /* agent errors each slot's processes answered */
    dispatch_state dispatch;

    msg_table msgs;
    queue queue;
    uint64_t pending_bytes;     /* request bytes of every admitted message */
    queue_link retrying;        /* messages in RETRY_WAIT */
    struct dlq *dlq;            /* the dead-letter file, NULL when it cannot be opened */
    struct typetab *types;      /* message types tracked one by one */
    struct breaker_set *breakers; /* per type, indexed like types */
    struct metrics *metrics;    /* distributions, throughput, per-type answers */
    struct httpd *httpd;        /* metricsListen's HTTP server, NULL when off */
    struct access_log *access;  /* accessLog, NULL when off (access.h) */

    queue_link clients;         /* every connection */
    int nclients;
    int half_closed;            /* connections whose peer shut its writing side (client.c) */
    uint64_t next_client;
    queue_link room_waiters;    /* connections holding a message, oldest first */
    uint64_t out_bytes;         /* answers in every connection's output buffer (client.c) */
    uint64_t out_high;          /* the most out_bytes has been */
    int budget_paused;          /* connections paused now for maxBufferedBytes */
    queue_link streams;         /* open streams (stream.c), oldest first */
    uint64_t streams_open;      /* on that list */

    int listen_fd;
    struct evconnlistener *listener;
    struct event *listener_retry;
    int owns_socket_file;

    struct event *sig_events[8];
    int nsig_events;
    struct event *tick;         /* the one periodic timer */
    uint64_t shutdown_deadline_ms;
    uint64_t last_heartbeat_ms;
    uint64_t last_rss_ms;
    uint64_t last_decay_ms;     /* the allocator was last let return memory (tick) */
    uint64_t last_scale_up_ms;

    server_stats stats;
} server_t;

extern server_t server;

/* The worker binary for cfg: workerBinary, else agentpool-worker next to
 * this program (a build tree), else libexecdir's.  Allocated; never fails. */
char *server_find_worker_binary(const config *cfg);
/* Takes cfg (its strings move into server.boot_cfg), opens the socket,
 * builds the event loop and every subsystem, drops privileges and forks
 * the initial workers.  AP_ERR (logged) when the server cannot start. */
int server_start(config *cfg, int argc, char **argv);
/* Runs the event loop until shutdown ends it. */
void server_run(void);
/* Releases everything server_start made (workers are killed if left). */
void server_free(void);
/* Starts a graceful shutdown (SIGTERM, SIGINT, fatal start-up error). */
void server_begin_shutdown(const char *why);
/* Called whenever something finished: ends the loop once a shutdown has
 * nothing left to wait for. */
void server_check_shutdown(void);
/* Marks the pool ready once every initial worker is. */
void server_worker_ready(void);

#endif
