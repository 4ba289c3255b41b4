/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * metrics.h - the master's statistics beyond plain counters: latency and
 * queue-wait distributions, throughput, answers by message type, the
 * master's own memory, and the Prometheus exposition of all of it.
 *
 * Recorded on the hot path, once per message, in O(1) and without
 * allocation: queue wait when a message is first sent to a worker
 * (metrics_sent), total latency and its type's outcome when its answer is
 * written to its client (metrics_answered).  Each distribution is kept
 * twice: a sliding window (the last minute, six 10-second slots) for the
 * percentiles in pool.stats, and cumulative fixed buckets since start for
 * Prometheus histograms.  Everything lives in one block allocated at
 * start-up and sized by maxTrackedTypes, hanging off `server`, so it
 * survives worker recycling and cannot grow.  Readers (pool.stats in
 * control.c, /metrics in httpd.c) only read.
 */
#ifndef AP_METRICS_H
#define AP_METRICS_H

#include "hist.h"
#include "reply.h"

#include <stdint.h>

struct evbuffer;
struct msg;

/* Interval of one sliding-window slot: the window is 50 to 60 s. */
#define METRICS_WINDOW_SLOT_MS 10000

typedef struct metrics metrics;

/* The statistics block for a type table of type_capacity indexes
 * (typetab_capacity()).  Never fails (out of memory aborts by policy). */
metrics *metrics_new(unsigned type_capacity);
/* NULL is harmless. */
void metrics_free(metrics *mt);

/* m was just sent to a worker for the first time, at m->sent_ns. */
void metrics_sent(metrics *mt, const struct msg *m);
/* m's answer was just written to its client: ok when code < 0, else the
 * error code (a reply_code). */
void metrics_answered(metrics *mt, const struct msg *m, int code);
/* An answer to a request of type type_idx that never became a message
 * (circuit_open). */
void metrics_type_outcome(metrics *mt, unsigned type_idx, reply_code code);

/* Answers written per second over the last `seconds` (1..60): the
 * current second and the seconds-1 before it, divided by seconds. */
double metrics_throughput(const metrics *mt, uint64_t now_ms, unsigned seconds);
/* Answers written in that window (the throughput's numerator). */
uint64_t metrics_answers_in(const metrics *mt, uint64_t now_ms, unsigned seconds);
/* Of those, answers with an error code (any code): the error rate's
 * numerator (alert.c). */
uint64_t metrics_errors_in(const metrics *mt, uint64_t now_ms, unsigned seconds);
/* Sliding-window percentiles, in ns, over the answers of mts[0..n) (n >= 1:
 * one pool's metrics, or every pool's for the server's totals). */
void metrics_latency(const metrics *const *mts, unsigned n, uint64_t now_ms, hist_summary *out);
void metrics_queue_wait(const metrics *const *mts, unsigned n, uint64_t now_ms, hist_summary *out);
/* Answers of type idx: ok, and by error code (errs[ERR_COUNT]). */
uint64_t metrics_type_ok(const metrics *mt, unsigned idx);
uint64_t metrics_type_errors(const metrics *mt, unsigned idx, reply_code code);

/* The master's own heap, from jemalloc's statistics, refreshed at most
 * once per METRICS_MEMORY_REFRESH_MS (a refresh merges every arena's
 * statistics, which costs more than the rest of pool.stats).  AP_ERR,
 * with both 0, when agentpoold is not built with jemalloc or the
 * statistics are unavailable. */
#define METRICS_MEMORY_REFRESH_MS 1000
int metrics_memory(uint64_t now_ms, uint64_t *allocated, uint64_t *resident);

/* Appends every metric in Prometheus text format 0.0.4 to out. */
void metrics_prometheus(struct evbuffer *out);

#endif
