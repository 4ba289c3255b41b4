/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * conn.c - the benchmark's connections (see conn.h).
 *
 * Lifecycle: DOWN -> [CONNECTING ->] OPEN -> DOWN -> ..., changed only by
 * conn_set_state(), which checks the transition and keeps the per-state
 * counts in bench.conns_in.  Sockets are non-blocking and driven by three
 * events made once per connection (read, write/connect, retry timer) and
 * re-pointed at each new socket with event_assign().
 *
 * Reading: one recv() per callback into the input buffer, then every
 * complete answer in it is matched (NDJSON: by id, through resp_scan()
 * and match_complete(); HTTP: in order, through http_parse()), then
 * load_fill() refills and flushes.  A stream's chunk lines are matched
 * by id too (match_chunk(): the request stays in flight) and checked
 * for their seq; heartbeats are only counted.  Losing a connection:
 *   - the server closes or resets it unannounced (NDJSON always): what
 *     it held fails as "connection_closed", counted in closed_by_server,
 *     and partial answer bytes count as `truncated`;
 *   - HTTP with "Connection: close" (or HTTP/1.0, or a body ending at the
 *     close): counted in close_announced; requests written after the
 *     last answer are written again on the next socket (`resent`).
 * Either way the connection reconnects if load_conn_needed() says there
 * is still work for it, at once the first time, then after a doubling
 * back-off (reset by each matched answer).  Reconnects never happen
 * inside a read or write callback: the retry timer does them.
 *
 * With a broker target (--redis) there is no socket here: bq.c carries
 * the same lines through Redis in place of connect/send/recv and calls
 * the conn_bq_* functions below, so states, matching and accounting are
 * the same.
 */
#include "conn.h"
#include "ap_alloc.h"
#include "bq.h"
#include "ap_common.h"
#include "load.h"
#include "resp.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);
static void conn_retry_cb(evutil_socket_t fd, short what, void *arg);

static void conn_set_state(bench_conn *c, conn_state to)
{
    conn_state from = c->state;
    assert((from == CONN_DOWN && (to == CONN_CONNECTING || to == CONN_OPEN)) ||
           (from == CONN_CONNECTING && (to == CONN_OPEN || to == CONN_DOWN)) ||
           (from == CONN_OPEN && to == CONN_DOWN));
    bench.conns_in[from]--;
    bench.conns_in[to]++;
    c->state = to;
}

void conn_setup(bench_conn *c, uint32_t index)
{
    memset(c, 0, sizeof(*c));
    c->index = index;
    c->fd = -1;
    c->state = CONN_DOWN;
    bench.conns_in[CONN_DOWN]++;
    (void)match_init(&c->mt, index, bench.cfg->conns, bench.cfg->depth, bench.cfg->proto == BENCH_HTTP);
    c->in_cap = CONN_IN_SIZE;
    c->in = ap_malloc(c->in_cap);
    c->out_cap = bench.req.len * 2 > CONN_OUT_MIN ? bench.req.len * 2 : CONN_OUT_MIN;
    c->out = ap_malloc(c->out_cap);
    c->ev_read = event_new(bench.base, -1, 0, conn_read_cb, c);
    c->ev_write = event_new(bench.base, -1, 0, conn_write_cb, c);
    c->ev_retry = evtimer_new(bench.base, conn_retry_cb, c);
    if (!c->ev_read || !c->ev_write || !c->ev_retry) {
        fprintf(stderr, BENCH_NAME ": out of memory creating events\n");
        abort();
    }
}

/* Closes the socket (or the broker transport) and stops its events; c
 * becomes DOWN. */
static void conn_shut(bench_conn *c)
{
    if (bench.cfg->target.broker)
        bq_shut(c);
    event_del(c->ev_read);
    event_del(c->ev_write);
    c->write_armed = 0;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in_len = c->in_scan = 0;
    c->out_off = c->out_len = 0;
    if (c->state != CONN_DOWN)
        conn_set_state(c, CONN_DOWN);
}

void conn_close(bench_conn *c)
{
    event_del(c->ev_retry);
    conn_shut(c);
}

void conn_teardown(bench_conn *c)
{
    conn_close(c);
    event_free(c->ev_read);
    event_free(c->ev_write);
    event_free(c->ev_retry);
    match_free(&c->mt);
    ap_free(c->in);
    ap_free(c->out);
    bench.conns_in[c->state]--;
}

