/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scan.h - the master's one-pass request-line scanner.
 *
 * agentpoold never builds a JSON tree.  scan_request() walks a request
 * line once, checks that all of it is strict RFC 8259 JSON (UTF-8
 * included), bounds its nesting, and reports where the members the
 * master routes on ("id", "type", "data", "retry", "timeoutMs", "stream", "pool",
 * "session", "idempotencyKey", "resume", "key") sit in
 * the line, so the master can pass the client's original bytes onward.
 * scan_json_value() runs the same validator over any buffer: dlq.c
 * checks each dead-letter line with it before handing it out.  Worker
 * results are not scanned: the master splices them into response lines
 * as the worker's encoder (bridge/pyconv.c) wrote them.
 *
 * Pure functions: no allocation, no global state, no I/O, no libevent.
 * Every error message is printable ASCII without '"' or '\', so it can be
 * put inside a JSON string as it is.  Byte positions in messages and in
 * error_pos are 0-based offsets into the buffer that was scanned.
 */
#ifndef AP_SCAN_H
#define AP_SCAN_H

#include "ap_defaults.h"

#include <stddef.h>
#include <stdint.h>

/* Room for an error message, NUL included. */
#define SCAN_ERROR_MAX 128
/* A max_depth above this is treated as this (the scanner's bit stack). */
#define SCAN_DEPTH_CAP 1024
/* scan_unescape()'s refusal. */
#define SCAN_UNESCAPE_FAIL ((size_t)-1)

typedef enum {
    SCAN_OK = 0,      /* a well-formed request */
    SCAN_BLANK,       /* empty or whitespace only: ignore the line */
    SCAN_BAD_JSON,    /* not JSON, bad UTF-8, trailing bytes, too deep */
    SCAN_NOT_OBJECT,  /* valid JSON, but not an object */
    SCAN_BAD_REQUEST, /* an object, but id/type/retry/timeoutMs are wrong */
} scan_status;

typedef enum { SCAN_ID_NONE = 0, SCAN_ID_STRING, SCAN_ID_INT } scan_id_kind;

/* A range of the scanned line. */
typedef struct {
    size_t off, len;
} scan_span;

/* The longest pool name (CONFIG_POOL_NAME_MAX). */
#define SCAN_POOL_MAX 64
/* The longest session key (docs/sessions.md). */
#define SCAN_SESSION_MAX 256
/* The longest "idempotencyKey", in bytes after unescaping. */
#define SCAN_IDEM_KEY_MAX 256
/* The longest "key" (an API key's secret), in bytes after unescaping. */
#define SCAN_KEY_MAX 256

typedef struct {
    scan_id_kind id_kind;
    /* The id value's bytes exactly as the client wrote them: a string
     * INCLUDING its quotes (escapes untouched), an integer as its digits
     * with an optional leading '-' (any size: never converted). */
    scan_span id;
    /* "type", unescaped to UTF-8 and NUL-terminated. */
    char type[AP_MAX_TYPE_LEN + 1];
    size_t type_len;
    /* Raw JSON text of "data"; len 0 when the member is absent. */
    scan_span data;
    /* Raw JSON text of "resume" (any value: the checkpoint the first
     * attempt resumes from); len 0 when absent.  Its bound
     * (maxCheckpointBytes, per pool) is the caller's to check. */
    scan_span resume;
    /* "retry": -1 absent, 0 false, 1 true. */
    int retry;
    /* "timeoutMs": -1 absent, else a positive integer. */
    int64_t timeout_ms;
    /* "stream": 1 when true (chunks are sent as they come), else 0. */
    int stream;
    /* "pool", unescaped and NUL-terminated; pool_given 0 when absent
     * ("pool": "" is given, and names no pool). */
    char pool[SCAN_POOL_MAX + 1];
    size_t pool_len;
    int pool_given;
    /* "session", unescaped and NUL-terminated; session_len 0 when absent
     * (a given one is 1..SCAN_SESSION_MAX bytes). */
    char session[SCAN_SESSION_MAX + 1];
    size_t session_len;
    /* "idempotencyKey", unescaped and NUL-terminated; idem_key_len 0
     * when absent (an empty key is refused). */
    char idem_key[SCAN_IDEM_KEY_MAX + 1];
    size_t idem_key_len;
    /* "key" (an API key's secret: apikey.h), unescaped and NUL-terminated;
     * key_len 0 when absent (an empty one is refused).  Never logged. */
    char key[SCAN_KEY_MAX + 1];
    size_t key_len;
    /* Why scanning failed ("" on SCAN_OK / SCAN_BLANK; an array, so the
     * struct can be copied), and the byte it refers to (0 for
     * request-level errors, the value's first byte for SCAN_NOT_OBJECT). */
    char error[SCAN_ERROR_MAX];
    size_t error_pos;
} scan_result;

