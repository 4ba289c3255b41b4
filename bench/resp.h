/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * resp.h - reads what the benchmark needs from one NDJSON response line:
 * the id, ok or not, and for errors the error code.  Nothing else of the
 * line is parsed.
 *
 * The fast path expects agentpoold's layout, `{"id":<id>,"ok":true,...}`
 * (the master writes `{"id":` first in every response); other spacing and
 * member orders are accepted by searching for the `"id"`, `"ok"` and
 * `"code"` members in the line, which can be fooled by a result that
 * itself contains such a member before the real one.  A line is
 * malformed when it is not `{...}` (after trimming white space and a
 * `\r`), has no id member or has no `"ok":true|false`.
 *
 * Pure and allocation-free: the code is returned as a pointer into the
 * line.
 */
#ifndef BENCH_RESP_H
#define BENCH_RESP_H

#include <stddef.h>
#include <stdint.h>

typedef enum { RESP_OK = 0, RESP_ERROR = 1, RESP_MALFORMED = 2 } resp_kind;

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
} resp_line;

/* Scans one line (without its '\n').  Returns the kind, also stored in
 * out->kind. */
resp_kind resp_scan(const char *line, size_t len, resp_line *out);

#endif
