/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_json.h - the one JSON string escaper, for JSON text written by hand:
 * error messages in response lines and tracebacks (pool/path/reply.c,
 * pool/workers/reload.c), the access log's type (pool/ops/access.c), dead-letter
 * records (pool/ops/dlq.c) and JSON log lines (common/log.c).
 *
 * The output is always valid JSON string content, whatever the input
 * bytes, and bounded by the caller's buffer.  Pure: no allocation, no
 * state, no I/O.
 */
#ifndef AP_JSON_H
#define AP_JSON_H

#include <stddef.h>

/* Room that ap_json_escape() can need for len input bytes, NUL included:
 * every input byte may become a six-byte escape (\u00XX or \ufffd). */
#define AP_JSON_ESCAPE_MAX(len) (6 * (size_t)(len) + 1)

/*
 * Writes s[0..len) into dst as the content of a JSON string (without the
 * quotes): at most cap - 1 bytes, then a NUL.  Returns the bytes written,
 * NUL not counted.  cap 0: nothing is written, 0 is returned.
 *
 * Rules:
 *  - '"' and '\' are backslashed; backspace, form feed, newline, carriage
 *    return and tab use their short forms (\b \f \n \r \t); every other
 *    byte below 0x20 (NUL included: len, not a NUL, ends the input) and
 *    DEL (0x7F) is written \u00XX with lower-case hex;
 *  - well-formed UTF-8 (ap_utf8_len) is copied as it is, '/' included;
 *  - invalid UTF-8: each byte that does not start a well-formed sequence
 *    becomes U+FFFD, written \ufffd, one per byte, and the next byte is
 *    looked at afresh (so "\xE2\x82" followed by "A" gives \ufffd\ufffdA);
 *  - truncation: when the next unit (a character or an escape) does not
 *    fit, the output ends before it, so an escape or a UTF-8 sequence is
 *    whole or absent, never cut.
 */
size_t ap_json_escape(char *dst, size_t cap, const char *s, size_t len);

#endif
