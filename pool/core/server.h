/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * server.h - the master's one mutable global state and its lifecycle.
 *
 * What the whole server shares lives in `server`: the event base, the
 * message table, the connections, the pools (each pool's workers, queue
 * and counters are its own: pools.h) and the server's own counters.  The config it points to is read-only once
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
#include "pools.h"
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
struct httpfront;
struct access_log;

typedef enum { SERVER_STARTING = 0, SERVER_READY, SERVER_DRAINING, SERVER_STOPPING } server_state;


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

    pool_t **pools;             /* the pools (pools.h), in config order; POOLS_MAX entries */
    int npools;
    pool_t *default_pool;       /* where requests naming no pool go (defaultPool) */

    msg_table msgs;
    uint64_t pending_bytes;     /* request bytes of every admitted message */
    struct httpd *httpd;        /* metricsListen's HTTP server, NULL when off */
    struct httpfront *httpfront;/* httpListen's HTTP front door, NULL when off (httpfront.c) */
    struct a2atask_table *a2atasks; /* the A2A tasks (a2atask.c), NULL until the first */
    int http_conns;             /* its open connections: they count in maxConnections with nclients */
    struct access_log *access;  /* accessLog, NULL when off (access.h) */

    queue_link clients;         /* every connection */
    int nclients;
    int half_closed;            /* connections whose peer shut its writing side (client.c) */
    uint64_t next_client;
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
    uint64_t last_decay_ms;     /* the allocator was last let return memory (tick) */

    server_stats stats;         /* the server's own counters (connections); pools_total adds the pools' */
} server_t;

extern server_t server;

/* The pool of requests that name none (defaultPool); NULL only while a
 * reload replaces every pool and none runs yet. */
static inline pool_t *pools_default(void)
{
    return server.default_pool;
}

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
