/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * exchange.c - the pipelined request/response loop (see exchange.h).
 *
 * State lives in one struct xchg for the duration of exchange_run().  The
 * loop polls the socket for reading always, for writing while requests
 * are pending, and the source for reading while the output buffer has
 * room: that last condition is the backpressure that bounds memory, and
 * reading the socket in every round is what keeps the server from
 * blocking on us.  The sink (stdout) is written with blocking writes:
 * when it stalls, everything waits for it, which is backpressure too.
 *
 * Source lines are filtered in place as they are read: blanks before a
 * line's first other byte are dropped, so blank lines never reach the
 * wire and nothing is buffered to find them; a line counts as sent when
 * its newline is queued.  Response lines are judged and written out whole:
 * the input buffer doubles while one line fills it, up to
 * EXCHANGE_LINE_MAX (and stays that size, the longest line seen); a line
 * longer than that is judged by what the full buffer holds, which is
 * then written out, and the rest streams through unjudged.
 *
 * The timeout clock runs only while answers are due (or requests wait to
 * be written) and restarts whenever a byte moves to or from the server,
 * so it measures the server's silence, not the length of the run nor the
 * pauses of whoever feeds stdin or reads stdout.
 *
 * Each complete line is classified by sline.c: answers count (and the
 * exchange ends when each request has one), chunks and heartbeats do
 * not.  Lines printed as received go out in runs, one write per read
 * where nothing is rewritten; a chunk printed as its value, a dropped
 * heartbeat or a hidden pool.cancel answer ends a run.  An over-long
 * line is classified by its start and streams through as received.
 * The interrupt descriptor is polled in every round; the pool.cancel
 * line goes into the (then unused) source buffer, behind the request.
 */
#include "exchange.h"
#include "jspan.h"
#include "sline.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    const exchange_opts *o;
    exchange_result *r;
    /* towards the server */
    size_t pre_off;     /* bytes of o->preload already written */
    char *out;          /* filtered source bytes, [out_off, out_len) pending */
    size_t out_off, out_len;
    int src_open;       /* o->in_fd still has data to give */
    int line_nonblank;  /* the source line being copied has a non-blank byte */
    int wr_dead;        /* writing failed: send nothing more, drain answers */
    char wr_err[160];
    /* from the server */
    char *in;
    size_t in_len, in_cap;
    int partial_out;    /* part of the current response line went to the sink */
    sline_kind partial_kind; /* what that line is, taken from its first part */
    uint64_t last_progress; /* ap_now_ms() of the last byte moved to/from the server */
    uint64_t cancel_deadline; /* ap_now_ms() past which the cancel's answers are not awaited; 0 = none */
} xchg;

static size_t xchg_pending(const xchg *x)
{
    return (x->o->preload_len - x->pre_off) + (x->out_len - x->out_off);
}

/* Records a terminal status with a reason; returns AP_ERR for chaining. */
static int xchg_fail(xchg *x, exchange_status st, const char *fmt, ...) AP_PRINTF(3, 4);
static int xchg_fail(xchg *x, exchange_status st, const char *fmt, ...)
{
    va_list ap;
    x->r->status = st;
    va_start(ap, fmt);
    vsnprintf(x->r->err, sizeof(x->r->err), fmt, ap);
    va_end(ap);
    return AP_ERR;
}

/* Writes all of p to the sink.  Returns AP_OK, or AP_ERR with status
 * EXCHANGE_IOERR set. */
static int xchg_emit(xchg *x, const char *p, size_t n)
{
    exchange_capture *c = x->o->capture;
    if (n == 0)
        return AP_OK;
    if (c) {
        if (c->len + n > c->limit) {
            c->overflowed = 1;
            return xchg_fail(x, EXCHANGE_IOERR, "the response is larger than %zu bytes", c->limit);
        }
        if (c->len + n + 1 > c->alloc) {
            size_t want = c->alloc ? c->alloc : 4096;
            while (want < c->len + n + 1)
                want *= 2;
            c->data = ap_realloc(c->data, want);
            c->alloc = want;
        }
        memcpy(c->data + c->len, p, n);
        c->len += n;
        c->data[c->len] = '\0';
        return AP_OK;
    }
    while (n > 0) {
        ssize_t w = write(x->o->out_fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* The sink was handed to us non-blocking: wait for it. */
            struct pollfd pfd = {.fd = x->o->out_fd, .events = POLLOUT};
            (void)poll(&pfd, 1, -1);
        } else {
            return xchg_fail(x, EXCHANGE_IOERR, "writing a response to the output: %s",
                             strerror(w < 0 ? errno : EIO));
        }
    }
    return AP_OK;
}

