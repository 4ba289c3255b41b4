/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * http1.c - HTTP/1.1 server connections on the master's loop (see
 * http1.h for the seam and the phases).
 *
 * Per connection: one persistent read event (a read(2) per wake-up, into
 * the bounded input buffer), an EV_CLOSED event used only while reading
 * is off (the buffer full of pipelined bytes during a request), a resume
 * event made active when an answer leaves pipelined bytes to parse (so a
 * handler's answer never re-enters the parser), and a flushable for the
 * output.  A response's head is written by hand (status line, the
 * handler's headers, the cached Date line, Content-Length or chunked)
 * straight into space reserved in the output, its body copied after it
 * (one reserve and commit per response), and flush.c writes the output
 * with one writev per connection at the end of the loop's turn.  No timer
 * per request and no epoll_ctl per request: timeouts are checked on the
 * owner's tick (http1_conn_expired).  Above HTTP1_OUT_HIGH unsent answer
 * bytes no further pipelined request is parsed or read (out_paused, a
 * close still watched) until they drain below HTTP1_OUT_LOW, so a peer
 * that sends and never reads holds a bounded share of the master's
 * memory.  A close asked for while the parser
 * is running (a handler answering at once) waits until it returns.
 * State: the Date header's text, made once a second.
 */
#include "http1.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "client.h"
#include "flush.h"
#include "h1parse.h"
#include "server.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct http1_req {
    http1_conn *c;
    int status;                 /* of the response sent or started; 0 before */
    int streaming;              /* a streamed response started */
    int chunked;                /* its body goes out in chunks */
    int close;                  /* the connection closes after this response */
    int has_ctype;              /* the handler added Content-Type */
    size_t ohlen;
    http1_drained_fn *drained;  /* called once the output is all written */
    void *drained_arg;
    char oh[HTTP1_OUT_HEADERS]; /* the handler's headers, "Name: value\r\n" each */
};

struct http1_conn {
    int fd;
    http1_phase phase;
    uint64_t reading_ms;        /* READING since */
    uint64_t io_ms;             /* last byte read or written */
    struct event *rev;          /* EV_READ, added while reading */
    struct event *cev;          /* EV_CLOSED, added while reading is off and a request is handled */
    struct event *resume;       /* made active: parse the pipelined bytes waiting */
    int reading;                /* rev added */
    int busy;                   /* inside parse(): a close waits */
    int dead;                   /* a close asked for while busy */
    int out_paused;             /* over HTTP1_OUT_HIGH unsent (or answers unsent past maxBufferedBytes): nothing
                                 * more parsed or read until they drain (out_may_resume) */
    size_t out_counted;         /* its unsent bytes as counted in maxBufferedBytes (client_budget_move) */
    uint64_t written_seen;      /* out.written at the last write attempt */
    flushable out;
    h1parse ps;
    http1_req req;
    const http1_hooks *hooks;
    void *arg;
    char peer[64];
    size_t in_off, in_len;      /* unparsed input: in[in_off, in_len) */
    char in[HTTP1_IN_CAP];
};

static const char *const phase_names[] = {"idle", "reading", "handling", "closing"};

/* Its output grew: written at the end of the turn, and counted in
 * maxBufferedBytes with every other answer the master holds. */
static void out_mark(http1_conn *c)
{
    flush_mark(&c->out);
    client_budget_move(&c->out_counted, flush_pending(&c->out));
}

/* Whether c should stop taking requests for its unsent answers: past
 * HTTP1_OUT_HIGH of its own, or any while the master holds more than
 * maxBufferedBytes of answers. */
static int out_should_pause(const http1_conn *c)
{
    size_t n = flush_pending(&c->out);
    return n > HTTP1_OUT_HIGH || (n > 0 && client_budget_over());
}

/* Whether a paused c may take requests again: its answers drained below
 * HTTP1_OUT_LOW, and all of them while the budget is passed. */
