/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * render.c - JSON results as aligned text (see render.h).
 *
 * Every string that reaches the terminal goes through render_clean, so a
 * control character inside a worker's state or an error message cannot
 * break the table or drive the terminal.  Flattening stops at
 * RENDER_MAX_DEPTH, below which values are shown as compact JSON.
 */
#include "render.h"
#include "table.h"
#include "ap_alloc.h"

#include "ap_common.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RENDER_MAX_DEPTH 8

/* A copy of s with control bytes shown as '?'. */
static char *render_clean(const char *s)
{
    char *c = ap_strdup(s ? s : "");
    for (char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return c;
}

static int render_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && memcmp(s + n - m, suffix, m) == 0;
}

int render_is_duration(const char *name)
{
    return strcmp(name, "age") == 0 || strcmp(name, "uptime") == 0 ||
           render_ends_with(name, "Age") || render_ends_with(name, "Uptime") ||
           render_ends_with(name, "Ms") || render_ends_with(name, "_ms") ||
           strncmp(name, "oldest", 6) == 0;
}

void render_duration(double ms, char *buf, size_t cap)
{
    if (!(ms >= 0) || ms > 1e15) {
        snprintf(buf, cap, "?");
        return;
    }
    unsigned long long s = (unsigned long long)(ms / 1000.0);
    if (ms < 1000.0)
        snprintf(buf, cap, "%.0fms", ms);
    else if (ms < 60000.0)
        snprintf(buf, cap, "%.1fs", floor(ms / 100.0) / 10.0);
    else if (s < 3600)
        snprintf(buf, cap, "%llum%02llus", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%lluh%02llum%02llus", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%llud%02lluh%02llum", s / 86400, s / 3600 % 24, s / 60 % 60);
}

/* Numbers without noise: integers as integers, others with at most
 * three decimals and no trailing zeros. */
static void render_number(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    if (fabs(v) >= 1e15 || (v != 0 && fabs(v) < 1e-3)) {
        snprintf(buf, cap, "%g", v);
        return;
    }
    snprintf(buf, cap, "%.3f", v);
    char *e = buf + strlen(buf);
    while (e > buf && e[-1] == '0')
        *--e = '\0';
    if (e > buf && e[-1] == '.')
        e[-1] = '\0';
}

static char *render_compact(const cJSON *item)
{
    char *j = cJSON_PrintUnformatted(item);
    char *c = render_clean(j ? j : "?");
    if (j)
        cJSON_free(j);
    return c;
}

char *render_value(const char *name, const cJSON *item)
{
    char buf[128];
    if (item == NULL)
        return ap_strdup("-");
    if (cJSON_IsString(item))
        return render_clean(item->valuestring);
    if (cJSON_IsBool(item))
        return ap_strdup(cJSON_IsTrue(item) ? "true" : "false");
    if (cJSON_IsNull(item))
        return ap_strdup("null");
    if (cJSON_IsNumber(item)) {
        render_number(item->valuedouble, buf, sizeof(buf));
        if (render_is_duration(name) && item->valuedouble >= 1000.0) {
            char h[48];
            size_t n = strlen(buf);
            render_duration(item->valuedouble, h, sizeof(h));
            snprintf(buf + n, sizeof(buf) - n, " (%s)", h);
        }
        return ap_strdup(buf);
    }
    if ((cJSON_IsObject(item) || cJSON_IsArray(item)) && item->child == NULL)
        return ap_strdup("(none)");
    if (cJSON_IsArray(item)) {
        /* A list of scalars reads best joined; anything deeper as JSON. */
        size_t len = 0;
        for (const cJSON *e = item->child; e; e = e->next)
            if (cJSON_IsObject(e) || cJSON_IsArray(e))
                return render_compact(item);
        char *joined = ap_strdup("");
        for (const cJSON *e = item->child; e; e = e->next) {
            char *v = render_value(name, e);
            size_t vl = strlen(v);
            joined = ap_realloc(joined, len + vl + 3);
            if (len) {
                memcpy(joined + len, ", ", 2);
                len += 2;
            }
            memcpy(joined + len, v, vl + 1);
            len += vl;
            ap_free(v);
        }
        return joined;
    }
    return render_compact(item);
}

