/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pools.h - the named pools: what each pool owns, and the table of them.
 *
 * A pool is one agent served by its own workers: its own worker table and
 * slots, dispatch state, FIFO queue and its connections waiting for room,
 * retry list, dead-letter file, message types and breakers, metrics,
 * supervision (restart intensity, backoff, history), code identities and
 * alerts, and its own counters.  Nothing one pool does touches another's
 * (a crash loop, a reload, a full queue).  What is shared lives in
 * `server` (server.h): the socket and connections, the message table,
 * maxPendingBytes and maxBufferedBytes, the event loop.
 *
 * The table is built at start-up from config.pools (a config without
 * "pools" is one pool named "default"); each pool reads its settings from
 * p->cfg, the settings of the whole server from server.cfg.  A reload may
 * add pools and remove them.  A pool's lifecycle (pool_state):
 *
 *   STARTING (added by a reload: its first workers not all ready) ->
 *   RUNNING -> RETIRING (gone from the config: takes no new request,
 *   finishes what it holds) -> STOPPING (its workers told to stop) -> freed
 *
 * The pools of the start-up config begin RUNNING (the server's own
 * STARTING state covers them).  Requests reach STARTING and RUNNING pools.
 */
#ifndef AP_POOLS_H
#define AP_POOLS_H

#include "config.h"
#include "dispatch.h"
#include "queue.h"
#include "reply.h"
#include "worker.h"

#include <stddef.h>
#include <stdint.h>

struct worker;
struct dlq;
struct typetab;
struct breaker_set;
struct metrics;
struct sup_state;
struct drift_state;
struct alert_state;
struct wout_state;
struct retry_fifo;
struct agentstat_entry;
struct session_table;
struct idem_table;
struct a2astore_loader;

/* Counters behind pool.stats.  Every field is a uint64_t (pools_total
 * sums them as an array): the server's own (connections) live in
 * server.stats, a pool's (its messages and workers) in p->stats, and
 * the totals pool.stats shows are their sum. */
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

typedef enum { POOL_STARTING = 0, POOL_RUNNING, POOL_RETIRING, POOL_STOPPING } pool_state;

typedef struct pool {
    int index;                  /* in server.pools */
    pool_state state;
    char name[CONFIG_POOL_NAME_MAX + 1];
    const config *cfg;          /* its settings: an entry of cfg_top->pools (a reload swaps them) */
    config *cfg_top;            /* the top-level config cfg belongs to */
    uint32_t epoch;             /* its rolling reloads started and not aborted (a process records it) */

    struct worker *workers;     /* its worker table */
    int nworkers;               /* its entries */
    int worker_states[WORKER_STATE_COUNT]; /* entries in each state (worker_set_state) */
    int pool_size;              /* logical workers (slots 0 .. pool_size-1) */
    uint32_t *slot_gen;         /* processes each slot has had */
    uint64_t *slot_errors;      /* agent errors each slot's processes answered */
    dispatch_state dispatch;

    queue queue;                /* messages waiting for one of its workers */
    queue_link room_waiters;    /* connections holding a message for it, oldest first (overflow block) */
    int pump_pending;           /* sched_pump_soon was asked for it this turn */
    queue_link retrying;        /* its messages in RETRY_WAIT */
    struct dlq *dlq;            /* its dead-letter file, NULL when it cannot be opened */
    char *dlq_path;             /* that file's path (owned) */
    uint64_t dlq_held_retry_ms; /* next offer of its held dead letters to the file (retry_tick) */
    struct retry_fifo *fifo;    /* its deadline timers (retry.c) */
    struct typetab *types;      /* message types tracked one by one */
    struct breaker_set *breakers; /* per type, indexed like types */
    struct metrics *metrics;    /* distributions, throughput, per-type answers */
    struct sup_state *sup;      /* supervision (supervisor.c) */
    struct drift_state *drift;  /* code identities per reload epoch (drift.c) */
    struct alert_state *alerts; /* alert readings (alert.c) */
    struct wout_state *wout;    /* its workers' output pipes and rate limits (wout.c) */
    struct agentstat_entry *agentstat; /* its workers' agent.metrics answers (agentstat.c) */
    struct session_table *sessions; /* its sessions (session.c, sessrun.c) */
    struct idem_table *idem;    /* its idempotency keys (idem.c) */
    struct sstore *store;       /* its session store (sessstate.c), NULL until sessions are on */
    struct broker *broker;      /* its broker ingress (broker.c), NULL without a "broker" setting */
    struct usage_cell **ucells; /* usage.c: the keyless usage row of each type index, once found */
    char *store_spec;           /* what it was opened with (a reload that changes sessionStore waits for a restart) */
    uint8_t store_none;         /* sessionStore "none": no state */
    uint8_t store_spec_warned;
    uint8_t store_closing;      /* sstore_close runs: its callbacks start nothing new */
    const void *store_cfg;      /* the cfg (and server.reload_epoch) sessstate.c last applied to the store */
    uint32_t store_cfg_epoch;
    struct agentev_subs *evsubs;/* its agent's "subscribes" patterns (agentev.c); NULL: none */
    struct a2astore_loader *a2a_loader; /* its A2A task records being read back (a2astore.c); NULL: done */
    char *a2a_card;             /* its agent's A2A card fields, checked, as JSON text (a2acard.c); NULL: none */

    uint64_t last_heartbeat_ms;
    uint64_t last_rss_ms;
    uint64_t last_scale_up_ms;

    server_stats stats;         /* its counters (the connection ones stay 0) */
} pool_t;

/* Builds one pool per entry of server.cfg->pools (state only: no worker
 * is forked).  AP_ERR (logged) when a part cannot be set up. */
int pools_init(void);
/* Frees what pools_init made (the workers must be gone). */
void pools_free(void);
/* The pool named name[0..len), or NULL. */
pool_t *pools_find(const char *name, size_t len);
/* "a, b, c": the pools' names, for errors naming what exists. */
void pools_names(char *buf, size_t cap);
/* server.stats plus every pool's stats, field by field, into out. */
void pools_total(server_stats *out);
/* Answers with code every message of p not yet sent to a worker: held
 * for room, waiting out a retry delay, queued.  Returns how many. */
unsigned pools_fail_waiting(pool_t *p, reply_code code, const char *why);
/* Live workers over every pool. */
int pools_live_workers(void);
/* A pool new in a reload's config (cp, read with top): made STARTING and
 * its minWorkers forked.  NULL (logged) when it could not be set up. */
pool_t *pools_add(const config_pool *cp, config *top);
/* p is gone from the config: it takes no new requests, finishes what it
 * holds, stops its workers and is freed (pools_tick).  Messages held for
 * it by connections waiting for room still get in. */
void pools_retire(pool_t *p, const char *why);
/* Periodic: moves retiring pools along; frees those whose workers are gone. */
void pools_tick(void);
/* Whether any pool's settings come from top (a reload may free it if not). */
int pools_use_config(const config *top);
const char *pools_state_name(pool_state s);

/* Every pool, in order (no `break` in the body: it is two loops). */
#define POOLS_FOREACH(p)                                                                                       \
    for (int p##_i_ = 0; p##_i_ < server.npools; p##_i_++)                                                    \
        for (pool_t *p = server.pools[p##_i_]; p; p = NULL)
/* Pools at once, at most: the configured ones and those a reload removed
 * while they drain. */
#define POOLS_MAX (2 * CONFIG_MAX_POOLS)

#endif
