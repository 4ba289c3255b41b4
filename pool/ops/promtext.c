/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * promtext.c - the Prometheus text format writer (see promtext.h).
 *
 * Doubles are printed with 15 significant digits when that reads back as
 * the same double, else 17 (which always does);
 * integers with PRIu64, so counters past 2^53 stay exact.  Label values
 * are copied byte for byte except the three escapes: the format is UTF-8
 * and the master only ever passes text that is (type names come from
 * strict JSON).
 */
#include "promtext.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void promtext_escape(struct evbuffer *out, const char *s, int label)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && label)
            esc = "\\\"";
        if (esc) {
            evbuffer_add(out, run, (size_t)(s - run));
            evbuffer_add(out, esc, 2);
            run = s + 1;
        }
    }
    evbuffer_add(out, run, (size_t)(s - run));
}

void promtext_family(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s ", name);
    promtext_escape(out, help, 0);
    evbuffer_add_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void labels_out(struct evbuffer *out, const promtext_label *labels, unsigned n, const char *le)
{
    if (n == 0 && le == NULL)
        return;
    evbuffer_add(out, "{", 1);
    for (unsigned i = 0; i < n; i++) {
        evbuffer_add_printf(out, "%s%s=\"", i ? "," : "", labels[i].name);
        promtext_escape(out, labels[i].value, 1);
        evbuffer_add(out, "\"", 1);
    }
    if (le)
        evbuffer_add_printf(out, "%sle=\"%s\"", n ? "," : "", le);
    evbuffer_add(out, "}", 1);
}

/* A double as the format writes it, into buf. */
static const char *fmt_double(char *buf, size_t cap, double v)
{
    if (isnan(v))
        snprintf(buf, cap, "NaN");
    else if (isinf(v))
        snprintf(buf, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    else {
        /* The shortest of 15 or 17 digits that reads back as v. */
        snprintf(buf, cap, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, cap, "%.17g", v);
    }
    return buf;
}

void promtext_u64(struct evbuffer *out, const char *name, const promtext_label *labels, unsigned nlabels,
                  uint64_t value)
{
    evbuffer_add_printf(out, "%s", name);
    labels_out(out, labels, nlabels, NULL);
    evbuffer_add_printf(out, " %" PRIu64 "\n", value);
}

void promtext_double(struct evbuffer *out, const char *name, const promtext_label *labels, unsigned nlabels,
                     double value)
{
    char num[40];
    evbuffer_add_printf(out, "%s", name);
    labels_out(out, labels, nlabels, NULL);
    evbuffer_add_printf(out, " %s\n", fmt_double(num, sizeof(num), value));
}

void promtext_histogram(struct evbuffer *out, const char *name, const promtext_label *labels, unsigned nlabels,
                        const hist_fixed *h, double scale)
{
    char le[40], num[40];
    uint64_t cum = 0;
    for (unsigned i = 0; i <= h->nbounds; i++) {
        cum += h->count[i];
        if (i < h->nbounds)
            snprintf(le, sizeof(le), "%.9g", (double)h->bound[i] / scale);
        else
            snprintf(le, sizeof(le), "+Inf");
        evbuffer_add_printf(out, "%s_bucket", name);
        labels_out(out, labels, nlabels, le);
        evbuffer_add_printf(out, " %" PRIu64 "\n", cum);
    }
    evbuffer_add_printf(out, "%s_sum", name);
    labels_out(out, labels, nlabels, NULL);
    evbuffer_add_printf(out, " %s\n", fmt_double(num, sizeof(num), hist_fixed_sum(h, scale)));
    evbuffer_add_printf(out, "%s_count", name);
    labels_out(out, labels, nlabels, NULL);
    evbuffer_add_printf(out, " %" PRIu64 "\n", h->n);
}
