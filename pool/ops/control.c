/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * control.c - the pool.* requests the master answers itself (see
 * control.h): one handler per type in control_handlers[], looked up by
 * name; an unknown pool.* type is refused with the list of known ones.
 *
 * pool.stats answers with the seed's getStats fields, spelled as there
 * (total, available, busy, healthy, totalMessagesProcessed,
 * averageWorkerAge, oldestWorker), plus the pool-wide counters; with
 * {"detailed": true} it adds one object per worker (getDetailedStats),
 * and is answered once the agents' metrics it asked for are in (at most
 * AGENTSTAT_WAIT_MS later; see agentstat.h), through answer_later.
 * Every number comes from counters the master keeps itself, so they
 * survive worker restarts; distributions, rates and per-type answers come
 * from metrics.c.  Health and the pool's status are health.c's.  The
 * same builder answers HTTP's /stats: control_stats_json().
 *
 * Admin requests (what changes the pool or shows what is not the
 * asker's own) are marked in control_handlers[] and checked in one place,
 * control_allowed(): others get `forbidden` (adminUids/adminGids).
 */
#include "control.h"
#include "access.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "answer.h"
#include "cancel.h"
#include "client.h"
#include "server.h"
#include "sessadmin.h"
#include "sstore.h"
#include "session.h"
#include "supervisor.h"
#include "suspect.h"
#include "dlq.h"
#include "dlqheld.h"
#include "scale.h"
#include "reload.h"
#include "breaker.h"
#include "broker.h"
#include "typetab.h"
#include "usage.h"
#include "metrics.h"
#include "alert.h"
#include "agentstat.h"
#include "health.h"
#include "idem.h"
#include "drift.h"
#include "events.h"
#include "httpfront.h"
#include "wout.h"
#include "wprog.h"
#include "privs.h"
#include "ap_log.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

int control_find_string(const char *json, size_t len, const char *key, char *buf, size_t cap)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    int rc = AP_ERR;
    const cJSON *v = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, key) : NULL;
    if (cJSON_IsString(v) && strlen(v->valuestring) < cap) {
        memcpy(buf, v->valuestring, strlen(v->valuestring) + 1);
        rc = AP_OK;
    }
    cJSON_Delete(root);
    return rc;
}

static int data_flag(const char *line, const scan_result *r, const char *key)
{
    if (r->data.len == 0)
        return 0;
    cJSON *root = cJSON_ParseWithLength(line + r->data.off, r->data.len);
    int on = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, key));
    cJSON_Delete(root);
    return on;
}

/* A monotonic time in ms as wall-clock ms since the epoch. */
static double wall_of(uint64_t mono_ms, uint64_t now_mono, uint64_t now_wall)
{
    return (double)(now_wall - (now_mono - mono_ms));
}

/* ns as ms, to the microsecond. */
static double ns_to_ms(uint64_t ns)
{
    return (double)((ns + 500) / 1000) / 1000.0;
}

static void add_summary(cJSON *o, const char *key, const hist_summary *h)
{
    cJSON *s = cJSON_AddObjectToObject(o, key);
    cJSON_AddNumberToObject(s, "p50", ns_to_ms(h->p50));
    cJSON_AddNumberToObject(s, "p90", ns_to_ms(h->p90));
    cJSON_AddNumberToObject(s, "p99", ns_to_ms(h->p99));
    cJSON_AddNumberToObject(s, "max", ns_to_ms(h->max));
    cJSON_AddNumberToObject(s, "samples", (double)h->count);
}

/* The pools a stats object covers: one pool's, or every pool's (the
 * server's totals, which also show what is the server's own). */
typedef struct {
    pool_t *const *p;
    int n;
    int server;
} stats_scope;

/* Adds n to o[key] (made 0 first). */
static void add_count(cJSON *o, const char *key, double n)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL)
        cJSON_AddNumberToObject(o, key, n);
    else
        cJSON_SetNumberValue(v, v->valuedouble + n);
}

/* The object o[key], made when missing. */
static cJSON *object_at(cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v ? v : cJSON_AddObjectToObject(o, key);
}

/* throughput, latency, queueWait, oldestQueuedAge, types; the server's
 * memory with its totals. */
static void add_metrics(cJSON *o, const stats_scope *sc, uint64_t now)
{
    const metrics *mts[POOLS_MAX];
    double tp1 = 0, tp10 = 0, tp60 = 0;
    uint64_t now_ns = ap_now_ns(), age = 0;
    for (int k = 0; k < sc->n; k++) {
        const pool_t *p = sc->p[k];
        mts[k] = p->metrics;
        tp1 += metrics_throughput(p->metrics, now, 1);
        tp10 += metrics_throughput(p->metrics, now, 10);
        tp60 += metrics_throughput(p->metrics, now, 60);
        const queue_link *head = queue_peek(&p->queue);
        if (head) {
            const msg *m = msg_from_qlink(head);
            uint64_t a = now_ns > m->accepted_ns ? (now_ns - m->accepted_ns) / 1000000u : 0;
            if (a > age)
                age = a;
        }
    }
    cJSON *tp = cJSON_AddObjectToObject(o, "throughput");
    cJSON_AddNumberToObject(tp, "1s", tp1);
    cJSON_AddNumberToObject(tp, "10s", tp10);
    cJSON_AddNumberToObject(tp, "60s", tp60);
    hist_summary h;
    memset(&h, 0, sizeof(h));
    if (sc->n)
        metrics_latency(mts, (unsigned)sc->n, now, &h);
    add_summary(o, "latency", &h);
    if (sc->n)
        metrics_queue_wait(mts, (unsigned)sc->n, now, &h);
    add_summary(o, "queueWait", &h);
    cJSON_AddNumberToObject(o, "oldestQueuedAge", (double)age);
    cJSON *ty = cJSON_AddObjectToObject(o, "types");
    for (int k = 0; k < sc->n; k++) {
        const pool_t *p = sc->p[k];
        for (unsigned i = 0; i < typetab_count(p->types); i++) {
            cJSON *t = object_at(ty, typetab_name(p->types, i));
            add_count(t, "ok", (double)metrics_type_ok(p->metrics, i));
            cJSON *e = object_at(t, "errors");
            for (int c = 0; c < ERR_COUNT; c++) {
                uint64_t n = metrics_type_errors(p->metrics, i, (reply_code)c);
                if (n)
                    add_count(e, reply_code_name((reply_code)c), (double)n);
            }
        }
    }
    if (sc->server) {
        uint64_t allocated, resident;
        metrics_memory(now, &allocated, &resident);
        cJSON *mem = cJSON_AddObjectToObject(o, "memory");
        cJSON_AddNumberToObject(mem, "allocated", (double)allocated);
        cJSON_AddNumberToObject(mem, "resident", (double)resident);
    }
}

