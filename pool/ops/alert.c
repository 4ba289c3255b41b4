/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * alert.c - alert thresholds: predicates, state and their log lines (see
 * alert.h).
 *
 * Each alert is a row of alert_defs: a name, a log level and a check
 * that reads integers the master keeps anyway (worker state counts, the
 * queue's depth, metrics.c's per-second answer and error rings) into an
 * alert_reading {enabled, on, num, den, threshold}.  Percentages are
 * compared in integers (num * 100 against threshold * den), so a tick
 * costs a few compares, one pass over the worker table and two 60-slot
 * sums; text is formatted only when a line is written.  Alerts are
 * evaluated per pool (each reads its own workers, queue and answers, and
 * its lines name it when the pools are named): the state is a pool's
 * alert_state, one entry per alert; only alert_tick changes it.  The log
 * rule: an activation is logged unless the same alert was logged within
 * alertInterval (it is then counted, and told with the next line); a
 * lasting alert is logged again each alertInterval; a clearing is logged
 * only when its activation was, so a flapping condition writes at most
 * one warning and one "cleared" per interval.
 */
#include "alert.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "broker.h"
#include "events.h"
#include "health.h"
#include "metrics.h"
#include "promtext.h"
#include "server.h"

#include <cJSON.h>
#include <stdio.h>

typedef enum { ALERT_AVAILABLE = 0, ALERT_QUEUE, ALERT_ERROR_RATE, ALERT_NO_HEALTHY, ALERT_BROKER_DOWN, ALERT_COUNT } alert_id;

typedef struct {
    int enabled;                /* its threshold is not 0 */
    int on;                     /* the condition holds */
    uint64_t num, den;          /* what was measured: num of den */
    int64_t threshold;          /* percent (no_healthy_worker: 1 healthy) */
} alert_reading;

typedef void (*alert_check_fn)(const pool_t *p, uint64_t now_ms, alert_reading *r);

static void check_available(const pool_t *p, uint64_t now_ms, alert_reading *r);
static void check_queue(const pool_t *p, uint64_t now_ms, alert_reading *r);
static void check_error_rate(const pool_t *p, uint64_t now_ms, alert_reading *r);
static void check_no_healthy(const pool_t *p, uint64_t now_ms, alert_reading *r);
static void check_broker_down(const pool_t *p, uint64_t now_ms, alert_reading *r);

static const struct {
    const char *name;
    ap_log_level level;
    alert_check_fn check;
} alert_defs[ALERT_COUNT] = {
    {"low_available_workers", AP_LOG_WARN, check_available},
    {"queue_nearly_full", AP_LOG_WARN, check_queue},
    {"high_error_rate", AP_LOG_WARN, check_error_rate},
    {"no_healthy_worker", AP_LOG_CRIT, check_no_healthy},
    {"broker_down", AP_LOG_WARN, check_broker_down},
};

struct alert_state {
    struct {
        int active;
        int told;               /* this activation was logged */
        int ever_logged;
        uint64_t since_ms;      /* monotonic: when it became active */
        uint64_t logged_ms;     /* monotonic: its last log line */
        unsigned unlogged;      /* activations not logged since that line */
        alert_reading r;        /* the last reading */
    } a[ALERT_COUNT];
};

void alert_init(pool_t *p)
{
    p->alerts = ap_calloc(1, sizeof(struct alert_state));
}

void alert_free(pool_t *p)
{
    ap_free(p->alerts);
    p->alerts = NULL;
}

/* ---- the predicates -------------------------------------------------- */

/* Fewer than alertAvailableBelow percent of the live workers have a free
 * slot (READY: taking messages, in-flight below its slots). */
static void check_available(const pool_t *p, uint64_t now_ms, alert_reading *r)
{
    (void)now_ms;
    r->threshold = p->cfg->alert_available_below;
    r->enabled = r->threshold > 0;
    r->num = (uint64_t)worker_count_in(p, WORKER_READY);
    r->den = (uint64_t)worker_live_count(p);
    r->on = r->enabled && r->den > 0 && r->num * 100 < (uint64_t)r->threshold * r->den;
}

/* The queue holds more than alertQueueAbove percent of messageQueueSize. */
static void check_queue(const pool_t *p, uint64_t now_ms, alert_reading *r)
{
    (void)now_ms;
    r->threshold = p->cfg->alert_queue_above;
    r->enabled = r->threshold > 0;
    r->num = p->queue.depth;
    r->den = p->queue.capacity;
    r->on = r->enabled && r->den > 0 && r->num * 100 > (uint64_t)r->threshold * r->den;
}

