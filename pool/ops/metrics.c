/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * metrics.c - latency, queue wait, throughput, per-type answers and the
 * Prometheus exposition (see metrics.h).
 *
 * The hot-path hooks do a constant amount of work: one clock read at the
 * answer (sends reuse the send time worker_send took), a bucket index, a
 * few increments; a window slot is cleared when its 10 s interval is
 * first written.  Per-type counters and handler-time histograms are
 * plain arrays indexed by typetab index, sized once.  Each pool has its
 * own (p->metrics).  The /metrics text is built from `server` and the
 * pools when it is asked for and never cached: with named pools every
 * series about a pool's messages or workers carries a pool label, the
 * server's own (connections, the master's memory and logs, readiness)
 * none; a server of one unnamed pool writes its series without it, as
 * before pools existed.
 */
#include "metrics.h"
#include "broker.h"
#include "httpfront.h"
#include "wprog.h"
#include "access.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "breaker.h"
#include "cancel.h"
#include "idem.h"
#include "msg.h"
#include "procstat.h"
#include "promtext.h"
#include "rate.h"
#include "server.h"
#include "session.h"
#include "sstore.h"
#include "supervisor.h"
#include "typetab.h"
#include "usage.h"
#include "dlq.h"
#include "health.h"
#include "drift.h"
#include "alert.h"
#include "events.h"
#include "wout.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#ifndef AP_PYTHON_VERSION
#define AP_PYTHON_VERSION "unknown"
#endif

/* Prometheus buckets for both histograms, in ns (0.5 ms to 5 min). */
static const uint64_t duration_bounds_ns[] = {
    500000ull,     1000000ull,     2500000ull,     5000000ull,     10000000ull,     25000000ull,
    50000000ull,   100000000ull,   250000000ull,   500000000ull,   1000000000ull,   2500000000ull,
    5000000000ull, 10000000000ull, 30000000000ull, 60000000000ull, 300000000000ull,
};

struct metrics {
    hist_window latency;        /* ns: accepted -> answer written */
    hist_window queue_wait;     /* ns: accepted -> first sent to a worker */
    hist_fixed latency_total;   /* the same since start, Prometheus buckets */
    hist_fixed queue_wait_total;
    rate_ring answers;          /* answers written, per second */
    rate_ring errors;           /* of those, error answers (alertErrorRateAbove) */
    unsigned ntypes;            /* entries of the per-type arrays */
    uint64_t *type_ok;          /* [ntypes] */
    uint64_t *type_err;         /* [ntypes][ERR_COUNT] */
    hist_fixed *type_handler;   /* [ntypes] ns: last sending to a worker -> its answer */
};

/* The master's heap, for every pool's reader: jemalloc's figures,
 * refreshed at most once per METRICS_MEMORY_REFRESH_MS. */
static struct {
    uint64_t at_ms;             /* last jemalloc refresh; 0: never */
    uint64_t allocated, resident;
    int ok;
} mem;

metrics *metrics_new(unsigned type_capacity)
{
    metrics *mt = ap_calloc(1, sizeof(*mt));
    hist_window_init(&mt->latency, METRICS_WINDOW_SLOT_MS);
    hist_window_init(&mt->queue_wait, METRICS_WINDOW_SLOT_MS);
    hist_fixed_init(&mt->latency_total, duration_bounds_ns, AP_ARRAY_LEN(duration_bounds_ns));
    hist_fixed_init(&mt->queue_wait_total, duration_bounds_ns, AP_ARRAY_LEN(duration_bounds_ns));
    rate_init(&mt->answers);
    rate_init(&mt->errors);
    mt->ntypes = type_capacity ? type_capacity : 1;
    mt->type_ok = ap_calloc(mt->ntypes, sizeof(uint64_t));
    mt->type_err = ap_calloc((size_t)mt->ntypes * ERR_COUNT, sizeof(uint64_t));
    mt->type_handler = ap_calloc(mt->ntypes, sizeof(hist_fixed));
    for (unsigned i = 0; i < mt->ntypes; i++)
        hist_fixed_init(&mt->type_handler[i], duration_bounds_ns, AP_ARRAY_LEN(duration_bounds_ns));
    return mt;
}

void metrics_free(metrics *mt)
{
    if (mt == NULL)
        return;
    ap_free(mt->type_ok);
    ap_free(mt->type_err);
    ap_free(mt->type_handler);
    ap_free(mt);
}

/* ---- recording (hot path) ------------------------------------------- */

void metrics_sent(metrics *mt, const msg *m)
{
    uint64_t wait = m->sent_ns > m->accepted_ns ? m->sent_ns - m->accepted_ns : 0;
    hist_window_record(&mt->queue_wait, m->sent_ns / 1000000u, wait);
    hist_fixed_record(&mt->queue_wait_total, wait);
    usage_sent(m);
}

static void count_type(metrics *mt, unsigned idx, int code)
{
    if (idx >= mt->ntypes)
        idx = TYPETAB_OTHER;
    if (code < 0)
        mt->type_ok[idx]++;
    else if (code < ERR_COUNT)
        mt->type_err[(size_t)idx * ERR_COUNT + (unsigned)code]++;
}