static cJSON *worker_json(const worker *w, uint64_t now, uint64_t wall)
{
    cJSON *o = cJSON_CreateObject();
    int live = w->state != WORKER_DEAD;
    cJSON_AddStringToObject(o, "id", w->name);
    if (server.cfg->pools_named)
        cJSON_AddStringToObject(o, "pool", w->pool->name);
    cJSON_AddBoolToObject(o, "healthy", health_worker_ok(w));
    cJSON_AddNumberToObject(o, "messagesProcessed", (double)w->load.processed);
    cJSON_AddNumberToObject(o, "age", live ? (double)(now - w->proc.started_ms) : 0);
    cJSON_AddNumberToObject(o, "pid", live ? (double)w->proc.pid : 0);
    cJSON_AddStringToObject(o, "state", worker_state_name(w->state));
    cJSON_AddNumberToObject(o, "inFlight", w->load.in_flight);
    cJSON_AddNumberToObject(o, "slots", w->load.slots);
    if (!w->proc.async) {
        uint64_t running, last;
        cJSON_AddBoolToObject(o, "running", w->proc.pid > 0 && wprog_running(w, &running, &last) > 0 && running != 0);
        cJSON_AddNumberToObject(o, "prefetch", w->load.ahead);
        cJSON_AddNumberToObject(o, "handlerMeanUs", (double)(w->proc.svc_ewma_ns / 1000));
    }
    cJSON_AddBoolToObject(o, "async", w->proc.async);
    cJSON_AddStringToObject(o, "model", w->proc.model);
    cJSON_AddNumberToObject(o, "hubBlocked", (double)wprog_hub_blocked(w));
    cJSON_AddNumberToObject(o, "generation", w->proc.generation);
    cJSON_AddStringToObject(o, "code", w->proc.code);
    cJSON_AddBoolToObject(o, "codeDrift", w->proc.code_drift);
    cJSON_AddNumberToObject(o, "errors", w->slot >= 0 ? (double)w->pool->slot_errors[w->slot] : 0);
    cJSON_AddNumberToObject(o, "missedBeats", w->proc.missed_beats);
    cJSON_AddBoolToObject(o, "suspect", w->load.suspect != 0);
    cJSON_AddNumberToObject(o, "rssBytes", (double)w->proc.rss_bytes);
    cJSON_AddNumberToObject(o, "logLinesDropped", (double)wout_dropped(w));
    if (live)
        cJSON_AddNumberToObject(o, "startedAt", wall_of(w->proc.started_ms, now, wall));
    else
        cJSON_AddNullToObject(o, "startedAt");
    if (live && w->proc.last_message_ms)
        cJSON_AddNumberToObject(o, "lastMessageAt", wall_of(w->proc.last_message_ms, now, wall));
    else
        cJSON_AddNullToObject(o, "lastMessageAt");
    if (w->proc.recycle_reason)
        cJSON_AddStringToObject(o, "recycling", w->proc.recycle_reason);
    if (w->proc.health)
        cJSON_AddRawToObject(o, "health", w->proc.health);
    agentstat_add_json(o, w, now, wall);
    return o;
}

/* counts[c] under each reply code's name, c < ERR_COUNT (the errors,
 * control errors and streams ended of pool.stats); skip_zero leaves out
 * the codes never counted. */
static void add_code_counts(cJSON *o, const uint64_t *counts, int skip_zero)
{
    for (int c = 0; c < ERR_COUNT; c++)
        if (!skip_zero || counts[c])
            cJSON_AddNumberToObject(o, reply_code_name((reply_code)c), (double)counts[c]);
}

/* The breakers of p that are not quiet, into bs. */
static void add_breakers(cJSON *bs, const pool_t *p, uint64_t now)
{
    for (unsigned i = 0; i < typetab_count(p->types); i++) {
        breaker_info bi;
        breaker_info_of(p->breakers, i, now, &bi);
        if (bi.state == BREAKER_CLOSED && bi.failures == 0 && bi.rejected == 0)
            continue;
        cJSON *b = cJSON_AddObjectToObject(bs, typetab_name(p->types, i));
        cJSON_AddStringToObject(b, "state", breaker_state_name(bi.state));
        cJSON_AddNumberToObject(b, "failuresInWindow", bi.failures_in_window);
        cJSON_AddNumberToObject(b, "retryAfterMs", (double)bi.retry_after_ms);
        cJSON_AddNumberToObject(b, "opened", (double)bi.opened);
        cJSON_AddNumberToObject(b, "rejected", (double)bi.rejected);
    }
}

/* pool.stats' fields over the pools of sc, with st their counters (a
 * pool's, or pools_total's); the server's own fields when sc->server. */
/* pool.stats "sessions": the scope's session tables summed (session.h),
 * and their stores' counters (sstore.h).  Counters are named once, here. */
#define SESS_N(f) offsetof(session_counters, f)
static const struct {
    const char *name;
    size_t off;
} session_counter_names[] = {
    {"hits", SESS_N(hits)}, {"moves", SESS_N(moves)}, {"busyRejected", SESS_N(busy_rejected)},
    {"interrupted", SESS_N(interrupted)}, {"refused", SESS_N(refused)}, {"stateLoads", SESS_N(loads)},
    {"stateCommits", SESS_N(commits)}, {"storeFailures", SESS_N(store_failures)},
    {"cacheDropped", SESS_N(dropped)}, {"stateAfterAnswer", SESS_N(state_dropped)},
    {"stateCoalesced", SESS_N(coalesced)},
};
#define STORE_N(f) offsetof(sstore_stats, f)
static const struct {
    const char *name;
    size_t off;
} store_counter_names[] = {
    {"gets", STORE_N(gets)}, {"puts", STORE_N(puts)}, {"touches", STORE_N(touches)},
    {"deletes", STORE_N(deletes)}, {"lists", STORE_N(lists)}, {"failures", STORE_N(failures)},
    {"transactions", STORE_N(transactions)}, {"transactionWrites", STORE_N(transaction_writes)},
    {"expired", STORE_N(expired)},
};