static int out_may_resume(const http1_conn *c)
{
    size_t n = flush_pending(&c->out);
    return n < HTTP1_OUT_LOW && (n == 0 || !client_budget_over());
}

/* The module's one state: the Date header's text and the second it is of. */
static struct {
    char text[48];
    size_t len;
    time_t made;
} h1date;

const char *http1_phase_name(http1_phase p)
{
    return p < HTTP1_PHASE_COUNT ? phase_names[p] : "?";
}

/* now_ms: the clock if the caller read it (0: read here when needed). */
static void conn_set_phase(http1_conn *c, http1_phase to, uint64_t now_ms)
{
    c->phase = to;
    if (to == HTTP1_READING)
        c->reading_ms = now_ms ? now_ms : ap_now_ms();
}

/* "Date: ...\r\n", made once a second. */
static const char *date_line(size_t *len)
{
    time_t now = time(NULL);
    if (now != h1date.made || h1date.len == 0) {
        struct tm tm;
        gmtime_r(&now, &tm);
        h1date.len = strftime(h1date.text, sizeof(h1date.text), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        h1date.made = now;
    }
    *len = h1date.len;
    return h1date.text;
}

/* ---- writing a head by hand ------------------------------------------ */

typedef struct {
    char *p, *end;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    if (n > (size_t)(w->end - w->p))
        n = (size_t)(w->end - w->p); /* cannot happen: the head's buffer has room for its parts' bounds */
    memcpy(w->p, s, n);
    w->p += n;
}

#define PUTS(w, lit) put((w), (lit), sizeof(lit) - 1)

static void put_hex(wbuf *w, uint64_t v)
{
    char d[24];
    int n = 0;
    do {
        d[sizeof(d) - 1 - n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    put(w, d + sizeof(d) - n, (size_t)n);
}

typedef enum { BODY_LENGTH, BODY_NONE, BODY_CHUNKED, BODY_TO_CLOSE } body_kind;

/* Bytes a head takes at most beyond the handler's headers: the status
 * line (a reason cut to 64 bytes), Date, Content-Type, Content-Length or
 * Transfer-Encoding, Connection and the blank line come to under 240. */
#define HEAD_ROOM 320

/* Copies a literal to w; the end. */
#define CPY(w, lit) ((char *)memcpy((w), (lit), sizeof(lit) - 1) + sizeof(lit) - 1)

/* The response head of req at w, which has req->ohlen + HEAD_ROOM bytes
 * of room; returns its end. */
static char *head_at(char *w, const http1_conn *c, const http1_req *req, int status, const char *reason,
                     body_kind kind, uint64_t len)
{
    size_t rlen = strnlen(reason, 64), dlen;
    const char *date = date_line(&dlen);
    unsigned st = (unsigned)status % 1000;
    w = c->ps.minor == 0 ? CPY(w, "HTTP/1.0 ") : CPY(w, "HTTP/1.1 ");
    *w++ = (char)('0' + st / 100);
    *w++ = (char)('0' + st / 10 % 10);
    *w++ = (char)('0' + st % 10);
    *w++ = ' ';
    memcpy(w, reason, rlen);
    w = CPY(w + rlen, "\r\n");
    memcpy(w, req->oh, req->ohlen);
    memcpy(w + req->ohlen, date, dlen);
    w += req->ohlen + dlen;
    if (!req->has_ctype && kind != BODY_NONE)
        w = CPY(w, "Content-Type: application/json\r\n");
    if (kind == BODY_LENGTH) {
        char d[24];
        int n = 0;
        do {
            d[sizeof(d) - 1 - n++] = (char)('0' + len % 10);
            len /= 10;
        } while (len);
        w = CPY(w, "Content-Length: ");
        memcpy(w, d + sizeof(d) - n, (size_t)n);
        w = CPY(w + n, "\r\n");
    } else if (kind == BODY_CHUNKED) {
        w = CPY(w, "Transfer-Encoding: chunked\r\n");
    }
    if (req->close)
        w = CPY(w, "Connection: close\r\n");
    else if (c->ps.minor == 0)
        w = CPY(w, "Connection: keep-alive\r\n");
    return CPY(w, "\r\n");
}

/* The response head of req and the n parts of its body (none: n 0) into
 * c's output as one piece: one reserve, the head written in place, the
 * parts copied after it. */
static void write_response(http1_conn *c, http1_req *req, int status, const char *reason, body_kind kind, uint64_t len,
                           const struct iovec *parts, int n)
{
    size_t room = req->ohlen + HEAD_ROOM;
    for (int i = 0; i < n; i++)
        room += parts[i].iov_len;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(c->out.out, (ev_ssize_t)room, &v, 1) == 1) {
        char *w = head_at(v.iov_base, c, req, status, reason, kind, len);
        for (int i = 0; i < n; i++) {
            memcpy(w, parts[i].iov_base, parts[i].iov_len);
            w += parts[i].iov_len;
        }
        v.iov_len = (size_t)(w - (char *)v.iov_base);
        if (evbuffer_commit_space(c->out.out, &v, 1) == 0)
            return;
        ap_error("http1 (%s, fd %d): evbuffer_commit_space failed: a response written piece by piece", c->peer,
                 c->fd);
    }
    char head[HTTP1_OUT_HEADERS + HEAD_ROOM];
    evbuffer_add(c->out.out, head, (size_t)(head_at(head, c, req, status, reason, kind, len) - head));
    for (int i = 0; i < n; i++)
        evbuffer_add(c->out.out, parts[i].iov_base, parts[i].iov_len);
}

/* ---- phases ------------------------------------------------------------ */

static void reading_set(http1_conn *c, int on)
{
    if (c->reading == on)
        return;
    if (on ? event_add(c->rev, NULL) : event_del(c->rev)) {
        ap_error("http1 (%s, fd %d): event_%s of its read event failed", c->peer, c->fd, on ? "add" : "del");
        return;
    }
    c->reading = on;
    /* while not reading during a request or for unsent answers, a close is still seen (EPOLLRDHUP) */
    int watch = !on && (c->phase == HTTP1_HANDLING || c->out_paused);
    if (watch ? event_add(c->cev, NULL) : event_del(c->cev))
        ap_error("http1 (%s, fd %d): event_%s of its close event failed", c->peer, c->fd, watch ? "add" : "del");
}

static void req_reset(http1_conn *c)
{
    http1_req *r = &c->req;
    r->c = c;
    r->status = r->streaming = r->chunked = r->close = r->has_ctype = 0;
    r->ohlen = 0;
    r->drained = NULL;
    r->drained_arg = NULL;
}

/* req's response is whole (or its stream ended). */
static void response_complete(http1_req *req)
{
    http1_conn *c = req->c;
    out_mark(c);
    if (c->hooks->done)
        c->hooks->done(req->status, c->arg);
    if (req->close) {
        conn_set_phase(c, HTTP1_CLOSING, 0); /* closed once the output is written (conn_wrote) */
        reading_set(c, 0);
        return;
    }
    h1parse_next(&c->ps);
    req_reset(c);
    conn_set_phase(c, HTTP1_IDLE, 0);
    if (out_should_pause(c)) { /* its peer does not read its answers (or the master holds too many): wait */
        c->out_paused = 1;
        if (flush_pending(&c->out) <= HTTP1_OUT_HIGH)
            ap_debug("http1 (%s, fd %d): not read: %zu bytes of its answers unsent while the master holds more "
                     "than maxBufferedBytes", c->peer, c->fd, flush_pending(&c->out));
        if (c->reading)
            reading_set(c, 0); /* and watches for a close */
        else if (event_add(c->cev, NULL))
            ap_error("http1 (%s, fd %d): event_add of its close event failed", c->peer, c->fd);
        return;
    }
    if (!c->busy && (c->in_off < c->in_len || !c->reading))
        event_active(c->resume, EV_TIMEOUT, 0); /* parse what waits after this turn's answers, read again */
}

/* The status line's reason for a status of the layer's own. */
static const char *reason_of(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 413: return "Payload Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* A response with a JSON error body: {"ok":false,"error":{"code":..,"message":..}}. */
static void send_json_error(http1_req *req, int status, const char *reason, const char *code, const char *why)
{
    http1_conn *c = req->c;
    char body[512];
    wbuf w = {body, body + sizeof(body) - 2};
    PUTS(&w, "{\"ok\":false,\"error\":{\"code\":\"");
    put(&w, code, strlen(code));
    PUTS(&w, "\",\"message\":\"");
    for (const char *s = why; *s && w.p < w.end - 8; s++) /* why is the layer's own text: only quotes to escape */
        if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
            *w.p++ = *s;
    PUTS(&w, "\"}}\n");
    size_t n = (size_t)(w.p - body);
    req->status = status;
    struct iovec part = {body, n};
    write_response(c, req, status, reason, BODY_LENGTH, n, &part,
                   c->ps.method != H1_HEAD || c->ps.state == H1P_ERROR ? 1 : 0);
    response_complete(req);
}

/* The request could not be parsed or is over a bound: answered, closed. */
static void refuse(http1_conn *c)
{
    req_reset(c);
    c->req.close = 1;
    conn_set_phase(c, HTTP1_HANDLING, 0);
    ap_info("http1 (%s): request refused %d: %s", c->peer[0] ? c->peer : "local", c->ps.status, c->ps.why);
    send_json_error(&c->req, c->ps.status, reason_of(c->ps.status), c->ps.status == 413 ? "too_large" : "bad_request",
                    c->ps.why ? c->ps.why : "bad request");
}

/* Parses what waits while a request is being read; hands whole requests
 * to the owner, one at a time. */
static void parse(http1_conn *c)
{
    c->busy++;
    while (c->phase == HTTP1_READING && c->in_off < c->in_len && !c->dead) {
        size_t used = h1parse_feed(&c->ps, c->in + c->in_off, c->in_len - c->in_off);
        c->in_off += used;
        if (c->ps.expect_continue) {
            c->ps.expect_continue = 0;
            if (c->ps.state == H1P_BODY) { /* the body is still to come: ask for it */
                evbuffer_add(c->out.out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                out_mark(c);
            }
        }
        if (c->ps.state == H1P_ERROR) {
            refuse(c);
            break;
        }
        if (c->ps.state != H1P_DONE) {
            if (used == 0) /* cannot happen: the parser takes bytes or fails */
                break;
            continue;
        }
        req_reset(c);
        c->req.close = !c->ps.keep_alive;
        conn_set_phase(c, HTTP1_HANDLING, 0);
        c->hooks->request(&c->req, c->arg);
        if (c->phase == HTTP1_IDLE && !c->out_paused && c->in_off < c->in_len)
            conn_set_phase(c, HTTP1_READING, 0); /* answered at once, and pipelined bytes wait */
    }
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    c->busy--;
    if (c->dead && c->busy == 0)
        http1_conn_close(c);
}

/* ---- events --------------------------------------------------------------- */

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    http1_conn *c = arg;
    (void)what;
    if (c->in_off > 0 && c->in_off < c->in_len) { /* pipelined bytes to the front: the room is after them */
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    } else if (c->in_off == c->in_len) {
        c->in_off = c->in_len = 0;
    }
    size_t room = HTTP1_IN_CAP - c->in_len;
    if (room == 0) {
        reading_set(c, 0);
        return;
    }
    ssize_t n = read((int)fd, c->in + c->in_len, room);
    if (n == 0) {
        ap_debug("http1 (%s, fd %d): closed by its peer (%s)", c->peer, c->fd, phase_names[c->phase]);
        http1_conn_close(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        ap_info("http1 (%s, fd %d): read: %s: closed", c->peer, c->fd, strerror(errno));
        http1_conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    c->io_ms = ap_now_ms();
    if (c->phase == HTTP1_IDLE)
        conn_set_phase(c, HTTP1_READING, c->io_ms);
    if (c->phase == HTTP1_READING)
        parse(c);
    else if (c->phase == HTTP1_HANDLING && c->in_len == HTTP1_IN_CAP)
        reading_set(c, 0); /* pipelined bytes fill it: they wait for the answer */
}

static void closed_cb(evutil_socket_t fd, short what, void *arg)
{
    http1_conn *c = arg;
    (void)fd;
    (void)what;
    ap_debug("http1 (%s, fd %d): its peer closed while its request was handled", c->peer, c->fd);
    http1_conn_close(c);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    http1_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->phase == HTTP1_CLOSING || c->out_paused)
        return;
    if (c->phase == HTTP1_IDLE && c->in_off < c->in_len) {
        conn_set_phase(c, HTTP1_READING, 0);
        parse(c);
    }
    if (c->phase != HTTP1_CLOSING && !c->dead && c->in_len < HTTP1_IN_CAP)
        reading_set(c, 1);
}

/* flush.c wrote (or tried to): progress, a stream's drained callback, a
 * connection closing once its last answer is out. */
static void conn_wrote(void *arg)
{
    http1_conn *c = arg;
    if (c->out.written != c->written_seen) {
        c->written_seen = c->out.written;
        c->io_ms = ap_now_ms();
    }
    client_budget_move(&c->out_counted, flush_pending(&c->out));
    if (c->out_paused && out_may_resume(c) && c->phase != HTTP1_CLOSING) {
        c->out_paused = 0;
        event_active(c->resume, EV_TIMEOUT, 0); /* parse what waits, read again */
    }
    if (flush_pending(&c->out) > 0)
        return;
    if (c->phase == HTTP1_CLOSING) {
        http1_conn_close(c);
        return;
    }
    http1_drained_fn *d = c->req.drained;
    if (d && c->phase == HTTP1_HANDLING) {
        c->req.drained = NULL;
        d(&c->req, c->req.drained_arg);
    }
}

static void conn_failed(void *arg, int err)
{
    http1_conn *c = arg;
    ap_info("http1 (%s, fd %d): write: %s: closed", c->peer, c->fd, strerror(err));
    http1_conn_close(c);
}

/* ---- connections ------------------------------------------------------ */

http1_conn *http1_conn_new(int fd, const char *peer, const http1_limits *lim, const http1_hooks *hooks, void *arg)
{
    http1_conn *c = ap_calloc(1, sizeof(*c));
    c->fd = fd;
    c->hooks = hooks;
    c->arg = arg;
    snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "");
    c->io_ms = ap_now_ms();
    h1parse_limits pl = {lim->max_head, lim->max_body};
    h1parse_init(&c->ps, &pl);
    req_reset(c);
    c->rev = event_new(server.base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->cev = event_new(server.base, fd, EV_CLOSED | EV_PERSIST, closed_cb, c);
    c->resume = event_new(server.base, -1, 0, resume_cb, c);
    if (c->rev == NULL || c->cev == NULL || c->resume == NULL ||
        flush_open(&c->out, fd, 0, conn_wrote, conn_failed, c) != AP_OK) {
        ap_error("http1 (%s, fd %d): event_new or flush_open failed: connection closed", c->peer, fd);
        goto err;
    }
    if (event_add(c->rev, NULL) != 0) {
        ap_error("http1 (%s, fd %d): event_add failed: connection closed", c->peer, fd);
        goto err;
    }
    c->reading = 1;
    return c;
err:
    if (c->rev)
        event_free(c->rev);
    if (c->cev)
        event_free(c->cev);
    if (c->resume)
        event_free(c->resume);
    flush_close(&c->out);
    h1parse_free(&c->ps);
    close(fd);
    ap_free(c);
    return NULL;
}

void http1_conn_close(http1_conn *c)
{
    if (c->busy) { /* inside parse(): closed when it returns */
        c->dead = 1;
        return;
    }
    if (c->hooks->closed)
        c->hooks->closed(c->arg);
    event_free(c->rev);
    event_free(c->cev);
    event_free(c->resume);
    client_budget_move(&c->out_counted, 0);
    flush_close(&c->out);
    if (close(c->fd) != 0)
        ap_warn("http1 (%s, fd %d): close: %s", c->peer, c->fd, strerror(errno));
    h1parse_free(&c->ps);
    ap_free(c);
}

http1_phase http1_conn_phase(const http1_conn *c)
{
    return c->phase;
}

size_t http1_conn_unsent(const http1_conn *c)
{
    return flush_pending(&c->out);
}

http1_expiry http1_conn_expired(const http1_conn *c, uint64_t now, uint64_t request_ms, uint64_t idle_ms)
{
    if (c->phase == HTTP1_READING && request_ms && now >= c->reading_ms && now - c->reading_ms >= request_ms)
        return HTTP1_REQUEST_TIMEOUT;
    if (idle_ms && now >= c->io_ms && now - c->io_ms >= idle_ms &&
        (c->phase != HTTP1_HANDLING || flush_pending(&c->out) > 0))
        return HTTP1_IDLE_TIMEOUT;
    return HTTP1_LIVE;
}

/* ---- a request -------------------------------------------------------- */

http1_method http1_request_method(const http1_req *req)
{
    return (http1_method)req->c->ps.method; /* h1parse refused H1_OTHER */
}

const char *http1_request_path(const http1_req *req)
{
    return req->c->ps.path ? req->c->ps.path : "";
}

const char *http1_request_query(const http1_req *req)
{
    return req->c->ps.query;
}

const char *http1_find_header(const http1_req *req, const char *name)
{
    return h1parse_header(&req->c->ps, name);
}

const char *http1_request_body(const http1_req *req, size_t *len)
{
    *len = req->c->ps.blen;
    return req->c->ps.blen ? req->c->ps.body : "";
}

const char *http1_request_peer(const http1_req *req)
{
    return req->c->peer;
}

size_t http1_request_unsent(const http1_req *req)
{
    return flush_pending(&req->c->out);
}

int http1_request_room(const http1_req *req, size_t more)
{
    size_t n = flush_pending(&req->c->out);
    return n + more <= HTTP1_OUT_HIGH && (n == 0 || !client_budget_over());
}

http1_headers *http1_output_headers(http1_req *req)
{
    return req;
}

void http1_add_header(http1_headers *req, const char *name, const char *value)
{
    char first = (char)(name[0] | 0x20); /* only names of C, D and T need a closer look */
    if (first == 'c' && strcasecmp(name, "Connection") == 0) {
        if (strcasecmp(value, "close") == 0)
            req->close = 1;
        return;
    }
    if ((first == 'd' && strcasecmp(name, "Date") == 0) || (first == 'c' && strcasecmp(name, "Content-Length") == 0) ||
        (first == 't' && strcasecmp(name, "Transfer-Encoding") == 0))
        return; /* the layer's own */
    size_t n = strlen(name), v = strlen(value);
    if (n + v + 4 > sizeof(req->oh) - req->ohlen) {
        ap_error("http1 (%s): response header %s dropped: the response's headers are over %d bytes", req->c->peer,
                 name, HTTP1_OUT_HEADERS);
        return;
    }
    char *w = req->oh + req->ohlen;
    memcpy(w, name, n);
    w[n] = ':';
    w[n + 1] = ' ';
    memcpy(w + n + 2, value, v);
    w[n + 2 + v] = '\r';
    w[n + 3 + v] = '\n';
    req->ohlen += n + v + 4;
    if (first == 'c' && strcasecmp(name, "Content-Type") == 0)
        req->has_ctype = 1;
}

/* Whether req may send (a request being handled, no stream started). */
static int can_send(const http1_req *req, const char *what)
{
    if (req->c->phase == HTTP1_HANDLING && !req->streaming)
        return 1;
    ap_error("http1 (%s): %s on a request that cannot take it (%s): ignored", req->c->peer, what,
             phase_names[req->c->phase]);
    return 0;
}

/* Whether a whole response with status has a body (not 204, 304, 1xx:
 * its head says BODY_NONE); for HEAD it is counted, not sent. */
static int reply_has_body(int status)
{
    return !(status == 204 || status == 304 || (status >= 100 && status < 200));
}

void http1_send_reply(http1_req *req, int status, const char *reason, struct evbuffer *body)
{
    size_t blen = body ? evbuffer_get_length(body) : 0;
    if (!can_send(req, "a reply"))
        return;
    int has_body = reply_has_body(status), with_body = has_body && req->c->ps.method != H1_HEAD;
    req->status = status;
    write_response(req->c, req, status, reason, has_body ? BODY_LENGTH : BODY_NONE, blen, NULL, 0);
    if (body && with_body)
        evbuffer_add_buffer(req->c->out.out, body);
    else if (body)
        evbuffer_drain(body, blen);
    response_complete(req);
}

void http1_send_reply_parts(http1_req *req, int status, const char *reason, const struct iovec *parts, int n)
{
    size_t blen = 0;
    for (int i = 0; i < n; i++)
        blen += parts[i].iov_len;
    if (!can_send(req, "a reply"))
        return;
    int has_body = reply_has_body(status), with_body = has_body && req->c->ps.method != H1_HEAD;
    req->status = status;
    write_response(req->c, req, status, reason, has_body ? BODY_LENGTH : BODY_NONE, blen, parts, with_body ? n : 0);
    response_complete(req);
}

void http1_send_error(http1_req *req, int status, const char *reason)
{
    if (!can_send(req, "an error reply"))
        return;
    send_json_error(req, status, reason, "other", reason);
}

void http1_send_reply_start(http1_req *req, int status, const char *reason)
{
    if (!can_send(req, "a stream"))
        return;
    http1_conn *c = req->c;
    req->status = status;
    req->streaming = 1;
    req->chunked = c->ps.minor >= 1;
    if (!req->chunked)
        req->close = 1; /* HTTP/1.0: the body ends with the connection */
    write_response(c, req, status, reason, req->chunked ? BODY_CHUNKED : BODY_TO_CLOSE, 0, NULL, 0);
    out_mark(c);
}

void http1_send_reply_chunk(http1_req *req, struct evbuffer *buf)
{
    http1_conn *c = req->c;
    size_t n = evbuffer_get_length(buf);
    if (!req->streaming || c->phase != HTTP1_HANDLING) {
        ap_error("http1 (%s): a stream chunk with no stream: dropped", c->peer);
        evbuffer_drain(buf, n);
        return;
    }
    if (n == 0)
        return; /* an empty chunk would end the stream */
    if (c->ps.method == H1_HEAD) {
        evbuffer_drain(buf, n);
        return;
    }
    if (req->chunked) {
        char h[24];
        wbuf w = {h, h + sizeof(h)};
        put_hex(&w, n);
        PUTS(&w, "\r\n");
        evbuffer_add(c->out.out, h, (size_t)(w.p - h));
        evbuffer_add_buffer(c->out.out, buf);
        evbuffer_add(c->out.out, "\r\n", 2);
    } else {
        evbuffer_add_buffer(c->out.out, buf);
    }
    out_mark(c);
}

void http1_send_reply_chunk_with_cb(http1_req *req, struct evbuffer *buf, http1_drained_fn *drained, void *arg)
{
    req->drained = drained;
    req->drained_arg = arg;
    http1_send_reply_chunk(req, buf);
}

void http1_send_reply_end(http1_req *req)
{
    http1_conn *c = req->c;
    if (!req->streaming || c->phase != HTTP1_HANDLING) {
        ap_error("http1 (%s): the end of a stream that did not start: ignored", c->peer);
        return;
    }
    if (req->chunked && c->ps.method != H1_HEAD)
        evbuffer_add(c->out.out, "0\r\n\r\n", 5);
    req->drained = NULL;
    response_complete(req);
}