/* Copies the string member key of obj into buf (cut to fit); "" when
 * there is none. */
static void xchg_copy_str(jspan obj, const char *key, char *buf, size_t cap)
{
    jspan v;
    cJSON *t;
    buf[0] = '\0';
    if (jspan_member(obj, key, &v, &t) != AP_OK)
        return;
    if (cJSON_IsString(t))
        snprintf(buf, cap, "%s", t->valuestring);
    cJSON_Delete(t);
}

/* 1 when the answer p[0..n) is the one to our pool.cancel (its id is
 * the cancel's), after recording what it said; else 0. */
static int xchg_cancel_answer(xchg *x, const char *p, size_t n)
{
    const exchange_cancel *c = x->o->cancel;
    jspan line = {p, n}, id, v;
    if (!x->r->cancel_sent || jspan_member(line, "id", &id, NULL) != AP_OK ||
        id.len != strlen(c->id) || memcmp(id.p, c->id, id.len) != 0)
        return 0;
    x->r->cancel_answered = 1;
    if (jspan_member(line, "result", &v, NULL) == AP_OK)
        xchg_copy_str(v, "found", x->r->cancel_found, sizeof(x->r->cancel_found));
    if (jspan_member(line, "error", &v, NULL) == AP_OK)
        xchg_copy_str(v, "code", x->r->cancel_code, sizeof(x->r->cancel_code));
    return 1;
}

/* Counts one complete line of kind k and says whether it goes out as
 * received (1) or not (0: nothing, or only *value, is printed). */
static int xchg_count_line(xchg *x, sline_kind k, const char *p, size_t n, const jspan *value)
{
    switch (k) {
    case SLINE_CHUNK:
        x->r->chunks++;
        return !(x->o->chunk_values && value->p);
    case SLINE_HEARTBEAT:
        x->r->heartbeats++;
        return !x->o->chunk_values;
    case SLINE_ANSWER_OK:
    case SLINE_ANSWER_FAILED:
    default:
        x->r->answered++;
        if (x->r->cancel_sent && xchg_cancel_answer(x, p, n))
            return !x->o->chunk_values;
        if (k != SLINE_ANSWER_OK)
            x->r->failed++;
        return 1;
    }
}

/* Classifies, counts and emits the complete lines in x->in and keeps the
 * incomplete tail; a tail that fills the buffer makes it grow, or at
 * EXCHANGE_LINE_MAX is classified by its start and streamed out.
 * Returns AP_OK, or AP_ERR when the sink failed. */
static int xchg_take_lines(xchg *x)
{
    size_t start = 0, run = 0; /* lines [run, start) go out as received */
    char *nl;
    while ((nl = memchr(x->in + start, '\n', x->in_len - start)) != NULL) {
        size_t len = (size_t)(nl - (x->in + start));
        jspan value = {NULL, 0};
        sline_kind k = x->partial_out ? x->partial_kind : sline_classify(x->in + start, len, &value);
        x->partial_out = 0;
        if (!xchg_count_line(x, k, x->in + start, len, &value)) {
            if (xchg_emit(x, x->in + run, start - run) != AP_OK)
                return AP_ERR;
            if (value.p && (xchg_emit(x, value.p, value.len) != AP_OK || xchg_emit(x, "\n", 1) != AP_OK))
                return AP_ERR;
            run = start + len + 1;
        }
        start += len + 1;
    }
    if (xchg_emit(x, x->in + run, start - run) != AP_OK)
        return AP_ERR;
    size_t rest = x->in_len - start;
    if (rest == x->in_cap && !x->partial_out && x->in_cap < EXCHANGE_LINE_MAX) {
        /* One line longer than the buffer: make room to hold it whole. */
        x->in_cap = x->in_cap * 2 < EXCHANGE_LINE_MAX ? x->in_cap * 2 : EXCHANGE_LINE_MAX;
        x->in = ap_realloc(x->in, x->in_cap);
    } else if (rest == x->in_cap) {
        /* Longer than EXCHANGE_LINE_MAX: judge it by its start, pass it on. */
        if (!x->partial_out)
            x->partial_kind = sline_classify_start(x->in, rest);
        if (xchg_emit(x, x->in, rest) != AP_OK)
            return AP_ERR;
        x->partial_out = 1;
        rest = 0;
    } else if (start > 0 && rest > 0) {
        memmove(x->in, x->in + start, rest);
    }
    x->in_len = rest;
    return AP_OK;
}

