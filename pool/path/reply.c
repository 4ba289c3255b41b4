/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reply.c - response assembly (see reply.h).
 */
#include "reply.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_json.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const code_names[ERR_COUNT] = {
    "bad_request", "too_large", "queue_full", "agent_error", "shutting_down",
    "worker_crashed", "timeout", "too_many_connections", "cancelled", "circuit_open", "forbidden", "session_busy", "too_many_sessions", "store_unavailable", "unauthorized", "rate_limited", "other",
};

const char *reply_code_name(reply_code c)
{
    return c < ERR_COUNT ? code_names[c] : "other";
}

reply_code reply_code_from(const char *s, size_t len)
{
    for (int i = 0; i < ERR_COUNT; i++)
        if (strlen(code_names[i]) == len && memcmp(code_names[i], s, len) == 0)
            return (reply_code)i;
    return ERR_OTHER;
}

reply_code reply_code_of_error_json(const char *json, size_t len)
{
    static const char prefix[] = "{\"code\":\"";
    size_t p = sizeof(prefix) - 1;
    if (len < p || memcmp(json, prefix, p) != 0)
        return ERR_OTHER;
    const char *end = memchr(json + p, '"', len - p);
    return end ? reply_code_from(json + p, (size_t)(end - json - p)) : ERR_OTHER;
}

/* Appends the pieces with one reserve/commit. */
static void add_pieces(struct evbuffer *out, const char *const *p, const size_t *n, int count)
{
    size_t total = 0;
    for (int i = 0; i < count; i++)
        total += n[i];
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) != 1) {
        for (int i = 0; i < count; i++)
            evbuffer_add(out, p[i], n[i]);
        return;
    }
    char *w = v.iov_base;
    for (int i = 0; i < count; i++) {
        memcpy(w, p[i], n[i]);
        w += n[i];
    }
    v.iov_len = total;
    evbuffer_commit_space(out, &v, 1);
}

static void reply_with(struct evbuffer *out, const char *id, size_t id_len, const char *mid,
                       size_t mid_len, const char *body, size_t len)
{
    const char *p[5] = {"{\"id\":", id_len ? id : "null", mid, body, "}\n"};
    size_t n[5] = {6, id_len ? id_len : 4, mid_len, len, 2};
    add_pieces(out, p, n, 5);
}

void reply_ok(struct evbuffer *out, const char *id, size_t id_len, const char *result, size_t len)
{
    static const char mid[] = ",\"ok\":true,\"result\":";
    if (len == 0) {
        result = "null";
        len = 4;
    }
    reply_with(out, id, id_len, mid, sizeof(mid) - 1, result, len);
}

void reply_ok_move(struct evbuffer *out, const char *id, size_t id_len, struct evbuffer *src, size_t len)
{
    static const char mid[] = ",\"ok\":true,\"result\":";
    const char *p[3] = {"{\"id\":", id_len ? id : "null", mid};
    size_t n[3] = {6, id_len ? id_len : 4, sizeof(mid) - 1};
    add_pieces(out, p, n, 3);
    if (evbuffer_remove_buffer(src, out, len) < 0) /* src's start frozen: copied, left there */
        evbuffer_add(out, evbuffer_pullup(src, (ev_ssize_t)len), len);
    evbuffer_add(out, "}\n", 2);
}

void reply_ok_input(struct evbuffer *out, const char *id, size_t id_len, struct evbuffer *src, const char *body,
                    size_t len)
{
    static const char mid[] = ",\"ok\":true,\"inputRequired\":true,\"result\":";
    if (src)
        body = (const char *)evbuffer_pullup(src, (ev_ssize_t)len);
    if (body == NULL || len == 0) {
        body = "null";
        len = 4;
    }
    reply_with(out, id, id_len, mid, sizeof(mid) - 1, body, len);
}

void reply_replayed(struct evbuffer *out, const char *id, size_t id_len, int ok, const char *body, size_t len)
{
    static const char mid_ok[] = ",\"ok\":true,\"result\":", mid_err[] = ",\"ok\":false,\"error\":";
    static const char tail[] = ",\"replayed\":true}\n";
    const char *p[5] = {"{\"id\":", id_len ? id : "null", ok ? mid_ok : mid_err, body, tail};
    size_t n[5] = {6, id_len ? id_len : 4, ok ? sizeof(mid_ok) - 1 : sizeof(mid_err) - 1, len, sizeof(tail) - 1};
    add_pieces(out, p, n, 5);
}

void reply_chunk(struct evbuffer *out, const char *id, size_t id_len, const char *chunk, size_t len, uint32_t seq)
{
    char tail[32];
    int tn = snprintf(tail, sizeof(tail), ",\"seq\":%u}\n", (unsigned)seq);
    const char *p[5] = {"{\"id\":", id_len ? id : "null", ",\"chunk\":", chunk, tail};
    size_t n[5] = {6, id_len ? id_len : 4, 9, len, (size_t)tn};
    add_pieces(out, p, n, 5);
}

void reply_heartbeat(struct evbuffer *out, const char *id, size_t id_len)
{
    const char *p[3] = {"{\"id\":", id_len ? id : "null", ",\"heartbeat\":true}\n"};
    size_t n[3] = {6, id_len ? id_len : 4, 19};
    add_pieces(out, p, n, 3);
}

void reply_error_json(struct evbuffer *out, const char *id, size_t id_len, const char *err, size_t len)
{
    static const char mid[] = ",\"ok\":false,\"error\":";
    static const char empty[] = "{\"code\":\"other\",\"message\":\"the worker sent an empty error\"}";
    if (len == 0) {
        err = empty;
        len = sizeof(empty) - 1;
    }
    reply_with(out, id, id_len, mid, sizeof(mid) - 1, err, len);
}