static uint64_t *u64_at(void *base, size_t off)
{
    return (uint64_t *)(void *)((char *)base + off);
}

static void add_sessions(cJSON *o, const stats_scope *sc)
{
    session_counters n = {0};
    sstore_stats sum = {0}, one;
    uint64_t active = 0, tracked = 0, waiting = 0, cached = 0;
    int stores = 0, up = 1;
    for (int k = 0; k < sc->n; k++) {
        session_table *t = sc->p[k]->sessions;
        if (t == NULL)
            continue;
        active += t->by_state[SESSION_RUNNING];
        tracked += t->count;
        waiting += t->waiting;
        cached += t->state_bytes;
        for (size_t i = 0; i < AP_ARRAY_LEN(session_counter_names); i++)
            *u64_at(&n, session_counter_names[i].off) += *u64_at(&t->n, session_counter_names[i].off);
        if (sc->p[k]->store == NULL)
            continue;
        sstore_get_stats(sc->p[k]->store, &one);
        sum.backend = stores++ && strcmp(sum.backend, one.backend) != 0 ? "mixed" : one.backend;
        up &= one.up;
        sum.pending += one.pending;
        for (size_t i = 0; i < AP_ARRAY_LEN(store_counter_names); i++)
            *u64_at(&sum, store_counter_names[i].off) += *u64_at(&one, store_counter_names[i].off);
    }
    cJSON_AddNumberToObject(o, "active", (double)active);
    cJSON_AddNumberToObject(o, "tracked", (double)tracked);
    cJSON_AddNumberToObject(o, "waiting", (double)waiting);
    cJSON_AddNumberToObject(o, "cachedBytes", (double)cached);
    for (size_t i = 0; i < AP_ARRAY_LEN(session_counter_names); i++)
        cJSON_AddNumberToObject(o, session_counter_names[i].name, (double)*u64_at(&n, session_counter_names[i].off));
    if (stores == 0)
        return;
    cJSON *s = cJSON_AddObjectToObject(o, "store");
    cJSON_AddStringToObject(s, "backend", sum.backend);
    cJSON_AddBoolToObject(s, "up", up);
    cJSON_AddNumberToObject(s, "pending", (double)sum.pending);
    for (size_t i = 0; i < AP_ARRAY_LEN(store_counter_names); i++)
        cJSON_AddNumberToObject(s, store_counter_names[i].name, (double)*u64_at(&sum, store_counter_names[i].off));
}

/* "idempotency": the idempotency-key tables of the pools in scope, summed. */
static void add_idempotency(cJSON *o, const stats_scope *sc)
{
    idem_stats sum = {0}, one;
    for (int k = 0; k < sc->n; k++) {
        idem_stats_get(sc->p[k]->idem, &one);
        sum.entries += one.entries;
        sum.bytes += one.bytes;
        sum.replayed += one.replayed;
        sum.attached += one.attached;
        sum.mismatched += one.mismatched;
        sum.evicted += one.evicted;
        sum.expired += one.expired;
    }
    cJSON *i = cJSON_AddObjectToObject(o, "idempotency");
    cJSON_AddNumberToObject(i, "entries", (double)sum.entries);
    cJSON_AddNumberToObject(i, "bytes", (double)sum.bytes);
    cJSON_AddNumberToObject(i, "replayed", (double)sum.replayed);
    cJSON_AddNumberToObject(i, "attached", (double)sum.attached);
    cJSON_AddNumberToObject(i, "mismatched", (double)sum.mismatched);
    cJSON_AddNumberToObject(i, "evicted", (double)sum.evicted);
    cJSON_AddNumberToObject(i, "expired", (double)sum.expired);
}

