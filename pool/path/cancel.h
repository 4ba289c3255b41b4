/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cancel.h - pool.cancel: a client stops one of its own requests.
 *
 * A request is found by its id among the messages in flight on the
 * asker's own connection (ids are per connection: no client reaches
 * another's).  Where it is decides what happens, and what the answer to
 * pool.cancel says ("found"):
 *  - held, queued, waiting for a retry, or prefetched behind the message
 *    a sync worker runs: "queued"; answered `cancelled` and never run (a
 *    prefetched one is skipped by its worker, or, if the worker started
 *    it meanwhile, treated as running);
 *  - running: "running"; answered `cancelled` at once and left with its
 *    worker, which is made to let go of it as for a timeout (retry.c's
 *    retry_let_go): an async or gevent task is cancelled; a sync handler
 *    runs to its end (cancelSync "finish") or its worker is replaced
 *    ("kill").  Whatever the worker answers later is dropped and counted
 *    as a late result, so the request has exactly one final line;
 *  - not in flight (never sent, answered already, another connection's):
 *    "unknown", and nothing changes.
 * Every message still ends in answer.c; this module only decides.
 * Counted by what was found (server.stats.cancels).
 */
#ifndef AP_CANCEL_H
#define AP_CANCEL_H

#include <stddef.h>

#include "scan.h"

struct client;

typedef enum { CANCEL_QUEUED = 0, CANCEL_RUNNING, CANCEL_UNKNOWN, CANCEL_FOUND_COUNT } cancel_found;

/* Finds the request pool.cancel names in its data (the raw JSON text of
 * an object with an "id" member, read by the request scanner's own
 * rules): sets *id to the id's bytes as written, relative to data.
 * AP_ERR (nothing set) when data is absent, not an object, or has no id
 * that a request could have (a string or an integer). */
int cancel_target(const char *data, size_t len, scan_span *id);

/* Cancels the request with id (raw bytes, as its request wrote them) on
 * connection c, as described above, and counts it.  Returns what it
 * found. */
cancel_found cancel_request(struct client *c, const char *id, size_t id_len);

/* Cancels message m (in flight) as described above, whoever asks:
 * answered "cancelled by <by> before it ran" or "... while it ran"; a
 * sync worker replaced for it is logged as cancelled by <who>.  Not
 * counted here.  Returns where it was (never CANCEL_UNKNOWN).  Used by
 * pool.cancel and by sessionBusy "interrupt" (sessrun.c). */
struct msg;
cancel_found cancel_message(struct msg *m, const char *by, const char *who);

/* "queued", "running", "unknown"; "?" for anything else. */
const char *cancel_found_name(cancel_found f);

#endif
