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
 */
#ifndef AP_AGENTEV_H
#define AP_AGENTEV_H

#include <stddef.h>
#include <stdint.h>

struct worker;
struct cJSON;
struct evbuffer;

/* Events one worker process may publish per second, and at most at once. */
#define AGENTEV_RATE 100
#define AGENTEV_BURST 1000

/* An EVENT frame from w (its header checked by worker.c: after READY,
 * topic_len and len within AP_EVENT_TOPIC_MAX and AP_EVENT_DATA_MAX):
 * payload = topic_len topic bytes, then the data. */
void agentev_frame(struct worker *w, uint16_t topic_len, const char *payload, size_t len);
/* Whether an EVENT header's sizes may be read at all: NULL, or why not. */
const char *agentev_header_refused(uint16_t topic_len, uint32_t len);
/* pool.stats' events object gains "agentPublished", "agentRefused",
 * "agentDropped". */
void agentev_stats_json(struct cJSON *events);
/* The Prometheus series. */
void agentev_prometheus(struct evbuffer *out);

#endif