/* Reads what the server sent.  Returns AP_OK to go on, AP_ERR with a
 * terminal status set. */
static int xchg_read_sock(xchg *x)
{
    ssize_t n = recv(x->o->sock, x->in + x->in_len, x->in_cap - x->in_len, 0);
    int saved = errno;
    if (n > 0) {
        x->in_len += (size_t)n;
        int rc = xchg_take_lines(x);
        /* After the sink took the lines: time spent waiting for a slow
         * reader of our output is not the server's silence. */
        x->last_progress = ap_now_ms();
        return rc;
    }
    if (n < 0 && (saved == EINTR || saved == EAGAIN || saved == EWOULDBLOCK))
        return AP_OK;
    const char *how = x->in_len || x->partial_out ? " in the middle of a response" : "";
    if (x->partial_out)
        (void)xchg_emit(x, "\n", 1); /* keep the output line-delimited */
    if (n < 0)
        return xchg_fail(x, EXCHANGE_LOST, "reading from agentpoold: %s%s", strerror(saved), how);
    if (x->wr_dead)
        return xchg_fail(x, EXCHANGE_LOST, "%s", x->wr_err);
    return xchg_fail(x, EXCHANGE_LOST, "agentpoold closed the connection%s", how);
}

/* Writes pending request bytes.  A failure does not end the loop at
 * once: answers already on their way are still read until EOF. */
static void xchg_write_sock(xchg *x)
{
    const char *p;
    size_t n;
    if (x->pre_off < x->o->preload_len) {
        p = x->o->preload + x->pre_off;
        n = x->o->preload_len - x->pre_off;
    } else {
        p = x->out + x->out_off;
        n = x->out_len - x->out_off;
    }
    ssize_t w = send(x->o->sock, p, n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            x->wr_dead = 1;
            snprintf(x->wr_err, sizeof(x->wr_err), "writing to agentpoold: %s", strerror(errno));
        }
        return;
    }
    x->last_progress = ap_now_ms();
    if (x->pre_off < x->o->preload_len) {
        x->pre_off += (size_t)w;
    } else {
        x->out_off += (size_t)w;
        if (x->out_off == x->out_len)
            x->out_off = x->out_len = 0;
    }
}

/* Copies the source bytes at dst..dst+n into place without blank lines
 * and without leading blanks, counting finished lines as sent.  Returns
 * the number of bytes kept (never more than n). */
static size_t xchg_filter(xchg *x, char *dst, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = dst[i];
        if (c == '\n') {
            if (x->line_nonblank) {
                dst[o++] = c;
                x->r->sent++;
                x->line_nonblank = 0;
            }
        } else if (!x->line_nonblank && (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v')) {
            continue;
        } else {
            x->line_nonblank = 1;
            dst[o++] = c;
        }
    }
    return o;
}

/* Reads the source into the free end of the output buffer.  Returns
 * AP_OK, or AP_ERR with status EXCHANGE_IOERR. */