static cJSON *stats_object(const stats_scope *sc, const server_stats *st, int detailed, uint64_t now)
{
    int total = 0, available = 0, busy = 0, healthy = 0, slots = 0, in_flight = 0, pool_size = 0;
    uint64_t age_sum = 0, oldest = 0, prefetched = 0, retry_waiting = 0;
    uint64_t qdepth = 0, qcap = 0, qhigh = 0, qrej = 0, drift = 0, hub = 0, logdrop = 0, held = 0, records = 0;
    uint64_t ends[SUP_REASON_COUNT] = {0}, roll_errors = 0;
    int drifted = 0, suspects = 0, in_window = 0, backoff = 0, pin = 0, breakers = 0;
    for (int k = 0; k < sc->n; k++) {
        const pool_t *p = sc->p[k];
        pool_size += p->pool_size;
        for (int i = 0; i < p->nworkers; i++) {
            const worker *w = &p->workers[i];
            if (w->state == WORKER_DEAD)
                continue;
            total++;
            uint64_t age = now - w->proc.started_ms;
            age_sum += age;
            if (age > oldest)
                oldest = age;
            in_flight += w->load.in_flight;
            if (worker_is_accepting(w)) {
                healthy += health_worker_ok(w);
                slots += w->load.slots;
                if (w->load.in_flight < w->load.slots)
                    available++;
                else
                    busy++;
            }
        }
        for (const queue_link *l = p->retrying.next; l != &p->retrying; l = l->next)
            retry_waiting++;
        prefetched += p->dispatch.ahead;
        qdepth += p->queue.depth;
        qcap += p->queue.capacity;
        qhigh += p->queue.high_watermark;
        qrej += p->queue.rejected;
        drift += drift_total(p);
        drifted += drift_live_workers(p);
        pin |= p->cfg->pin_code;
        suspects += (int)suspect_count(p);
        hub += wprog_hub_blocked_total(p);
        logdrop += wout_dropped_total(p);
        held += dlqheld_count(p);
        records += p->dlq ? dlq_count(p->dlq) : 0;
        if (p->dlq) {
            dlq_stats ds = {0, 0, 0, 0, 0};
            dlq_get_stats(p->dlq, &ds);
            roll_errors += ds.roll_errors;
        }
        for (int r = 0; r < SUP_REASON_COUNT; r++)
            ends[r] += supervisor_ends(p, (sup_reason)r);
        in_window += (int)supervisor_recent_restarts(p, now);
        backoff |= supervisor_in_backoff(p);
        breakers |= breaker_enabled(p->breakers);
    }
    const pool_t *one = sc->n == 1 ? sc->p[0] : NULL;
    cJSON *o = cJSON_CreateObject();
    if (sc->server)
        cJSON_AddStringToObject(o, "state", health_status_name(health_server(NULL)));
    else
        cJSON_AddStringToObject(o, "state", health_status_name(health_pool(one, NULL)));
    if (one && !sc->server)
        cJSON_AddStringToObject(o, "agent", one->cfg->agent);
    cJSON_AddNumberToObject(o, "total", total);
    cJSON_AddNumberToObject(o, "poolSize", pool_size);
    cJSON_AddNumberToObject(o, "available", available);
    cJSON_AddNumberToObject(o, "busy", busy);
    cJSON_AddNumberToObject(o, "healthy", healthy);
    cJSON_AddNumberToObject(o, "totalMessagesProcessed", (double)st->processed);
    cJSON_AddNumberToObject(o, "averageWorkerAge", total ? (double)(age_sum / (uint64_t)total) : 0);
    cJSON_AddNumberToObject(o, "oldestWorker", (double)oldest);
    cJSON_AddNumberToObject(o, "slots", slots);
    cJSON_AddNumberToObject(o, "inFlight", in_flight);
    cJSON *q = cJSON_AddObjectToObject(o, "queue");
    cJSON_AddNumberToObject(q, "depth", (double)qdepth);
    cJSON_AddNumberToObject(q, "capacity", (double)qcap);
    cJSON_AddNumberToObject(q, "highWatermark", (double)qhigh);
    cJSON_AddNumberToObject(q, "rejected", (double)qrej);
    if (sc->server) {
        cJSON_AddNumberToObject(o, "connections", server.nclients);
        cJSON_AddNumberToObject(o, "uptime", (double)(now - server.started_ms));
    }
    add_code_counts(cJSON_AddObjectToObject(o, "errors"), st->errors, 0);
    cJSON *m = cJSON_AddObjectToObject(o, "messages");
    cJSON_AddNumberToObject(m, "accepted", (double)st->accepted);
    cJSON_AddNumberToObject(m, "answeredOk", (double)st->answered_ok);
    cJSON *ident = cJSON_AddObjectToObject(o, "code");
    cJSON_AddStringToObject(ident, "identity", one ? drift_identity(one) : "");
    cJSON_AddNumberToObject(ident, "drift", (double)drift);
    cJSON_AddNumberToObject(ident, "driftedWorkers", drifted);
    cJSON_AddBoolToObject(ident, "pinCode", pin);
    if (sc->server) {
        cJSON *ctl = cJSON_AddObjectToObject(o, "control");
        cJSON_AddNumberToObject(ctl, "ok", (double)st->control_ok);
        add_code_counts(cJSON_AddObjectToObject(ctl, "errors"), st->control_errors, 1);
        cJSON_AddNumberToObject(m, "held", (double)server.msgs.by_state[MSG_HELD]);
    }
    cJSON_AddNumberToObject(m, "cancelled", (double)st->cancelled);
    cJSON_AddNumberToObject(m, "droppedResults", (double)st->dropped_results);
    if (sc->server)
        cJSON_AddNumberToObject(m, "pendingBytes", (double)server.pending_bytes);
    cJSON *sm = cJSON_AddObjectToObject(o, "streams");
    if (sc->server)
        cJSON_AddNumberToObject(sm, "open", (double)server.streams_open);
    cJSON_AddNumberToObject(sm, "total", (double)st->streams);
    cJSON_AddNumberToObject(sm, "chunksSent", (double)st->chunks_sent);
    cJSON_AddNumberToObject(sm, "chunkBytesSent", (double)st->chunk_bytes_sent);
    cJSON_AddNumberToObject(sm, "chunksCollected", (double)st->chunks_collected);
    cJSON_AddNumberToObject(sm, "chunksDropped", (double)st->chunks_dropped);
    cJSON_AddNumberToObject(sm, "heartbeats", (double)st->heartbeats);
    cJSON *se = cJSON_AddObjectToObject(sm, "ended");
    cJSON_AddNumberToObject(se, "ok", (double)st->streams_ended[ERR_COUNT]);
    add_code_counts(se, st->streams_ended, 1);
    add_sessions(cJSON_AddObjectToObject(o, "sessions"), sc);
    if (one && broker_enabled(one)) /* a pool's own; with several pools, ask each (pool.stats with "pool") */
        broker_stats_json(one, cJSON_AddObjectToObject(o, "broker"));
    if (sc->server) {
        cJSON *c = cJSON_AddObjectToObject(o, "connectionsTotal");
        cJSON_AddNumberToObject(c, "accepted", (double)st->conns_accepted);
        cJSON_AddNumberToObject(c, "rejected", (double)st->conns_rejected);
        cJSON_AddNumberToObject(c, "refusedPeers", (double)st->conns_refused_peer);
        cJSON_AddNumberToObject(c, "rejectedPerUid", (double)st->conns_rejected_uid);
        cJSON_AddNumberToObject(c, "idleClosed", (double)st->conns_idle_closed);
        cJSON_AddNumberToObject(c, "halfClosed", (double)st->conns_half_closed);
        cJSON_AddNumberToObject(c, "writeTimeouts", (double)st->write_timeouts);
        cJSON *bf = cJSON_AddObjectToObject(o, "buffered");
        cJSON_AddNumberToObject(bf, "bytes", (double)server.out_bytes);
        cJSON_AddNumberToObject(bf, "highWatermark", (double)server.out_high);
        cJSON_AddNumberToObject(bf, "max", (double)server.cfg->max_buffered_bytes);
        cJSON_AddNumberToObject(bf, "budgetPaused", server.budget_paused);
        cJSON_AddNumberToObject(bf, "budgetPauses", (double)st->budget_pauses);
        cJSON_AddNumberToObject(bf, "outputPauses", (double)st->output_pauses);
        cJSON_AddNumberToObject(bf, "parkedMessages", (double)st->parked_msgs);
        events_stats_json(o);
        httpfront_stats_json(o);
    }
    cJSON *wk = cJSON_AddObjectToObject(o, "workerEvents");
    cJSON_AddNumberToObject(wk, "spawned", (double)st->spawns);
    cJSON_AddNumberToObject(wk, "crashed", (double)st->crashes);
    cJSON_AddNumberToObject(wk, "killedStuck", (double)st->stuck_kills);
    cJSON_AddNumberToObject(wk, "recycled", (double)st->recycles);
    cJSON *wf = cJSON_AddObjectToObject(o, "workerFaults");
    cJSON_AddNumberToObject(wf, "framesOutOfPlace", (double)st->frames_out_of_place);
    cJSON_AddNumberToObject(wf, "badProgressPages", (double)st->bad_progress_pages);
    cJSON_AddNumberToObject(wf, "suspected", (double)st->suspected);
    cJSON_AddNumberToObject(wf, "suspectNow", suspects);
    cJSON_AddNumberToObject(wf, "rerouted", (double)st->rerouted);
    cJSON_AddNumberToObject(wf, "hubBlocked", (double)hub);
    cJSON_AddNumberToObject(o, "logLinesDropped", (double)logdrop);
    if (sc->server) {
        cJSON_AddNumberToObject(o, "logWriteDropped", (double)access_log_dropped());
        cJSON_AddNumberToObject(o, "accessLogDropped", (double)access_access_dropped());
    }
    cJSON *rs = cJSON_AddObjectToObject(o, "restarts");
    for (int r = SUP_CRASHED; r < SUP_REASON_COUNT; r++)
        cJSON_AddNumberToObject(rs, supervisor_reason_name((sup_reason)r), (double)ends[r]);
    cJSON_AddNumberToObject(rs, "inWindow", in_window);
    cJSON_AddBoolToObject(rs, "backoff", backoff);
    add_idempotency(o, sc);
    cJSON_AddItemToObject(o, "usage", usage_json(sc->server ? NULL : one));
    cJSON_AddNumberToObject(m, "retried", (double)st->retries);
    cJSON_AddNumberToObject(m, "deadLettered", (double)st->dead_lettered);
    cJSON_AddNumberToObject(m, "failedUncharged", (double)st->failed_uncharged);
    cJSON_AddNumberToObject(m, "lateResults", (double)st->late_results);
    if (sc->server) {
        cJSON *cn = cJSON_AddObjectToObject(m, "cancels");
        for (int f = 0; f < CANCEL_FOUND_COUNT; f++)
            cJSON_AddNumberToObject(cn, cancel_found_name((cancel_found)f), (double)st->cancels[f]);
    }
    cJSON_AddNumberToObject(m, "prefetched", (double)prefetched);
    cJSON_AddNumberToObject(m, "retryWaiting", (double)retry_waiting);
    if (one) {
        cJSON_AddStringToObject(o, "strategy", config_strategy_name(one->cfg->strategy));
        cJSON_AddStringToObject(o, "overflow", config_overflow_name(one->cfg->overflow));
    }
    if (sc->server) {
        cJSON_AddNumberToObject(o, "pid", server.pid);
        cJSON_AddStringToObject(o, "allocator", ap_alloc_name());
    }
    if (breakers) {
        cJSON *bs = cJSON_AddObjectToObject(o, "breakers");
        for (int k = 0; k < sc->n; k++)
            if (breaker_enabled(sc->p[k]->breakers))
                add_breakers(bs, sc->p[k], now);
    }
    cJSON *dl = cJSON_AddObjectToObject(o, "deadLetters");
    cJSON_AddStringToObject(dl, "file", one && one->dlq ? dlq_path(one->dlq) : "");
    cJSON_AddNumberToObject(dl, "records", (double)records);
    cJSON_AddNumberToObject(dl, "writeErrors", (double)st->dead_letter_errors);
    cJSON_AddNumberToObject(dl, "held", (double)held);
    if (sc->server)
        cJSON_AddNumberToObject(dl, "heldDropped", (double)dlqheld_dropped());
    cJSON_AddNumberToObject(dl, "rollErrors", (double)roll_errors);
    add_metrics(o, sc, now);
    cJSON *alerts = cJSON_AddArrayToObject(o, "alerts");
    for (int k = 0; k < sc->n; k++)
        alert_json(sc->p[k], alerts);
    if (detailed) {
        /* In slot order; a slot being handed over shows both processes. */
        uint64_t wall = ap_wall_ms();
        cJSON *arr = cJSON_AddArrayToObject(o, "workers");
        for (int k = 0; k < sc->n; k++) {
            const pool_t *p = sc->p[k];
            for (int slot = 0; slot < p->cfg->max_workers; slot++)
                for (int i = 0; i < p->nworkers; i++)
                    if (p->workers[i].slot == slot)
                        cJSON_AddItemToArray(arr, worker_json(&p->workers[i], now, wall));
        }
    }
    return o;
}