/* Adds rows for item under the dotted key prefix. */
static void render_flatten(table *t, const char *key, const char *name, const cJSON *item,
                           int depth)
{
    if (cJSON_IsObject(item) && item->child && depth < RENDER_MAX_DEPTH) {
        for (const cJSON *c = item->child; c; c = c->next) {
            const char *cn = c->string ? c->string : "?";
            size_t kl = strlen(key) + strlen(cn) + 2;
            char *sub = ap_malloc(kl);
            snprintf(sub, kl, "%s.%s", key, cn);
            render_flatten(t, sub, cn, c, depth + 1);
            ap_free(sub);
        }
        return;
    }
    char *row[2] = {render_clean(key), render_value(name, item)};
    table_add_row(t, row);
}

int render_is_row_array(const cJSON *item)
{
    if (!cJSON_IsArray(item) || item->child == NULL)
        return 0;
    for (const cJSON *e = item->child; e; e = e->next)
        if (!cJSON_IsObject(e))
            return 0;
    return 1;
}

/* Index of name in prefer, or nprefer when absent. */
static size_t render_rank(const char *name, const char *const *prefer, size_t nprefer)
{
    for (size_t i = 0; i < nprefer; i++)
        if (name && strcmp(name, prefer[i]) == 0)
            return i;
    return nprefer;
}

void render_object(FILE *out, const cJSON *obj, const char *const *prefer, size_t nprefer)
{
    table t;
    table_init(&t, 2);
    /* Preferred keys first, in the caller's order, then the rest. */
    for (size_t i = 0; i <= nprefer; i++) {
        for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next) {
            if (render_rank(c->string, prefer, nprefer) != i || render_is_row_array(c))
                continue;
            render_flatten(&t, c->string ? c->string : "?", c->string ? c->string : "?", c, 0);
            if (i < nprefer)
                break; /* a duplicated key is shown once among the preferred */
        }
    }
    table_print(&t, out, "");
    table_free(&t);
}

void render_rows(FILE *out, const cJSON *array, const char *const *prefer, size_t nprefer)
{
    /* Column names: preferred ones present anywhere, then first-seen. */
    size_t ncols = 0, acols = 16;
    const char **cols = ap_malloc(acols * sizeof(char *));
    for (size_t i = 0; i <= nprefer; i++) {
        for (const cJSON *row = array->child; row; row = row->next) {
            for (const cJSON *c = row->child; c; c = c->next) {
                if (c->string == NULL || render_rank(c->string, prefer, nprefer) != i)
                    continue;
                size_t k = 0;
                while (k < ncols && strcmp(cols[k], c->string) != 0)
                    k++;
                if (k < ncols)
                    continue;
                if (ncols == acols) {
                    acols *= 2;
                    cols = ap_realloc(cols, acols * sizeof(char *));
                }
                cols[ncols++] = c->string;
            }
        }
    }
    if (ncols == 0) {
        ap_free(cols);
        return;
    }
    table t;
    table_init(&t, ncols);
    char **cells = ap_malloc(ncols * sizeof(char *));
    for (size_t k = 0; k < ncols; k++)
        cells[k] = render_clean(cols[k]);
    table_add_row(&t, cells);
    for (const cJSON *row = array->child; row; row = row->next) {
        for (size_t k = 0; k < ncols; k++)
            cells[k] = render_value(cols[k], cJSON_GetObjectItemCaseSensitive(row, cols[k]));
        table_add_row(&t, cells);
    }
    table_print(&t, out, "");
    table_free(&t);
    ap_free(cells);
    ap_free(cols);
}

void render_local_time(uint64_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (cap == 0)
        return;
    if (localtime_r(&t, &tm) == NULL) {
        snprintf(buf, cap, "%llu", (unsigned long long)ms);
        return;
    }
    char date[32];
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, cap, "%s.%03u%c%02ld:%02ld", date, (unsigned)(ms % 1000), sign, off / 60, off % 60);
}

int render_parse_utc(const char *s, uint64_t *ms)
{
    struct tm tm;
    char *end;
    unsigned frac = 0;

    memset(&tm, 0, sizeof(tm));
    end = strptime(s ? s : "", "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return AP_ERR;
    if (*end == '.') {
        unsigned digits = 0;
        for (end++; *end >= '0' && *end <= '9'; end++, digits++)
            if (digits < 3)
                frac = frac * 10 + (unsigned)(*end - '0');
        if (digits == 0)
            return AP_ERR;
        for (; digits < 3; digits++)
            frac *= 10;
    }
    if (strcmp(end, "Z") != 0)
        return AP_ERR;
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t < 0)
        return AP_ERR;
    *ms = (uint64_t)t * 1000 + frac;
    return AP_OK;
}

