/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bsend.c - `agentpoolctl send` (and send --stream) to a broker target,
 * `--socket redis://HOST[:PORT][/DB]` (docs/scale-out.md, Clients).
 *
 * The one request line cmd_send.c built goes to the pool's stream
 * (--pool, default "default") through the add script of ap_broker.h;
 * its answer lines come back on a reply stream of this run's own, read
 * with XREAD BLOCK and printed as send prints them from the socket:
 * every line as received, or with --stream each chunk's value (--raw:
 * every line), a chunk written twice (its seq seen) once.  The exit status is judged by the final line's "ok"
 * (sline.c).  The stream refusing the add (queue_full) is said on stderr
 * with status 1.  Ctrl-C adds the cancel entry to the pool's control
 * stream once and keeps waiting, at most --timeout, for the final line;
 * a second one stops waiting (status 130).  --timeout bounds the silence
 * while the answer is due.  The reply stream is DELeted at the end.
 *
 * A CLI, not the master: hiredis's blocking API is used, each command
 * bounded by a socket timeout (XREAD blocks BSEND_BLOCK_MS at most, so
 * an interrupt is seen within that).
 */
#include "bsend.h"
#include "ap_alloc.h"
#include "ap_broker.h"
#include "rspec.h"
#include "sline.h"

#include <errno.h>
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define BSEND_BLOCK_MS 500
#define BSEND_CONNECT_MS 5000

static volatile sig_atomic_t bsend_interrupts;

static void bsend_sigint(int sig)
{
    AP_UNUSED(sig);
    bsend_interrupts++;
}

int bsend_is_target(const char *path)
{
    return path != NULL && strncmp(path, "redis://", 8) == 0;
}

/* Writes line and a newline to stdout; AP_ERR when stdout failed. */
static int bsend_print(const char *p, size_t n)
{
    if (fwrite(p, 1, n, stdout) != n || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        return AP_ERR;
    return AP_OK;
}

/* One line of the reply stream: printed, unless it is a chunk whose seq
 * came already (an agentpoold that lost its Redis connection may write a
 * chunk twice); *final set (and *ok) for the final answer.  AP_ERR when
 * stdout failed. */
static int bsend_line(const ctl_opts *o, const char *p, size_t n, uint64_t *next_seq, int *final, int *ok)
{
    jspan chunk, seq;
    uint64_t s;
    sline_kind k = sline_classify(p, n, &chunk);
    if (k == SLINE_CHUNK && jspan_member((jspan){p, n}, "seq", &seq, NULL) == AP_OK &&
        jspan_u64(seq.p, seq.len, &s) == AP_OK) {
        if (s < *next_seq)
            return AP_OK;
        *next_seq = s + 1;
    }
    if (k == SLINE_CHUNK && o->stream && !o->raw)
        return bsend_print(chunk.p, chunk.len);
    if (k == SLINE_HEARTBEAT && o->stream && !o->raw)
        return AP_OK;
    if (k == SLINE_ANSWER_OK || k == SLINE_ANSWER_FAILED) {
        *final = 1;
        *ok = k == SLINE_ANSWER_OK;
    }
    return bsend_print(p, n);
}

typedef struct {
    redisContext *c;
    char target[300];
    char reply[64];
    char requests[256], maxlen[256], control[256];
    char entry[48];   /* the request's entry id */
    char last[48];    /* the last reply entry read */
    uint64_t next_seq; /* the seq of the next chunk not seen yet */
} bsend_run_t;

/* A command's reply, or NULL after saying why (Redis errors included). */
static redisReply *bsend_cmd(bsend_run_t *b, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(b->c, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        ctl_warn("%s at %s: %s", what, b->target, b->c->errstr[0] ? b->c->errstr : "connection lost");
        return NULL;
    }
    return r;
}

/* Reads what came on the reply stream; AP_ERR after saying why. */
static int bsend_read(const ctl_opts *o, bsend_run_t *b, int *got, int *final, int *ok)
{
    redisReply *r = bsend_cmd(b, "XREAD of the reply stream", "XREAD COUNT 256 BLOCK %d STREAMS %s %s", BSEND_BLOCK_MS,
                              b->reply, b->last);
    if (r == NULL)
        return AP_ERR;
    if (r->type == REDIS_REPLY_ERROR) {
        ctl_warn("XREAD of %s at %s: %s", b->reply, b->target, r->str);
        freeReplyObject(r);
        return AP_ERR;
    }
    int rc = AP_OK;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
        redisReply *es = r->element[0]->element[1];
        for (size_t i = 0; rc == AP_OK && es->type == REDIS_REPLY_ARRAY && i < es->elements && !*final; i++) {
            redisReply *e = es->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(b->last, sizeof(b->last), "%s", e->element[0]->str);
            *got = 1;
            redisReply *f = e->element[1];
            for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements; j += 2)
                if (f->element[j]->type == REDIS_REPLY_STRING && strcmp(f->element[j]->str, "line") == 0 &&
                    f->element[j + 1]->type == REDIS_REPLY_STRING &&
                    bsend_line(o, f->element[j + 1]->str, f->element[j + 1]->len, &b->next_seq, final, ok) != AP_OK) {
                    ctl_warn("writing to stdout: %s", strerror(errno));
                    rc = AP_ERR;
                    break;
                }
        }
    }
    freeReplyObject(r);
    return rc;
}

/* Adds the request; AP_OK with b->entry set, else the exit status after
 * saying why. */
