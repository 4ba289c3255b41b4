/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jview.h - reading JSON text that scan_json_value() has accepted, in
 * place: a value's kind and bytes, an object's member by name, the
 * members or elements of a container one by one, a string unescaped, a
 * number read.  No tree is built and nothing is copied: a view is a
 * pointer into the text.  The A2A layer reads its JSON-RPC bodies with it
 * (a2a.c), as the socket's request lines are read by the scanner.
 *
 * The text must have been validated (scan_json_value) first: the walker
 * then only steps over punctuation, strings and brackets.  It still
 * never reads outside the view it is given, so misuse gives wrong
 * answers, not overreads.  Work is linear in the bytes looked at: a
 * lookup walks the object's members once.  Pure: no allocation, no
 * state, no I/O.
 */
#ifndef AP_JVIEW_H
#define AP_JVIEW_H

#include <stddef.h>

typedef enum {
    JV_ABSENT = 0, /* no such value (a member not there, a lookup in a non-object) */
    JV_NULL,
    JV_FALSE,
    JV_TRUE,
    JV_NUMBER,
    JV_STRING,
    JV_ARRAY,
    JV_OBJECT,
} jv_kind;

/* One value: its bytes p[0..len), without white space around. */
typedef struct {
    const char *p;
    size_t len;
    jv_kind kind;
} jv;

/* The value that s[0..len) holds (white space around it skipped). */
jv jv_root(const char *s, size_t len);
/* The member of obj named name (compared after unescaping); the last one
 * when the name repeats, as scan_request counts it.  JV_ABSENT when obj
 * is not an object or has no such member. */
jv jv_get(jv obj, const char *name);
/* jv_get for n names at once, in one walk of obj: out[i] is names[i]'s. */
void jv_get_many(jv obj, const char *const *names, jv *out, size_t n);
/* Steps through the members of an object (*key the name, a JV_STRING,
 * when key is not NULL) or the elements of an array (*key JV_ABSENT).
 * *cursor starts at 0 and is advanced by each call.  Returns 1 with the
 * next one in *val, 0 at the end or when c is not a container. */
int jv_next(jv c, size_t *cursor, jv *key, jv *val);
/* Whether v is absent or null. */
int jv_none(jv v);
/* A string's value, unescaped, NUL-terminated in out (cap bytes, NUL
 * included); *n its length when n is not NULL.  AP_ERR when v is not a
 * string, does not fit, or holds U+0000. */
int jv_string(jv v, char *out, size_t cap, size_t *n);
/* Whether v is the string s (unescaped, compared byte for byte). */
int jv_is(jv v, const char *s);
/* A number's value as a double.  AP_ERR when v is not a number (or its
 * text is longer than any number anyone means: 63 bytes). */
int jv_number(jv v, double *out);

#endif