void metrics_answered(metrics *mt, const msg *m, int code)
{
    uint64_t now = ap_now_ns(), now_ms = now / 1000000u;
    uint64_t took = now > m->accepted_ns ? now - m->accepted_ns : 0;
    hist_window_record(&mt->latency, now_ms, took);
    hist_fixed_record(&mt->latency_total, took);
    rate_add(&mt->answers, now_ms, 1);
    if (code >= 0)
        rate_add(&mt->errors, now_ms, 1);
    count_type(mt, m->type_idx, code);
    usage_answered(m, code, now);
    /* Handler time: only answers a worker gave (ok or agent_error) to a
     * message it was sent; the master's own errors (timeout, crash, queue)
     * say nothing about the handler. */
    if (m->sent_ns != 0 && (code < 0 || code == ERR_AGENT_ERROR)) {
        unsigned idx = m->type_idx < mt->ntypes ? m->type_idx : TYPETAB_OTHER;
        hist_fixed_record(&mt->type_handler[idx], now > m->sent_ns ? now - m->sent_ns : 0);
    }
}

void metrics_type_outcome(metrics *mt, unsigned type_idx, reply_code code)
{
    count_type(mt, type_idx, (int)code);
}

/* ---- reading ----------------------------------------------------------- */

uint64_t metrics_answers_in(const metrics *mt, uint64_t now_ms, unsigned seconds)
{
    return rate_sum(&mt->answers, now_ms, seconds);
}

uint64_t metrics_errors_in(const metrics *mt, uint64_t now_ms, unsigned seconds)
{
    return rate_sum(&mt->errors, now_ms, seconds);
}

double metrics_throughput(const metrics *mt, uint64_t now_ms, unsigned seconds)
{
    if (seconds < 1)
        seconds = 1;
    return (double)rate_sum(&mt->answers, now_ms, seconds) / (double)seconds;
}

/* The summary of one window of each of mts[0..n). */
static void summary_of(const metrics *const *mts, unsigned n, size_t off, uint64_t now_ms, hist_summary *out)
{
    if (n == 1) {
        hist_window_summary((const hist_window *)((const char *)mts[0] + off), now_ms, out);
        return;
    }
    hist_window *sum = ap_malloc(sizeof(*sum));
    hist_window_init(sum, METRICS_WINDOW_SLOT_MS);
    for (unsigned i = 0; i < n; i++)
        hist_window_add(sum, (const hist_window *)((const char *)mts[i] + off), now_ms);
    hist_window_summary(sum, now_ms, out);
    ap_free(sum);
}

void metrics_latency(const metrics *const *mts, unsigned n, uint64_t now_ms, hist_summary *out)
{
    summary_of(mts, n, offsetof(metrics, latency), now_ms, out);
}

void metrics_queue_wait(const metrics *const *mts, unsigned n, uint64_t now_ms, hist_summary *out)
{
    summary_of(mts, n, offsetof(metrics, queue_wait), now_ms, out);
}

uint64_t metrics_type_ok(const metrics *mt, unsigned idx)
{
    return idx < mt->ntypes ? mt->type_ok[idx] : 0;
}

uint64_t metrics_type_errors(const metrics *mt, unsigned idx, reply_code code)
{
    return idx < mt->ntypes && (unsigned)code < ERR_COUNT ? mt->type_err[(size_t)idx * ERR_COUNT + code] : 0;
}

int metrics_memory(uint64_t now_ms, uint64_t *allocated, uint64_t *resident)
{
#ifdef HAVE_JEMALLOC
    if (mem.at_ms == 0 || now_ms - mem.at_ms >= METRICS_MEMORY_REFRESH_MS) {
        /* jemalloc's statistics are a snapshot taken when "epoch" is written. */
        uint64_t epoch = 1;
        size_t esz = sizeof(epoch), sz = sizeof(size_t), sz2 = sizeof(size_t);
        size_t a = 0, r = 0;
        mem.ok = mallctl("epoch", &epoch, &esz, &epoch, esz) == 0 &&
                 mallctl("stats.allocated", &a, &sz, NULL, 0) == 0 &&
                 mallctl("stats.resident", &r, &sz2, NULL, 0) == 0;
        mem.allocated = mem.ok ? a : 0;
        mem.resident = mem.ok ? r : 0;
        mem.at_ms = now_ms ? now_ms : 1;
    }
#else
    (void)now_ms;
#endif
    *allocated = mem.allocated;
    *resident = mem.resident;
    return mem.ok ? AP_OK : AP_ERR;
}

/* ---- Prometheus ---------------------------------------------------------- */

/* Labels of one pool's sample: {pool=NAME} then rest. */
#define PROM_LABELS_MAX 6
typedef struct {
    promtext_label l[PROM_LABELS_MAX];
    unsigned n;
} prom_labels;

static const promtext_label *with_pool(prom_labels *pl, const pool_t *p, const promtext_label *rest, unsigned n)
{
    /* One unnamed pool (no "pools" in the config): the series are as
     * they always were, without the label. */
    unsigned k = server.cfg->pools_named ? 1 : 0;
    pl->l[0].name = "pool";
    pl->l[0].value = p->name;
    for (unsigned i = 0; i < n && i + k < PROM_LABELS_MAX; i++)
        pl->l[i + k] = rest[i];
    pl->n = n + k < PROM_LABELS_MAX ? n + k : PROM_LABELS_MAX;
    return pl->l;
}

