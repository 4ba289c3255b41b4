/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bq.h - a benchmark connection's broker transport (--redis URL): the
 * same requests as over the socket, added to the pool's Redis stream, and
 * their answers read from a reply stream of the connection's own
 * (docs/scale-out.md, Clients; pyagents/client/broker.py is the Python
 * side of the same wire).
 *
 * conn.c calls it in place of the socket calls when the target is a
 * broker: bq_connect() instead of connect(), bq_flush() instead of
 * send(), bq_shut() instead of close().  bq.c reports back through
 * conn_bq_open(), conn_bq_failed(), conn_bq_lost(), conn_bq_line() and
 * conn_bq_refused() (conn.h), so the state machine, matching and
 * accounting stay conn.c's and load.c's.
 */
#ifndef BENCH_BQ_H
#define BENCH_BQ_H

#include "bench.h"

#include <stddef.h>

/* Starts connecting c's two Redis connections (adds, and the blocking
 * read of its reply stream).  Returns AP_OK (under way: conn_bq_open()
 * or conn_bq_failed() follows), or AP_ERR with err set. */
int bq_connect(bench_conn *c, char *err, size_t errlen);
/* Adds every request line in c's output buffer to the pool's stream and
 * empties the buffer. */
void bq_flush(bench_conn *c);
/* Frees c's Redis connections (callbacks of what was in flight are
 * ignored: conn.c fails those requests itself). */
void bq_shut(bench_conn *c);

#endif
