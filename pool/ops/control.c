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
#include "supervisor.h"
#include "suspect.h"
#include "dlq.h"
#include "dlqheld.h"
#include "scale.h"
#include "reload.h"
#include "breaker.h"
#include "typetab.h"
#include "metrics.h"
#include "alert.h"
#include "agentstat.h"
#include "health.h"
#include "drift.h"
#include "wout.h"
#include "wprog.h"
#include "privs.h"
#include "ap_log.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
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

/* throughput, latency, queueWait, oldestQueuedAge, types, memory. */
static void add_metrics(cJSON *o, uint64_t now)
{
    metrics *mt = server.metrics;
    cJSON *tp = cJSON_AddObjectToObject(o, "throughput");
    cJSON_AddNumberToObject(tp, "1s", metrics_throughput(mt, now, 1));
    cJSON_AddNumberToObject(tp, "10s", metrics_throughput(mt, now, 10));
    cJSON_AddNumberToObject(tp, "60s", metrics_throughput(mt, now, 60));
    hist_summary h;
    metrics_latency(mt, now, &h);
    add_summary(o, "latency", &h);
    metrics_queue_wait(mt, now, &h);
    add_summary(o, "queueWait", &h);
    const queue_link *head = queue_peek(&server.queue);
    uint64_t now_ns = ap_now_ns(), age = 0;
    if (head) {
        const msg *m = msg_from_qlink(head);
        age = now_ns > m->accepted_ns ? (now_ns - m->accepted_ns) / 1000000u : 0;
    }
    cJSON_AddNumberToObject(o, "oldestQueuedAge", (double)age);
    cJSON *ty = cJSON_AddObjectToObject(o, "types");
    for (unsigned i = 0; i < typetab_count(server.types); i++) {
        cJSON *t = cJSON_AddObjectToObject(ty, typetab_name(server.types, i));
        cJSON_AddNumberToObject(t, "ok", (double)metrics_type_ok(mt, i));
        cJSON *e = cJSON_AddObjectToObject(t, "errors");
        for (int c = 0; c < ERR_COUNT; c++) {
            uint64_t n = metrics_type_errors(mt, i, (reply_code)c);
            if (n)
                cJSON_AddNumberToObject(e, reply_code_name((reply_code)c), (double)n);
        }
    }
    uint64_t allocated, resident;
    metrics_memory(mt, now, &allocated, &resident);
    cJSON *mem = cJSON_AddObjectToObject(o, "memory");
    cJSON_AddNumberToObject(mem, "allocated", (double)allocated);
    cJSON_AddNumberToObject(mem, "resident", (double)resident);
}

