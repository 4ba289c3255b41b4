/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agentev.c - events agents publish, and their delivery to agents that
 * subscribe (see agentev.h).
 *
 * The rate bound is a token bucket per worker process, in thousandths of
 * an event (w->proc.ev_tokens, refilled lazily from the monotonic clock
 * when a frame comes: no timer), started full at the process's first
 * event (ev_refill_ms 0).  State: the counters in `ag` below; the buckets
 * live with the worker processes and die with them, the subscriptions
 * with their pools (p->evsubs).
 */
#include "agentev.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_frame.h"
#include "ap_log.h"
#include "answer.h"
#include "events.h"
#include "evring.h"
#include "pools.h"
#include "promtext.h"
#include "retry.h"
#include "scan.h"
#include "sched.h"
#include "server.h"
#include "typetab.h"
#include "worker.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

static struct {
    uint64_t published; /* recorded as events */
    uint64_t refused;   /* bad topic or data: dropped, logged */
    uint64_t dropped;   /* over the worker's rate: dropped, counted */
    uint64_t delivered; /* "event" messages admitted for subscribing agents */
    uint64_t delivery_dropped; /* not admitted: the pool's queue was full */
} ag;

/* A pool's subscriptions: its agent's patterns. */
struct agentev_subs {
    unsigned n;
    char pat[AGENTEV_SUBS_MAX][EVRING_PATTERN_MAX + 1];
};

/* "event" messages' request line: {"type":"event","data":EVENT} */
static const char deliver_head[] = "{\"type\":\"event\",\"data\":";
#define DELIVER_HEAD_LEN (sizeof(deliver_head) - 1)

const char *agentev_header_refused(uint16_t topic_len, uint32_t len)
{
    if (topic_len == 0 || topic_len > AP_EVENT_TOPIC_MAX)
        return "a topic of 0 or over 128 bytes";
    if (len <= topic_len)
        return "no data after the topic";
    if (len - topic_len > AP_EVENT_DATA_MAX)
        return "data over 64 KiB";
    return NULL;
}

/* Takes one event's token from w's bucket: 1, or 0 when it is empty. */
static int take_token(worker *w)
{
    uint64_t now = ap_now_ms(), cap = (uint64_t)AGENTEV_BURST * 1000;
    if (w->proc.ev_refill_ms == 0)
        w->proc.ev_tokens = cap;
    else if (now > w->proc.ev_refill_ms)
        w->proc.ev_tokens += (now - w->proc.ev_refill_ms) * AGENTEV_RATE; /* per ms: RATE/1000 events */
    w->proc.ev_refill_ms = now ? now : 1;
    if (w->proc.ev_tokens > cap)
        w->proc.ev_tokens = cap;
    if (w->proc.ev_tokens < 1000)
        return 0;
    w->proc.ev_tokens -= 1000;
    return 1;
}

/* Whether pattern pat can match agent events only: its first segment is
 * "agent" (so "#" or "*.x" are refused). */
static int agent_pattern(const char *pat)
{
    return strncmp(pat, "agent.", 6) == 0;
}

void agentev_worker_ready(worker *w, const cJSON *subs)
{
    pool_t *p = w->pool;
    if (subs == NULL || cJSON_IsNull(subs)) {
        agentev_pool_free(p);
        return;
    }
    const char *why = NULL;
    if (!cJSON_IsArray(subs) || cJSON_GetArraySize(subs) > AGENTEV_SUBS_MAX)
        why = "not an array of up to 32 patterns";
    const cJSON *it;
    if (why == NULL) {
        cJSON_ArrayForEach(it, subs) {
            if (!cJSON_IsString(it) || !evring_pattern_valid(it->valuestring, strlen(it->valuestring)) ||
                !agent_pattern(it->valuestring)) {
                why = "each pattern must be a topic pattern under agent. (agent.task.*, agent.#)";
                break;
            }
        }
    }
    if (why != NULL) {
        ap_error("%s (pid %d): its agent's subscribes is refused (%s): it gets no events", w->name,
                 (int)w->proc.pid, why);
        agentev_pool_free(p);
        return;
    }
    if (p->evsubs == NULL)
        p->evsubs = ap_malloc(sizeof(*p->evsubs));
    p->evsubs->n = 0;
    cJSON_ArrayForEach(it, subs) {
        snprintf(p->evsubs->pat[p->evsubs->n++], EVRING_PATTERN_MAX + 1, "%s", it->valuestring);
    }
}

void agentev_pool_free(pool_t *p)
{
    ap_free(p->evsubs);
    p->evsubs = NULL;
}

static int pool_wants(const pool_t *p, const char *topic, size_t tlen)
{
    if (p->evsubs == NULL || p->state > POOL_RUNNING)
        return 0;
    for (unsigned i = 0; i < p->evsubs->n; i++)
        if (evring_topic_match(p->evsubs->pat[i], strlen(p->evsubs->pat[i]), topic, tlen))
            return 1;
    return 0;
}

/* One "event" message with the event line ev[0..len) for p: admitted
 * like a client's, with no client, never retried. */
