/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bentry.c - the broker's wire forms (see bentry.h).  Every read is
 * bounded by the reply's own lengths; nothing is trusted to be
 * NUL-terminated.
 */
#include "bentry.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_json.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <string.h>

int bentry_id_ok(const char *s, size_t len)
{
    size_t i = 0, d1 = 0, d2 = 0;
    if (len == 0 || len > BENTRY_ID_MAX)
        return 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, d1++;
    if (d1 == 0 || d1 > 20 || i == len || s[i] != '-')
        return 0;
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        d2++;
    return d2 > 0 && d2 <= 20 && i == len;
}

static int bentry_is(const redisReply *f, const char *name)
{
    size_t n = strlen(name);
    return f->len == n && memcmp(f->str, name, n) == 0;
}

int bentry_read(const redisReply *e, bentry *out, char *why, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(why, cap, "not a stream entry [id, fields]");
        return AP_ERR;
    }
    const redisReply *id = e->element[0], *f = e->element[1];
    if (!bentry_id_ok(id->str, id->len)) {
        snprintf(why, cap, "its id is not an entry id");
        return AP_ERR;
    }
    out->eid = (bspan){id->str, id->len};
    if (f->type == REDIS_REPLY_NIL)
        return AP_OK;
    if (f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0) {
        snprintf(why, cap, "entry %.*s: its fields are not name/value pairs", (int)id->len, id->str);
        return AP_ERR;
    }
    for (size_t i = 0; i < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type != REDIS_REPLY_STRING)
            continue;
        bspan *dst = bentry_is(k, "req") ? &out->req
                     : bentry_is(k, "replyTo") ? &out->reply_to
                     : bentry_is(k, "cancel") ? &out->cancel
                     : NULL;
        if (dst == NULL)
            continue;
        if (v->type != REDIS_REPLY_STRING) {
            snprintf(why, cap, "entry %.*s: field %.*s is not a string", (int)id->len, id->str, (int)k->len, k->str);
            return AP_ERR;
        }
        *dst = (bspan){v->str, v->len};
    }
    if (out->reply_to.ptr && (out->reply_to.len == 0 || out->reply_to.len > BENTRY_REPLY_TO_MAX)) {
        snprintf(why, cap, "entry %.*s: replyTo is empty or longer than %d bytes", (int)id->len, id->str,
                 BENTRY_REPLY_TO_MAX);
        return AP_ERR;
    }
    return AP_OK;
}

static int bentry_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *bentry_line(const char *req, size_t len, const char *pool, size_t *out_len)
{
    size_t b = 0, e = len, plen = strlen(pool);
    while (b < e && bentry_ws(req[b]))
        b++;
    while (e > b && bentry_ws(req[e - 1]))
        e--;
    if (e - b < 2 || req[b] != '{' || req[e - 1] != '}') {
        char *l = ap_malloc(len + 1);
        memcpy(l, req, len);
        l[len] = '\0';
        *out_len = len;
        return l;
    }
    size_t inner = b + 1;
    while (inner < e - 1 && bentry_ws(req[inner]))
        inner++;
    int empty = inner == e - 1;
    char *l = ap_malloc((e - b) + plen + 16), *w = l;
    memcpy(w, req + b, e - 1 - b);
    w += e - 1 - b;
    if (!empty)
        *w++ = ',';
    memcpy(w, "\"pool\":\"", 8);
    w += 8;
    memcpy(w, pool, plen);
    w += plen;
    memcpy(w, "\"}", 3);
    w += 2;
    *out_len = (size_t)(w - l);
    return l;
}

char *bentry_answer_key(const char *prefix, const char *idem, size_t idem_len, size_t *len)
{
    size_t pl = strlen(prefix);
    size_t n = pl + idem_len;
    char *k = ap_malloc(n + 1);
    memcpy(k, prefix, pl);
    memcpy(k + pl, idem, idem_len);
    k[n] = '\0';
    *len = n;
    return k;
}

int bentry_split_answer(const char *line, size_t len, size_t rest_off, bspan *id, bspan *rest)
{
    if (len < 8 || memcmp(line, "{\"id\":", 6) != 0 || rest_off < 8 || rest_off > len || line[rest_off - 1] != ',')
        return AP_ERR;
    *id = (bspan){line + 6, rest_off - 7};
    *rest = (bspan){line + rest_off, len - rest_off};
    return AP_OK;
}

char *bentry_error_rest(const char *code, const char *message, size_t *len)
{
    char esc[1024];
    size_t ml = strlen(message);
    if (ml > 200)
        ml = 200;
    ap_json_escape(esc, sizeof(esc), message, ml);
    size_t cap = strlen(code) + strlen(esc) + 64;
    char *r = ap_malloc(cap);
    int n = snprintf(r, cap, "\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, esc);
    *len = (size_t)n;
    return r;
}