/* One sample of pool p: name{pool=P,rest...} v. */
static void pool_u64(struct evbuffer *out, const char *name, const pool_t *p, const promtext_label *rest, unsigned n,
                     uint64_t v)
{
    prom_labels pl;
    with_pool(&pl, p, rest, n);
    promtext_u64(out, name, pl.l, pl.n, v);
}

static void prom_messages(struct evbuffer *out)
{
    promtext_family(out, "agentpool_messages_total", "counter",
                    "Answers written to clients for accepted messages (and circuit_open refusals), by pool, "
                    "message type (at most maxTrackedTypes, the rest as other) and outcome (ok or the error code).");
    POOLS_FOREACH(p) {
        const metrics *mt = p->metrics;
        unsigned n = typetab_count(p->types);
        for (unsigned i = 0; i < n && i < mt->ntypes; i++) {
            promtext_label l[2] = {{"type", typetab_name(p->types, i)}, {"outcome", "ok"}};
            pool_u64(out, "agentpool_messages_total", p, l, 2, mt->type_ok[i]);
            for (int c = 0; c < ERR_COUNT; c++) {
                uint64_t v = mt->type_err[(size_t)i * ERR_COUNT + (unsigned)c];
                if (v == 0)
                    continue;
                l[1].value = reply_code_name((reply_code)c);
                pool_u64(out, "agentpool_messages_total", p, l, 2, v);
            }
        }
    }
}

/* One sample with label `label` = "ok", then one per reply code that
 * occurred (counts[ERR_COUNT]): the series of a family counted by
 * outcome, for pool p (NULL: the server's own). */
static void prom_code_counts(struct evbuffer *out, const char *family, const pool_t *p, const char *label, uint64_t ok,
                             const uint64_t *counts)
{
    prom_labels pl;
    promtext_label l = {label, "ok"};
    for (int c = -1; c < ERR_COUNT; c++) {
        if (c >= 0 && counts[c] == 0)
            continue;
        l.value = c < 0 ? "ok" : reply_code_name((reply_code)c);
        if (p) {
            with_pool(&pl, p, &l, 1);
            promtext_u64(out, family, pl.l, pl.n, c < 0 ? ok : counts[c]);
        } else {
            promtext_u64(out, family, &l, 1, c < 0 ? ok : counts[c]);
        }
    }
}

static void prom_control(struct evbuffer *out)
{
    server_stats t;
    pools_total(&t);
    promtext_family(out, "agentpool_control_requests_total", "counter",
                    "Answers to pool.* requests (answered by the master itself, not messages), by outcome (ok or "
                    "the error code; a failed pool.reload is agent_error).");
    prom_code_counts(out, "agentpool_control_requests_total", NULL, "outcome", t.control_ok, t.control_errors);
}

/* A counter family split by one label: for each pool, get() fills a
 * struct of uint64_t counters (a pool's session_counters, idem_stats) and
 * each value of the label names one of its fields. */
typedef struct {
    const char *value;
    size_t off;
} split;
#define SESS_F(f) offsetof(session_counters, f)
#define IDEM_F(f) offsetof(idem_stats, f)
typedef void split_get_fn(const pool_t *p, uint64_t *buf);

static void prom_split(struct evbuffer *out, const char *name, const char *label, const split *s, size_t n,
                       split_get_fn *get)
{
    uint64_t buf[32];
    POOLS_FOREACH(p) {
        get(p, buf);
        for (size_t i = 0; i < n; i++) {
            promtext_label l = {label, s[i].value};
            pool_u64(out, name, p, &l, 1, buf[s[i].off / sizeof(uint64_t)]);
        }
    }
}

static void session_counters_of(const pool_t *p, uint64_t *buf)
{
    _Static_assert(sizeof(session_counters) <= 32 * sizeof(uint64_t), "prom_split's buffer");
    memcpy(buf, &p->sessions->n, sizeof(session_counters));
}

static void idem_counters_of(const pool_t *p, uint64_t *buf)
{
    _Static_assert(sizeof(idem_stats) <= 32 * sizeof(uint64_t), "prom_split's buffer");
    idem_stats st;
    idem_stats_get(p->idem, &st);
    memcpy(buf, &st, sizeof(st));
}