static int xchg_read_src(xchg *x)
{
    if (x->out_off > 0) {
        memmove(x->out, x->out + x->out_off, x->out_len - x->out_off);
        x->out_len -= x->out_off;
        x->out_off = 0;
    }
    /* One byte stays free for the newline a last unterminated line needs. */
    size_t room = EXCHANGE_OUT_CAP - x->out_len;
    ssize_t n = read(x->o->in_fd, x->out + x->out_len, room);
    if (n > 0) {
        x->out_len += xchg_filter(x, x->out + x->out_len, (size_t)n);
        return AP_OK;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return AP_OK;
    if (n < 0)
        return xchg_fail(x, EXCHANGE_IOERR, "reading requests from the input: %s", strerror(errno));
    x->src_open = 0;
    if (x->line_nonblank) {
        x->out[x->out_len++] = '\n';
        x->r->sent++;
        x->line_nonblank = 0;
    }
    return AP_OK;
}

/* Reads the interrupts waiting on the cancel's descriptor.  The first
 * queues the pool.cancel line (while an answer is due) and starts the
 * bounded wait; a second one ends the exchange.  Returns AP_OK to go on,
 * or AP_ERR with status EXCHANGE_INTERRUPTED. */
static int xchg_interrupt(xchg *x)
{
    const exchange_cancel *c = x->o->cancel;
    char b[16];
    ssize_t n;
    while ((n = read(c->intr_fd, b, sizeof(b))) > 0)
        x->r->interrupts += (unsigned)n;
    if (x->r->interrupts >= 2)
        return xchg_fail(x, EXCHANGE_INTERRUPTED, "interrupted again: the answers were not awaited");
    if (x->r->interrupts == 1 && !x->r->cancel_sent && x->r->answered < x->r->sent &&
        x->out_len + c->len <= EXCHANGE_OUT_CAP) {
        memcpy(x->out + x->out_len, c->line, c->len);
        x->out_len += c->len;
        x->r->sent++;
        x->r->cancel_sent = 1;
        if (c->wait_ms > 0)
            x->cancel_deadline = ap_now_ms() + (uint64_t)c->wait_ms;
    }
    return AP_OK;
}

int exchange_run(const exchange_opts *o, exchange_result *r)
{
    xchg x;
    int rc = AP_ERR;

    memset(r, 0, sizeof(*r));
    memset(&x, 0, sizeof(x));
    x.o = o;
    x.r = r;
    x.out = ap_malloc(EXCHANGE_OUT_CAP + 1);
    x.in = ap_malloc(EXCHANGE_IN_CAP);
    x.in_cap = EXCHANGE_IN_CAP;
    x.src_open = o->in_fd >= 0;
    r->sent = o->preload_lines;
    x.last_progress = ap_now_ms();

    for (;;) {
        size_t pending = xchg_pending(&x);
        if (!x.src_open && pending == 0 && r->answered >= r->sent) {
            r->status = EXCHANGE_DONE;
            rc = AP_OK;
            break;
        }
        int awaiting = pending > 0 || r->answered < r->sent;
        uint64_t now = ap_now_ms();
        if (!awaiting)
            x.last_progress = now; /* the clock runs only while answers are due */
        int wait = -1;
        if (awaiting && o->timeout_ms > 0) {
            uint64_t deadline = x.last_progress + (uint64_t)o->timeout_ms;
            if (now >= deadline) {
                xchg_fail(&x, EXCHANGE_TIMEOUT, "timed out: agentpoold sent nothing for %d ms",
                          o->timeout_ms);
                break;
            }
            wait = (int)(deadline - now);
        }
        if (x.cancel_deadline) {
            if (now >= x.cancel_deadline) {
                xchg_fail(&x, EXCHANGE_TIMEOUT, "timed out: no final answer within %d ms of the "
                          "interrupt", o->cancel->wait_ms);
                break;
            }
            if (wait < 0 || x.cancel_deadline - now < (uint64_t)wait)
                wait = (int)(x.cancel_deadline - now);
        }

        struct pollfd pfd[3];
        nfds_t nfd = 1, src = 0, intr = 0;
        pfd[0].fd = o->sock;
        pfd[0].events = POLLIN;
        if (pending > 0 && !x.wr_dead)
            pfd[0].events |= POLLOUT;
        if (x.src_open && !x.wr_dead && x.out_len - x.out_off < EXCHANGE_OUT_CAP) {
            src = nfd++;
            pfd[src].fd = o->in_fd;
            pfd[src].events = POLLIN;
        }
        if (o->cancel) {
            intr = nfd++;
            pfd[intr].fd = o->cancel->intr_fd;
            pfd[intr].events = POLLIN;
        }
        for (nfds_t i = 0; i < nfd; i++)
            pfd[i].revents = 0;
        int n = poll(pfd, nfd, wait);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            xchg_fail(&x, EXCHANGE_IOERR, "poll: %s", strerror(errno));
            break;
        }
        if (n == 0)
            continue; /* the deadline check above decides */
        if (intr && (pfd[intr].revents & POLLIN) && xchg_interrupt(&x) != AP_OK)
            break;
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (xchg_read_sock(&x) != AP_OK)
                break;
        }
        if ((pfd[0].revents & POLLOUT) && !x.wr_dead)
            xchg_write_sock(&x);
        if (src && (pfd[src].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (xchg_read_src(&x) != AP_OK)
                break;
        }
    }
    ap_free(x.out);
    ap_free(x.in);
    return rc;
}
