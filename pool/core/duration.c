/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * duration.c - milliseconds from "250ms", "30s", "2m", "1h", "1d" or a
 * bare number, and back (see duration.h).
 *
 * One table of units drives both directions.  Only whole numbers are
 * accepted ("1.5s" is refused: write "1500ms"), and the product is
 * checked before it is made, so no value wraps.  Called by config.c;
 * pure, never logs.
 */
#include "duration.h"
#include "ap_common.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int64_t ms;
} duration_units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

int duration_parse(const char *text, int64_t *ms, int *bare, char *why, size_t whylen)
{
    const char *p = text;
    int64_t n = 0;
    if (!isdigit((unsigned char)*p)) {
        snprintf(why, whylen, "expected a whole number of milliseconds or a duration such as \"30s\", \"250ms\", \"2m\", \"1h\"");
        return AP_ERR;
    }
    for (; isdigit((unsigned char)*p); p++) {
        int d = *p - '0';
        if (n > (INT64_MAX - d) / 10) {
            snprintf(why, whylen, "too large");
            return AP_ERR;
        }
        n = n * 10 + d;
    }
    if (*p == '\0') {
        *ms = n;
        *bare = 1;
        return AP_OK;
    }
    if (*p == '.') {
        snprintf(why, whylen, "fractions are not accepted: use a smaller unit (\"1500ms\", not \"1.5s\")");
        return AP_ERR;
    }
    for (size_t i = 0; i < AP_ARRAY_LEN(duration_units); i++) {
        if (strcmp(p, duration_units[i].name) != 0)
            continue;
        if (n > INT64_MAX / duration_units[i].ms) {
            snprintf(why, whylen, "too large");
            return AP_ERR;
        }
        *ms = n * duration_units[i].ms;
        *bare = 0;
        return AP_OK;
    }
    snprintf(why, whylen, "unknown unit \"%.16s\" (known: ms, s, m, h, d)", p);
    return AP_ERR;
}

void duration_format(int64_t ms, char *buf, size_t cap)
{
    if (ms <= 0) {
        snprintf(buf, cap, "%lld", (long long)ms);
        return;
    }
    for (size_t i = 0; i < AP_ARRAY_LEN(duration_units); i++) {
        if (ms % duration_units[i].ms == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(ms / duration_units[i].ms), duration_units[i].name);
            return;
        }
    }
}