static cJSON *worker_json(const worker *w, uint64_t now, uint64_t wall)
{
    cJSON *o = cJSON_CreateObject();
    int live = w->state != WORKER_DEAD;
    cJSON_AddStringToObject(o, "id", w->name);
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
    cJSON_AddNumberToObject(o, "errors", w->slot >= 0 ? (double)server.slot_errors[w->slot] : 0);
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

cJSON *control_stats_json(int detailed)
{
    uint64_t now = ap_now_ms();
    int total = 0, available = 0, busy = 0, healthy = 0, slots = 0, in_flight = 0;
    uint64_t age_sum = 0, oldest = 0;
    for (int i = 0; i < server.nworkers; i++) {
        const worker *w = &server.workers[i];
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
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", health_status_name(health_pool(NULL)));
    cJSON_AddNumberToObject(o, "total", total);
    cJSON_AddNumberToObject(o, "poolSize", server.pool_size);
    cJSON_AddNumberToObject(o, "available", available);
    cJSON_AddNumberToObject(o, "busy", busy);
    cJSON_AddNumberToObject(o, "healthy", healthy);
    cJSON_AddNumberToObject(o, "totalMessagesProcessed", (double)server.stats.processed);
    cJSON_AddNumberToObject(o, "averageWorkerAge", total ? (double)(age_sum / (uint64_t)total) : 0);
    cJSON_AddNumberToObject(o, "oldestWorker", (double)oldest);
    cJSON_AddNumberToObject(o, "slots", slots);
    cJSON_AddNumberToObject(o, "inFlight", in_flight);
    cJSON *q = cJSON_AddObjectToObject(o, "queue");
    cJSON_AddNumberToObject(q, "depth", (double)server.queue.depth);
    cJSON_AddNumberToObject(q, "capacity", (double)server.queue.capacity);
    cJSON_AddNumberToObject(q, "highWatermark", (double)server.queue.high_watermark);
    cJSON_AddNumberToObject(q, "rejected", (double)server.queue.rejected);
    cJSON_AddNumberToObject(o, "connections", server.nclients);
    cJSON_AddNumberToObject(o, "uptime", (double)(now - server.started_ms));
    add_code_counts(cJSON_AddObjectToObject(o, "errors"), server.stats.errors, 0);
    cJSON *m = cJSON_AddObjectToObject(o, "messages");
    cJSON_AddNumberToObject(m, "accepted", (double)server.stats.accepted);
    cJSON_AddNumberToObject(m, "answeredOk", (double)server.stats.answered_ok);
    cJSON *ident = cJSON_AddObjectToObject(o, "code");
    cJSON_AddStringToObject(ident, "identity", drift_identity());
    cJSON_AddNumberToObject(ident, "drift", (double)drift_total());
    cJSON_AddNumberToObject(ident, "driftedWorkers", drift_live_workers());
    cJSON_AddBoolToObject(ident, "pinCode", server.cfg->pin_code);
    cJSON *ctl = cJSON_AddObjectToObject(o, "control");
    cJSON_AddNumberToObject(ctl, "ok", (double)server.stats.control_ok);
    add_code_counts(cJSON_AddObjectToObject(ctl, "errors"), server.stats.control_errors, 1);
    cJSON_AddNumberToObject(m, "held", (double)server.msgs.by_state[MSG_HELD]);
    cJSON_AddNumberToObject(m, "cancelled", (double)server.stats.cancelled);
    cJSON_AddNumberToObject(m, "droppedResults", (double)server.stats.dropped_results);
    cJSON_AddNumberToObject(m, "pendingBytes", (double)server.pending_bytes);
    cJSON *sm = cJSON_AddObjectToObject(o, "streams");
    cJSON_AddNumberToObject(sm, "open", (double)server.streams_open);
    cJSON_AddNumberToObject(sm, "total", (double)server.stats.streams);
    cJSON_AddNumberToObject(sm, "chunksSent", (double)server.stats.chunks_sent);
    cJSON_AddNumberToObject(sm, "chunkBytesSent", (double)server.stats.chunk_bytes_sent);
    cJSON_AddNumberToObject(sm, "chunksCollected", (double)server.stats.chunks_collected);
    cJSON_AddNumberToObject(sm, "chunksDropped", (double)server.stats.chunks_dropped);
    cJSON_AddNumberToObject(sm, "heartbeats", (double)server.stats.heartbeats);
    cJSON *se = cJSON_AddObjectToObject(sm, "ended");
    cJSON_AddNumberToObject(se, "ok", (double)server.stats.streams_ended[ERR_COUNT]);
    add_code_counts(se, server.stats.streams_ended, 1);
    cJSON *c = cJSON_AddObjectToObject(o, "connectionsTotal");
    cJSON_AddNumberToObject(c, "accepted", (double)server.stats.conns_accepted);
    cJSON_AddNumberToObject(c, "rejected", (double)server.stats.conns_rejected);
    cJSON_AddNumberToObject(c, "refusedPeers", (double)server.stats.conns_refused_peer);
    cJSON_AddNumberToObject(c, "rejectedPerUid", (double)server.stats.conns_rejected_uid);
    cJSON_AddNumberToObject(c, "idleClosed", (double)server.stats.conns_idle_closed);
    cJSON_AddNumberToObject(c, "halfClosed", (double)server.stats.conns_half_closed);
    cJSON_AddNumberToObject(c, "writeTimeouts", (double)server.stats.write_timeouts);
    cJSON *bf = cJSON_AddObjectToObject(o, "buffered");
    cJSON_AddNumberToObject(bf, "bytes", (double)server.out_bytes);
    cJSON_AddNumberToObject(bf, "highWatermark", (double)server.out_high);
    cJSON_AddNumberToObject(bf, "max", (double)server.cfg->max_buffered_bytes);
    cJSON_AddNumberToObject(bf, "budgetPaused", server.budget_paused);
    cJSON_AddNumberToObject(bf, "budgetPauses", (double)server.stats.budget_pauses);
    cJSON_AddNumberToObject(bf, "outputPauses", (double)server.stats.output_pauses);
    cJSON_AddNumberToObject(bf, "parkedMessages", (double)server.stats.parked_msgs);
    cJSON *wk = cJSON_AddObjectToObject(o, "workerEvents");
    cJSON_AddNumberToObject(wk, "spawned", (double)server.stats.spawns);
    cJSON_AddNumberToObject(wk, "crashed", (double)server.stats.crashes);
    cJSON_AddNumberToObject(wk, "killedStuck", (double)server.stats.stuck_kills);
    cJSON_AddNumberToObject(wk, "recycled", (double)server.stats.recycles);
    cJSON *wf = cJSON_AddObjectToObject(o, "workerFaults");
    cJSON_AddNumberToObject(wf, "framesOutOfPlace", (double)server.stats.frames_out_of_place);
    cJSON_AddNumberToObject(wf, "badProgressPages", (double)server.stats.bad_progress_pages);
    cJSON_AddNumberToObject(wf, "suspected", (double)server.stats.suspected);
    cJSON_AddNumberToObject(wf, "suspectNow", suspect_count());
    cJSON_AddNumberToObject(wf, "rerouted", (double)server.stats.rerouted);
    cJSON_AddNumberToObject(wf, "hubBlocked", (double)wprog_hub_blocked_total());
    cJSON_AddNumberToObject(o, "logLinesDropped", (double)wout_dropped_total());
    cJSON_AddNumberToObject(o, "logWriteDropped", (double)access_log_dropped());
    cJSON_AddNumberToObject(o, "accessLogDropped", (double)access_access_dropped());
    cJSON *rs = cJSON_AddObjectToObject(o, "restarts");
    for (int r = SUP_CRASHED; r < SUP_REASON_COUNT; r++)
        cJSON_AddNumberToObject(rs, supervisor_reason_name((sup_reason)r), (double)supervisor_ends((sup_reason)r));
    cJSON_AddNumberToObject(rs, "inWindow", supervisor_recent_restarts(now));
    cJSON_AddBoolToObject(rs, "backoff", supervisor_in_backoff());
    cJSON_AddNumberToObject(m, "retried", (double)server.stats.retries);
    cJSON_AddNumberToObject(m, "deadLettered", (double)server.stats.dead_lettered);
    cJSON_AddNumberToObject(m, "failedUncharged", (double)server.stats.failed_uncharged);
    cJSON_AddNumberToObject(m, "lateResults", (double)server.stats.late_results);
    cJSON *cn = cJSON_AddObjectToObject(m, "cancels");
    for (int f = 0; f < CANCEL_FOUND_COUNT; f++)
        cJSON_AddNumberToObject(cn, cancel_found_name((cancel_found)f), (double)server.stats.cancels[f]);
    cJSON_AddNumberToObject(m, "prefetched", (double)server.dispatch.ahead);
    cJSON_AddNumberToObject(m, "retryWaiting", (double)server.msgs.by_state[MSG_RETRY_WAIT]);
    cJSON_AddStringToObject(o, "strategy", config_strategy_name(server.cfg->strategy));
    cJSON_AddStringToObject(o, "overflow", config_overflow_name(server.cfg->overflow));
    cJSON_AddNumberToObject(o, "pid", server.pid);
    cJSON_AddStringToObject(o, "allocator", ap_alloc_name());
    if (breaker_enabled(server.breakers)) {
        cJSON *bs = cJSON_AddObjectToObject(o, "breakers");
        for (unsigned i = 0; i < typetab_count(server.types); i++) {
            breaker_info bi;
            breaker_info_of(server.breakers, i, now, &bi);
            if (bi.state == BREAKER_CLOSED && bi.failures == 0 && bi.rejected == 0)
                continue;
            cJSON *b = cJSON_AddObjectToObject(bs, typetab_name(server.types, i));
            cJSON_AddStringToObject(b, "state", breaker_state_name(bi.state));
            cJSON_AddNumberToObject(b, "failuresInWindow", bi.failures_in_window);
            cJSON_AddNumberToObject(b, "retryAfterMs", (double)bi.retry_after_ms);
            cJSON_AddNumberToObject(b, "opened", (double)bi.opened);
            cJSON_AddNumberToObject(b, "rejected", (double)bi.rejected);
        }
    }
    cJSON *dl = cJSON_AddObjectToObject(o, "deadLetters");
    cJSON_AddStringToObject(dl, "file", server.dlq ? dlq_path(server.dlq) : "");
    cJSON_AddNumberToObject(dl, "records", server.dlq ? (double)dlq_count(server.dlq) : 0);
    cJSON_AddNumberToObject(dl, "writeErrors", (double)server.stats.dead_letter_errors);
    cJSON_AddNumberToObject(dl, "held", (double)dlqheld_count());
    cJSON_AddNumberToObject(dl, "heldDropped", (double)dlqheld_dropped());
    dlq_stats ds = {0, 0, 0, 0, 0};
    if (server.dlq)
        dlq_get_stats(server.dlq, &ds);
    cJSON_AddNumberToObject(dl, "rollErrors", (double)ds.roll_errors);
    add_metrics(o, now);
    cJSON_AddItemToObject(o, "alerts", alert_json());
    if (detailed) {
        /* In slot order; a slot being handed over shows both processes. */
        uint64_t wall = ap_wall_ms();
        cJSON *arr = cJSON_AddArrayToObject(o, "workers");
        for (int slot = 0; slot < server.cfg->max_workers; slot++)
            for (int i = 0; i < server.nworkers; i++)
                if (server.workers[i].slot == slot)
                    cJSON_AddItemToArray(arr, worker_json(&server.workers[i], now, wall));
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
 * pool.dlq.purge.  Returns the answer, or NULL with err set. */
static cJSON *dlq_request(const char *op, const char *line, const scan_result *r, char *err, size_t errlen)
{
    if (server.dlq == NULL) {
        snprintf(err, errlen, "the dead-letter file is not open (see the server log)");
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    if (strcmp(op, "list") == 0) {
        int64_t offset = data_int(line, r, "offset", 0), limit = data_int(line, r, "limit", 100);
        if (limit <= 0 || limit > DLQ_LIST_MAX)
            limit = DLQ_LIST_MAX;
        cJSON_AddStringToObject(o, "file", dlq_path(server.dlq));
        cJSON_AddNumberToObject(o, "total", (double)dlq_count(server.dlq));
        cJSON_AddNumberToObject(o, "offset", (double)offset);
        cJSON *arr = cJSON_AddArrayToObject(o, "records");
        if (dlq_list(server.dlq, (uint64_t)offset, (uint64_t)limit, list_record_cb, arr, err, errlen) != AP_OK)
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
        int rc = dlq_remove(server.dlq, v, k, &removed, err, errlen);
        ap_free(v);
        cJSON_Delete(root);
        if (rc != AP_OK)
            goto fail;
        cJSON_AddNumberToObject(o, "removed", (double)removed);
    } else if (strcmp(op, "purge") == 0) {
        uint64_t before = dlq_count(server.dlq);
        if (dlq_purge(server.dlq, err, errlen) != AP_OK)
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

/* ---- one handler per request type ------------------------------------ */

static void control_ping(client *c, const char *line, const scan_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "pong", 1);
    cJSON_AddStringToObject(o, "state", health_status_name(health_pool(NULL)));
    answer_json(c, line, r, o);
}

/* A detailed pool.stats waiting for the agents' metrics (agentstat.c). */
typedef struct {
    uint64_t serial;
    size_t id_len;
    char id[];
} stats_waiter;

static void stats_waiter_done(void *arg, int reply_now)
{
    stats_waiter *sw = arg;
    if (reply_now) {
        cJSON *o = control_stats_json(1);
        char *text = cJSON_PrintUnformatted(o);
        answer_later(sw->serial, sw->id_len ? sw->id : NULL, sw->id_len, text, ERR_OTHER, NULL, NULL);
        cJSON_free(text);
        cJSON_Delete(o);
    }
    ap_free(sw);
}

/* At once, unless detailed and some agent's metrics are to be asked for
 * first (then answered when they are in, bounded: agentstat.h). */
static void control_stats(client *c, const char *line, const scan_result *r)
{
    int detailed = data_flag(line, r, "detailed");
    if (detailed) {
        size_t id_len = r->id_kind != SCAN_ID_NONE ? r->id.len : 0;
        stats_waiter *sw = ap_malloc(sizeof(*sw) + id_len + 1);
        sw->serial = c->serial;
        sw->id_len = id_len;
        memcpy(sw->id, line + r->id.off, id_len);
        sw->id[id_len] = '\0';
        client_deferred(c, 1); /* not idle while its answer is due */
        if (c->serial != 0 && agentstat_refresh(stats_waiter_done, sw))
            return;
        client_deferred(c, -1);
        ap_free(sw);
    }
    answer_json(c, line, r, control_stats_json(detailed));
}

static void control_health(client *c, const char *line, const scan_result *r)
{
    int healthy;
    health_status status = health_pool(&healthy);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", health_status_name(status));
    cJSON_AddNumberToObject(o, "healthy", healthy);
    cJSON_AddNumberToObject(o, "workers", server.pool_size);
    cJSON_AddBoolToObject(o, "backoff", supervisor_in_backoff());
    cJSON *slots = cJSON_AddArrayToObject(o, "backoffSlots");
    uint64_t now = ap_now_ms();
    for (int i = 0; i < server.nworkers; i++) {
        const worker *w = &server.workers[i];
        if (!health_slot_in_backoff(w))
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "worker", w->name);
        cJSON_AddNumberToObject(e, "nextAttemptMs", w->respawn_due_ms > now ? (double)(w->respawn_due_ms - now) : 0);
        cJSON_AddNumberToObject(e, "startFailures", w->start_failures);
        cJSON_AddItemToArray(slots, e);
    }
    cJSON_AddNumberToObject(o, "restartsInWindow", supervisor_recent_restarts(now));
    cJSON_AddNumberToObject(o, "codeDrift", drift_live_workers());
    cJSON_AddNumberToObject(o, "deadLettersHeld", (double)dlqheld_count());
    answer_json(c, line, r, o);
}

static void control_history(client *c, const char *line, const scan_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "history", supervisor_history_json());
    answer_json(c, line, r, o);
}

static void control_scale(client *c, const char *line, const scan_result *r)
{
    int64_t n = data_int(line, r, "workers", -1);
    if (n < 0) {
        answer_control_refuse(c, line, r, ERR_BAD_REQUEST, "pool.scale needs {\"workers\": N}");
        return;
    }
    scale_result sr = scale_to(n > 100000 ? 100000 : (int)n, "pool.scale");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "requested", (double)n);
    cJSON_AddNumberToObject(o, "before", sr.before);
    cJSON_AddNumberToObject(o, "workers", sr.after);
    cJSON_AddBoolToObject(o, "clamped", sr.clamped);
    cJSON_AddNumberToObject(o, "minWorkers", (double)server.cfg->min_workers);
    cJSON_AddNumberToObject(o, "maxWorkers", (double)server.cfg->max_workers);
    answer_json(c, line, r, o);
}

/* Answered when the reload ends (or at once if refused): reload.c. */
static void control_reload(client *c, const char *line, const scan_result *r)
{
    client_deferred(c, 1); /* answer_later takes it back */
    reload_start("pool.reload", c->serial, r->id_kind != SCAN_ID_NONE ? line + r->id.off : NULL,
                 r->id_kind != SCAN_ID_NONE ? r->id.len : 0);
}

static void control_dlq(client *c, const char *line, const scan_result *r)
{
    char err[512];
    cJSON *o = dlq_request(r->type + sizeof("pool.dlq.") - 1, line, r, err, sizeof(err));
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
