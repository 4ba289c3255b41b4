/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jbuf.h - JSON text written by hand into a growing buffer: literals,
 * escaped strings, and JSON texts spliced in unchanged (a worker's
 * result, a message printed once), with a cJSON tree printed in only
 * where a part is rare enough not to matter.  The A2A layer writes its
 * Task with it (a2a.c), so the parts that arrive as text are never
 * parsed and printed again.  The text can become a cJSON raw item
 * (jbuf_raw) that owns it, to go into a tree that is printed later.
 *
 * The buffer is NUL-terminated at every step and grows by doubling;
 * allocation failure aborts (ap_alloc.h).  Pure: no state, no I/O.
 */
#ifndef AP_JBUF_H
#define AP_JBUF_H

#include <stddef.h>

struct cJSON;

typedef struct {
    char *p; /* NUL-terminated once anything is added; malloc'd (ap_alloc.h) */
    size_t len, cap;
} jbuf;

/* Appends s[0..n) as it is (JSON text, or part of it). */
void jbuf_add(jbuf *b, const char *s, size_t n);
/* Appends the JSON text s[0..n) (validated: scan_json_value) without
 * the white space outside its strings, so it fits on one line. */
void jbuf_add_compact(jbuf *b, const char *s, size_t n);
/* Appends a literal. */
#define JBUF_LIT(b, lit) jbuf_add((b), (lit), sizeof(lit) - 1)
/* Appends the NUL-terminated s as a JSON string, quotes included
 * (ap_json_escape: always valid JSON, whatever the bytes). */
void jbuf_str(jbuf *b, const char *s);
/* Appends v printed ("null" if it cannot be); v stays the caller's. */
void jbuf_print(jbuf *b, const struct cJSON *v);
/* jbuf_print, then frees v. */
void jbuf_tree(jbuf *b, struct cJSON *v);
/* A cJSON raw item that owns b's text (b is left empty): cJSON frees it
 * with free(), which is what made it (neither side sets allocation
 * hooks).  NULL when out of memory (b's text freed). */
struct cJSON *jbuf_raw(jbuf *b);

#endif