static void conn_fail_cb(void *ctx, uint64_t start_ns)
{
    AP_UNUSED(ctx);
    load_failed(start_ns);
}

/* Schedules the next connect attempt after the current back-off. */
static void conn_schedule_retry(bench_conn *c)
{
    struct timeval tv = {.tv_sec = c->backoff_ms / 1000, .tv_usec = (c->backoff_ms % 1000) * 1000};
    event_add(c->ev_retry, &tv);
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : CONN_BACKOFF_MIN_MS;
    if (c->backoff_ms > CONN_BACKOFF_MAX_MS)
        c->backoff_ms = CONN_BACKOFF_MAX_MS;
}

/* The socket is gone.  announced: the server said it would close (HTTP),
 * so what is in flight is written again on the next socket; otherwise it
 * fails.  Reconnects later if there is still work. */
static void conn_drop(bench_conn *c, int announced)
{
    conn_shut(c);
    if (announced) {
        c->written = 0;
        c->backoff_ms = 0; /* an orderly close: reconnect at once */
    } else {
        (void)match_fail_all(&c->mt, conn_fail_cb, NULL);
        c->written = 0;
    }
    if (bench.phase != PHASE_DONE && load_conn_needed(c))
        conn_schedule_retry(c);
    load_check_done();
}

/* The connect finished: start reading and sending. */
static void conn_opened(bench_conn *c)
{
    conn_set_state(c, CONN_OPEN);
    if (c->ever_open)
        bench.n.reconnects++;
    c->ever_open = 1;
    c->in_len = c->in_scan = 0;
    c->out_off = c->out_len = 0;
    c->written = 0;
    http_init(&c->hp);
    if (!bench.cfg->target.broker) {
        event_assign(c->ev_read, bench.base, c->fd, EV_READ | EV_PERSIST, conn_read_cb, c);
        event_assign(c->ev_write, bench.base, c->fd, EV_WRITE, conn_write_cb, c);
        event_add(c->ev_read, NULL);
    }
    load_fill(c);
}

/* Starts a connect.  Returns AP_ERR with err set when it failed at once. */
static int conn_connect(bench_conn *c, char *err, size_t errlen)
{
    if (bench.cfg->target.broker) {
        if (bq_connect(c, err, errlen) != AP_OK)
            return AP_ERR;
        conn_set_state(c, CONN_CONNECTING);
        return AP_OK;
    }
    int in_progress = 0;
    int fd = addr_connect(&bench.cfg->target, &in_progress, err, errlen);
    if (fd < 0)
        return AP_ERR;
    c->fd = fd;
    if (in_progress) {
        conn_set_state(c, CONN_CONNECTING);
        event_assign(c->ev_write, bench.base, fd, EV_WRITE, conn_write_cb, c);
        event_add(c->ev_write, NULL);
        c->write_armed = 1;
        return AP_OK;
    }
    conn_opened(c);
    return AP_OK;
}

/* A connect attempt failed (at once or when it completed) with errno
 * err_no.  Before the connection ever worked that ends the run (the
 * target is wrong or down), except for a full listen backlog (EAGAIN),
 * which is retried. */
static void conn_connect_failed(bench_conn *c, int err_no, const char *err)
{
    if (!c->ever_open && err_no != EAGAIN) {
        /* the target never worked: nothing to measure */
        if (!bench.fatal[0])
            snprintf(bench.fatal, sizeof(bench.fatal), "%s", err);
        conn_shut(c);
        bench.phase = PHASE_DONE;
        event_base_loopbreak(bench.base);
        return;
    }
    bench.n.connect_failures++;
    conn_shut(c);
    if (bench.phase != PHASE_DONE && load_conn_needed(c))
        conn_schedule_retry(c);
    load_check_done();
}

static void conn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    bench_conn *c = arg;
    char err[256];
    AP_UNUSED(fd);
    AP_UNUSED(what);
    bench.now = ap_now_ns();
    if (bench.phase == PHASE_DONE || c->state != CONN_DOWN || !load_conn_needed(c))
        return;
    if (conn_connect(c, err, sizeof(err)) != AP_OK)
        conn_connect_failed(c, errno, err);
}