/* More than alertErrorRateAbove percent of the answers written over the
 * last 60 s were errors (any code), once there were enough of them for a
 * percentage to mean something. */
static void check_error_rate(const pool_t *p, uint64_t now_ms, alert_reading *r)
{
    r->threshold = p->cfg->alert_error_rate_above;
    r->enabled = r->threshold > 0;
    if (!r->enabled) {
        r->on = 0;
        r->num = r->den = 0;
        return;
    }
    r->den = metrics_answers_in(p->metrics, now_ms, 60);
    r->num = metrics_errors_in(p->metrics, now_ms, 60);
    r->on = r->den >= ALERT_ERROR_RATE_MIN_ANSWERS && r->num * 100 > (uint64_t)r->threshold * r->den;
}

/* No healthy worker (health.c: taking messages and answering its
 * heartbeats).  Always on. */
static void check_no_healthy(const pool_t *p, uint64_t now_ms, alert_reading *r)
{
    (void)now_ms;
    int healthy;
    health_pool(p, &healthy);
    r->threshold = 1;
    r->enabled = 1;
    r->num = (uint64_t)healthy;
    r->den = (uint64_t)worker_live_count(p);
    r->on = healthy == 0;
}

/* The pool's broker (broker.h) has been out of touch with its Redis for
 * brokerDownAlertMs or more (num: ms out).  Off without a broker or with
 * downAlertMs 0. */
static void check_broker_down(const pool_t *p, uint64_t now_ms, alert_reading *r)
{
    uint64_t limit = broker_down_alert_ms(p), down = broker_down_ms(p, now_ms);
    r->threshold = (int64_t)limit;
    r->enabled = limit > 0;
    r->num = down;
    r->den = limit;
    r->on = r->enabled && down >= limit;
}

/* ---- state and log lines --------------------------------------------- */

/* num of den as a percentage, to one decimal. */
static double percent(uint64_t num, uint64_t den)
{
    return den ? (double)((num * 1000 + den / 2) / den) / 10.0 : 0.0;
}

static double alert_value(alert_id id, const alert_reading *r)
{
    return id == ALERT_NO_HEALTHY || id == ALERT_BROKER_DOWN ? (double)r->num : percent(r->num, r->den);
}

/* Writes alert id's line; again: it has been active since before. */
static void alert_log(pool_t *p, alert_id id, uint64_t now_ms, int again)
{
    struct alert_state *alerts = p->alerts;
    const alert_reading *r = &alerts->a[id].r;
    unsigned long long num = (unsigned long long)r->num, den = (unsigned long long)r->den;
    long long thr = (long long)r->threshold;
    char what[192], tail[128];
    switch (id) {
    case ALERT_AVAILABLE:
        snprintf(what, sizeof(what), "%llu of %llu workers have a free slot (%.1f%%, below alertAvailableBelow %lld%%)",
                 num, den, percent(r->num, r->den), thr);
        break;
    case ALERT_QUEUE:
        snprintf(what, sizeof(what), "%llu messages queued of messageQueueSize %llu (%.1f%%, above alertQueueAbove %lld%%)",
                 num, den, percent(r->num, r->den), thr);
        break;
    case ALERT_ERROR_RATE:
        snprintf(what, sizeof(what),
                 "%llu of the %llu answers of the last minute were errors (%.1f%%, above alertErrorRateAbove %lld%%)", num,
                 den, percent(r->num, r->den), thr);
        break;
    case ALERT_BROKER_DOWN:
        snprintf(what, sizeof(what), "the broker has been out of touch with its Redis for %llu ms (downAlertMs %lld): %.100s",
                 num, thr, broker_down_why(p));
        break;
    default:
        snprintf(what, sizeof(what), "none of the %llu live workers takes messages and answers its heartbeats", den);
        break;
    }
    size_t n = 0;
    tail[0] = '\0';
    if (again)
        n += (size_t)snprintf(tail, sizeof(tail), "; active for %llu s",
                              (unsigned long long)((now_ms - alerts->a[id].since_ms) / 1000));
    if (alerts->a[id].unlogged && n < sizeof(tail))
        snprintf(tail + n, sizeof(tail) - n, "; %u more activation%s since the last warning", alerts->a[id].unlogged,
                 alerts->a[id].unlogged == 1 ? "" : "s");
    if (server.cfg->pools_named)
        ap_log(alert_defs[id].level, "alert %s in pool %s: %s%s", alert_defs[id].name, p->name, what, tail);
    else
        ap_log(alert_defs[id].level, "alert %s: %s%s", alert_defs[id].name, what, tail);
    alerts->a[id].logged_ms = now_ms;
    alerts->a[id].ever_logged = 1;
    alerts->a[id].unlogged = 0;
    alerts->a[id].told = 1;
}