static void prom_idempotency(struct evbuffer *out)
{
    promtext_family(out, "agentpool_idempotency_entries", "gauge",
                    "Idempotency keys held, by pool: running requests and finished answers kept.");
    POOLS_FOREACH(p) {
        idem_stats s;
        idem_stats_get(p->idem, &s);
        pool_u64(out, "agentpool_idempotency_entries", p, NULL, 0, s.entries);
    }
    promtext_family(out, "agentpool_idempotency_bytes", "gauge",
                    "Bytes of the idempotency keys and kept answers, by pool (bounded by idempotencyCacheBytes).");
    POOLS_FOREACH(p) {
        idem_stats s;
        idem_stats_get(p->idem, &s);
        pool_u64(out, "agentpool_idempotency_bytes", p, NULL, 0, s.bytes);
    }
    promtext_family(out, "agentpool_idempotency_requests_total", "counter",
                    "Requests with an idempotency key that did not run, by pool and outcome: replayed (a kept "
                    "answer), attached (to the running copy), mismatched (refused: the key was used for a different "
                    "request).");
    static const split outcomes[] = {
        {"replayed", IDEM_F(replayed)}, {"attached", IDEM_F(attached)}, {"mismatched", IDEM_F(mismatched)}};
    prom_split(out, "agentpool_idempotency_requests_total", "outcome", outcomes, AP_ARRAY_LEN(outcomes),
               idem_counters_of);
    promtext_family(out, "agentpool_idempotency_dropped_total", "counter",
                    "Kept answers dropped, by pool and reason: evicted (idempotencyCacheBytes) or expired "
                    "(idempotencyTtl).");
    static const split reasons[] = {{"evicted", IDEM_F(evicted)}, {"expired", IDEM_F(expired)}};
    prom_split(out, "agentpool_idempotency_dropped_total", "reason", reasons, AP_ARRAY_LEN(reasons),
               idem_counters_of);
}

static void prom_streams(struct evbuffer *out)
{
    promtext_family(out, "agentpool_streams_open", "gauge",
                    "Messages streaming now: asked with \"stream\": true, or sent a chunk, and not yet answered.");
    promtext_u64(out, "agentpool_streams_open", NULL, 0, server.streams_open);
    promtext_family(out, "agentpool_stream_chunks_total", "counter",
                    "Chunks of streaming answers, by pool and by what became of them: sent (a chunk line to its "
                    "client), collected (kept for an answer without \"stream\": true) or dropped (nobody waited).");
    POOLS_FOREACH(p) {
        promtext_label l = {"outcome", "sent"};
        pool_u64(out, "agentpool_stream_chunks_total", p, &l, 1, p->stats.chunks_sent);
        l.value = "collected";
        pool_u64(out, "agentpool_stream_chunks_total", p, &l, 1, p->stats.chunks_collected);
        l.value = "dropped";
        pool_u64(out, "agentpool_stream_chunks_total", p, &l, 1, p->stats.chunks_dropped);
    }
    promtext_family(out, "agentpool_stream_chunk_bytes_total", "counter",
                    "JSON bytes of the chunks sent to clients in chunk lines, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_stream_chunk_bytes_total", p, NULL, 0, p->stats.chunk_bytes_sent);
    promtext_family(out, "agentpool_stream_heartbeats_total", "counter",
                    "Heartbeat lines sent on streams idle streamHeartbeatMs, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_stream_heartbeats_total", p, NULL, 0, p->stats.heartbeats);
    promtext_family(out, "agentpool_streams_ended_total", "counter",
                    "Streams ended, by pool and how (ok or the error code of their final line; cancelled also "
                    "when nobody was told: the client left).");
    POOLS_FOREACH(p) {
        prom_code_counts(out, "agentpool_streams_ended_total", p, "code", p->stats.streams_ended[ERR_COUNT],
                         p->stats.streams_ended);
    }
}

/* One family of a session store counter (the field at off of
 * sstore_stats: an int when is_int, else a uint64_t), per pool with a
 * store. */
static void prom_store(struct evbuffer *out, const char *name, const char *type, const char *help, size_t off,
                       int is_int)
{
    promtext_family(out, name, type, help);
    POOLS_FOREACH(p) {
        if (p->store == NULL)
            continue;
        sstore_stats st;
        sstore_get_stats(p->store, &st);
        const char *f = (const char *)&st + off;
        uint64_t v = is_int ? (uint64_t)*(const int *)(const void *)f : *(const uint64_t *)(const void *)f;
        pool_u64(out, name, p, NULL, 0, v);
    }
}

