/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.h - the broker ingress: a pool that has a "broker" setting also
 * takes requests from a Redis stream shared with other agentpoolds, and
 * writes their answers to each request's reply stream (docs/scale-out.md
 * has the design, the wire and the guarantees).
 *
 * Each entry read becomes a request through the same admission path as
 * a socket line (an origin client per entry: client.h), so refusals,
 * idempotency, sessions, scheduling, retries and timeouts are the
 * socket's.  Its chunk and heartbeat lines go to the reply stream in
 * order; its final line, the acknowledgement (XACK + XDEL) and the
 * answer store are one Lua script, so each entry gets exactly one final
 * line.  Entries are read only for free slots; the others' dead entries
 * are claimed (XAUTOCLAIM), our running ones kept (XCLAIM JUSTID), an
 * entry delivered more than maxRetries + 1 times is dead-lettered;
 * cancels come from a control stream.  Redis going away never stops the
 * pool: it reconnects, and what waits to be written is written then.
 *
 * Called by pools.c (open, close), server.c's tick and the stats and
 * health readers.  Never blocks.
 */
#ifndef AP_BROKER_H
#define AP_BROKER_H

#include "hist.h"

#include <stdint.h>

struct pool;
struct cJSON;

/* What pool.stats "broker" and /metrics report (counts since start). */
typedef struct {
    uint64_t read;            /* entries read from the stream (XREADGROUP) */
    uint64_t claimed;         /* entries claimed from other consumers (XAUTOCLAIM) */
    uint64_t acked;           /* entries acknowledged and deleted (the finish script ran) */
    uint64_t answered;        /* final lines written to reply streams by this agentpoold */
    uint64_t replays;         /* of those: answers taken from the answer store, not run */
    uint64_t already_answered;/* entries found answered already (by another consumer): acked, no second line */
    uint64_t dead_lettered;   /* entries delivered more than maxRetries + 1 times: answered worker_crashed */
    uint64_t heartbeats;      /* XCLAIM JUSTID batches keeping running entries ours */
    uint64_t chunks;          /* chunk and heartbeat lines written to reply streams */
    uint64_t reply_bytes;     /* bytes of every line written to reply streams */
    uint64_t cancels;         /* control entries that cancelled an entry held here */
    uint64_t cancels_remembered; /* control entries for entries not held here (kept for claimIdleMs) */
    uint64_t abandoned;       /* entries left to others (shutdown before they were answered) */
    uint64_t bad_entries;     /* entries without req or replyTo: acknowledged and dropped */
    uint64_t reply_errors;    /* reply stream writes Redis refused (e.g. replyTo not a stream) */
    uint64_t reconnects;      /* times the command connection came back after an outage */
} broker_stats;

/* Sets up p's broker when its config has one (connections start at once
 * and retry in the background).  AP_ERR (logged) when it cannot be made. */
int broker_open(struct pool *p);
/* Stops it: running entries' clients dropped (their entries stay pending
 * for others), what is written handed to the kernel, all freed. */
void broker_close(struct pool *p);
/* Periodic (the server's tick): reads when slots are free, claims,
 * heartbeats, reads the group's lag, the down alert. */
void broker_tick(struct pool *p, uint64_t now_ms);
/* Whether p has a broker, and whether its connections are all up. */
int broker_enabled(const struct pool *p);
int broker_connected(const struct pool *p);
/* pool.stats "broker": counters, connection state, lag, round trips. */
void broker_stats_json(const struct pool *p, struct cJSON *o);
/* Its counters (NULL when p has none), for /metrics. */
const broker_stats *broker_get_stats(const struct pool *p);
/* The broker_down alert's reading: its downAlertMs (0: off, or no
 * broker), how long the command connection has been out of UP (0: up),
 * and why ("Redis at ADDR: ..."). */
uint64_t broker_down_alert_ms(const struct pool *p);
uint64_t broker_down_ms(const struct pool *p, uint64_t now_ms);
const char *broker_down_why(const struct pool *p);
/* True when no pool's broker has an answer or chunk waiting for a Redis
 * that is up (shutdown waits for them, within shutdownTimeout). */
int broker_all_flushed(void);
/* Its command round trips over the last minute, ns: 0 when p has no broker. */
int broker_round_trips(const struct pool *p, hist_summary *out);
/* The group's lag and pending count at the last XINFO GROUPS (-1: unknown). */
void broker_lag(const struct pool *p, int64_t *lag, int64_t *pending);

#endif
