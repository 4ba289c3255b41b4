/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyconv.h - JSON text <-> Python objects, both directions in C.
 *
 * The worker's per-message path: the master hands us the request's
 * "data" as raw JSON text, pyconv_decode turns it into Python objects,
 * the agent answers, and pyconv_encode writes the answer as compact JSON
 * straight into the output frame buffer.  No json module round trip:
 * json.dumps would turn int dict keys into strings and emit NaN, both of
 * which we must refuse.
 *
 * Both directions bound nesting at AP_MAX_JSON_DEPTH (an array or object
 * at the top counts as depth 1).  Every failure leaves a Python exception
 * set (ValueError or TypeError, MemoryError) whose text says what and
 * where, and releases every reference it took.  Callers hold the GIL.
 *
 * State: a small, bounded cache of short ASCII strings (object keys and
 * message types) so repeated keys are not re-created for every message.
 * pyconv_fini empties it.
 */
#ifndef BRIDGE_PYCONV_H
#define BRIDGE_PYCONV_H

#include "buf.h"

/* Parses `len` bytes of JSON text.  Empty or all-whitespace text is
 * None.  Returns a new reference, or NULL with ValueError set, e.g.
 * "invalid JSON at byte 7: expected ',' or '}' in an object". */
PyObject *pyconv_decode(const char *text, size_t len);

/* Appends obj as compact JSON (UTF-8, non-ASCII written as is) to out,
 * writing at most `limit` bytes.  Returns AP_OK, or AP_ERR with TypeError
 * (a value of a type JSON has no form for, a non-str dict key) or
 * ValueError (NaN or infinite float, a str with a lone surrogate, nesting
 * deeper than the limit) set, naming the value and its path: "result is
 * not JSON serializable: set at $.items[2]"; or PYCONV_TOO_LARGE (also
 * below 0) with ValueError set when the output would pass `limit`.  On
 * failure out->len is what it was before the call. */
#define PYCONV_TOO_LARGE (-2)
int pyconv_encode(PyObject *obj, buf_t *out, size_t limit);
/* pyconv_encode, its errors naming `what` instead of "result" ("session
 * state is not JSON serializable: set at $.x"). */
int pyconv_encode_named(PyObject *obj, buf_t *out, size_t limit, const char *what);

/* A str from UTF-8 bytes, shared through the cache when short and ASCII.
 * Returns a new reference, or NULL with UnicodeDecodeError set. */
PyObject *pyconv_str(const char *s, size_t n);

/* Appends `n` bytes of UTF-8 text as a quoted JSON string.  Never fails. */
void pyconv_append_cstr(buf_t *out, const char *s, size_t n);

/* Appends a Python str as a quoted JSON string, lone surrogates replaced
 * by U+FFFD (for error messages, which must always be sendable).  Never
 * fails for a str; anything else is written through str(). */
void pyconv_append_str_lossy(buf_t *out, PyObject *s);

/* Drops the cached strings (call before Py_FinalizeEx). */
void pyconv_fini(void);

#endif
