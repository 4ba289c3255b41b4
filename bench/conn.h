/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * conn.h - one benchmark connection: connect, send requests, read and
 * match answers, reconnect when the server closes.
 *
 * conn.c owns the socket and both buffers of a bench_conn; load.c decides
 * what to send (through conn_out_append) and is told about every answer
 * (load_answer) and every request a lost connection took with it
 * (load_failed).  The buffers are allocated once in conn_setup(); the hot
 * path (read, match, write) never allocates.  The input buffer grows
 * only when one NDJSON answer line is longer than it (up to
 * CONN_MAX_LINE; longer is a protocol error).
 */
#ifndef BENCH_CONN_H
#define BENCH_CONN_H

#include "bench.h"

#include <stddef.h>
#include <stdint.h>

#define CONN_IN_SIZE (128u * 1024u)
#define CONN_OUT_MIN (64u * 1024u)
#define CONN_MAX_LINE (256u * 1024u * 1024u)
#define CONN_BACKOFF_MIN_MS 10u
#define CONN_BACKOFF_MAX_MS 1000u

/* Allocates c's buffers, events and in-flight table (connection `index`).
 * Never fails (out of memory aborts). */
void conn_setup(bench_conn *c, uint32_t index);
/* Closes the socket and frees everything conn_setup() took. */
void conn_teardown(bench_conn *c);
/* The first connect of c, at start-up.  Returns AP_OK (connected or under
 * way), or AP_ERR with err set: the benchmark cannot run. */
int conn_start(bench_conn *c, char *err, size_t errlen);
/* Appends n bytes to the output buffer and returns where to write them,
 * or NULL (nothing changed) when there is no room for them now: try
 * again once it drains. */
char *conn_out_append(bench_conn *c, size_t n);
/* Writes what the output buffer holds; arms the write event for the rest.
 * May lose the connection (state becomes CONN_DOWN). */
void conn_flush(bench_conn *c);
/* Closes c for good at the end of the run (answers still in flight stay
 * counted as outstanding). */
void conn_close(bench_conn *c);

/* Called by bq.c (the broker transport, --redis): ---------------------- */
/* The broker connection is ready: start sending. */
void conn_bq_open(bench_conn *c);
/* Connecting to the broker failed (err says why). */
void conn_bq_failed(bench_conn *c, const char *err);
/* The broker connection broke: what c held fails, c reconnects. */
void conn_bq_lost(bench_conn *c);
/* One line read from c's reply stream (an NDJSON answer line). */
void conn_bq_line(bench_conn *c, const char *line, size_t len);
/* The request with this id was refused before it was queued (code). */
void conn_bq_refused(bench_conn *c, uint64_t id, const char *code, size_t code_len);

#endif