/*
 * Scans one request line (without its '\n'; a trailing '\r' is JSON
 * whitespace and so ignored).  The request object itself is nesting
 * depth 1, so "data" may nest max_depth - 1 more levels.
 *
 * Returns SCAN_OK with every field filled, SCAN_BLANK, or an error status
 * with out->error set.  On any error, out->id_kind/out->id still name
 * the id if a valid top-level "id" had been read before the error (for a
 * request-level error: anywhere in the object), so the answer can echo
 * it; type, data, retry and timeout_ms are then meaningless.
 *
 * Rules: unknown members are validated and ignored; a repeated member
 * counts by its last occurrence; member names are compared after
 * unescaping ("\u0074ype" is "type").  "id" may be absent, a string, or
 * an integer (no fraction, no exponent).  "type" is required, a string
 * of at most AP_MAX_TYPE_LEN bytes after unescaping, without U+0000 (it
 * may be empty).  "data" is any value.  "retry" is a boolean.
 * "timeoutMs" is an integer in [1, INT64_MAX] (0 and "-0" are refused).
 * "stream" is a boolean.  "pool" is a string of at most SCAN_POOL_MAX
 * bytes after unescaping, without U+0000 (whether such a pool exists is
 * the caller's question).  "session" is a string of 1 to SCAN_SESSION_MAX
 * bytes after unescaping, without U+0000, and so is "idempotencyKey"
 * (1 to SCAN_IDEM_KEY_MAX bytes), and "key" (1 to SCAN_KEY_MAX).  "resume" is any value.
 * Anywhere in the line, a number with a fraction or an exponent whose
 * magnitude is beyond a double's (1e400, -1e999999999999; what rounds to
 * infinity) is refused as SCAN_BAD_JSON: the worker would read it as
 * infinity.  Integers are never converted (any size), nor is 1e-400 (0).
 */
scan_status scan_request(const char *line, size_t len, unsigned max_depth, scan_result *out);

/* scan_request_given()'s members that the caller gives beside the line. */
#define SCAN_GIVEN_ID 1u     /* "id" */
#define SCAN_GIVEN_POOL 2u   /* "pool" */
#define SCAN_GIVEN_STREAM 4u /* "stream" */

/*
 * scan_request() for a line some of whose members the caller knows
 * otherwise (given: SCAN_GIVEN_* bits): those members are scanned as
 * unknown ones (any valid JSON value, not read), so out says they are
 * absent and the caller fills them in.
 */
scan_status scan_request_given(const char *line, size_t len, unsigned max_depth, unsigned given, scan_result *out);

/* scan_json_value() flags. */
#define SCAN_ONE_LINE 1u /* refuse raw line breaks (whitespace '\n', '\r') */

/*
 * Checks that s[0..len) is exactly one JSON value, optionally surrounded
 * by whitespace, nested at most max_depth deep.  Returns 0 (AP_OK) or -1
 * (AP_ERR); on failure, if err is not NULL, writes a message of at most
 * SCAN_ERROR_MAX bytes (NUL included) to err and, if err_pos is not NULL,
 * the byte it refers to.  With SCAN_ONE_LINE a value that would break
 * newline framing is refused.
 */
int scan_json_value(const char *s, size_t len, unsigned max_depth, unsigned flags,
                    char *err, size_t *err_pos);

/*
 * Unescapes the body of a JSON string (the bytes between its quotes, as
 * accepted by the scanner) into out, UTF-8 encoded, not NUL-terminated.
 * Returns the number of bytes written, or SCAN_UNESCAPE_FAIL if the
 * result would need more than cap bytes (it stops there: the work is
 * bounded by cap) or the body is not a valid string body.  On failure
 * out holds a partial result.
 */
size_t scan_unescape(const char *s, size_t len, char *out, size_t cap);

/* "ok", "blank", "bad_json", "not_object", "bad_request"; "?" if unknown. */
const char *scan_status_name(scan_status st);

#endif
