/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * replay.c - the windowed resend loop of `dlq replay` (see replay.h).
 *
 * One poll(2) loop over one socket.  State lives in a struct rpl for the
 * length of replay_run(): the request line being written (built only
 * when the window has room, so at most one dead letter's bytes are held
 * for sending) and the input buffer, which doubles while one answer
 * fills it, up to REPLAY_LINE_MAX; an answer longer than that is judged
 * by what the full buffer holds and the rest of it is dropped unread
 * (skip_line).  The socket is read in every round, so the
 * server never blocks on us; we do not half-close it (agentpoold would
 * answer a half-closed connection, but we count the answers instead).
 */
#include "replay.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
    const replay_opts *o;
    replay_item *items;
    size_t n;
    replay_result *r;
    size_t next;            /* first item not yet considered for sending */
    /* towards the server: one request line */
    char *out;
    size_t out_len, out_off, out_alloc;
    int wr_dead;            /* writing failed: send nothing more */
    /* from the server */
    char *in;
    size_t in_len, in_cap;
    int skip_line;          /* the answer being read was judged by its start: drop the rest */
    char unmatched_code[48];
    uint64_t last_progress; /* ap_now_ms() of the last byte moved */
} rpl;

static int rpl_fail(rpl *x, const char *fmt, ...) AP_PRINTF(2, 3);
static int rpl_fail(rpl *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->r->err, sizeof(x->r->err), fmt, ap);
    va_end(ap);
    return AP_ERR;
}

static void rpl_set_failed(replay_item *it, const char *code)
{
    it->state = REPLAY_FAILED;
    snprintf(it->code, sizeof(it->code), "%s", code);
}

/* Appends n bytes to the request line being built. */
static void rpl_put(rpl *x, const char *p, size_t n)
{
    if (x->out_len + n > x->out_alloc) {
        size_t want = x->out_alloc ? x->out_alloc : 4096;
        while (want < x->out_len + n)
            want *= 2;
        x->out = ap_realloc(x->out, want);
        x->out_alloc = want;
    }
    memcpy(x->out + x->out_len, p, n);
    x->out_len += n;
}

/* A raw value fit to be copied into a request line: present and without
 * a newline (which would split the line; agentpoold never writes one). */
static int rpl_span_ok(jspan s)
{
    return s.p == NULL || memchr(s.p, '\n', s.len) == NULL;
}

/* Builds the next item's request line when the window has room.  Items
 * that cannot be sent are failed on the spot and skipped. */
static void rpl_fill(rpl *x)
{
    while (x->out_len == 0 && x->next < x->n && !x->wr_dead) {
        size_t window = x->o->window ? x->o->window : 1;
        if (x->r->sent - x->r->answered >= window)
            return;
        replay_item *it = &x->items[x->next++];
        if (it->state != REPLAY_PENDING)
            continue; /* settled by the caller: not to be sent */
        if (!rpl_span_ok(it->type) || !rpl_span_ok(it->data) || !rpl_span_ok(it->checkpoint)) {
            rpl_set_failed(it, "bad_record");
            continue;
        }
        char idpart[64];
        int k = snprintf(idpart, sizeof(idpart), "{\"id\":\"replay-%" PRIu64 "\",\"type\":",
                         it->dlq_id);
        rpl_put(x, idpart, (size_t)k);
        if (it->type.p)
            rpl_put(x, it->type.p, it->type.len);
        else
            rpl_put(x, "null", 4);
        rpl_put(x, ",\"data\":", 8);
        if (it->data.p)
            rpl_put(x, it->data.p, it->data.len);
        else
            rpl_put(x, "null", 4);
        if (it->checkpoint.p) {
            rpl_put(x, ",\"resume\":", 10);
            rpl_put(x, it->checkpoint.p, it->checkpoint.len);
        }
        if (x->o->pool_json) {
            rpl_put(x, ",\"pool\":", 8);
            rpl_put(x, x->o->pool_json, strlen(x->o->pool_json));
        }
        rpl_put(x, "}\n", 2);
        x->out_off = 0;
        it->state = REPLAY_SENT;
        x->r->sent++;
    }
}

/* The item an answer's id names: "replay-<dlqId>", the first one still
 * waiting with that dlqId; NULL when none. */
static replay_item *rpl_match(rpl *x, const cJSON *id)
{
    static const char prefix[] = "replay-";
    const size_t pl = sizeof(prefix) - 1;
    uint64_t dlq_id;
    if (!cJSON_IsString(id) || strncmp(id->valuestring, prefix, pl) != 0 ||
        jspan_u64(id->valuestring + pl, strlen(id->valuestring + pl), &dlq_id) != AP_OK)
        return NULL;
    for (size_t i = 0; i < x->next; i++)
        if (x->items[i].dlq_id == dlq_id && x->items[i].state == REPLAY_SENT)
            return &x->items[i];
    return NULL;
}

/* Settles one answer (counted when its newline comes): text holds the
 * whole line, or its start when it was longer than REPLAY_LINE_MAX. */
