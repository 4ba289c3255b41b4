/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agentev.c - events agents publish (see agentev.h).
 *
 * The rate bound is a token bucket per worker process, in thousandths of
 * an event (w->proc.ev_tokens, refilled lazily from the monotonic clock
 * when a frame comes: no timer), started full at the process's first
 * event (ev_refill_ms 0).  State: the counters in `ag` below; the buckets
 * live with the worker processes and die with them.
 */
#include "agentev.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_frame.h"
#include "ap_log.h"
#include "events.h"
#include "promtext.h"
#include "scan.h"
#include "worker.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

static struct {
    uint64_t published; /* recorded as events */
    uint64_t refused;   /* bad topic or data: dropped, logged */
    uint64_t dropped;   /* over the worker's rate: dropped, counted */
} ag;

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

void agentev_frame(worker *w, uint16_t topic_len, const char *payload, size_t len)
{
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
    events_emit_raw(w->pool, topic, EVENTS_NORMAL, fields, at);
    ap_free(fields);
    ag.published++;
}

void agentev_stats_json(cJSON *events)
{
    cJSON_AddNumberToObject(events, "agentPublished", (double)ag.published);
    cJSON_AddNumberToObject(events, "agentRefused", (double)ag.refused);
    cJSON_AddNumberToObject(events, "agentDropped", (double)ag.dropped);
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
