/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * usage.h - usage accounting: per API key, pool and message type, what
 * messages cost.
 *
 * A row ("cell") per (pool, type, key) counts requests, answers by
 * outcome (ok or error code), queue wait, run time (last sending to a
 * worker -> its answer) and worker CPU per message as histograms
 * (hist_fixed), and the usage handlers report with ctx.usage(...):
 * tokens_in, tokens_out, cost, and up to USAGE_MAX_NAMES other names
 * server-wide.  A message without a key counts under key "none".  Cells
 * live in the master for its whole life (a worker's recycle never
 * resets them) and are bounded: keys by maxTrackedKeys, types by the
 * pool's maxTrackedTypes (the rest under "other"), cells by
 * USAGE_MAX_CELLS (past it, one row "other/other/other" takes the rest).
 *
 * The worker sends the handler's CPU time in the answer frame's aux
 * (usage_cpu) and what the handler reported as one AP_FRAME_USAGE frame
 * before the answer (include/ap_frame.h); usage_frame() checks it like a
 * client's line.
 * Exported in Prometheus text (usage_prometheus), in pool.stats
 * ("usage", usage_json) and by `agentpoolctl usage`.
 */
#ifndef AP_USAGE_H
#define AP_USAGE_H

#include "ap_frame.h"
#include "reply.h"

#include <cJSON.h>
#include <stdint.h>

struct evbuffer;
struct msg;
struct pool;
struct worker;
struct apikey;

#define USAGE_MAX_CELLS 2048
/* Names other than tokens_in, tokens_out and cost tracked server-wide. */
#define USAGE_MAX_NAMES 32

typedef struct usage_cell usage_cell;

/* max_keys: maxTrackedKeys.  Never fails. */
void usage_init(unsigned max_keys);
void usage_free(void);

/* The row of a message of pool p, type index type_idx (p->types), key k
 * (NULL: none), counted as one request. */
usage_cell *usage_admit(struct pool *p, unsigned type_idx, const struct apikey *k);
/* A request refused before it became a message (its key's refusals:
 * unauthorized, forbidden, rate_limited), counted in its row. */
void usage_refused(struct pool *p, unsigned type_idx, const struct apikey *k, reply_code code);
/* m was first sent to a worker (its queue wait), from metrics_sent. */
void usage_sent(const struct msg *m);
/* m's answer was written: ok when code < 0, else the error code; now_ns
 * the clock metrics_answered read. */
void usage_answered(const struct msg *m, int code, uint64_t now_ns);

/* The CPU time its worker measured for m (a RESULT's or ERROR's aux),
 * from the worker's answer. */
void usage_cpu(const struct msg *m, uint16_t aux);
/* NULL when a USAGE frame header of payload length len may come from a
 * worker, else why not (the worker is then killed as for a forged frame). */
const char *usage_header_refused(uint32_t len);
/* A USAGE frame from w: recorded in its message's row and charged to its
 * key; dropped (counted, logged) when its message is not w's or its
 * payload is not a valid usage object. */
void usage_frame(struct worker *w, const ap_frame_hdr *h, const char *payload);

/* Appends the usage series (Prometheus text 0.0.4). */
void usage_prometheus(struct evbuffer *out);
/* The "usage" member of pool.stats: every row, or pool p's (p not NULL). */
cJSON *usage_json(const struct pool *p);

#endif