static int bsend_add(bsend_run_t *b, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\n')
        len--;
    redisReply *r = bsend_cmd(b, "adding the request", "EVAL %s 2 %s %s %b %s", AP_BROKER_ADD_SCRIPT, b->requests,
                              b->maxlen, line, len, b->reply);
    if (r == NULL)
        return CTL_EXIT_EXCHANGE;
    int st = AP_OK;
    if (r->type == REDIS_REPLY_STRING && r->len < sizeof(b->entry)) {
        memcpy(b->entry, r->str, r->len + 1);
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "queue_full", 10) == 0) {
        ctl_warn("queue_full: %s", r->str + 10 + (r->str[10] == ' '));
        st = CTL_EXIT_ANSWER_ERROR;
    } else {
        ctl_warn("adding the request to %s at %s: %s", b->requests, b->target,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected answer");
        st = CTL_EXIT_EXCHANGE;
    }
    freeReplyObject(r);
    return st;
}

/* Waits for the final line (see the top); the exit status. */
static int bsend_wait(const ctl_opts *o, bsend_run_t *b)
{
    int final = 0, ok = 0, cancel_sent = 0;
    uint64_t last = ap_now_ns(), until = 0;
    while (!final) {
        if (bsend_interrupts > 1)
            return CTL_EXIT_INTERRUPTED;
        if (bsend_interrupts == 1 && !cancel_sent) {
            redisReply *r = bsend_cmd(b, "adding the cancel", "XADD %s * cancel %s replyTo %s", b->control,
                                      b->entry, b->reply);
            if (r == NULL)
                return CTL_EXIT_EXCHANGE;
            freeReplyObject(r);
            cancel_sent = 1;
            ctl_warn("interrupted: cancel of entry %s added to %s", b->entry, b->control);
            if (o->timeout_ms > 0)
                until = ap_now_ns() + (uint64_t)o->timeout_ms * 1000000u;
        }
        int got = 0;
        if (bsend_read(o, b, &got, &final, &ok) != AP_OK)
            return CTL_EXIT_EXCHANGE;
        uint64_t now = ap_now_ns();
        if (got) {
            last = now;
            (void)freeReplyObject(redisCommand(b->c, "XTRIM %s MINID %s", b->reply, b->last));
        }
        if (!final && ((o->timeout_ms > 0 && now - last > (uint64_t)o->timeout_ms * 1000000u) ||
                       (until && now > until))) {
            ctl_warn("no answer through %s within %d ms", b->target, o->timeout_ms);
            return cancel_sent ? CTL_EXIT_INTERRUPTED : CTL_EXIT_EXCHANGE;
        }
    }
    if (cancel_sent)
        return CTL_EXIT_INTERRUPTED;
    return ok ? CTL_EXIT_OK : CTL_EXIT_ANSWER_ERROR;
}

int bsend_run(const ctl_opts *o, const char *line, size_t len)
{
    bsend_run_t b;
    rspec rs;
    char err[512];
    unsigned char rnd[16];

    memset(&b, 0, sizeof(b));
    if (rspec_parse("--socket", o->socket_path + 8, &rs, err, sizeof(err)) != AP_OK)
        return ctl_usage_error("%s", err);
    snprintf(b.target, sizeof(b.target), "%s", o->socket_path);
    const char *pool = o->pool ? o->pool : AP_BROKER_DEFAULT_POOL;
    snprintf(b.requests, sizeof(b.requests), AP_BROKER_REQUESTS, pool);
    snprintf(b.maxlen, sizeof(b.maxlen), AP_BROKER_MAXLEN, pool);
    snprintf(b.control, sizeof(b.control), AP_BROKER_CONTROL, pool);
    snprintf(b.last, sizeof(b.last), "0-0");
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        ctl_warn("getrandom (naming the reply stream): %s", strerror(errno));
        return CTL_EXIT_EXCHANGE;
    }
    int n = snprintf(b.reply, sizeof(b.reply), AP_BROKER_REPLY_PREFIX);
    for (size_t i = 0; i < sizeof(rnd); i++)
        n += snprintf(b.reply + n, sizeof(b.reply) - (size_t)n, "%02x", rnd[i]);

    struct timeval ct = {.tv_sec = BSEND_CONNECT_MS / 1000};
    b.c = redisConnectWithTimeout(rs.host, rs.port, ct);
    if (b.c == NULL || b.c->err) {
        ctl_warn("cannot connect to %s: %s", b.target, b.c ? b.c->errstr : "out of memory");
        if (b.c)
            redisFree(b.c);
        return CTL_EXIT_CONNECT;
    }
    struct timeval rt = {.tv_sec = (BSEND_BLOCK_MS + BSEND_CONNECT_MS) / 1000};
    (void)redisSetTimeout(b.c, rt);
    int st = CTL_EXIT_OK;
    if (rs.db) {
        redisReply *r = bsend_cmd(&b, "SELECT", "SELECT %d", rs.db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            if (r)
                ctl_warn("SELECT %d at %s: %s", rs.db, b.target, r->str);
            st = CTL_EXIT_CONNECT;
        }
        freeReplyObject(r);
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bsend_sigint;
    sigemptyset(&sa.sa_mask);
    bsend_interrupts = 0;
    (void)sigaction(SIGINT, &sa, &old);
    if (st == CTL_EXIT_OK)
        st = bsend_add(&b, line, len);
    if (st == CTL_EXIT_OK)
        st = bsend_wait(o, &b);
    (void)sigaction(SIGINT, &old, NULL);
    if (b.c->err == 0)
        freeReplyObject(redisCommand(b.c, "DEL %s", b.reply));
    redisFree(b.c);
    return st;
}
