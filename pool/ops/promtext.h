/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * promtext.h - writing Prometheus's text exposition format, version 0.0.4.
 *
 * One metric family is a HELP line, a TYPE line and its samples, each
 * sample `name{label="value",...} value`.  This module gets the syntax
 * right so its callers only choose names and values: label values are
 * escaped (backslash, double quote and newline as \\, \" and \n), HELP
 * text too (backslash and newline), numbers are written the way the
 * format's parsers read them (integers exactly, +Inf, -Inf, NaN), and a
 * hist_fixed becomes a histogram's cumulative _bucket series with its
 * `le` labels, +Inf, _sum and _count.  Names are the caller's and must
 * already match [a-zA-Z_:][a-zA-Z0-9_:]*.  Pure: writes only into the
 * evbuffer it is given; no server state, no clock, no logging.
 */
#ifndef AP_PROMTEXT_H
#define AP_PROMTEXT_H

#include "hist.h"

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

typedef struct {
    const char *name;
    const char *value;      /* NUL-terminated; any bytes, escaped on output */
} promtext_label;

/* # HELP name help\n# TYPE name type\n (type: counter, gauge, histogram...). */
void promtext_family(struct evbuffer *out, const char *name, const char *type, const char *help);
/* One sample with an unsigned integer value, written exactly. */
void promtext_u64(struct evbuffer *out, const char *name, const promtext_label *labels, unsigned nlabels,
                  uint64_t value);
/* One sample with a floating-point value. */
void promtext_double(struct evbuffer *out, const char *name, const promtext_label *labels, unsigned nlabels,
                     double value);
/* The samples of a histogram family `name` from h: name_bucket{...,le=}
 * for each bound (divided by scale: 1e9 for ns -> seconds) and +Inf,
 * cumulative; name_sum (divided by scale) and name_count. */
void promtext_histogram(struct evbuffer *out, const char *name, const promtext_label *labels, unsigned nlabels,
                        const hist_fixed *h, double scale);
/* Appends s escaped as a label value (label != 0) or HELP text. */
void promtext_escape(struct evbuffer *out, const char *s, int label);

#endif
