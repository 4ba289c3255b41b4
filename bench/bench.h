/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bench.h - agentpool-bench's configuration and its one mutable global,
 * the run's state.
 *
 * bench_cfg is filled by main.c from the command line and read-only once
 * the run starts.  bench_state holds everything that changes: the event
 * base, the connections, the schedule, the counters and the histograms.
 * Who touches what:
 *   conn.c  - the sockets: connecting, reading and writing, parsing
 *             answers, reconnecting; it reports answers to load.c;
 *   load.c  - the schedule (closed or open loop), the phases of the run,
 *             the accounting of answers, the periodic timer;
 *   report.c - the progress line and the final summary / JSON, read-only.
 * Everything runs on one thread inside one libevent loop.
 *
 * Time is CLOCK_MONOTONIC nanoseconds.  bench.now is read once per
 * callback and used for everything that callback does, so a batch of
 * answers read together shares one completion time.
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include "addr.h"
#include "errtab.h"
#include "hist.h"
#include "http.h"
#include "match.h"
#include "tmpl.h"

#include <stdint.h>
#include <sys/resource.h>

#define BENCH_NAME "agentpool-bench"

typedef enum { BENCH_NDJSON = 0, BENCH_HTTP = 1 } bench_proto;

typedef struct {
    addr_target target;
    bench_proto proto;
    tmpl_spec req;         /* what to send (type, data or payload, path) */
    uint32_t conns;
    uint32_t depth;        /* requests in flight per connection, at most */
    double rate;           /* open loop: requests per second overall; 0 = closed loop */
    double seconds;        /* measured duration; 0 = unbounded (with requests) */
    uint64_t requests;     /* measured requests; 0 = unbounded (with seconds) */
    double warmup;         /* seconds before measuring starts */
    double timeout;        /* give up after this long without an answer */
    int json;              /* print one JSON object instead of the summary */
    int progress;          /* refresh a progress line on stderr */
    int stream;            /* --stream: requests ask for a stream, chunks are counted */
    int expect_jsonrpc;    /* --expect jsonrpc: a 2xx answer is ok only with a JSON-RPC result */
} bench_cfg;

/* The lifecycle of one connection; only conn_set_state() changes it. */
typedef enum {
    CONN_DOWN = 0,     /* no socket; a retry timer may be armed */
    CONN_CONNECTING,   /* non-blocking connect under way */
    CONN_OPEN,         /* sending and receiving */
    CONN_STATE_COUNT
} conn_state;

struct redisAsyncContext;

/* A connection's broker transport (bench/bq.c), used with --redis. */
typedef struct {
    struct redisAsyncContext *add, *rd; /* adds; XREAD of the reply stream */
    char reply[64];           /* agentpool:reply:<128 random bits in hex> */
    char requests[256], maxlen[256];
    char last[48];            /* the last reply entry read */
    unsigned untrimmed;       /* reply entries read since the last XTRIM */
    char sha[48];             /* the add script's SHA1, once loaded */
} bench_bq;

typedef struct {
    uint32_t index;
    conn_state state;
    int fd;
    int ever_open;            /* has been open once: later opens are reconnects */
    struct event *ev_read, *ev_write, *ev_retry;
    int write_armed;
    match_table mt;
    char *out;                /* bytes to send are out[out_off, out_len) */
    size_t out_off, out_len, out_cap;
    char *in;                 /* bytes received, not yet consumed */
    size_t in_len, in_cap, in_scan;
    http_parser hp;
    uint32_t written;         /* HTTP: ring entries (oldest first) written on this socket */
    uint64_t next_k;          /* open loop: this connection's next request to send */
    uint64_t due_k;           /* open loop: requests before this one are due */
    unsigned backoff_ms;      /* delay before the next connect attempt */
    bench_bq bq;              /* --redis: the broker transport instead of fd */
} bench_conn;

typedef enum { PHASE_RUN = 0, PHASE_DRAIN, PHASE_DONE } bench_phase;
typedef enum { END_COMPLETE = 0, END_STALLED, END_INTERRUPTED } bench_end;

typedef struct {
    /* measured requests (issued at or after t_measure) */
    uint64_t sent, ok, errors;
    uint64_t resent;             /* HTTP: written again after an announced close */
    /* streams: chunks of measured requests; chunks received inside the
     * measured window (closed loop by time); heartbeats, whole run */
    uint64_t chunks, win_chunks, heartbeats;
    /* protocol errors, whole run (bad_seq: a chunk whose seq is not the
     * count of its request's chunks before it) */
    uint64_t unknown_id, duplicate_id, malformed, truncated, bad_seq;
    /* connections, whole run */
    uint64_t reconnects, closed_by_server, close_announced, connect_failures;
    /* before t_measure */
    uint64_t warmup_sent, warmup_done;
    /* closed loop by time: answers (ok, errors) received inside the
     * measured window [t_measure, t_stop), whenever their request left */
    uint64_t win_ok, win_errors;
    /* whole run, for the progress line and the end conditions */
    uint64_t answered_all, issued_all, in_flight;
} bench_counters;

typedef struct {
    const bench_cfg *cfg;
    struct event_base *base;
    struct event *cron, *pace, *measure, *sigint, *sigterm;
    bench_conn *conns;
    tmpl req;
    bench_phase phase;
    bench_end end;
    uint64_t now;            /* clock of the running callback */
    uint64_t t_start;        /* the run began (connections open) */
    uint64_t t_measure;      /* measuring starts (t_start + warmup) */
    uint64_t t_stop;         /* no request issued at or after this (UINT64_MAX: none) */
    uint64_t t_last_answer;  /* any answer, or the start */
    uint64_t t_last_measured;/* last answer to a measured request */
    uint64_t t_done;
    /* open loop: request g (global order) is due at t_start + g * ns_per_req,
     * on connection g % conns; g_next is the first not yet due. */
    double ns_per_req;
    uint64_t g_next, g_end, g_measure;
    bench_counters n;
    errtab errors;
    hist h_total;            /* measured latencies */
    hist h_tick;             /* measured latencies of the current second */
    hist h_warm;             /* warm-up latencies of the current second */
    hist h_first;            /* measured streams: time to the first chunk */
    unsigned ticks;
    uint64_t tick_answered;  /* answered_all at the last progress line */
    uint64_t t_tick;         /* when the last progress line was drawn */
    int progress_shown;
    int measuring;           /* the measure timer has fired */
    uint32_t conns_in[CONN_STATE_COUNT]; /* connections per state */
    char fatal[512];         /* why the run could not go on (first connect failed) */
    struct rusage ru_measure, ru_done;
} bench_state;

extern bench_state bench;

#endif
