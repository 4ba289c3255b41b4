/*
 * jraw.h - find values inside JSON text without parsing it into a tree.
 *
 * agentpoolctl forwards parts of agentpoold's answers onward byte for
 * byte: a dead letter's "type" and "data" go back to the server as they
 * were written (so 64-bit integers and number spellings survive), and
 * `dlq list --json` prints each record as received.  A jraw_span names
 * the raw bytes of one JSON value; jraw_member and jraw_next walk an
 * object's members and an array's elements by skipping over values
 * (strings with their escapes, nested containers by depth) and never
 * allocate.  The text is expected to be valid JSON (agentpoold's own
 * output); on anything else they fail or return nonsense spans, but
 * never read outside the span they were given.
 */
#ifndef CTL_JRAW_H
#define CTL_JRAW_H

#include <stddef.h>
#include <stdint.h>

/* The raw bytes of one JSON value (p == NULL: none). */
typedef struct {
    const char *p;
    size_t len;
} jraw_span;

/* Finds the member called key of the object in obj (leading whitespace
 * allowed) and stores its value's bytes in *out.  The name is compared
 * as written, so a name spelled with escapes does not match; when a name
 * appears twice the last one counts (as agentpoold's request parser
 * does).  Returns AP_OK, or AP_ERR (*out cleared) when obj is not an
 * object or has no such member. */
int jraw_member(jraw_span obj, const char *key, jraw_span *out);

/* Steps through the elements of the array in arr.  *cursor starts at 0
 * and is advanced by each call.  Returns 1 with the next element in
 * *elem, or 0 at the end (or when arr is not an array). */
int jraw_next(jraw_span arr, size_t *cursor, jraw_span *elem);

/* 1 when s is exactly the literal lit ("true", "null", ...). */
int jraw_is(jraw_span s, const char *lit);

/* Reads s as a non-negative integer written in plain digits (no sign,
 * fraction or exponent).  Returns AP_OK, or AP_ERR when it is not one or
 * does not fit 64 bits. */
int jraw_u64(jraw_span s, uint64_t *out);

/* Copies the string value in s, without its quotes and with escapes left
 * as written, into buf (cap bytes, NUL-terminated, cut short if need
 * be).  Returns AP_OK, or AP_ERR (buf empty) when s is not a string. */
int jraw_str(jraw_span s, char *buf, size_t cap);

#endif