char *render_fit(const char *s, size_t width)
{
    char *c = render_clean(s);
    if (width == 0 || table_width(c) <= width)
        return c;
    /* Keep width - 3 characters (at least one), then "...". */
    size_t keep = width > 3 ? width - 3 : 1, chars = 0, i = 0;
    for (; c[i]; i++) {
        if (((unsigned char)c[i] & 0xC0) != 0x80) {
            if (chars == keep)
                break;
            chars++;
        }
    }
    c = ap_realloc(c, i + 4);
    memcpy(c + i, "...", 4);
    return c;
}

char *render_fmt(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    size_t cap = n > 0 ? (size_t)n + 1 : 1;
    char *s = ap_malloc(cap);
    s[0] = '\0';
    va_start(ap, fmt);
    if (n > 0)
        vsnprintf(s, cap, fmt, ap);
    va_end(ap);
    return s;
}

void render_bytes(double bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (!(bytes >= 0) || bytes > 1e18) {
        snprintf(buf, cap, "?");
        return;
    }
    if (bytes < 1024) {
        snprintf(buf, cap, "%.0f B", bytes);
        return;
    }
    size_t u = 0;
    double v = bytes / 1024;
    while (v >= 1024 && u + 1 < AP_ARRAY_LEN(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void render_ms(double ms, char *buf, size_t cap)
{
    if (!(ms >= 0) || ms > 1e15)
        snprintf(buf, cap, "?");
    else if (ms == 0)
        snprintf(buf, cap, "0ms");
    else if (ms < 1)
        snprintf(buf, cap, "%.0fus", ms * 1000 < 1 ? 1.0 : ms * 1000);
    else if (ms < 10)
        snprintf(buf, cap, "%.2fms", ms);
    else if (ms < 100)
        snprintf(buf, cap, "%.1fms", ms);
    else if (ms < 1000)
        snprintf(buf, cap, "%.0fms", ms);
    else if (ms < 10000)
        snprintf(buf, cap, "%.2fs", ms / 1000);
    else if (ms < 60000)
        snprintf(buf, cap, "%.1fs", ms / 1000);
    else
        render_duration(ms, buf, cap);
}

char *render_words(const char *name)
{
    const char *s = name ? name : "?";
    size_t upper = 0;
    for (const char *p = s; *p; p++)
        upper += *p >= 'A' && *p <= 'Z';
    char *w = ap_malloc(strlen(s) + upper + 1), *o = w;
    for (const char *p = s; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            /* A run of capitals (an acronym) stays one word. */
            if (p > s && !(p[-1] >= 'A' && p[-1] <= 'Z'))
                *o++ = ' ';
            *o++ = (char)(*p - 'A' + 'a');
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    char *clean = render_clean(w);
    ap_free(w);
    return clean;
}

char *render_cut(const char *s, size_t width)
{
    char *c = render_clean(s);
    if (width == 0)
        return c;
    size_t chars = 0, i = 0;
    for (; c[i]; i++) {
        if (((unsigned char)c[i] & 0xC0) != 0x80) {
            if (chars == width)
                break;
            chars++;
        }
    }
    c[i] = '\0';
    return c;
}

void render_fit_last_column(table *t, size_t width, size_t min_last)
{
    size_t used = 0, last = t->ncols - 1;
    if (width == 0)
        return;
    for (size_t c = 0; c < last; c++) {
        size_t w = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t cw = table_width(t->cells[r * t->ncols + c]);
            if (cw > w)
                w = cw;
        }
        used += w + 2;
    }
    size_t room = width > used + min_last ? width - used : min_last;
    for (size_t r = 0; r < t->nrows; r++) {
        char **cell = &t->cells[r * t->ncols + last];
        char *cut = render_fit(*cell, room);
        ap_free(*cell);
        *cell = cut;
    }
}

int render_named_pools(const cJSON *pools)
{
    int n = cJSON_IsObject(pools) ? cJSON_GetArraySize(pools) : 0;
    return n > 1 || (n == 1 && strcmp(pools->child->string ? pools->child->string : "", "default") != 0);
}
