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

typedef struct {
    int sock;              /* connected, non-blocking */
    const char *preload;   /* whole request lines sent first, or NULL */
    size_t preload_len;
    size_t preload_lines;  /* how many lines preload holds */
    int in_fd;             /* NDJSON requests, or -1; blank lines skipped */
    int out_fd;            /* response lines go here, unless capture */
    exchange_capture *capture;
    int timeout_ms;        /* silence allowed while answers are due; 0 = forever */
} exchange_opts;

typedef enum {
    EXCHANGE_DONE = 0,     /* every request answered */
    EXCHANGE_LOST,         /* the server closed or reset the connection */
    EXCHANGE_TIMEOUT,      /* silence for timeout_ms while answers were due */
    EXCHANGE_IOERR         /* reading the source or writing the sink failed */
} exchange_status;

typedef struct {
    exchange_status status;
    size_t sent;     /* request lines written (or queued) to the server */
    size_t answered; /* complete response lines received */
    size_t failed;   /* of those, lines without top-level "ok": true */
    char err[256];   /* what went wrong, when status != EXCHANGE_DONE */
} exchange_result;

/* Runs the exchange described by o, filling *r.  Returns AP_OK when
 * r->status is EXCHANGE_DONE, else AP_ERR (r->err says why).  Does not
 * close o->sock. */
int exchange_run(const exchange_opts *o, exchange_result *r);

#endif
