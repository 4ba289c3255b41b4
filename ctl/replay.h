/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * replay.h - send dead letters to agentpoold again, a window at a time.
 *
 * `agentpoolctl dlq replay` hands this module one page of dead letters
 * (raw "type" and "data" bytes taken from pool.dlq.list) and an open
 * connection.  Each becomes an ordinary request with a fresh id,
 * "replay-<dlqId>", its type and data copied byte for byte (and a
 * "pool" member when the caller names one, and its checkpoint as
 * "resume" when it had one, so it resumes from there); at most
 * `window` are unanswered at once, and answers, which come in any order,
 * are matched back by id.  What happened to each item is written into
 * it; removing the ones that succeeded is the caller's business.
 *
 * Memory is bounded: the request being written (one dead letter's size)
 * and an input buffer that grows to hold an answer line whole, up to
 * REPLAY_LINE_MAX; its "id", "ok" and error code are read with cJSON
 * (jspan_member).  An answer longer than that is judged by its first
 * REPLAY_LINE_MAX bytes (agentpoold writes "id" and "ok" first) and the
 * rest of it is skipped.  The timeout counts the server's silence while
 * answers are due, as in exchange.c.
 */
#ifndef CTL_REPLAY_H
#define CTL_REPLAY_H

#include "jspan.h"

#include <stddef.h>
#include <stdint.h>

#define REPLAY_IN_CAP (64u * 1024u)
#define REPLAY_LINE_MAX (16u * 1024u * 1024u)

typedef enum {
    REPLAY_PENDING = 0, /* not sent (yet) */
    REPLAY_SENT,        /* sent, no answer matched yet */
    REPLAY_OK,          /* answered "ok": true */
    REPLAY_FAILED       /* answered with an error, or could not be sent */
} replay_state;

typedef struct {
    uint64_t dlq_id;
    jspan type;          /* raw JSON of the record's "type"; p NULL: null */
    jspan data;          /* raw JSON of its "data"; p NULL: null */
    jspan checkpoint;    /* raw JSON of its "checkpoint", sent as "resume"; p NULL: none */
    replay_state state;  /* set by replay_run */
    char code[48];       /* the error code when REPLAY_FAILED */
} replay_item;

typedef struct {
    int sock;            /* connected, non-blocking */
    int timeout_ms;      /* silence allowed while answers are due; 0 = forever */
    size_t window;       /* requests unanswered at once, at most (0 counts as 1) */
    const char *pool_json; /* a JSON string put as each request's "pool"; NULL: none */
} replay_opts;

typedef struct {
    size_t sent;         /* requests written */
    size_t answered;     /* answer lines read, matched or not */
    size_t unmatched;    /* answers whose id named none of the items */
    char err[256];       /* why replay_run returned AP_ERR */
} replay_result;

/* Replays items[0..n) over o->sock and sets each item's state and code.
 * Items must start PENDING; one the caller has already set otherwise is
 * left alone and not sent.  An item whose raw bytes could not form one request line is FAILED
 * with code "bad_record" without being sent; an item left without a
 * matching answer after every answer came is FAILED with the code of an
 * unmatched answer (e.g. "too_large", whose id is null) or "no_answer".
 * Returns AP_OK when every request sent was answered, else AP_ERR (the
 * connection was lost, or the server stayed silent for timeout_ms) with
 * r->err set: items answered by then keep their outcome, the others stay
 * PENDING or SENT.  Does not close o->sock. */
int replay_run(const replay_opts *o, replay_item *items, size_t n, replay_result *r);

#endif
