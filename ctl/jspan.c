/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jspan.c - byte spans of JSON values, found with cJSON (see jspan.h).
 *
 * cJSON parses each value (cJSON_ParseWithLengthOpts, not asked for a
 * terminator, reports where the value ended); the loops here only skip
 * white space and check the one punctuation byte expected between
 * values.  Every index stays below the span's length.  A value that
 * starts with a UTF-8 byte-order mark is refused, because cJSON would
 * skip the mark and the span would no longer start at the value.
 */
#include "jspan.h"
#include "ap_common.h"

#include <string.h>

static size_t jspan_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

int jspan_value(jspan s, jspan *val, cJSON **tree)
{
    val->p = NULL;
    val->len = 0;
    if (tree)
        *tree = NULL;
    if (s.p == NULL)
        return AP_ERR;
    size_t i = jspan_ws(s.p, s.len, 0);
    if (i >= s.len || (unsigned char)s.p[i] == 0xEF)
        return AP_ERR;
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(s.p + i, s.len - i, &end, 0);
    if (v == NULL)
        return AP_ERR;
    val->p = s.p + i;
    val->len = (size_t)(end - val->p);
    if (tree)
        *tree = v;
    else
        cJSON_Delete(v);
    return AP_OK;
}

/* The span of s from index i on. */
static jspan jspan_from(jspan s, size_t i)
{
    jspan r = {s.p + i, s.len - i};
    return r;
}

int jspan_member(jspan obj, const char *key, jspan *val, cJSON **tree)
{
    const char *s = obj.p;
    size_t len = obj.len;

    val->p = NULL;
    val->len = 0;
    if (tree)
        *tree = NULL;
    if (s == NULL)
        return AP_ERR;
    size_t i = jspan_ws(s, len, 0);
    if (i >= len || s[i] != '{')
        return AP_ERR;
    i = jspan_ws(s, len, i + 1);
    if (i < len && s[i] == '}')
        return AP_ERR;
    while (i < len && s[i] == '"') {
        jspan k, v;
        cJSON *name;
        if (jspan_value(jspan_from(obj, i), &k, &name) != AP_OK)
            return AP_ERR;
        int match = cJSON_IsString(name) && strcmp(name->valuestring, key) == 0;
        cJSON_Delete(name);
        i = jspan_ws(s, len, (size_t)(k.p + k.len - s));
        if (i >= len || s[i] != ':')
            return AP_ERR;
        if (jspan_value(jspan_from(obj, i + 1), &v, match ? tree : NULL) != AP_OK)
            return AP_ERR;
        if (match) {
            *val = v;
            return AP_OK;
        }
        i = jspan_ws(s, len, (size_t)(v.p + v.len - s));
        if (i >= len || s[i] != ',')
            return AP_ERR; /* '}': no such member; anything else: not JSON */
        i = jspan_ws(s, len, i + 1);
    }
    return AP_ERR;
}

int jspan_next(jspan arr, size_t *cursor, jspan *elem, cJSON **tree)
{
    const char *s = arr.p;
    size_t len = arr.len, i = *cursor;

    if (tree)
        *tree = NULL;
    if (s == NULL || i >= len) {
        *cursor = len;
        return 0;
    }
    if (i == 0) {
        i = jspan_ws(s, len, 0);
        if (i >= len || s[i] != '[') {
            *cursor = len;
            return 0;
        }
        i = jspan_ws(s, len, i + 1);
    } else {
        /* Just past the previous element: a comma comes next, or the end. */
        i = jspan_ws(s, len, i);
        if (i >= len || s[i] != ',') {
            *cursor = len;
            return 0;
        }
        i++;
    }
    if (jspan_value(jspan_from(arr, i), elem, tree) != AP_OK) {
        *cursor = len;
        return 0;
    }
    *cursor = (size_t)(elem->p + elem->len - s);
    if (*cursor >= len) {
        /* An array never ends with an element: its ']' is still to come. */
        *cursor = len;
        if (tree) {
            cJSON_Delete(*tree);
            *tree = NULL;
        }
        elem->p = NULL;
        elem->len = 0;
        return 0;
    }
    return 1;
}

int jspan_u64(const char *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (p == NULL || n == 0 || n > 20)
        return AP_ERR;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return AP_ERR;
        v = v * 10 + d;
    }
    *out = v;
    return AP_OK;
}