void alert_tick(pool_t *p, uint64_t now_ms)
{
    struct alert_state *alerts = p->alerts;
    if (server.state != SERVER_READY) {
        /* Draining or stopping: what was judged while serving no longer
         * applies; stats and /metrics stop showing it. */
        for (int i = 0; i < ALERT_COUNT; i++)
            alerts->a[i].active = alerts->a[i].told = 0;
        return;
    }
    uint64_t interval = (uint64_t)p->cfg->alert_interval;
    for (int i = 0; i < ALERT_COUNT; i++) {
        alert_id id = (alert_id)i;
        alert_reading r;
        alert_defs[i].check(p, now_ms, &r);
        alerts->a[i].r = r;
        int quiet = alerts->a[i].ever_logged && now_ms - alerts->a[i].logged_ms < interval;
        if (r.on && !alerts->a[i].active) {
            alerts->a[i].active = 1;
            alerts->a[i].since_ms = now_ms;
            alerts->a[i].told = 0;
            events_emit(p, EVENTS_ALERT_RAISED, alert_defs[i].level == AP_LOG_CRIT ? EVENTS_CRITICAL : EVENTS_NORMAL,
                        "\"alert\":\"%s\",\"level\":\"%s\",\"value\":%llu,\"of\":%llu,\"threshold\":%lld",
                        alert_defs[i].name, alert_defs[i].level == AP_LOG_CRIT ? "critical" : "warning",
                        (unsigned long long)r.num, (unsigned long long)r.den, (long long)r.threshold);
            if (quiet)
                alerts->a[i].unlogged++;
            else
                alert_log(p, id, now_ms, 0);
        } else if (r.on && !quiet) {
            alert_log(p, id, now_ms, 1);
        } else if (!r.on && alerts->a[i].active) {
            alerts->a[i].active = 0;
            events_emit(p, EVENTS_ALERT_CLEARED, EVENTS_NORMAL, "\"alert\":\"%s\",\"activeMs\":%llu", alert_defs[i].name,
                        (unsigned long long)(now_ms - alerts->a[i].since_ms));
            if (alerts->a[i].told)
                ap_info("alert %s%s%s cleared (active for %llu ms)", alert_defs[i].name,
                        server.cfg->pools_named ? " in pool " : "", server.cfg->pools_named ? p->name : "",
                        (unsigned long long)(now_ms - alerts->a[i].since_ms));
            alerts->a[i].told = 0;
        }
    }
}

/* ---- readers ----------------------------------------------------------- */

cJSON *alert_json(const pool_t *p, cJSON *arr)
{
    const struct alert_state *alerts = p->alerts;
    uint64_t now = ap_now_ms(), wall = ap_wall_ms();
    for (int i = 0; i < ALERT_COUNT; i++) {
        if (!alerts->a[i].active)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", alert_defs[i].name);
        if (server.cfg->pools_named)
            cJSON_AddStringToObject(o, "pool", p->name);
        cJSON_AddStringToObject(o, "level", alert_defs[i].level == AP_LOG_CRIT ? "critical" : "warning");
        cJSON_AddNumberToObject(o, "since", (double)(wall - (now - alerts->a[i].since_ms)));
        cJSON_AddNumberToObject(o, "value", alert_value((alert_id)i, &alerts->a[i].r));
        cJSON_AddNumberToObject(o, "threshold", (double)alerts->a[i].r.threshold);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

void alert_prometheus(struct evbuffer *out)
{
    promtext_family(out, "agentpool_alert_active", "gauge",
                    "1 while the alert is active (see docs/operations.md, Alerts), else 0; disabled alerts are 0.");
    POOLS_FOREACH(p) {
        for (int i = 0; i < ALERT_COUNT; i++) {
            promtext_label l[2] = {{"pool", p->name}, {"alert", alert_defs[i].name}};
            int k = server.cfg->pools_named ? 0 : 1; /* one unnamed pool: no pool label */
            promtext_u64(out, "agentpool_alert_active", l + k, 2 - (unsigned)k, (uint64_t)p->alerts->a[i].active);
        }
    }
}
