/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tmpl.c - builds the request template (see tmpl.h).
 *
 * Runs once at start-up, so it may allocate and use cJSON freely; the
 * hot path only calls tmpl_write().  --data is validated with cJSON and
 * then passed on as the user's own bytes, with line ends (only legal as
 * white space between tokens in valid JSON) turned into spaces.
 */
#include "tmpl.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

/* A growable byte string, for building the template only. */
typedef struct {
    char *b;
    size_t len, cap;
} tmpl_buf;

static void tmpl_put(tmpl_buf *s, const void *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (s->len + n + 1 > cap)
            cap *= 2;
        s->b = ap_realloc(s->b, cap);
        s->cap = cap;
    }
    memcpy(s->b + s->len, p, n);
    s->len += n;
    s->b[s->len] = '\0';
}

static void tmpl_puts(tmpl_buf *s, const char *p)
{
    tmpl_put(s, p, strlen(p));
}

static void tmpl_put_json_string(tmpl_buf *s, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    tmpl_put(s, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
        if (*c == '"' || *c == '\\') {
            char e[2] = {'\\', (char)*c};
            tmpl_put(s, e, 2);
        } else if (*c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[*c >> 4], hex[*c & 15]};
            tmpl_put(s, e, 6);
        } else {
            tmpl_put(s, c, 1);
        }
    }
    tmpl_put(s, "\"", 1);
}

/* Builds the JSON body; returns AP_ERR with err set when data is bad. */
static int tmpl_body(tmpl_buf *body, size_t *id_off, size_t *session_off, int *session_width, const tmpl_spec *spec,
                     char *err, size_t errlen)
{
    char spaces[TMPL_ID_WIDTH];

    if (spec->body) { /* --body: as given, on one line */
        size_t start = body->len;
        tmpl_puts(body, spec->body);
        for (size_t i = start; i < body->len; i++)
            if (body->b[i] == '\n' || body->b[i] == '\r')
                body->b[i] = ' ';
        *id_off = TMPL_NO_ID;
        return AP_OK;
    }
    memset(spaces, ' ', sizeof(spaces));
    tmpl_puts(body, "{\"id\":");
    *id_off = body->len;
    tmpl_put(body, spaces, TMPL_ID_WIDTH);
    tmpl_puts(body, ",\"type\":");
    tmpl_put_json_string(body, spec->type);
    tmpl_puts(body, ",\"data\":");
    if (spec->data) {
        cJSON *j = cJSON_Parse(spec->data);
        if (!j) {
            const char *where = cJSON_GetErrorPtr();
            snprintf(err, errlen, "--data is not valid JSON (near byte %ld)",
                     where ? (long)(where - spec->data) : 0L);
            return AP_ERR;
        }
        cJSON_Delete(j);
        size_t start = body->len;
        tmpl_puts(body, spec->data);
        for (size_t i = start; i < body->len; i++)
            if (body->b[i] == '\n' || body->b[i] == '\r')
                body->b[i] = ' ';
    } else {
        char chunk[256];
        memset(chunk, 'x', sizeof(chunk));
        tmpl_puts(body, "{\"p\":\"");
        for (size_t left = spec->payload_bytes; left > 0;) {
            size_t n = left < sizeof(chunk) ? left : sizeof(chunk);
            tmpl_put(body, chunk, n);
            left -= n;
        }
        tmpl_puts(body, "\"}");
    }
    if (spec->stream)
        tmpl_puts(body, ",\"stream\":true");
    if (spec->pool) {
        tmpl_puts(body, ",\"pool\":");
        tmpl_put_json_string(body, spec->pool);
    }
    if (spec->sessions) {
        int w = 1;
        for (uint64_t v = spec->sessions - 1; v >= 10; v /= 10)
            w++;
        tmpl_puts(body, ",\"session\":\"s");
        *session_off = body->len;
        *session_width = w;
        for (int i = 0; i < w; i++)
            tmpl_puts(body, "0");
        tmpl_puts(body, "\"");
    }
    tmpl_puts(body, "}");
    return AP_OK;
}

int tmpl_build(tmpl *t, const tmpl_spec *spec, char *err, size_t errlen)
{
    tmpl_buf body = {0}, req = {0};
    size_t id_off = 0, session_off = 0;
    int session_width = 0;

    if (tmpl_body(&body, &id_off, &session_off, &session_width, spec, err, errlen) != AP_OK)
        goto err;
    t->sessions = spec->sessions;
    t->session_width = session_width;
    if (!spec->http) {
        tmpl_puts(&body, "\n");
        t->bytes = body.b;
        t->len = body.len;
        t->id_off = id_off;
        t->session_off = session_off;
        return AP_OK;
    }
    for (const char *c = spec->path; *c; c++) {
        if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
            snprintf(err, errlen, "--path must not contain spaces or control characters");
            goto err;
        }
    }
    if (spec->path[0] != '/') {
        snprintf(err, errlen, "--path must start with '/'");
        goto err;
    }
    char head[128];
    tmpl_puts(&req, "POST ");
    tmpl_puts(&req, spec->path);
    tmpl_puts(&req, " HTTP/1.1\r\nHost: ");
    tmpl_puts(&req, spec->host);
    snprintf(head, sizeof(head), "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", body.len);
    tmpl_puts(&req, head);
    t->id_off = id_off == TMPL_NO_ID ? TMPL_NO_ID : req.len + id_off;
    t->session_off = req.len + session_off;
    tmpl_put(&req, body.b, body.len);
    ap_free(body.b);
    t->bytes = req.b;
    t->len = req.len;
    return AP_OK;
err:
    ap_free(body.b);
    ap_free(req.b);
    return AP_ERR;
}

void tmpl_free(tmpl *t)
{
    ap_free(t->bytes);
    memset(t, 0, sizeof(*t));
}

void tmpl_write(const tmpl *t, char *dst, uint64_t id)
{
    uint64_t session_k = t->sessions ? id % t->sessions : 0;
    char digits[TMPL_ID_WIDTH];
    int n = 0;
    memcpy(dst, t->bytes, t->len);
    if (t->id_off == TMPL_NO_ID)
        return;
    do {
        digits[TMPL_ID_WIDTH - 1 - n++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    memcpy(dst + t->id_off, digits + TMPL_ID_WIDTH - n, (size_t)n);
    if (t->sessions) {
        uint64_t k = session_k;
        for (int i = t->session_width - 1; i >= 0; i--, k /= 10)
            dst[t->session_off + (size_t)i] = (char)('0' + k % 10);
    }
}