static void rpl_judge(rpl *x, jspan text)
{
    jspan v;
    cJSON *ok, *id, *err;
    char cbuf[48] = "?";

    (void)jspan_member(text, "ok", &v, &ok);
    int said_ok = cJSON_IsTrue(ok);
    cJSON_Delete(ok);
    if (!said_ok && jspan_member(text, "error", &v, &err) == AP_OK) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        if (cJSON_IsString(code) && code->valuestring[0])
            snprintf(cbuf, sizeof(cbuf), "%s", code->valuestring);
        cJSON_Delete(err);
    }
    (void)jspan_member(text, "id", &v, &id);
    replay_item *it = rpl_match(x, id);
    cJSON_Delete(id);
    if (it == NULL) {
        x->r->unmatched++;
        snprintf(x->unmatched_code, sizeof(x->unmatched_code), "%s", said_ok ? "no_answer" : cbuf);
        return;
    }
    if (said_ok)
        it->state = REPLAY_OK;
    else
        rpl_set_failed(it, cbuf);
}

/* Judges the complete answers in x->in and keeps the incomplete tail;
 * a tail that fills the buffer makes it grow, or at REPLAY_LINE_MAX is
 * judged and dropped with the rest of its line. */
static void rpl_take_lines(rpl *x)
{
    size_t start = 0;
    char *nl;
    while ((nl = memchr(x->in + start, '\n', x->in_len - start)) != NULL) {
        size_t len = (size_t)(nl - (x->in + start));
        if (!x->skip_line) {
            jspan text = {x->in + start, len};
            rpl_judge(x, text);
        }
        x->r->answered++;
        x->skip_line = 0;
        start += len + 1;
    }
    size_t rest = x->in_len - start;
    if (rest == x->in_cap && !x->skip_line && x->in_cap < REPLAY_LINE_MAX) {
        x->in_cap = x->in_cap * 2 < REPLAY_LINE_MAX ? x->in_cap * 2 : REPLAY_LINE_MAX;
        x->in = ap_realloc(x->in, x->in_cap);
    } else if (rest == x->in_cap) {
        if (!x->skip_line) {
            jspan text = {x->in, rest};
            rpl_judge(x, text);
            x->skip_line = 1;
        }
        rest = 0;
    } else if (start > 0 && rest > 0) {
        memmove(x->in, x->in + start, rest);
    }
    x->in_len = rest;
}

static int rpl_read(rpl *x)
{
    ssize_t n = recv(x->o->sock, x->in + x->in_len, x->in_cap - x->in_len, 0);
    int saved = errno;
    if (n > 0) {
        x->in_len += (size_t)n;
        x->last_progress = ap_now_ms();
        rpl_take_lines(x);
        return AP_OK;
    }
    if (n < 0 && (saved == EINTR || saved == EAGAIN || saved == EWOULDBLOCK))
        return AP_OK;
    if (n < 0)
        return rpl_fail(x, "reading from agentpoold: %s", strerror(saved));
    if (x->wr_dead)
        return AP_ERR; /* r->err already says why writing failed */
    return rpl_fail(x, "agentpoold closed the connection");
}

static void rpl_write(rpl *x)
{
    ssize_t w = send(x->o->sock, x->out + x->out_off, x->out_len - x->out_off, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
            /* Answers already on their way are still read, until EOF. */
            rpl_fail(x, "writing to agentpoold: %s", strerror(errno));
            x->wr_dead = 1;
        }
        return;
    }
    x->last_progress = ap_now_ms();
    x->out_off += (size_t)w;
    if (x->out_off == x->out_len)
        x->out_off = x->out_len = 0;
}

int replay_run(const replay_opts *o, replay_item *items, size_t n, replay_result *r)
{
    rpl x;
    int rc = AP_ERR;

    memset(r, 0, sizeof(*r));
    memset(&x, 0, sizeof(x));
    x.o = o;
    x.items = items;
    x.n = n;
    x.r = r;
    x.in = ap_malloc(REPLAY_IN_CAP);
    x.in_cap = REPLAY_IN_CAP;
    x.last_progress = ap_now_ms();

    for (;;) {
        rpl_fill(&x);
        int pending = x.out_len > 0 && !x.wr_dead;
        if (!pending && (x.next == n || x.wr_dead) && r->answered >= r->sent) {
            if (x.wr_dead)
                break; /* r->err says why */
            rc = AP_OK;
            break;
        }
        uint64_t now = ap_now_ms();
        int wait = -1;
        if (o->timeout_ms > 0) {
            uint64_t deadline = x.last_progress + (uint64_t)o->timeout_ms;
            if (now >= deadline) {
                rpl_fail(&x, "timed out: agentpoold sent nothing for %d ms", o->timeout_ms);
                break;
            }
            wait = (int)(deadline - now);
        }
        struct pollfd pfd = {.fd = o->sock, .events = POLLIN};
        if (pending)
            pfd.events |= POLLOUT;
        int k = poll(&pfd, 1, wait);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            rpl_fail(&x, "poll: %s", strerror(errno));
            break;
        }
        if (k == 0)
            continue; /* the deadline check above decides */
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (rpl_read(&x) != AP_OK)
                break;
        }
        if (pfd.revents & POLLOUT)
            rpl_write(&x);
    }
    if (rc == AP_OK) {
        /* Every answer came: an item none of them named was answered
         * under an id we cannot read (a too_large answer has id null). */
        for (size_t i = 0; i < n; i++)
            if (items[i].state == REPLAY_SENT)
                rpl_set_failed(&items[i], x.unmatched_code[0] ? x.unmatched_code : "no_answer");
    }
    ap_free(x.out);
    ap_free(x.in);
    return rc;
}
