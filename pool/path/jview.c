/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jview.c - reading validated JSON text in place (see jview.h).
 * Hand-written: what it does is step over text the project's own
 * scanner (scan.c) has checked; cJSON can only read by building a tree,
 * which is what this is for not doing.
 */
#include "jview.h"
#include "ap_common.h"
#include "scan.h"

#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* Bytes that end a run inside a string ('"', '\\'), and inside a
 * container (those, and the brackets). */
static const unsigned char in_string_stop[256] = {['"'] = 1, ['\\'] = 1};
static const unsigned char in_container_stop[256] = {['"'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1};

/* Past the string whose opening quote is at p (end if unterminated). */
static const char *string_end(const char *p, const char *end)
{
    p++;
    while (p < end) {
        while (p < end && !in_string_stop[(unsigned char)*p])
            p++;
        if (p >= end)
            break;
        if (*p == '"')
            return p + 1;
        p += 2; /* a backslash and the byte after it: never the end */
    }
    return end;
}

/* Past the value that starts at p. */
static const char *value_end(const char *p, const char *end)
{
    if (p >= end)
        return end;
    if (*p == '"')
        return string_end(p, end);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            while (p < end && !in_container_stop[(unsigned char)*p])
                p++;
            if (p >= end)
                break;
            if (*p == '"') {
                p = string_end(p, end);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if (--depth == 0)
                return p + 1;
            p++;
        }
        return end;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
        p++; /* a number or a literal */
    return p;
}

static jv value_at(const char *p, const char *end)
{
    jv v = {p, 0, JV_ABSENT};
    if (p >= end)
        return v;
    v.len = (size_t)(value_end(p, end) - p);
    switch (*p) {
    case '{': v.kind = JV_OBJECT; break;
    case '[': v.kind = JV_ARRAY; break;
    case '"': v.kind = JV_STRING; break;
    case 't': v.kind = JV_TRUE; break;
    case 'f': v.kind = JV_FALSE; break;
    case 'n': v.kind = JV_NULL; break;
    default: v.kind = JV_NUMBER; break;
    }
    return v;
}

jv jv_root(const char *s, size_t len)
{
    const char *end = s + len;
    return value_at(skip_ws(s, end), end);
}

int jv_next(jv c, size_t *cursor, jv *key, jv *val)
{
    if (c.kind != JV_OBJECT && c.kind != JV_ARRAY)
        return 0;
    const char *end = c.p + c.len - 1; /* the closing bracket */
    const char *p = c.p + (*cursor ? *cursor : 1);
    p = skip_ws(p, end);
    if (p < end && *p == ',')
        p = skip_ws(p + 1, end);
    if (p >= end)
        return 0;
    if (c.kind == JV_OBJECT) {
        jv k = value_at(p, end);
        if (k.kind != JV_STRING)
            return 0;
        p = skip_ws(p + k.len, end);
        if (p >= end || *p != ':')
            return 0;
        p = skip_ws(p + 1, end);
        if (key)
            *key = k;
    } else if (key) {
        *key = (jv){NULL, 0, JV_ABSENT}; /* an element has no name */
    }
    jv v = value_at(p, end);
    if (v.kind == JV_ABSENT)
        return 0;
    *val = v;
    *cursor = (size_t)(p + v.len - c.p);
    return 1;
}

/* The length of the escape at p (a backslash): 2, 6 for \uXXXX, 12 for
 * a surrogate pair; what scan_unescape takes as one. */
static size_t escape_len(const char *p, const char *end)
{
    if (end - p < 6 || p[1] != 'u')
        return 2;
    if ((p[2] == 'd' || p[2] == 'D') && memchr("89abAB", p[3], 6) != NULL && end - p >= 12 && p[6] == '\\' &&
        p[7] == 'u')
        return 12;
    return 6;
}

int jv_is(jv v, const char *s)
{
    if (v.kind != JV_STRING || v.len < 2)
        return 0;
    size_t n = strlen(s), raw = v.len - 2;
    const char *p = v.p + 1, *end = p + raw;
    if (memchr(p, '\\', raw) == NULL)
        return raw == n && memcmp(p, s, n) == 0;
    /* Run by run, escape by escape: any length, no copy of the whole. */
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        if (run > n || memcmp(p, s, run) != 0)
            return 0;
        s += run;
        n -= run;
        if (bs == NULL)
            break;
        char one[4];
        size_t e = escape_len(bs, end);
        size_t got = scan_unescape(bs, e, one, sizeof(one));
        if (got == SCAN_UNESCAPE_FAIL || got > n || memcmp(one, s, got) != 0)
            return 0;
        s += got;
        n -= got;
        p = bs + e;
    }
    return n == 0;
}

void jv_get_many(jv obj, const char *const *names, jv *out, size_t n)
{
    jv k, v;
    size_t cur = 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (jv){NULL, 0, JV_ABSENT};
    if (obj.kind != JV_OBJECT)
        return; /* an array's elements have no names: none is asked for */
    while (jv_next(obj, &cur, &k, &v))
        for (size_t i = 0; i < n; i++)
            if (jv_is(k, names[i]))
                out[i] = v;
}

jv jv_get(jv obj, const char *name)
{
    jv found;
    jv_get_many(obj, &name, &found, 1);
    return found;
}

int jv_none(jv v)
{
    return v.kind == JV_ABSENT || v.kind == JV_NULL;
}

int jv_string(jv v, char *out, size_t cap, size_t *n)
{
    if (v.kind != JV_STRING || v.len < 2 || cap == 0)
        return AP_ERR;
    size_t got = scan_unescape(v.p + 1, v.len - 2, out, cap - 1);
    if (got == SCAN_UNESCAPE_FAIL || memchr(out, '\0', got) != NULL)
        return AP_ERR;
    out[got] = '\0';
    if (n)
        *n = got;
    return AP_OK;
}

int jv_number(jv v, double *out)
{
    char buf[64];
    if (v.kind != JV_NUMBER || v.len == 0 || v.len >= sizeof(buf))
        return AP_ERR;
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    char *e = NULL;
    *out = strtod(buf, &e);
    return e == buf + v.len ? AP_OK : AP_ERR;
}
