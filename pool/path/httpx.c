/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpx.c - one HTTP message exchange (see httpx.h for the seam).
 *
 * An exchange is its connection's, from its first message to its close:
 * it keeps one origin client (client_keep_open) and feeds it a line per
 * request, so a request makes no client, no timer and no event of its
 * own.  Per request, in x->state: FED (its line is with client.c: not
 * answered yet) -> STREAMING (an SSE response started: chunks and
 * heartbeats go out as events) -> ANSWERED (the final answer handed to
 * http1.c; req is not x's from here, and the client is idle again) ; any
 * state -> GONE (the connection closed: x is freed with its client).
 * The body is the request line as it is, fed with the URL's pool and the
 * stream asked for beside it (client_feed): the body's "pool", "stream"
 * and "id" are not read (any value), so a body cannot reach a pool the
 * URL (and the key check) did not name, and answers carry no id.  Only when there is more to say is a line
 * built, in one allocation: the body without its closing brace, then the
 * Idempotency-Key header's value and the Bearer key as members, then "}"
 * (a member repeated counts by its last occurrence, scan.h, so they win
 * over the body's own); a blank body is "{}".  Event text is put
 * together by hand (no printf).
 * State: none.
 */
#include "httpx.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_json.h"
#include "ap_log.h"
#include "client.h"
#include "answer.h"
#include "reply.h"
#include "scan.h"
#include "server.h"

#include "http1.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

typedef enum { HX_FED = 0, HX_STREAMING, HX_ANSWERED, HX_GONE } hx_state;

struct httpx {
    http1_req *req;             /* the request in hand: NULL between requests, once ANSWERED, or GONE */
    client *c;                  /* its origin client (kept across requests), NULL once closed */
    hx_state state;
    int sse;
    int waiting_write;          /* stopped taking lines: waits for the connection's output to drain */
    httpx_over_fn *over;
    void *over_arg;
};

static size_t httpx_take(void *arg, struct evbuffer *out);
static void httpx_client_closed(void *arg);

static const client_origin httpx_origin = {httpx_take, httpx_client_closed};

int httpx_status_of(int code)
{
    switch (code) {
    case ERR_BAD_REQUEST: return 400;
    case ERR_UNAUTHORIZED: return 401;
    case ERR_FORBIDDEN: return 403;
    case ERR_RATE_LIMITED: return 429;
    case ERR_SESSION_BUSY:
    case ERR_CANCELLED: return 409; /* another message of its session took its place (sessionBusy interrupt) */
    case ERR_TOO_LARGE: return 413;
    case ERR_QUEUE_FULL:
    case ERR_CIRCUIT_OPEN:
    case ERR_TOO_MANY_SESSIONS: return 429;
    case ERR_WORKER_CRASHED: return 502;
    case ERR_SHUTTING_DOWN:
    case ERR_TOO_MANY_CONNECTIONS: return 503;
    case ERR_TIMEOUT: return 504;
    case ERR_STORE_UNAVAILABLE: return 503; /* the service's failure, not the agent's */
    default: return 500;                    /* agent_error, and a code a worker made up */
    }
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Internal Server Error";
    }
}

/* Bodies up to this size are printed into one reused buffer (no
 * allocation, no growth); larger ones by cJSON_PrintUnformatted. */
#define HTTPX_PRINT_BUF (64u * 1024)

struct evbuffer *httpx_json_body(http1_req *req, cJSON *o, const char *what)
{
    static char pbuf[HTTPX_PRINT_BUF]; /* the loop thread's only */
    char *text = NULL;
    int printed = cJSON_PrintPreallocated(o, pbuf, (int)sizeof(pbuf), 0);
    if (!printed) /* past the buffer (or out of memory) */
        printed = (text = cJSON_PrintUnformatted(o)) != NULL;
    const char *body = text ? text : pbuf;
    cJSON_Delete(o);
    struct evbuffer *b = evbuffer_new();
    if (!printed || b == NULL) {
        ap_error("http: %s could not be made (out of memory)", what);
        if (text)
            cJSON_free(text);
        if (b)
            evbuffer_free(b);
        http1_send_error(req, 500, "out of memory");
        return NULL;
    }
    evbuffer_add(b, body, strlen(body));
    evbuffer_add(b, "\n", 1);
    if (text)
        cJSON_free(text);
    return b;
}

/* The final answer is http1.c's now: x lets go of req and says so. */
static void httpx_answered(struct httpx *x)
{
    x->state = HX_ANSWERED;
    x->req = NULL;
    if (x->over)
        x->over(x->over_arg);
}

/* A response of its own (not an SSE stream) with its body in n parts. */
static void httpx_reply(struct httpx *x, int status, const struct iovec *body, int n, const reply_line *rl)
{
    http1_headers *h = http1_output_headers(x->req); /* Content-Type: http1.c's application/json */
    if (status == 401)
        http1_add_header(h, "WWW-Authenticate", "Bearer");
    if (status == 429 || (status == 503 && rl)) { /* queue_full, circuit_open, shutting_down, store_unavailable */
        char ra[24];
        uint64_t s = rl && rl->retry_after_ms ? (rl->retry_after_ms + 999) / 1000 : 1;
        snprintf(ra, sizeof(ra), "%llu", (unsigned long long)s);
        http1_add_header(h, "Retry-After", ra);
    }
    http1_send_reply_parts(x->req, status, reason_of(status), body, n);
    httpx_answered(x);
}

/* Starts the event stream (200, text/event-stream). */
static void httpx_stream_start(struct httpx *x)
{
    http1_headers *h = http1_output_headers(x->req);
    http1_add_header(h, "Content-Type", "text/event-stream");
    http1_add_header(h, "Cache-Control", "no-store");
    http1_add_header(h, "X-Accel-Buffering", "no"); /* a proxy in front must not hold events back */
    http1_send_reply_start(x->req, 200, "OK");
    x->state = HX_STREAMING;
}

/* Its connection's output drained (http1_send_reply_chunk_with_cb): take
 * the lines waiting. */
static void httpx_drained_cb(http1_req *req, void *arg)
{
    struct httpx *x = arg;
    (void)req;
    if (!x->waiting_write)
        return;
    x->waiting_write = 0;
    if (x->c)
        client_check_output(x->c); /* flush.c calls httpx_take again at the end of the turn */
}

/* The event buffer of this take, made when first needed (a plain
 * answer needs none); NULL when memory ran out (logged). */
static struct evbuffer *httpx_events(struct evbuffer **buf)
{
    if (*buf == NULL && (*buf = evbuffer_new()) == NULL)
        ap_error("http exchange: evbuffer_new failed; an event is dropped");
    return *buf;
}

/* One answer line: an HTTP response, or the stream's last event. */
static void httpx_answer(struct httpx *x, const char *line, size_t len, const reply_line *rl, struct evbuffer **bufp)
{
    if (x->state == HX_FED && !(x->sse && rl->ok)) { /* a response of its own, in place from the line */
        struct iovec parts[3] = {{"{", 1}, {(char *)line + rl->rest_off, len - rl->rest_off}, {"\n", 1}};
        httpx_reply(x, rl->ok ? 200 : httpx_status_of((int)rl->code), parts, 3, rl);
        return;
    }
    if (x->state == HX_FED)
        httpx_stream_start(x); /* a stream answered with no chunk: still a stream, with its result event */
    struct evbuffer *buf = httpx_events(bufp);
    if (buf) {
        static const char result[] = "event: result\ndata: {", error[] = "event: error\ndata: {";
        if (rl->ok)
            evbuffer_add(buf, result, sizeof(result) - 1);
        else
            evbuffer_add(buf, error, sizeof(error) - 1);
        evbuffer_add(buf, line + rl->rest_off, len - rl->rest_off);
        evbuffer_add(buf, "\n\n", 2);
        http1_send_reply_chunk(x->req, buf);
    }
    http1_send_reply_end(x->req);
    httpx_answered(x);
}

/* flush.c's sink: the client's answer lines, as HTTP.  Takes whole lines
 * only, and none while the connection has no room (http1_request_room). */
static size_t httpx_take(void *arg, struct evbuffer *out)
{
    struct httpx *x = arg;
    size_t taken = 0;
    struct evbuffer *buf = NULL;
    while (x->req && x->state != HX_ANSWERED && !x->waiting_write) {
        const char *line;
        size_t len;
        reply_line rl;
        int got = reply_next(out, &line, &len, &rl);
        if (got == 0)
            break;
        if (got < 0) {
            ap_error("http exchange: an answer line it cannot read (%zu bytes): dropped", len);
        } else if (rl.kind == REPLY_LINE_ANSWER) {
            httpx_answer(x, line, len, &rl, &buf);
        } else if (x->sse && httpx_events(&buf)) {
            if (x->state == HX_FED)
                httpx_stream_start(x);
            if (rl.kind == REPLY_LINE_CHUNK) {
                char id[16];
                size_t n = sizeof(id);
                uint32_t v = rl.seq;
                do {
                    id[--n] = (char)('0' + v % 10);
                    v /= 10;
                } while (v);
                static const char head[] = "event: chunk\nid: ", data[] = "\ndata: ";
                evbuffer_add(buf, head, sizeof(head) - 1);
                evbuffer_add(buf, id + n, sizeof(id) - n);
                evbuffer_add(buf, data, sizeof(data) - 1);
                evbuffer_add(buf, line + rl.payload_off, rl.payload_len);
                evbuffer_add(buf, "\n\n", 2);
            } else {
                evbuffer_add(buf, ": heartbeat\n\n", 13);
            }
            if (!http1_request_room(x->req, evbuffer_get_length(buf))) {
                x->waiting_write = 1; /* resumed by httpx_drained_cb */
                http1_send_reply_chunk_with_cb(x->req, buf, httpx_drained_cb, x);
            } else {
                http1_send_reply_chunk(x->req, buf);
            }
        }
        evbuffer_drain(out, len + 1);
        if (buf)
            evbuffer_drain(buf, evbuffer_get_length(buf));
        taken += len + 1;
    }
    size_t left;
    if (x->req == NULL && (left = evbuffer_get_length(out)) > 0) { /* nobody to answer: dropped, as for a closed socket */
        taken += left;
        evbuffer_drain(out, left);
    }
    if (buf)
        evbuffer_free(buf);
    return taken;
}

/* client.c frees x's client (dropped when its connection closed, or
 * closed for another reason: clientWriteTimeout, exit); the connection's
 * next request opens another. */
static void httpx_client_closed(void *arg)
{
    struct httpx *x = arg;
    x->c = NULL;
    if (x->req && x->state == HX_STREAMING) {
        http1_send_reply_end(x->req); /* ended before its answer: the stream stops short */
        httpx_answered(x);
    } else if (x->req) {
        static const char gone[] = "{\"ok\":false,\"error\":{\"code\":\"shutting_down\",\"message\":\"the request "
                                   "was closed before it was answered\"}}\n";
        struct iovec body = {(char *)gone, sizeof(gone) - 1};
        httpx_reply(x, 503, &body, 1, NULL);
    }
    if (x->state == HX_GONE)
        ap_free(x);
}

void httpx_peer_gone(struct httpx *x)
{
    x->req = NULL; /* freed with its connection */
    x->over = NULL;
    x->state = HX_GONE;
    if (x->c)
        client_drop(x->c, "its HTTP connection closed"); /* its work is cancelled; x freed in httpx_client_closed */
    else
        ap_free(x);
}

/* Whether c is JSON whitespace. */
static int httpx_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The request line for body when it cannot be fed as it is (see the top
 * comment): "{}" for a blank body, and the Idempotency-Key header's value
 * and the Bearer key added as members.  NULL when body goes as it is;
 * else allocated, its length in *len. */
static char *httpx_line(const char *body, size_t blen, const char *idem, const char *secret, size_t slen, size_t *len)
{
    size_t b = 0, e = blen;
    while (b < blen && httpx_ws(body[b]))
        b++;
    while (e > b && httpx_ws(body[e - 1]))
        e--;
    if (b == e) { /* no body: an empty object (refused for its missing type) */
        body = "{}";
        b = 0;
        e = 2;
    } else if (idem == NULL && secret == NULL) {
        return NULL;
    }
    if (e - b < 2 || body[b] != '{' || body[e - 1] != '}') /* not an object: scanned as it is, and refused */
        return NULL;
    char key[2 * SCAN_IDEM_KEY_MAX + 8], sec[6 * 256 + 8];
    size_t seclen = secret ? ap_json_escape(sec, sizeof(sec), secret, slen) : 0;
    size_t klen = idem ? ap_json_escape(key, sizeof(key), idem, strnlen(idem, SCAN_IDEM_KEY_MAX + 1)) : 0;
    size_t inner = b + 1;
    while (inner < e - 1 && httpx_ws(body[inner]))
        inner++;
    int empty = inner == e - 1;
    size_t n = e - 1 - b;
    char *l = ap_malloc(n + klen + seclen + 48), *w = l;
    memcpy(w, body + b, n);
    w += n;
    if (idem) {
        memcpy(w, empty ? "\"idempotencyKey\":\"" : ",\"idempotencyKey\":\"", empty ? 18 : 19);
        w += empty ? 18 : 19;
        memcpy(w, key, klen);
        w += klen;
        *w++ = '"';
        empty = 0;
    }
    if (secret) { /* the Bearer key: client.c's key gate checks it as a socket request's "key" */
        memcpy(w, empty ? "\"key\":\"" : ",\"key\":\"", empty ? 7 : 8);
        w += empty ? 7 : 8;
        memcpy(w, sec, seclen);
        w += seclen;
        *w++ = '"';
    }
    *w++ = '}';
    *len = (size_t)(w - l);
    return l;
}

struct httpx *httpx_start(struct httpx *x, http1_req *req, struct pool *p, int sse, const char *secret, size_t slen,
                          httpx_over_fn *over, void *arg)
{
    if (x == NULL) {
        x = ap_calloc(1, sizeof(*x));
    } else if (x->c && !client_idle(x->c)) {
        /* the last request was answered but left work on the client that outlives its answer (none
         * is known: pool.subscribe, whose events would, is refused to an origin client's uid -1): the
         * client goes, and this request gets one of its own */
        ap_info("http exchange: client-%llu has work left of its connection's last request (answered): dropped",
                (unsigned long long)x->c->serial);
        client_drop(x->c, "its HTTP connection's next request came while work of its last one was left");
    }
    x->req = req;
    x->state = HX_FED;
    x->sse = sse;
    x->waiting_write = 0;
    x->over = over;
    x->over_arg = arg;
    size_t blen;
    const char *body = http1_request_body(req, &blen);
    const char *idem = http1_find_header(req, "Idempotency-Key");
    size_t len = blen;
    char *line = httpx_line(body, blen, idem, secret, slen, &len);
    if (x->c == NULL && (x->c = client_open_origin(&httpx_origin, x, 0, (uid_t)-1)) != NULL)
        client_keep_open(x->c);
    if (x->c == NULL) {
        ap_free(line);
        static const char oom[] = "{\"ok\":false,\"error\":{\"code\":\"other\",\"message\":\"out of memory\"}}\n";
        struct iovec part = {(char *)oom, sizeof(oom) - 1};
        httpx_reply(x, 500, &part, 1, NULL);
        return x;
    }
    if (len > (size_t)server.cfg->max_message_bytes) {
        /* the body fit (http1.c bounds it by maxMessageBytes), the members added do not */
        server.stats.too_large_lines++;
        answer_refuse(x->c, NULL, NULL, ERR_TOO_LARGE, "request body longer than maxMessageBytes", NULL, NULL, -1);
    } else {
        client_given g = {p, sse, 1}; /* the URL's pool and the stream asked for; the exchange needs no id */
        client_feed(x->c, line ? line : body, len, &g);
    }
    ap_free(line);
    return x;
}