void reply_error(struct evbuffer *out, const char *id, size_t id_len, reply_code code,
                 const char *message, const char *extra)
{
    char msg[1024], small[1400];
    ap_json_escape(msg, sizeof(msg), message, strlen(message));
    size_t need = strlen(msg) + (extra ? strlen(extra) : 0) + 64;
    /* Most errors fit on the stack; a long extra (a traceback) gets the
     * room it needs rather than being cut. */
    char *body = need <= sizeof(small) ? small : ap_malloc(need);
    int n = snprintf(body, need <= sizeof(small) ? sizeof(small) : need, "{\"code\":\"%s\",\"message\":\"%s\"%s}",
                     reply_code_name(code), msg, extra ? extra : "");
    reply_error_json(out, id, id_len, body, n > 0 ? (size_t)n : 0);
    if (body != small)
        ap_free(body);
}

/* Whether line[off..) starts with the literal s. */
static int at(const char *line, size_t len, size_t off, const char *s, size_t n)
{
    return off <= len && len - off >= n && memcmp(line + off, s, n) == 0;
}

/* The answer's value, from off to the line's closing brace, or to the
 * ,"replayed":true member reply_replayed puts after it (no JSON value
 * ends with that text outside a string, and a string ends with a quote,
 * so the tail is never part of the value). */
static void answer_value(const char *line, size_t len, size_t off, reply_line *out)
{
    static const char replayed[] = ",\"replayed\":true}";
    size_t end = len - 1;
    if (len - off >= sizeof(replayed) - 1 && memcmp(line + len - (sizeof(replayed) - 1), replayed,
                                                    sizeof(replayed) - 1) == 0)
        end = len - (sizeof(replayed) - 1);
    out->value_off = off;
    out->value_len = end > off ? end - off : 0;
}

int reply_read(const char *line, size_t len, reply_line *out)
{
    static const char ok[] = "\"ok\":true,\"result\":", err[] = "\"ok\":false,\"error\":";
    static const char input[] = "\"ok\":true,\"inputRequired\":true,\"result\":";
    static const char chunk[] = "\"chunk\":", beat[] = "\"heartbeat\":true}", seq[] = ",\"seq\":";
    static const char retry[] = "\"retryAfterMs\":";
    memset(out, 0, sizeof(*out));
    if (len < 8 || !at(line, len, 0, "{\"id\":", 6) || line[len - 1] != '}')
        return AP_ERR;
    size_t off = 6; /* past the id: null, an integer, or a string as the client wrote it */
    if (line[off] == '"') {
        for (off++; off < len && line[off] != '"'; off++)
            if (line[off] == '\\')
                off++;
        off++;
    } else {
        while (off < len && line[off] != ',')
            off++;
    }
    if (!at(line, len, off, ",", 1))
        return AP_ERR;
    off++;
    out->rest_off = off;
    if (at(line, len, off, ok, sizeof(ok) - 1)) {
        out->kind = REPLY_LINE_ANSWER;
        out->ok = 1;
        answer_value(line, len, off + sizeof(ok) - 1, out);
        return AP_OK;
    }
    if (at(line, len, off, input, sizeof(input) - 1)) {
        out->kind = REPLY_LINE_ANSWER;
        out->ok = 1;
        out->input_required = 1;
        answer_value(line, len, off + sizeof(input) - 1, out);
        return AP_OK;
    }
    if (at(line, len, off, err, sizeof(err) - 1)) {
        size_t e = off + sizeof(err) - 1;
        out->kind = REPLY_LINE_ANSWER;
        answer_value(line, len, e, out);
        out->code = reply_code_of_error_json(line + e, len - e);
        const char *r = memmem(line + e, len - e, retry, sizeof(retry) - 1);
        if (r)
            out->retry_after_ms = strtoull(r + sizeof(retry) - 1, NULL, 10);
        return AP_OK;
    }
    if (at(line, len, off, beat, sizeof(beat) - 1)) {
        out->kind = REPLY_LINE_HEARTBEAT;
        return AP_OK;
    }
    if (at(line, len, off, chunk, sizeof(chunk) - 1)) {
        size_t p = off + sizeof(chunk) - 1;
        /* the payload ends at the last ,"seq": (the number after it has no comma) */
        for (size_t i = len - 1; i > p + sizeof(seq) - 1; i--) {
            if (memcmp(line + i - (sizeof(seq) - 1), seq, sizeof(seq) - 1) == 0) {
                out->kind = REPLY_LINE_CHUNK;
                out->payload_off = p;
                out->payload_len = i - (sizeof(seq) - 1) - p;
                out->seq = (uint32_t)strtoul(line + i, NULL, 10);
                return AP_OK;
            }
        }
    }
    return AP_ERR;
}

int reply_next(struct evbuffer *out, const char **line, size_t *len, reply_line *rl)
{
    struct evbuffer_iovec first;
    const char *nl = NULL;
    if (evbuffer_peek(out, -1, NULL, &first, 1) >= 1 && first.iov_len > 0)
        nl = memchr(first.iov_base, '\n', first.iov_len);
    if (nl) { /* the whole line in the first chain (an answer line is written in one piece): no search, no pullup */
        *line = first.iov_base;
        *len = (size_t)(nl - (const char *)first.iov_base);
    } else {
        struct evbuffer_ptr eol = evbuffer_search_eol(out, NULL, NULL, EVBUFFER_EOL_LF);
        if (eol.pos < 0)
            return 0;
        *len = (size_t)eol.pos;
        *line = (const char *)evbuffer_pullup(out, (ev_ssize_t)*len + 1);
    }
    return *line != NULL && reply_read(*line, *len, rl) == AP_OK ? 1 : -1;
}