cJSON *control_stats_json(int detailed, const pool_t *only)
{
    uint64_t now = ap_now_ms();
    if (only) {
        stats_scope sc = {(pool_t *const *)&only, 1, 0};
        cJSON *o = stats_object(&sc, &only->stats, detailed, now);
        cJSON_AddStringToObject(o, "pool", only->name);
        return o;
    }
    server_stats t;
    pools_total(&t);
    stats_scope all = {server.pools, server.npools, 1};
    cJSON *o = stats_object(&all, &t, detailed, now);
    if (!server.cfg->pools_named)
        return o; /* one unnamed pool: the totals are all there is */
    cJSON *pools = cJSON_AddObjectToObject(o, "pools");
    POOLS_FOREACH(p) {
        stats_scope one = {&server.pools[p_i_], 1, 0};
        cJSON *po = stats_object(&one, &p->stats, 0, now);
        cJSON_AddStringToObject(po, "lifecycle", pools_state_name(p->state));
        cJSON_AddItemToObject(pools, p->name, po);
    }
    return o;
}

#define DLQ_LIST_MAX 1000

static int64_t data_int(const char *line, const scan_result *r, const char *key, int64_t dflt)
{
    if (r->data.len == 0)
        return dflt;
    cJSON *root = cJSON_ParseWithLength(line + r->data.off, r->data.len);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    int64_t out = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? (int64_t)v->valuedouble : dflt;
    cJSON_Delete(root);
    return out;
}

static int list_record_cb(void *arg, uint64_t dlq_id, const char *line, size_t len)
{
    (void)dlq_id;
    /* Lines were validated as JSON by dlq_list: splice them in raw. */
    char *copy = ap_strndup(line, len);
    cJSON_AddItemToArray(arg, cJSON_CreateRaw(copy));
    ap_free(copy);
    return 0;
}


/* pool.dlq.list {"offset","limit"}, pool.dlq.remove {"ids":[...]},
 * pool.dlq.purge, on pool p's file.  Returns the answer, or NULL with
 * err set. */
