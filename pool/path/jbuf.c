/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jbuf.c - JSON text written by hand into a growing buffer (see jbuf.h).
 * Hand-written because cJSON can only print its own trees: building a
 * tree around text that is JSON already (and freeing it) is what this
 * avoids.
 */
#include "jbuf.h"
#include "ap_alloc.h"
#include "ap_json.h"

#include <cJSON.h>
#include <string.h>

static void jbuf_reserve(jbuf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->p = ap_realloc(b->p, cap);
    b->cap = cap;
}

void jbuf_add(jbuf *b, const char *s, size_t n)
{
    jbuf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void jbuf_add_compact(jbuf *b, const char *s, size_t n)
{
    jbuf_reserve(b, n);
    char *w = b->p + b->len;
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\' && i + 1 < n) {
                *w++ = c;
                c = s[++i];
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else if (c == '"') {
            in_string = 1;
        }
        *w++ = c;
    }
    b->len = (size_t)(w - b->p);
    b->p[b->len] = '\0';
}

void jbuf_str(jbuf *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n && (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f && s[i] != '"' && s[i] != '\\')
        i++;
    if (i == n) { /* printable ASCII with nothing to escape (ids, states, names): as it is */
        jbuf_reserve(b, n + 2);
        b->p[b->len++] = '"';
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len++] = '"';
        b->p[b->len] = '\0';
        return;
    }
    jbuf_reserve(b, AP_JSON_ESCAPE_MAX(n) + 2);
    b->p[b->len++] = '"';
    b->len += ap_json_escape(b->p + b->len, AP_JSON_ESCAPE_MAX(n), s, n);
    b->p[b->len++] = '"';
    b->p[b->len] = '\0';
}

void jbuf_print(jbuf *b, const cJSON *v)
{
    char *text = v ? cJSON_PrintUnformatted(v) : NULL;
    if (text == NULL) {
        JBUF_LIT(b, "null");
        return;
    }
    jbuf_add(b, text, strlen(text));
    cJSON_free(text);
}

void jbuf_tree(jbuf *b, cJSON *v)
{
    jbuf_print(b, v);
    cJSON_Delete(v);
}

cJSON *jbuf_raw(jbuf *b)
{
    cJSON *r = cJSON_CreateNull();
    if (r == NULL || b->p == NULL) {
        ap_free(b->p);
    } else {
        r->type = cJSON_Raw;
        r->valuestring = b->p;
    }
    b->p = NULL;
    b->len = b->cap = 0;
    return r;
}