static void deliver(pool_t *p, const char *ev, size_t len)
{
    size_t llen = DELIVER_HEAD_LEN + len + 1;
    char *line = ap_malloc(llen + 1);
    memcpy(line, deliver_head, DELIVER_HEAD_LEN);
    memcpy(line + DELIVER_HEAD_LEN, ev, len);
    line[llen - 1] = '}';
    line[llen] = '\0';
    msg *m = msg_new(&server.msgs, line, llen, 5);
    ap_free(line);
    m->pool = p;
    memcpy(m->type, "event", 6);
    m->type_len = 5;
    m->data_off = (uint32_t)DELIVER_HEAD_LEN;
    m->data_len = (uint32_t)len;
    m->retry = 0;
    m->event_delivery = 1;
    m->type_idx = (uint16_t)typetab_index(p->types, "event", 5);
    m->accepted_ns = ap_now_ns();
    retry_arm(m);
    if (sched_admit(m, 1) == SCHED_FULL) {
        if (ag.delivery_dropped++ % 1000 == 0)
            ap_warn("pool %s: an agent event for its subscribing agent dropped: its queue is full (%llu so far)",
                    p->name, (unsigned long long)ag.delivery_dropped);
        answer_error(m, ERR_QUEUE_FULL, "the queue is full", NULL); /* no client: only counted */
        return;
    }
    ag.delivered++;
}

void agentev_frame(worker *w, const ap_frame_hdr *h, const char *payload)
{
    uint16_t topic_len = h->aux;
    size_t len = h->len;
    const char *data = payload + topic_len;
    size_t dlen = len - topic_len;
    char err[SCAN_ERROR_MAX];
    size_t pos = 0;
    if (!ap_frame_event_topic_valid(payload, topic_len)) {
        ag.refused++;
        ap_warn("%s (pid %d): an agent event's topic is not dot-separated a-z 0-9 _ - segments; dropped", w->name,
                (int)w->proc.pid);
        return;
    }
    if (scan_json_value(data, dlen, SCAN_DEPTH_CAP, SCAN_ONE_LINE, err, &pos) != AP_OK) {
        ag.refused++;
        ap_warn("%s (pid %d): agent event agent.%.*s: its data is not JSON (%s at byte %zu); dropped", w->name,
                (int)w->proc.pid, (int)topic_len, payload, err, pos);
        return;
    }
    if (!take_token(w)) {
        if (ag.dropped++ % 1000 == 0) /* a flood logs a line per thousand, not per event */
            ap_warn("%s (pid %d): agent event agent.%.*s dropped: over %d events/s (burst %d); %llu dropped so far",
                    w->name, (int)w->proc.pid, (int)topic_len, payload, AGENTEV_RATE, AGENTEV_BURST,
                    (unsigned long long)ag.dropped);
        return;
    }
    char topic[AP_EVENT_TOPIC_MAX + 8];
    snprintf(topic, sizeof(topic), "agent.%.*s", (int)topic_len, payload);
    size_t nlen = strlen(w->name);
    size_t cap = nlen + dlen + 32, at = 0;
    char *fields = ap_malloc(cap);
    at += (size_t)snprintf(fields, cap, "\"worker\":\"%s\",\"data\":", w->name); /* names are the master's own */
    memcpy(fields + at, data, dlen);
    at += dlen;
    uint64_t seq = events_emit_raw(w->pool, topic, EVENTS_NORMAL, fields, at);
    ap_free(fields);
    ag.published++;
    if (seq == 0 || server.state >= SERVER_DRAINING)
        return;
    const msg *from = msg_lookup(&server.msgs, h->id);
    if (from != NULL && from->event_delivery)
        return; /* published while handling an event: recorded, not delivered again (no loop) */
    size_t elen, tlen = strlen(topic);
    POOLS_FOREACH(p) {
        const char *ev = events_text(seq, &elen); /* each time: kept while it is in the history */
        if (ev != NULL && pool_wants(p, topic, tlen))
            deliver(p, ev, elen);
    }
}

void agentev_stats_json(cJSON *events)
{
    cJSON_AddNumberToObject(events, "agentPublished", (double)ag.published);
    cJSON_AddNumberToObject(events, "agentRefused", (double)ag.refused);
    cJSON_AddNumberToObject(events, "agentDropped", (double)ag.dropped);
    cJSON_AddNumberToObject(events, "agentDelivered", (double)ag.delivered);
    cJSON_AddNumberToObject(events, "agentDeliveryDropped", (double)ag.delivery_dropped);
}

void agentev_prometheus(struct evbuffer *out)
{
    promtext_family(out, "agentpool_agent_events_published_total", "counter",
                    "Events agents published (ctx.publish) that were recorded.");
    promtext_u64(out, "agentpool_agent_events_published_total", NULL, 0, ag.published);
    promtext_family(out, "agentpool_agent_events_dropped_total", "counter",
                    "Events agents published that were dropped: over a worker's rate, or refused.");
    promtext_u64(out, "agentpool_agent_events_dropped_total", NULL, 0, ag.dropped + ag.refused);
}