static cJSON *dlq_request(pool_t *p, const char *op, const char *line, const scan_result *r, char *err,
                          size_t errlen)
{
    dlq *d = p->dlq;
    if (d == NULL) {
        snprintf(err, errlen, "pool %s: the dead-letter file is not open (see the server log)", p->name);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    if (strcmp(op, "list") == 0) {
        int64_t offset = data_int(line, r, "offset", 0), limit = data_int(line, r, "limit", 100);
        if (limit <= 0 || limit > DLQ_LIST_MAX)
            limit = DLQ_LIST_MAX;
        cJSON_AddStringToObject(o, "file", dlq_path(d));
        cJSON_AddNumberToObject(o, "total", (double)dlq_count(d));
        cJSON_AddNumberToObject(o, "offset", (double)offset);
        cJSON *arr = cJSON_AddArrayToObject(o, "records");
        if (dlq_list(d, (uint64_t)offset, (uint64_t)limit, list_record_cb, arr, err, errlen) != AP_OK)
            goto fail;
    } else if (strcmp(op, "remove") == 0) {
        cJSON *root = r->data.len ? cJSON_ParseWithLength(line + r->data.off, r->data.len) : NULL;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(root, "ids");
        int n = cJSON_IsArray(ids) ? cJSON_GetArraySize(ids) : -1;
        if (n < 0 || n > 100000) {
            cJSON_Delete(root);
            snprintf(err, errlen, "pool.dlq.remove needs {\"ids\": [dlqId, ...]}");
            goto fail;
        }
        uint64_t *v = ap_calloc((size_t)n + 1, sizeof(uint64_t));
        size_t k = 0, removed = 0;
        for (const cJSON *e = ids->child; e; e = e->next)
            if (cJSON_IsNumber(e) && e->valuedouble >= 0)
                v[k++] = (uint64_t)e->valuedouble;
        int rc = dlq_remove(d, v, k, &removed, err, errlen);
        ap_free(v);
        cJSON_Delete(root);
        if (rc != AP_OK)
            goto fail;
        cJSON_AddNumberToObject(o, "removed", (double)removed);
    } else if (strcmp(op, "purge") == 0) {
        uint64_t before = dlq_count(d);
        if (dlq_purge(d, err, errlen) != AP_OK)
            goto fail;
        cJSON_AddNumberToObject(o, "purged", (double)before);
    } else {
        snprintf(err, errlen, "unknown pool.dlq request (known: pool.dlq.list, pool.dlq.remove, pool.dlq.purge)");
        goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

/* Answers with result (consumed). */
static void answer_json(client *c, const char *line, const scan_result *r, cJSON *result)
{
    char *text = cJSON_PrintUnformatted(result);
    answer_request_ok(c, line, r, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(result);
}

/* The pool a pool.* request names in its data ({"pool": NAME}): 1 with
 * *out set, 0 when it names none (*out NULL: every pool), -1 when the
 * name is unknown (answered bad_request). */
static int data_pool(client *c, const char *line, const scan_result *r, pool_t **out)
{
    char name[CONFIG_POOL_NAME_MAX + 2];
    *out = NULL;
    if (r->data.len == 0 || control_find_string(line + r->data.off, r->data.len, "pool", name, sizeof(name)) != AP_OK)
        return 0;
    *out = pools_find(name, strlen(name));
    if (*out)
        return 1;
    char names[512], why[768];
    pools_names(names, sizeof(names));
    snprintf(why, sizeof(why), "unknown pool \"%s\": the pools are %s", name, names);
    answer_control_refuse(c, line, r, ERR_BAD_REQUEST, why);
    return -1;
}

/* The one pool a request that changes a pool concerns: the one it names,
 * or the only one there is.  NULL when answered (unknown pool, or none
 * named while there are several). */
static pool_t *target_pool(client *c, const char *line, const scan_result *r)
{
    pool_t *p;
    int rc = data_pool(c, line, r, &p);
    if (rc < 0)
        return NULL;
    if (rc == 0 && server.npools == 1)
        return server.pools[0];
    if (rc == 0) {
        char names[512], why[1024];
        pools_names(names, sizeof(names));
        snprintf(why, sizeof(why), "%s concerns one pool: name it with {\"pool\": NAME} (the pools are %s)", r->type,
                 names);
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST, why);
    }
    return p;
}

/* Orders history entries by time (pools' histories merged), oldest
 * first; entries of one time keep their order (pool, then its own). */
typedef struct {
    double time;
    int seq;
    cJSON *item;
} history_entry;

static int history_cmp(const void *a, const void *b)
{
    const history_entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->seq - y->seq;
}

static void history_sort(cJSON *arr)
{
    int n = cJSON_GetArraySize(arr);
    if (n < 2)
        return;
    history_entry *v = ap_calloc((size_t)n, sizeof(history_entry));
    for (int k = 0; k < n; k++) {
        v[k].item = cJSON_DetachItemViaPointer(arr, arr->child);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(v[k].item, "time");
        v[k].time = cJSON_IsNumber(t) ? t->valuedouble : 0;
        v[k].seq = k;
    }
    qsort(v, (size_t)n, sizeof(history_entry), history_cmp);
    for (int k = 0; k < n; k++)
        cJSON_AddItemToArray(arr, v[k].item);
    ap_free(v);
}

/* ---- one handler per request type ------------------------------------ */

static void control_ping(client *c, const char *line, const scan_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "pong", 1);
    cJSON_AddStringToObject(o, "state", health_status_name(health_server(NULL)));
    answer_json(c, line, r, o);
}

/* A detailed pool.stats waiting for the agents' metrics (agentstat.c). */
typedef struct {
    uint64_t serial;
    char pool[CONFIG_POOL_NAME_MAX + 1]; /* "": every pool */
    size_t id_len;
    char id[];
} stats_waiter;

static void stats_waiter_done(void *arg, int reply_now)
{
    stats_waiter *sw = arg;
    if (reply_now) {
        const pool_t *p = sw->pool[0] ? pools_find(sw->pool, strlen(sw->pool)) : NULL;
        if (sw->pool[0] && p == NULL) {
            char why[CONFIG_POOL_NAME_MAX + 64];
            snprintf(why, sizeof(why), "pool %s was removed meanwhile", sw->pool);
            answer_later(sw->serial, sw->id_len ? sw->id : NULL, sw->id_len, NULL, ERR_BAD_REQUEST, why, NULL);
        } else {
            cJSON *o = control_stats_json(1, p);
            char *text = cJSON_PrintUnformatted(o);
            answer_later(sw->serial, sw->id_len ? sw->id : NULL, sw->id_len, text, ERR_OTHER, NULL, NULL);
            cJSON_free(text);
            cJSON_Delete(o);
        }
    }
    ap_free(sw);
}

/* At once, unless detailed and some agent's metrics are to be asked for
 * first (then answered when they are in, bounded: agentstat.h).  One
 * pool's with {"pool": NAME}, else the totals and every pool's. */
static void control_stats(client *c, const char *line, const scan_result *r)
{
    pool_t *p;
    if (data_pool(c, line, r, &p) < 0)
        return;
    int detailed = data_flag(line, r, "detailed");
    if (detailed) {
        size_t id_len = r->id_kind != SCAN_ID_NONE ? r->id.len : 0;
        stats_waiter *sw = ap_malloc(sizeof(*sw) + id_len + 1);
        sw->serial = c->serial;
        snprintf(sw->pool, sizeof(sw->pool), "%s", p ? p->name : "");
        sw->id_len = id_len;
        memcpy(sw->id, line + r->id.off, id_len);
        sw->id[id_len] = '\0';
        client_deferred(c, 1); /* not idle while its answer is due */
        if (c->serial != 0 && agentstat_refresh(stats_waiter_done, sw))
            return;
        client_deferred(c, -1);
        ap_free(sw);
    }
    answer_json(c, line, r, control_stats_json(detailed, p));
}

/* pool.health's fields for p (o: the pool's object). */
static void add_pool_health(cJSON *o, const pool_t *p, uint64_t now)
{
    int healthy;
    health_status status = health_pool(p, &healthy);
    cJSON_AddStringToObject(o, "status", health_status_name(status));
    cJSON_AddNumberToObject(o, "healthy", healthy);
    cJSON_AddNumberToObject(o, "workers", p->pool_size);
    cJSON_AddBoolToObject(o, "backoff", supervisor_in_backoff(p));
    cJSON *slots = cJSON_AddArrayToObject(o, "backoffSlots");
    for (int i = 0; i < p->nworkers; i++) {
        const worker *w = &p->workers[i];
        if (!health_slot_in_backoff(w))
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "worker", w->name);
        cJSON_AddNumberToObject(e, "nextAttemptMs", w->respawn_due_ms > now ? (double)(w->respawn_due_ms - now) : 0);
        cJSON_AddNumberToObject(e, "startFailures", w->start_failures);
        cJSON_AddItemToArray(slots, e);
    }
    cJSON_AddNumberToObject(o, "restartsInWindow", supervisor_recent_restarts(p, now));
    cJSON_AddNumberToObject(o, "codeDrift", drift_live_workers(p));
    cJSON_AddNumberToObject(o, "deadLettersHeld", (double)dlqheld_count(p));
}

/* One pool's health with {"pool": NAME}; else the server's (ready when
 * every pool is, degraded when any is), its totals, and every pool's. */
static void control_health(client *c, const char *line, const scan_result *r)
{
    pool_t *only;
    if (data_pool(c, line, r, &only) < 0)
        return;
    uint64_t now = ap_now_ms();
    cJSON *o = cJSON_CreateObject();
    if (only) {
        add_pool_health(o, only, now);
        cJSON_AddStringToObject(o, "pool", only->name);
        answer_json(c, line, r, o);
        return;
    }
    if (server.npools == 1) {
        add_pool_health(o, server.pools[0], now); /* the totals are that pool's */
        cJSON_ReplaceItemInObjectCaseSensitive(o, "status", cJSON_CreateString(health_status_name(health_server(NULL))));
    } else {
        int healthy, workers = 0, backoff = 0, in_window = 0, drifted = 0;
        health_status status = health_server(&healthy);
        cJSON_AddStringToObject(o, "status", health_status_name(status));
        cJSON_AddNumberToObject(o, "healthy", healthy);
        cJSON *slots = cJSON_CreateArray();
        POOLS_FOREACH(p) {
            workers += p->pool_size;
            backoff |= supervisor_in_backoff(p);
            in_window += (int)supervisor_recent_restarts(p, now);
            drifted += drift_live_workers(p);
            cJSON *po = cJSON_CreateObject();
            add_pool_health(po, p, now);
            for (cJSON *e = cJSON_GetObjectItemCaseSensitive(po, "backoffSlots")->child; e; e = e->next)
                cJSON_AddItemToArray(slots, cJSON_Duplicate(e, 1));
            cJSON_Delete(po);
        }
        cJSON_AddNumberToObject(o, "workers", workers);
        cJSON_AddBoolToObject(o, "backoff", backoff);
        cJSON_AddItemToObject(o, "backoffSlots", slots);
        cJSON_AddNumberToObject(o, "restartsInWindow", in_window);
        cJSON_AddNumberToObject(o, "codeDrift", drifted);
        cJSON_AddNumberToObject(o, "deadLettersHeld", (double)dlqheld_count(NULL));
    }
    if (server.cfg->pools_named) {
        cJSON *pools = cJSON_AddObjectToObject(o, "pools");
        POOLS_FOREACH(p) add_pool_health(cJSON_AddObjectToObject(pools, p->name), p, now);
    }
    answer_json(c, line, r, o);
}

/* One pool's restart history with {"pool": NAME}, else every pool's,
 * oldest first (entries name their pool when the pools are named). */
static void control_history(client *c, const char *line, const scan_result *r)
{
    pool_t *only;
    if (data_pool(c, line, r, &only) < 0)
        return;
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "history");
    if (only) {
        supervisor_history_json(only, arr);
    } else {
        POOLS_FOREACH(p) supervisor_history_json(p, arr);
        history_sort(arr);
    }
    answer_json(c, line, r, o);
}

