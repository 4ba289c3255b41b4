/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * load.h - the load schedule and the accounting of a run.
 *
 * Closed loop (no --rate): every connection keeps up to `depth` requests
 * in flight; each answer lets the next request go, counted from when it
 * is written.
 *
 * Open loop (--rate R): request g of the run is due at
 * t_start + g / R, on connection g % conns.  Its latency counts from that
 * intended time, not from when it could be written, so a server that
 * stalls cannot hide its queueing (coordinated omission): requests that
 * wait because their connection is at its depth limit (or reconnecting)
 * keep their due time.  One timer fires at the next due time and hands
 * every due request to its connection.
 *
 * Phases: RUN (issuing) -> DRAIN (nothing new; waiting for answers and
 * for due requests still to be written) -> DONE.  The run also ends when
 * no answer has come for --timeout seconds while something is
 * outstanding or a connection is down (the server stalled), or on SIGINT
 * or SIGTERM.  One 100 ms timer (the cron) checks the end conditions and
 * draws the progress line once a second.
 */
#ifndef BENCH_LOAD_H
#define BENCH_LOAD_H

#include "bench.h"

/* Sets up bench for cfg: event base, template, connections, timers.
 * Returns AP_OK, or AP_ERR with err set (the template could not be
 * built). */
int load_init(const bench_cfg *cfg, char *err, size_t errlen);
/* Connects everything and runs the event loop until the run is DONE.
 * Returns AP_OK, or AP_ERR with err set when the first connect failed. */
int load_run(char *err, size_t errlen);
/* Frees what load_init() took. */
void load_free(void);

/* Called by conn.c: -------------------------------------------------- */
/* Issues requests on c as far as the schedule, its depth and its output
 * buffer allow, and flushes. */
void load_fill(bench_conn *c);
/* An answer for a request counted from start_ns: ok, or an error with
 * code[0..code_len). */
void load_answer(uint64_t start_ns, int ok, const char *code, size_t code_len);
/* A chunk of the stream of a request counted from start_ns, which had
 * `before` chunks already (0: this is its first). */
void load_chunk(uint64_t start_ns, uint64_t before);
/* A heartbeat line of a stream. */
void load_heartbeat(void);
/* A request that got no answer because its connection was lost. */
void load_failed(uint64_t start_ns);
/* Does c still have work (due requests, requests to resend, a run still
 * issuing)?  Decides whether a lost connection is reconnected. */
int load_conn_needed(const bench_conn *c);
/* Ends the run if nothing more can happen. */
void load_check_done(void);

/* Read by report.c: -------------------------------------------------- */
/* Requests due but never written (open loop). */
uint64_t load_unsent(void);
/* Age in ns, at t_done, of the oldest request in flight or due but
 * unsent; 0 when there is none. */
uint64_t load_oldest_age(void);

#endif