static void prom_sessions(struct evbuffer *out)
{
    promtext_family(out, "agentpool_sessions_active", "gauge",
                    "Sessions with a message admitted (running, queued or retried), by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_sessions_active", p, NULL, 0, p->sessions->by_state[SESSION_RUNNING]);
    promtext_family(out, "agentpool_sessions_tracked", "gauge",
                    "Sessions tracked (busy, or idle and kept for affinity; at most maxSessions), by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_sessions_tracked", p, NULL, 0, p->sessions->count);
    promtext_family(out, "agentpool_sessions_waiting", "gauge",
                    "Messages waiting in their session's FIFO for the session's running one to end, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_sessions_waiting", p, NULL, 0, p->sessions->waiting);
    promtext_family(out, "agentpool_session_affinity_total", "counter",
                    "Messages of sessions sent to a worker, by pool and result: hit (the worker of the session's "
                    "previous message) or move (another: that one was gone, full or not accepting).");
    static const split affinity[] = {{"hit", SESS_F(hits)}, {"move", SESS_F(moves)}};
    prom_split(out, "agentpool_session_affinity_total", "result", affinity, AP_ARRAY_LEN(affinity),
               session_counters_of);
    promtext_family(out, "agentpool_session_busy_total", "counter",
                    "Messages that found their session busy and were refused (session_busy: sessionBusy reject) "
                    "or cancelled by a later message (sessionBusy interrupt), by pool.");
    static const split busy[] = {{"rejected", SESS_F(busy_rejected)}, {"interrupted", SESS_F(interrupted)}};
    prom_split(out, "agentpool_session_busy_total", "outcome", busy, AP_ARRAY_LEN(busy),
               session_counters_of);
    promtext_family(out, "agentpool_sessions_refused_total", "counter",
                    "New sessions refused (too_many_sessions): maxSessions tracked, none idle, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_sessions_refused_total", p, NULL, 0, p->sessions->n.refused);
    promtext_family(out, "agentpool_session_state_total", "counter",
                    "Session states read from the store (load), committed (commit), or that the store could not "
                    "read or commit (failure: store_unavailable), by pool.");
    static const split state[] = {
        {"load", SESS_F(loads)}, {"commit", SESS_F(commits)}, {"failure", SESS_F(store_failures)}};
    prom_split(out, "agentpool_session_state_total", "result", state, AP_ARRAY_LEN(state),
               session_counters_of);
    promtext_family(out, "agentpool_session_state_cached_bytes", "gauge",
                    "Bytes of session states the master keeps in memory (sessionCacheBytes bounds idle ones), "
                    "by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_session_state_cached_bytes", p, NULL, 0, p->sessions->state_bytes);
    prom_store(out, "agentpool_session_store_up", "gauge",
               "1 when the pool's session store answered its last attempt, else 0 (pools with a store only).",
               offsetof(sstore_stats, up), 1);
    prom_store(out, "agentpool_session_store_transactions_total", "counter",
               "Write transactions the SQLite session store committed (group commit), by pool.",
               offsetof(sstore_stats, transactions), 0);
    prom_store(out, "agentpool_session_store_transaction_writes_total", "counter",
               "State writes and touches in those transactions: divided by the transactions, the batch size "
               "of the group commit, by pool.", offsetof(sstore_stats, transaction_writes), 0);
}

/* The broker ingress (broker.h), per pool that has one. */
static void prom_broker(struct evbuffer *out)
{
    static const split entries[] = {
        {"read", offsetof(broker_stats, read)},
        {"claimed", offsetof(broker_stats, claimed)},
        {"acked", offsetof(broker_stats, acked)},
        {"answered", offsetof(broker_stats, answered)},
        {"replayed", offsetof(broker_stats, replays)},
        {"already_answered", offsetof(broker_stats, already_answered)},
        {"dead_lettered", offsetof(broker_stats, dead_lettered)},
        {"abandoned", offsetof(broker_stats, abandoned)},
        {"bad", offsetof(broker_stats, bad_entries)},
    };
    static const struct {
        const char *name, *help;
        size_t off;
    } plain[] = {
        {"agentpool_broker_heartbeats_total", "XCLAIM JUSTID batches that kept the entries running here, by pool.",
         offsetof(broker_stats, heartbeats)},
        {"agentpool_broker_chunk_lines_total", "Chunk and heartbeat lines written to reply streams, by pool.",
         offsetof(broker_stats, chunks)},
        {"agentpool_broker_reply_bytes_total", "Bytes of the lines written to reply streams, by pool.",
         offsetof(broker_stats, reply_bytes)},
        {"agentpool_broker_reply_errors_total", "Reply stream writes Redis refused (replyTo not a stream), by pool.",
         offsetof(broker_stats, reply_errors)},
        {"agentpool_broker_reconnects_total", "Times the broker's command connection came back after an outage, "
         "by pool.", offsetof(broker_stats, reconnects)},
    };
    promtext_family(out, "agentpool_broker_connected", "gauge",
                    "1 while the pool's broker has its three Redis connections up, else 0 (pools with a broker).");
    POOLS_FOREACH(p) {
        if (broker_enabled(p))
            pool_u64(out, "agentpool_broker_connected", p, NULL, 0, (uint64_t)broker_connected(p));
    }
    promtext_family(out, "agentpool_broker_entries_total", "counter",
                    "Stream entries by what happened to them here: read, claimed (from other consumers), acked "
                    "(acknowledged and deleted), answered (a final line written), replayed (answered from the "
                    "answer store), already_answered, dead_lettered, abandoned (left to others), bad; by pool.");
    POOLS_FOREACH(p) {
        const broker_stats *st = broker_get_stats(p);
        for (size_t i = 0; st && i < AP_ARRAY_LEN(entries); i++) {
            promtext_label l = {"event", entries[i].value};
            pool_u64(out, "agentpool_broker_entries_total", p, &l, 1,
                     *(const uint64_t *)(const void *)((const char *)st + entries[i].off));
        }
    }
    for (size_t k = 0; k < AP_ARRAY_LEN(plain); k++) {
        promtext_family(out, plain[k].name, "counter", plain[k].help);
        POOLS_FOREACH(p) {
            const broker_stats *st = broker_get_stats(p);
            if (st)
                pool_u64(out, plain[k].name, p, NULL, 0,
                         *(const uint64_t *)(const void *)((const char *)st + plain[k].off));
        }
    }
    promtext_family(out, "agentpool_broker_cancels_total", "counter",
                    "Control stream cancels, by pool and whether the entry was held here (held) or not yet "
                    "(remembered for claimIdleMs).");
    POOLS_FOREACH(p) {
        const broker_stats *st = broker_get_stats(p);
        if (st == NULL)
            continue;
        promtext_label l = {"found", "held"};
        pool_u64(out, "agentpool_broker_cancels_total", p, &l, 1, st->cancels);
        l.value = "remembered";
        pool_u64(out, "agentpool_broker_cancels_total", p, &l, 1, st->cancels_remembered);
    }
    promtext_family(out, "agentpool_broker_group_entries", "gauge",
                    "The consumer group at the last XINFO GROUPS (every claimIntervalMs): lag (entries not yet "
                    "read by any consumer) and pending (read, not yet acknowledged), by pool; absent when unknown.");
    POOLS_FOREACH(p) {
        int64_t lag, pending;
        broker_lag(p, &lag, &pending);
        promtext_label l = {"kind", "lag"};
        if (lag >= 0)
            pool_u64(out, "agentpool_broker_group_entries", p, &l, 1, (uint64_t)lag);
        l.value = "pending";
        if (pending >= 0)
            pool_u64(out, "agentpool_broker_group_entries", p, &l, 1, (uint64_t)pending);
    }
    promtext_family(out, "agentpool_broker_round_trip_seconds", "gauge",
                    "Round trips of the broker's Redis commands over the last minute, by pool and percentile "
                    "(50, 90, 99, max).");
    POOLS_FOREACH(p) {
        hist_summary h;
        if (!broker_round_trips(p, &h))
            continue;
        const struct {
            const char *q;
            uint64_t v;
        } qs[] = {{"50", h.p50}, {"90", h.p90}, {"99", h.p99}, {"max", h.max}};
        for (size_t i = 0; i < AP_ARRAY_LEN(qs); i++) {
            prom_labels pl;
            promtext_label l = {"percentile", qs[i].q};
            with_pool(&pl, p, &l, 1);
            promtext_double(out, "agentpool_broker_round_trip_seconds", pl.l, pl.n, (double)qs[i].v / 1e9);
        }
    }
}