static void control_scale(client *c, const char *line, const scan_result *r)
{
    int64_t n = data_int(line, r, "workers", -1);
    if (n < 0) {
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST, "pool.scale needs {\"workers\": N}");
        return;
    }
    pool_t *p = target_pool(c, line, r);
    if (p == NULL)
        return;
    scale_result sr = scale_to(p, n > 100000 ? 100000 : (int)n, "pool.scale");
    cJSON *o = cJSON_CreateObject();
    if (server.cfg->pools_named)
        cJSON_AddStringToObject(o, "pool", p->name);
    cJSON_AddNumberToObject(o, "requested", (double)n);
    cJSON_AddNumberToObject(o, "before", sr.before);
    cJSON_AddNumberToObject(o, "workers", sr.after);
    cJSON_AddBoolToObject(o, "clamped", sr.clamped);
    cJSON_AddNumberToObject(o, "minWorkers", (double)p->cfg->min_workers);
    cJSON_AddNumberToObject(o, "maxWorkers", (double)p->cfg->max_workers);
    answer_json(c, line, r, o);
}

/* Answered when the reload ends (or at once if refused): reload.c.  One
 * pool with {"pool": NAME}, else every pool, one after another. */
static void control_reload(client *c, const char *line, const scan_result *r)
{
    pool_t *p;
    if (data_pool(c, line, r, &p) < 0)
        return;
    client_deferred(c, 1); /* answer_later takes it back */
    reload_start("pool.reload", p ? p->name : NULL, c->serial, r->id_kind != SCAN_ID_NONE ? line + r->id.off : NULL,
                 r->id_kind != SCAN_ID_NONE ? r->id.len : 0);
}

