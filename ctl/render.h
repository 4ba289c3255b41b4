/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * render.h - turn JSON results into text for people.
 *
 * Generic on purpose: agentpoold adds fields to its answers over time, so
 * nothing here lists which fields exist.  Callers pass only preferences
 * (which keys or columns come first); everything else found is shown
 * after them in the order received.  Objects are flattened to dotted
 * keys ("queue.depth"), numbers are printed without noise, and numbers
 * whose name marks them as milliseconds (see render_is_duration) also
 * get a humanised form: "1234567 (20m34s)".
 */
#ifndef CTL_RENDER_H
#define CTL_RENDER_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ap_common.h"
#include "table.h"

/* Prints obj as a two-column table of flattened keys and values.  Keys in
 * prefer come first, in that order; the rest follow in received order.
 * Members that are arrays of objects are left out: print them with
 * render_rows. */
void render_object(FILE *out, const cJSON *obj, const char *const *prefer, size_t nprefer);

/* 1 when member of obj is an array whose every element is an object
 * (and there is at least one), the kind render_rows prints. */
int render_is_row_array(const cJSON *item);

/* 1 when an answer's "pools" object is worth showing pool by pool: more
 * than one pool, or one whose name is not "default" (a server of one
 * unnamed pool answers {"default": ...}, the same as its totals). */
int render_named_pools(const cJSON *pools);

/* Prints an array of objects as a table with a header row: one column per
 * member name found, the names in prefer first (those present in any
 * row), then the others in first-seen order.  Missing cells show "-". */
void render_rows(FILE *out, const cJSON *array, const char *const *prefer, size_t nprefer);

/* 1 when a member called name holds milliseconds: "age", "uptime", names
 * ending in "Age", "Uptime", "Ms" or "_ms", names starting with "oldest". */
int render_is_duration(const char *name);

/* Writes ms as "850ms", "12.3s", "20m34s", "3h02m05s" or "4d03h12m". */
void render_duration(double ms, char *buf, size_t cap);

/* Formats a scalar (or, for containers, compact JSON) named name as a
 * newly allocated string (free with ap_free). */
char *render_value(const char *name, const cJSON *item);

/* Writes the wall-clock time ms (ms since the epoch) as local ISO 8601
 * with milliseconds and the UTC offset: "2026-11-24T10:13:08.871+01:00". */
void render_local_time(uint64_t ms, char *buf, size_t cap);

/* Reads a UTC time as agentpoold writes it, "2026-11-24T09:13:08.871Z"
 * (the fraction optional).  Returns AP_OK with ms since the epoch in
 * *ms, or AP_ERR when s is not in that form. */
int render_parse_utc(const char *s, uint64_t *ms);

/* A newly allocated string formatted as printf would (free with
 * ap_free). */
char *render_fmt(const char *fmt, ...) AP_PRINTF(1, 2);

/* Writes a byte count for people, in binary units: "512 B", "12.3 KiB",
 * "4.5 MiB", "1.2 GiB".  Negative or absurd counts are written "?". */
void render_bytes(double bytes, char *buf, size_t cap);

/* Writes a span given in ms with about three significant digits and a
 * unit that suits it: "45us", "1.20ms", "12.3ms", "345ms", "1.23s",
 * "12.3s", and from a minute on as render_duration.  For latencies. */
void render_ms(double ms, char *buf, size_t cap);

/* A member name as words: camelCase split and lowered ("answeredOk" ->
 * "answered ok"); snake_case names are kept as they are, since they are
 * codes people search for (free with ap_free). */
char *render_words(const char *name);

/* A copy of s cut to at most width characters (UTF-8 aware) with no
 * marker, as a terminal cuts a line; width 0 means no limit.  Control
 * bytes are shown as '?'.  Free with ap_free. */
char *render_cut(const char *s, size_t width);

/* A copy of s with control bytes shown as '?', cut to at most width
 * characters (UTF-8 aware) ending in "..." when it was longer; width 0
 * means no limit.  Free with ap_free. */
char *render_fit(const char *s, size_t width);
/* Cuts the last column of t (render_fit) so that its lines fit width
 * (0: no limit), leaving it at least min_last characters. */
void render_fit_last_column(table *t, size_t width, size_t min_last);

#endif