static void prom_cancels(struct evbuffer *out)
{
    promtext_family(out, "agentpool_cancels_total", "counter",
                    "pool.cancel requests, by what they found: the request queued (never run), running (answered "
                    "cancelled, its worker made to let go) or unknown (not in flight on that connection).");
    for (int f = 0; f < CANCEL_FOUND_COUNT; f++) {
        promtext_label l = {"found", cancel_found_name((cancel_found)f)};
        promtext_u64(out, "agentpool_cancels_total", &l, 1, server.stats.cancels[f]);
    }
}

static void prom_durations(struct evbuffer *out)
{
    prom_labels pl;
    promtext_family(out, "agentpool_message_duration_seconds", "histogram",
                    "Time from a message's acceptance to its answer being written, queue wait and retries "
                    "included, by pool.");
    POOLS_FOREACH(p) {
        with_pool(&pl, p, NULL, 0);
        promtext_histogram(out, "agentpool_message_duration_seconds", pl.l, pl.n, &p->metrics->latency_total, 1e9);
    }
    promtext_family(out, "agentpool_queue_wait_seconds", "histogram",
                    "Time from a message's acceptance to its first sending to a worker, by pool.");
    POOLS_FOREACH(p) {
        with_pool(&pl, p, NULL, 0);
        promtext_histogram(out, "agentpool_queue_wait_seconds", pl.l, pl.n, &p->metrics->queue_wait_total, 1e9);
    }
    promtext_family(out, "agentpool_handler_duration_seconds", "histogram",
                    "Time from a message's last sending to a worker to the worker's answer (ok or agent_error), "
                    "by pool and message type: the handler's time, plus any wait behind messages prefetched to "
                    "the same sync worker.");
    POOLS_FOREACH(p) {
        const metrics *mt = p->metrics;
        unsigned n = typetab_count(p->types);
        for (unsigned i = 0; i < n && i < mt->ntypes; i++) {
            if (mt->type_handler[i].n == 0)
                continue;
            promtext_label l = {"type", typetab_name(p->types, i)};
            with_pool(&pl, p, &l, 1);
            promtext_histogram(out, "agentpool_handler_duration_seconds", pl.l, pl.n, &mt->type_handler[i], 1e9);
        }
    }
}

/* Messages p's workers hold. */
static uint64_t pool_in_flight(const pool_t *p)
{
    uint64_t n = 0;
    for (int i = 0; i < p->nworkers; i++)
        if (p->workers[i].state != WORKER_DEAD)
            n += (uint64_t)p->workers[i].proc.running_count;
    return n;
}

static void prom_queues(struct evbuffer *out)
{
    promtext_family(out, "agentpool_queue_depth", "gauge", "Messages waiting for a worker slot, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_queue_depth", p, NULL, 0, p->queue.depth);
    promtext_family(out, "agentpool_queue_capacity", "gauge",
                    "messageQueueSize: the most messages that may wait, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_queue_capacity", p, NULL, 0, p->queue.capacity);
    promtext_family(out, "agentpool_queue_rejected_total", "counter",
                    "Messages refused because the queue or maxPendingBytes was full (overflow reject), by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_queue_rejected_total", p, NULL, 0, p->queue.rejected);
    promtext_family(out, "agentpool_in_flight", "gauge", "Messages held by workers, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_in_flight", p, NULL, 0, pool_in_flight(p));
    promtext_family(out, "agentpool_dead_letters", "gauge", "Records in each pool's dead-letter file.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_dead_letters", p, NULL, 0, p->dlq ? dlq_count(p->dlq) : 0);
}