int conn_start(bench_conn *c, char *err, size_t errlen)
{
    if (conn_connect(c, err, errlen) == AP_OK)
        return AP_OK;
    if (errno != EAGAIN)
        return AP_ERR;
    bench.n.connect_failures++;
    conn_schedule_retry(c);
    return AP_OK;
}

char *conn_out_append(bench_conn *c, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + n > c->out_cap)
            return NULL;
    }
    char *p = c->out + c->out_len;
    c->out_len += n;
    return p;
}

void conn_flush(bench_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    if (bench.cfg->target.broker) {
        bq_flush(c);
        return;
    }
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->write_armed) {
                event_add(c->ev_write, NULL);
                c->write_armed = 1;
            }
            return;
        }
        /* EPIPE, ECONNRESET: the server is gone */
        bench.n.closed_by_server++;
        conn_drop(c, 0);
        return;
    }
    c->out_off = c->out_len = 0;
    if (c->write_armed) {
        event_del(c->ev_write);
        c->write_armed = 0;
    }
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
    bench_conn *c = arg;
    char err[256];
    AP_UNUSED(fd);
    AP_UNUSED(what);
    bench.now = ap_now_ns();
    c->write_armed = 0;
    if (c->state == CONN_CONNECTING) {
        if (addr_finish(&bench.cfg->target, c->fd, err, sizeof(err)) == AP_OK)
            conn_opened(c);
        else
            conn_connect_failed(c, errno, err);
        return;
    }
    if (c->state != CONN_OPEN)
        return;
    conn_flush(c);
    load_fill(c);
}

/* Counts a match_* result that is not MATCH_OK as a protocol error. */
static void conn_count_mismatch(match_result m)
{
    if (m == MATCH_DUPLICATE)
        bench.n.duplicate_id++;
    else
        bench.n.unknown_id++;
}

/* One chunk line of a stream, scanned into r. */
static void conn_chunk(bench_conn *c, const resp_line *r)
{
    uint64_t start, before;
    match_result m = match_chunk(&c->mt, r->id, &start, &before);
    if (m != MATCH_OK) {
        conn_count_mismatch(m);
        return;
    }
    if (!r->has_seq || r->seq != before)
        bench.n.bad_seq++;
    load_chunk(start, before);
}

/* One NDJSON answer line (without its '\n'). */
static void conn_ndjson_line(bench_conn *c, const char *line, size_t len)
{
    resp_line r;
    uint64_t start;
    resp_kind k = resp_scan(line, len, &r);
    if (k == RESP_MALFORMED) {
        bench.n.malformed++;
        return;
    }
    if (k == RESP_HEARTBEAT) {
        load_heartbeat();
        return;
    }
    if (r.id_kind != RESP_ID_INT) {
        bench.n.unknown_id++;
        return;
    }
    if (k == RESP_CHUNK) {
        conn_chunk(c, &r);
        return;
    }
    match_result m = match_complete(&c->mt, r.id, &start);
    if (m != MATCH_OK) {
        conn_count_mismatch(m);
        return;
    }
    c->backoff_ms = 0;
    if (r.kind == RESP_OK)
        load_answer(start, 1, NULL, 0);
    else if (r.code_len)
        load_answer(start, 0, r.code, r.code_len);
    else
        load_answer(start, 0, "no_code", 7);
}

/* Matches every complete line in the input buffer; keeps the rest. */
static void conn_ndjson_input(bench_conn *c)
{
    size_t start = 0, scan = c->in_scan;
    const char *nl;
    while (scan < c->in_len && (nl = memchr(c->in + scan, '\n', c->in_len - scan)) != NULL) {
        size_t end = (size_t)(nl - c->in);
        conn_ndjson_line(c, c->in + start, end - start);
        start = scan = end + 1;
    }
    if (start > 0) {
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
    }
    c->in_scan = c->in_len;
}

/* Whether the body's start is a JSON-RPC 2.0 result: a "result" member
 * before any "error" one in its first HTTP_BODY_HEAD bytes (agentpoold
 * writes jsonrpc, id, then result or error). */
static int conn_jsonrpc_result(const http_parser *hp)
{
    const char *r = memmem(hp->head, hp->head_len, "\"result\":", 9);
    const char *e = memmem(hp->head, hp->head_len, "\"error\":", 8);
    return r != NULL && (e == NULL || r < e);
}