static void control_dlq(client *c, const char *line, const scan_result *r)
{
    char err[512];
    pool_t *p = target_pool(c, line, r);
    if (p == NULL)
        return;
    cJSON *o = dlq_request(p, r->type + sizeof("pool.dlq.") - 1, line, r, err, sizeof(err));
    if (o)
        answer_json(c, line, r, o);
    else
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST, err);
}

/* pool.cancel {"id": X}: cancel.c stops c's own request X (answered
 * `cancelled` on its own line, written first) and says what it found. */
static void control_cancel(client *c, const char *line, const scan_result *r)
{
    scan_span id;
    const char *data = line + r->data.off;
    if (cancel_target(data, r->data.len, &id) != AP_OK) {
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST,
                              "pool.cancel needs {\"id\": ID}: the id (a string or an integer) of a request in flight on "
                              "this connection");
        return;
    }
    cancel_found f = cancel_request(c, data + id.off, id.len);
    char body[40];
    int n = snprintf(body, sizeof(body), "{\"found\":\"%s\"}", cancel_found_name(f));
    answer_request_ok(c, line, r, body, (size_t)n);
}

/* pool.session.get / .delete / .list: sessadmin.c, answered when the
 * pool's session store answers. */
static void control_session(client *c, const char *line, const scan_result *r)
{
    pool_t *p = target_pool(c, line, r);
    if (p)
        sessadmin_request(c, line, r, p);
}

typedef void (*control_fn)(client *c, const char *line, const scan_result *r);

/* Who may ask: anyone allowed on the socket, or only admins
 * (adminUids/adminGids, privs.h): requests that change the pool or show
 * what is not the asker's own (dead letters are other clients'
 * requests; pids and exit statuses of the workers; what agents report
 * about themselves). */
enum {
    CONTROL_OPEN = 0,
    CONTROL_ADMIN = 1,          /* always */
    CONTROL_ADMIN_DETAILED = 2, /* with {"detailed": true} */
};

static const struct {
    const char *type;
    control_fn fn;
    unsigned who;
} control_handlers[] = {
    {"pool.ping", control_ping, CONTROL_OPEN},
    {"pool.cancel", control_cancel, CONTROL_OPEN}, /* only the asker's own requests */
    {"pool.health", control_health, CONTROL_OPEN},
    {"pool.stats", control_stats, CONTROL_ADMIN_DETAILED},
    {"pool.history", control_history, CONTROL_ADMIN},
    {"pool.scale", control_scale, CONTROL_ADMIN},
    {"pool.reload", control_reload, CONTROL_ADMIN},
    {"pool.dlq.list", control_dlq, CONTROL_ADMIN},
    {"pool.dlq.remove", control_dlq, CONTROL_ADMIN},
    {"pool.dlq.purge", control_dlq, CONTROL_ADMIN},
    {"pool.session.get", control_session, CONTROL_ADMIN}, /* conversations of every client */
    {"pool.session.delete", control_session, CONTROL_ADMIN},
    {"pool.session.list", control_session, CONTROL_ADMIN},
    {"pool.subscribe", events_subscribe, CONTROL_ADMIN}, /* pids, exit statuses, others' message ids */
    {"pool.unsubscribe", events_unsubscribe, CONTROL_OPEN}, /* only its own subscription */
};

/* The one admin check: 1 when c may make this request; else it was
 * answered forbidden (counted in errors.forbidden) and 0 returned. */
static int control_allowed(client *c, const char *line, const scan_result *r, unsigned who)
{
    if (who == CONTROL_OPEN || (who == CONTROL_ADMIN_DETAILED && !data_flag(line, r, "detailed")))
        return 1;
    if (privs_peer_is_admin(c->peer_uid, c->peer_gid))
        return 1;
    char why[512];
    snprintf(why, sizeof(why), "%s%s is for administrators: uid %d (gid %d) is in neither adminUids nor adminGids",
             r->type, who == CONTROL_ADMIN_DETAILED ? " with detailed" : "", (int)c->peer_uid, (int)c->peer_gid);
    ap_info("client-%llu (pid %d uid %d): forbidden: %s", (unsigned long long)c->serial, (int)c->peer_pid,
            (int)c->peer_uid, r->type);
    answer_control_refuse(c, line, r, ERR_FORBIDDEN, why);
    return 0;
}

void control_handle(client *c, const char *line, const scan_result *r)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(control_handlers); i++)
        if (strcmp(r->type, control_handlers[i].type) == 0) {
            if (control_allowed(c, line, r, control_handlers[i].who))
                control_handlers[i].fn(c, line, r);
            return;
        }
    char why[320];
    size_t n = (size_t)snprintf(why, sizeof(why), "unknown pool request type (known: ");
    for (size_t i = 0; i < AP_ARRAY_LEN(control_handlers) && n < sizeof(why); i++)
        n += (size_t)snprintf(why + n, sizeof(why) - n, "%s%s", i ? ", " : "", control_handlers[i].type);
    if (n < sizeof(why))
        snprintf(why + n, sizeof(why) - n, ")");
    answer_control_refuse(c, line, r, ERR_BAD_REQUEST, why);
}
