/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agentev.h - events agents publish (ctx.publish, docs/events.md): the
 * master's side of a worker's EVENT frame.
 *
 * The frame (ap_frame.h, AP_FRAME_EVENT) carries the agent's topic and
 * one JSON value.  agentev_frame() checks both as it checks a client's
 * request (the topic's characters and length, the data's JSON and size),
 * takes a token from the worker process's bucket (AGENTEV_RATE per
 * second, AGENTEV_BURST at most: one agent cannot fill the event history
 * for everyone), and records
 *
 *   agent.<topic> {"pool":..., "worker": NAME, "data": <the agent's JSON>}
 *
 * with priority normal through events_emit_raw().  What is refused or
 * over the rate is dropped and counted, never an error for the worker.
 *
 * Subscribing agents: an agent class with `subscribes = [PATTERN, ...]`
 * says so in its READY; the patterns (evring.h's, matching agent.*
 * topics only: AGENTEV_SUBS_MAX of them) are kept per pool, the last
 * READY's winning.  Each recorded agent event that one of a pool's
 * patterns matches becomes one message of type "event" in that pool
 * (data: the event object), admitted like a client's with no client and
 * retry false: at most once, its answer dropped, a full queue counted.
 * An event published by the handler of such a message is recorded but
 * not delivered to agents again: no delivery loop.
 */
#ifndef AP_AGENTEV_H
#define AP_AGENTEV_H

#include "ap_frame.h"

#include <stddef.h>
#include <stdint.h>

struct worker;
struct pool;
struct cJSON;
struct evbuffer;
struct agentev_subs;

/* Events one worker process may publish per second, and at most at once. */
#define AGENTEV_RATE 100
#define AGENTEV_BURST 1000

/* Patterns in one agent's subscribes. */
#define AGENTEV_SUBS_MAX 32

/* An EVENT frame from w (its header checked by worker.c: after READY,
 * aux and len within AP_EVENT_TOPIC_MAX and AP_EVENT_DATA_MAX):
 * payload = aux topic bytes, then the data. */
void agentev_frame(struct worker *w, const ap_frame_hdr *h, const char *payload);
/* w said READY with subs (its READY's "subscribes", NULL when absent):
 * its pool's subscriptions become these (a bad list is logged and
 * counts as none). */
void agentev_worker_ready(struct worker *w, const struct cJSON *subs);
/* Frees p's subscriptions (pools.c). */
void agentev_pool_free(struct pool *p);
/* Whether an EVENT header's sizes may be read at all: NULL, or why not. */
const char *agentev_header_refused(uint16_t topic_len, uint32_t len);
/* pool.stats' events object gains "agentPublished", "agentRefused",
 * "agentDropped", "agentDelivered", "agentDeliveryDropped". */
void agentev_stats_json(struct cJSON *events);
/* The Prometheus series. */
void agentev_prometheus(struct evbuffer *out);

#endif