/* An HTTP response ended. */
static void conn_http_answer(bench_conn *c)
{
    uint64_t start;
    int st = c->hp.status;
    if (c->written == 0 || match_complete_head(&c->mt, &start) != AP_OK) {
        /* a response to nothing we sent on this socket */
        bench.n.unknown_id++;
        return;
    }
    c->written--;
    c->backoff_ms = 0;
    if (st >= 200 && st < 300 && bench.cfg->expect_jsonrpc && !conn_jsonrpc_result(&c->hp)) {
        load_answer(start, 0, "jsonrpc_error", 13);
    } else if (st >= 200 && st < 300) {
        load_answer(start, 1, NULL, 0);
    } else {
        char code[9] = "http_0xx";
        code[5] = (char)('0' + st / 100);
        load_answer(start, 0, code, 8);
    }
}

/* Consumes every complete response in the input buffer.  Returns AP_ERR
 * when the connection was dropped (announced close or bad stream). */
static int conn_http_input(bench_conn *c)
{
    size_t off = 0;
    while (off < c->in_len) {
        size_t used = 0;
        http_result r = http_parse(&c->hp, c->in + off, c->in_len - off, &used);
        off += used;
        if (r == HTTP_NEED)
            break;
        if (r == HTTP_BAD) {
            /* not HTTP/1.x: this socket is unusable, start afresh */
            bench.n.malformed++;
            conn_drop(c, 0);
            return AP_ERR;
        }
        conn_http_answer(c);
        if (c->hp.close) {
            bench.n.close_announced++;
            conn_drop(c, 1);
            return AP_ERR;
        }
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    return AP_OK;
}

/* The server closed its side (or reset the connection). */
static void conn_eof(bench_conn *c)
{
    if (bench.cfg->proto == BENCH_HTTP) {
        http_result r = http_eof(&c->hp);
        if (r == HTTP_DONE) {
            /* a body that ran to the end of the connection: announced */
            conn_http_answer(c);
            bench.n.close_announced++;
            conn_drop(c, 1);
            return;
        }
        if (r == HTTP_BAD || c->in_len > 0)
            bench.n.truncated++;
    } else if (c->in_len > 0) {
        bench.n.truncated++;
    }
    bench.n.closed_by_server++;
    conn_drop(c, 0);
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    bench_conn *c = arg;
    AP_UNUSED(what);
    bench.now = ap_now_ns();
    if (c->state != CONN_OPEN)
        return;
    if (c->in_len == c->in_cap) {
        /* one NDJSON line longer than the buffer (HTTP never gets here:
         * its header block and lines are bounded below in_cap) */
        if (bench.cfg->proto == BENCH_HTTP || c->in_cap >= CONN_MAX_LINE) {
            bench.n.malformed++;
            conn_drop(c, 0);
            return;
        }
        c->in_cap *= 2;
        c->in = ap_realloc(c->in, c->in_cap);
    }
    ssize_t n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n == 0) {
        conn_eof(c);
        return;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_eof(c); /* ECONNRESET and friends: the same as a close */
        return;
    }
    c->in_len += (size_t)n;
    if (bench.cfg->proto == BENCH_HTTP) {
        if (conn_http_input(c) != AP_OK)
            return;
    } else {
        conn_ndjson_input(c);
    }
    load_fill(c);
    load_check_done();
}

void conn_bq_open(bench_conn *c)
{
    if (c->state == CONN_CONNECTING)
        conn_opened(c);
}

void conn_bq_failed(bench_conn *c, const char *err)
{
    conn_connect_failed(c, ECONNREFUSED, err);
}

void conn_bq_lost(bench_conn *c)
{
    if (c->state == CONN_DOWN)
        return;
    bench.n.closed_by_server++;
    conn_drop(c, 0);
}

void conn_bq_line(bench_conn *c, const char *line, size_t len)
{
    conn_ndjson_line(c, line, len);
}

void conn_bq_refused(bench_conn *c, uint64_t id, const char *code, size_t code_len)
{
    uint64_t start;
    match_result m = match_complete(&c->mt, id, &start);
    if (m != MATCH_OK) {
        conn_count_mismatch(m);
        return;
    }
    load_answer(start, 0, code, code_len);
}