static void prom_workers(struct evbuffer *out)
{
    promtext_family(out, "agentpool_workers", "gauge", "Worker processes by pool and state.");
    POOLS_FOREACH(p) {
        for (int s = WORKER_STARTING; s < WORKER_DEAD; s++) {
            promtext_label l = {"state", worker_state_name((worker_state)s)};
            pool_u64(out, "agentpool_workers", p, &l, 1, (uint64_t)worker_count_in(p, (worker_state)s));
        }
    }
    promtext_family(out, "agentpool_worker_restarts_total", "counter",
                    "Worker process ends by pool and reason, since start (recycled: replaced on purpose).");
    POOLS_FOREACH(p) {
        for (int r = SUP_CRASHED; r < SUP_REASON_COUNT; r++) {
            promtext_label l = {"reason", supervisor_reason_name((sup_reason)r)};
            pool_u64(out, "agentpool_worker_restarts_total", p, &l, 1, supervisor_ends(p, (sup_reason)r));
        }
    }
    /* Per slot, not per process: a recycle would otherwise start a new
     * series each time (a pid label churns).  During a make-before-break
     * hand-over a slot has two processes: its RSS is their sum, and
     * agentpool_worker_info names each one's pid. */
    promtext_family(out, "agentpool_worker_rss_bytes", "gauge",
                    "Resident memory of the live worker processes of each pool's slot, sampled when a process "
                    "becomes ready and every second.");
    POOLS_FOREACH(p) {
        for (int slot = 0; slot < p->cfg->max_workers; slot++) {
            uint64_t rss = 0;
            int live = 0;
            for (int i = 0; i < p->nworkers; i++) {
                const worker *w = &p->workers[i];
                if (w->slot == slot && w->state != WORKER_DEAD) {
                    rss += w->proc.rss_bytes;
                    live = 1;
                }
            }
            if (!live)
                continue;
            char slotname[16];
            snprintf(slotname, sizeof(slotname), "%d", slot);
            promtext_label l = {"slot", slotname};
            pool_u64(out, "agentpool_worker_rss_bytes", p, &l, 1, rss);
        }
    }
    promtext_family(out, "agentpool_worker_info", "gauge",
                    "1 for each live worker process: its pool, slot, name, pid and state (join on pool and slot).");
    POOLS_FOREACH(p) {
        for (int i = 0; i < p->nworkers; i++) {
            const worker *w = &p->workers[i];
            if (w->state == WORKER_DEAD || w->slot < 0)
                continue;
            char slotname[16], pid[16];
            snprintf(slotname, sizeof(slotname), "%d", w->slot);
            snprintf(pid, sizeof(pid), "%d", (int)w->proc.pid);
            promtext_label l[4] = {{"slot", slotname}, {"worker", w->name}, {"pid", pid},
                                   {"state", worker_state_name(w->state)}};
            pool_u64(out, "agentpool_worker_info", p, l, 4, 1);
        }
    }
    wout_prometheus(out);
    promtext_family(out, "agentpool_hub_blocked_total", "counter",
                    "Times an async or gevent worker found its event loop held by one handler past "
                    "hubBlockedWarnMs, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_hub_blocked_total", p, NULL, 0, wprog_hub_blocked_total(p));
    promtext_family(out, "agentpool_log_write_dropped_total", "counter",
                    "Lines the master's log (log=\"master\") or access log (log=\"access\") dropped because "
                    "its file or pipe could not take them.");
    promtext_label master_log = {"log", "master"}, access_log = {"log", "access"};
    promtext_u64(out, "agentpool_log_write_dropped_total", &master_log, 1, access_log_dropped());
    promtext_u64(out, "agentpool_log_write_dropped_total", &access_log, 1, access_access_dropped());
}

static void prom_breakers(struct evbuffer *out)
{
    int any = 0;
    POOLS_FOREACH(p) any |= breaker_enabled(p->breakers);
    if (!any)
        return;
    promtext_family(out, "agentpool_breaker_state", "gauge",
                    "Circuit breaker per pool and message type: 0 closed, 1 open, 2 half-open.");
    POOLS_FOREACH(p) {
        if (!breaker_enabled(p->breakers))
            continue;
        for (unsigned i = 0; i < typetab_count(p->types); i++) {
            breaker_state s = breaker_state_of(p->breakers, i);
            promtext_label l = {"type", typetab_name(p->types, i)};
            pool_u64(out, "agentpool_breaker_state", p, &l, 1,
                     s == BREAKER_OPEN ? 1u : s == BREAKER_HALF_OPEN ? 2u : 0u);
        }
    }
}

