/*
 * jraw.c - raw spans of JSON values (see jraw.h).
 *
 * Everything is an index into one span and every loop is bounded by the
 * span's length: jraw_skip returns JRAW_BAD instead of running past it.
 * Containers are skipped by counting brackets outside strings, without
 * checking that '[' meets ']', which is enough for text that is valid
 * JSON and harmless for text that is not.
 */
#include "jraw.h"
#include "ap_common.h"

#include <string.h>

#define JRAW_BAD ((size_t)-1)

static int jraw_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t jraw_skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && jraw_ws(s[i]))
        i++;
    return i;
}

/* The index just past the string starting at s[i] == '"', or JRAW_BAD. */
static size_t jraw_skip_string(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return JRAW_BAD;
}

/* The index just past the value starting at s[i], or JRAW_BAD. */
static size_t jraw_skip(const char *s, size_t len, size_t i)
{
    if (i >= len)
        return JRAW_BAD;
    if (s[i] == '"')
        return jraw_skip_string(s, len, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        while (i < len) {
            char c = s[i];
            if (c == '"') {
                i = jraw_skip_string(s, len, i);
                if (i == JRAW_BAD)
                    return JRAW_BAD;
                continue;
            }
            if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return JRAW_BAD;
    }
    /* A number or a literal: up to the next delimiter. */
    size_t start = i;
    while (i < len && !jraw_ws(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ':')
        i++;
    return i > start ? i : JRAW_BAD;
}

int jraw_member(jraw_span obj, const char *key, jraw_span *out)
{
    const char *s = obj.p;
    size_t len = obj.len, klen = strlen(key);
    size_t i = jraw_skip_ws(s, len, 0);
    int found = 0;

    out->p = NULL;
    out->len = 0;
    if (s == NULL || i >= len || s[i] != '{')
        return AP_ERR;
    i = jraw_skip_ws(s, len, i + 1);
    while (i < len && s[i] != '}') {
        if (s[i] != '"')
            break;
        size_t kend = jraw_skip_string(s, len, i);
        if (kend == JRAW_BAD)
            break;
        int match = kend - i - 2 == klen && memcmp(s + i + 1, key, klen) == 0;
        i = jraw_skip_ws(s, len, kend);
        if (i >= len || s[i] != ':')
            break;
        i = jraw_skip_ws(s, len, i + 1);
        size_t vend = jraw_skip(s, len, i);
        if (vend == JRAW_BAD)
            break;
        if (match) {
            out->p = s + i;
            out->len = vend - i;
            found = 1;
        }
        i = jraw_skip_ws(s, len, vend);
        if (i < len && s[i] == ',')
            i = jraw_skip_ws(s, len, i + 1);
    }
    return found ? AP_OK : AP_ERR;
}

int jraw_next(jraw_span arr, size_t *cursor, jraw_span *elem)
{
    const char *s = arr.p;
    size_t len = arr.len, i = *cursor;

    if (s == NULL)
        return 0;
    if (i == 0) {
        i = jraw_skip_ws(s, len, 0);
        if (i >= len || s[i] != '[')
            return 0;
        i++;
    }
    i = jraw_skip_ws(s, len, i);
    if (i < len && s[i] == ',')
        i = jraw_skip_ws(s, len, i + 1);
    if (i >= len || s[i] == ']') {
        *cursor = len;
        return 0;
    }
    size_t end = jraw_skip(s, len, i);
    if (end == JRAW_BAD) {
        *cursor = len;
        return 0;
    }
    elem->p = s + i;
    elem->len = end - i;
    *cursor = end;
    return 1;
}

int jraw_is(jraw_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p != NULL && s.len == n && memcmp(s.p, lit, n) == 0;
}

int jraw_u64(jraw_span s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.p == NULL || s.len == 0 || s.len > 20)
        return AP_ERR;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned)(s.p[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return AP_ERR;
        v = v * 10 + d;
    }
    *out = v;
    return AP_OK;
}

int jraw_str(jraw_span s, char *buf, size_t cap)
{
    if (cap > 0)
        buf[0] = '\0';
    if (s.p == NULL || s.len < 2 || s.p[0] != '"' || s.p[s.len - 1] != '"' || cap == 0)
        return AP_ERR;
    size_t n = s.len - 2 < cap - 1 ? s.len - 2 : cap - 1;
    memcpy(buf, s.p + 1, n);
    buf[n] = '\0';
    return AP_OK;
}
