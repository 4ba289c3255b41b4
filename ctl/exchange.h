/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * exchange.h - the pipelined request/response loop of agentpoolctl.
 *
 * One poll(2) loop moves request lines from a source (bytes given up
 * front, and/or an NDJSON descriptor such as stdin) to agentpoold, and
 * response lines from agentpoold to a sink (a descriptor such as stdout,
 * or a bounded in-memory capture), at the same time, so neither direction
 * can deadlock on a full socket buffer.  Memory is bounded: one output
 * buffer of EXCHANGE_OUT_CAP and one input buffer of EXCHANGE_IN_CAP,
 * which grows to hold a longer response line whole, up to
 * EXCHANGE_LINE_MAX, however many lines.  Each response line is judged by
 * its top-level "ok", which cJSON reads (jspan_member); a line longer
 * than EXCHANGE_LINE_MAX streams through in pieces, judged by its first
 * EXCHANGE_LINE_MAX bytes (agentpoold writes "id" and "ok" first, so
 * they are there).  It counts the request lines
 * it sent and the response lines it got (responses come in any order,
 * so only the counts are matched), and returns when every request has an
 * answer, the connection is lost, or the server has been silent for too
 * long while answers were awaited.  It never half-closes the socket:
 * agentpoold would take that for a disconnect.
 *
 * Streams: chunk and heartbeat lines (sline.h) are not answers; they are
 * counted apart and, with chunk_values, a chunk is printed as its value
 * alone on a line and heartbeats are dropped (`send --stream`; without
 * chunk_values every line goes out as received).  With a cancel
 * description, a byte on its intr_fd (Ctrl-C) queues its pool.cancel
 * line once, whose answer is then expected too (and known by its id),
 * and the wait for the answers is bounded from then on; a second byte
 * ends the exchange at once (EXCHANGE_INTERRUPTED).
 */
#ifndef CTL_EXCHANGE_H
#define CTL_EXCHANGE_H

#include <stddef.h>

#define EXCHANGE_OUT_CAP (256u * 1024u)
#define EXCHANGE_IN_CAP (64u * 1024u)
#define EXCHANGE_LINE_MAX (16u * 1024u * 1024u)

/* Collects response bytes in memory, refusing to grow past limit. */
typedef struct {
    char *data; /* NUL-terminated; owned, free with ap_free */
    size_t len;
    size_t alloc;
    size_t limit;
    int overflowed; /* set when a response would have passed limit */
} exchange_capture;

/* What to do when the user interrupts (send --stream's Ctrl-C). */
typedef struct {
    int intr_fd;           /* readable, one byte per interrupt (a signal's self-pipe) */
    const char *line;      /* the pool.cancel request line sent at the first one */
    size_t len;
    const char *id;        /* its id as written in line: tells its answer apart */
    int wait_ms;           /* from the first interrupt, the most to wait for the
                              answers; 0 = until a second interrupt */
} exchange_cancel;

typedef struct {
    int sock;              /* connected, non-blocking */
    const char *preload;   /* whole request lines sent first, or NULL */
    size_t preload_len;
    size_t preload_lines;  /* how many lines preload holds */
    int in_fd;             /* NDJSON requests, or -1; blank lines skipped */
    int out_fd;            /* response lines go here, unless capture */
    exchange_capture *capture;
    int timeout_ms;        /* silence allowed while answers are due; 0 = forever */
    int chunk_values;      /* a chunk line prints as its value alone; heartbeats not at all */
    const exchange_cancel *cancel; /* or NULL; only with in_fd < 0 */
} exchange_opts;

typedef enum {
    EXCHANGE_DONE = 0,     /* every request answered */
    EXCHANGE_LOST,         /* the server closed or reset the connection */
    EXCHANGE_TIMEOUT,      /* silence for timeout_ms while answers were due */
    EXCHANGE_IOERR,        /* reading the source or writing the sink failed */
    EXCHANGE_INTERRUPTED   /* a second interrupt: the answers were not waited for */
} exchange_status;

typedef struct {
    exchange_status status;
    size_t sent;     /* request lines written (or queued) to the server */
    size_t answered; /* complete response lines received */
    size_t failed;   /* of those, lines without top-level "ok": true (the
                        pool.cancel answer is never counted failed) */
    size_t chunks;   /* chunk lines received (not answers) */
    size_t heartbeats; /* heartbeat lines received (not answers) */
    unsigned interrupts; /* bytes read from cancel->intr_fd */
    int cancel_sent;   /* the pool.cancel line was queued */
    int cancel_answered; /* its answer came: cancel_found or cancel_code says what */
    char cancel_found[32]; /* its result's "found" ("queued", "running", "unknown") */
    char cancel_code[48];  /* its error's "code", when it was refused */
    char err[256];   /* what went wrong, when status != EXCHANGE_DONE */
} exchange_result;

/* Runs the exchange described by o, filling *r.  Returns AP_OK when
 * r->status is EXCHANGE_DONE, else AP_ERR (r->err says why).  Does not
 * close o->sock. */
int exchange_run(const exchange_opts *o, exchange_result *r);

#endif