/* Readiness and supervision: the server's, then each pool's. */
static void prom_health(struct evbuffer *out)
{
    int healthy;
    health_status status = health_server(&healthy);
    promtext_family(out, "agentpool_ready", "gauge",
                    "1 when the server is ready: every pool is (what /healthz answers 200 for).");
    promtext_u64(out, "agentpool_ready", NULL, 0, status == HEALTH_READY);
    if (server.cfg->pools_named) {
        promtext_family(out, "agentpool_pool_ready", "gauge", "1 when the pool is ready.");
        POOLS_FOREACH(p) pool_u64(out, "agentpool_pool_ready", p, NULL, 0, health_pool(p, NULL) == HEALTH_READY);
    }
    promtext_family(out, "agentpool_restart_backoff", "gauge",
                    "1 while the pool is in restart backoff (more than maxRestarts within restartWindow).");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_restart_backoff", p, NULL, 0, (uint64_t)supervisor_in_backoff(p));
    promtext_family(out, "agentpool_slots_in_backoff", "gauge",
                    "Worker slots whose respawn waits in restart backoff (their pool is degraded while any does).");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_slots_in_backoff", p, NULL, 0, (uint64_t)health_backoff_slots(p));
    promtext_family(out, "agentpool_code_drift_total", "counter",
                    "Workers that started with other agent code than their generation (files changed on disk "
                    "without a reload), by pool, since start.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_code_drift_total", p, NULL, 0, drift_total(p));
    promtext_family(out, "agentpool_workers_code_drift", "gauge", "Live workers running drifted agent code, by pool.");
    POOLS_FOREACH(p) pool_u64(out, "agentpool_workers_code_drift", p, NULL, 0, (uint64_t)drift_live_workers(p));
    promtext_family(out, "agentpool_workers_healthy", "gauge",
                    "Workers taking messages that answered their last heartbeat (pool.health's healthy), by pool.");
    POOLS_FOREACH(p) {
        int n = 0;
        health_pool(p, &n);
        pool_u64(out, "agentpool_workers_healthy", p, NULL, 0, (uint64_t)n);
    }
}

static void prom_connections(struct evbuffer *out)
{
    promtext_family(out, "agentpool_connections", "gauge", "Open client connections.");
    promtext_u64(out, "agentpool_connections", NULL, 0, (uint64_t)server.nclients);
    promtext_family(out, "agentpool_connections_rejected_total", "counter",
                    "Client connections refused too_many_connections (maxConnections, its admin reserve, maxConnectionsPerUid).");
    promtext_u64(out, "agentpool_connections_rejected_total", NULL, 0, server.stats.conns_rejected);
    promtext_family(out, "agentpool_connections_idle_closed_total", "counter",
                    "Client connections closed after idleConnectionTimeout with nothing in flight.");
    promtext_u64(out, "agentpool_connections_idle_closed_total", NULL, 0, server.stats.conns_idle_closed);
    promtext_family(out, "agentpool_connections_half_closed_total", "counter",
                    "Client connections whose peer shut its writing side (half-close) and were kept until answered.");
    promtext_u64(out, "agentpool_connections_half_closed_total", NULL, 0, server.stats.conns_half_closed);
    static const promtext_label peer_reason[] = {{"reason", "peer"}};
    promtext_family(out, "agentpool_connections_refused_total", "counter",
                    "Client connections refused by allowedUids/allowedGids (SO_PEERCRED), by reason.");
    promtext_u64(out, "agentpool_connections_refused_total", peer_reason, 1, server.stats.conns_refused_peer);
    httpfront_prometheus(out);
}

void metrics_prometheus(struct evbuffer *out)
{
    uint64_t now = ap_now_ms();
    promtext_family(out, "agentpool_up", "gauge", "1 while agentpoold answers; see agentpool_ready for its state.");
    promtext_u64(out, "agentpool_up", NULL, 0, 1);
    prom_health(out);
    double start_s = (double)(ap_wall_ms() - (now - server.started_ms)) / 1000.0;
    promtext_family(out, "agentpool_start_time_seconds", "gauge", "When the master started, seconds since the epoch.");
    promtext_double(out, "agentpool_start_time_seconds", NULL, 0, start_s);
    promtext_family(out, "agentpool_build_info", "gauge",
                    "1, labelled with agentpool's version, the Python version its workers embed and the "
                    "libevent version the master runs with.");
    promtext_label build[3] = {{"version", PACKAGE_VERSION}, {"python", AP_PYTHON_VERSION},
                               {"libevent", event_get_version()}};
    promtext_u64(out, "agentpool_build_info", build, 3, 1);
    procstat_prometheus(out, start_s);
    prom_messages(out);
    prom_control(out);
    prom_cancels(out);
    prom_broker(out);
    prom_sessions(out);
    prom_durations(out);
    prom_streams(out);
    prom_idempotency(out);
    prom_queues(out);
    prom_workers(out);
    prom_connections(out);
    prom_breakers(out);
    uint64_t allocated, resident;
    if (metrics_memory(now, &allocated, &resident) == AP_OK) {
        promtext_family(out, "agentpool_master_allocated_bytes", "gauge",
                        "Bytes the master has allocated (jemalloc stats.allocated).");
        promtext_u64(out, "agentpool_master_allocated_bytes", NULL, 0, allocated);
        promtext_family(out, "agentpool_master_resident_bytes", "gauge",
                        "Bytes of the master's heap resident in memory (jemalloc stats.resident).");
        promtext_u64(out, "agentpool_master_resident_bytes", NULL, 0, resident);
    }
    alert_prometheus(out);
    events_prometheus(out);
    usage_prometheus(out);
}
