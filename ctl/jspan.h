/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jspan.h - where a JSON value's bytes are, with cJSON reading them.
 *
 * agentpoolctl forwards parts of agentpoold's answers byte for byte: a
 * dead letter's "type" and "data" go back to the server as they were
 * written (cJSON would print 12345678901234567890 as 1.2345678901234567e+19
 * and 1.0 as 1, which Python reads as a float and an int), and
 * `dlq list --json` prints each record as received.  cJSON keeps no
 * offsets, so these functions step over an object's members or an
 * array's elements by asking cJSON to parse one value at a time
 * (cJSON_ParseWithLengthOpts tells where it ended).  Every string,
 * number, literal and nested container is read by cJSON (nesting bounded
 * by its CJSON_NESTING_LIMIT); what is walked here is only the
 * punctuation between them: '{', '[', ':', ',' and white space.  Nothing
 * reads outside the span given; on text that is not JSON they fail.
 * Parsing builds a tree, so the cost of a lookup is the cost of parsing
 * the members before (and including) the one found.
 */
#ifndef CTL_JSPAN_H
#define CTL_JSPAN_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* The bytes of one JSON value (p == NULL: none). */
typedef struct {
    const char *p;
    size_t len;
} jspan;

/* Parses the one JSON value at the start of s (white space before it
 * allowed; what follows it is not looked at).  Returns AP_OK with its
 * bytes in *val and, when tree is not NULL, the parsed value in *tree
 * (free with cJSON_Delete); or AP_ERR with *val cleared and *tree NULL. */
int jspan_value(jspan s, jspan *val, cJSON **tree);

/* Finds the first member of the object in obj whose name, unescaped,
 * is key (the member cJSON_GetObjectItemCaseSensitive would return).
 * Returns AP_OK with its value's bytes in *val (and its tree in *tree
 * when tree is not NULL), or AP_ERR with *val cleared and *tree NULL
 * when obj is not an object, has no such member before the end or
 * before text that is not JSON. */
int jspan_member(jspan obj, const char *key, jspan *val, cJSON **tree);

/* Steps through the elements of the array in arr.  *cursor starts at 0
 * and is advanced by each call.  Returns 1 with the next element's bytes
 * in *elem (and its tree in *tree when tree is not NULL), or 0 at the
 * end, when arr is not an array or at text that is not JSON (*tree
 * NULL); once it returned 0 it keeps returning 0. */
int jspan_next(jspan arr, size_t *cursor, jspan *elem, cJSON **tree);

/* Reads p[0..n) as a non-negative integer in plain decimal digits (no
 * sign, fraction, exponent or white space): dlqIds in answers, and
 * counts and ids on the command line.  Returns AP_OK, or AP_ERR when it
 * is anything else or does not fit 64 bits. */
int jspan_u64(const char *p, size_t n, uint64_t *out);

#endif
