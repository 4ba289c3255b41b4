/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * resp.h - reads what the benchmark needs from one NDJSON response line:
 * the id, ok or not, and for errors the error code; or, for a stream's
 * lines, that it is a chunk (and its seq) or a heartbeat.  Nothing else
 * of the line is parsed.
 *
 * The fast path expects agentpoold's layout, `{"id":<id>,"ok":true,...}`
 * (the master writes `{"id":` first in every response); other spacing and
 * member orders are accepted by searching for the `"id"`, `"ok"` and
 * `"code"` members in the line, which can be fooled by a result that
 * itself contains such a member before the real one.
 *
 * What the line is, in this order: right after the id's value,
 * `,"chunk":` makes a chunk, `,"heartbeat":true` a heartbeat,
 * `,"ok":true` / `,"ok":false` an answer (agentpoold's layouts); else an
 * `"ok"` member anywhere makes an answer, else a `"chunk"` member a
 * chunk, else `"heartbeat":true` a heartbeat.  A chunk's seq is read
 * from a line ending `,"seq":N}`, else from a `"seq"` member anywhere;
 * it is known only when plain digits that fit 64 bits.  A line is
 * malformed when it is not `{...}` (after trimming white space and a
 * `\r`), has no id member or is none of the above.
 *
 * Pure and allocation-free: the code is returned as a pointer into the
 * line.
 */
#ifndef BENCH_RESP_H
#define BENCH_RESP_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RESP_OK = 0,
    RESP_ERROR = 1,
    RESP_MALFORMED = 2,
    RESP_CHUNK = 3,    /* a stream's chunk line: not an answer */
    RESP_HEARTBEAT = 4 /* a stream's heartbeat line: not an answer */
} resp_kind;

typedef enum {
    RESP_ID_INT = 0,   /* a non-negative integer that fits in 64 bits */
    RESP_ID_OTHER = 1, /* a string, a negative or huge number, null... */
} resp_id_kind;

typedef struct {
    resp_kind kind;
    resp_id_kind id_kind;
    uint64_t id;          /* when id_kind == RESP_ID_INT */
    const char *code;     /* RESP_ERROR: the error code, not terminated */
    size_t code_len;      /* 0 when the error carries no code */
    int has_seq;          /* RESP_CHUNK: seq was read */
    uint64_t seq;         /* RESP_CHUNK with has_seq: the chunk's number */
} resp_line;

/* Scans one line (without its '\n').  Returns the kind, also stored in
 * out->kind. */
resp_kind resp_scan(const char *line, size_t len, resp_line *out);

#endif
