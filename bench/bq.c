/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bq.c - the broker transport of a benchmark connection (see bq.h).
 *
 * Each bench_conn holds two hiredis async contexts on bench.base
 * (attached by pool/redis/rev.h, as the master's links are): `add`
 * carries the add script (one EVALSHA for the request lines written in
 * one turn, up to BQ_ADD_MAX), `rd` loops XREAD BLOCK on the
 * connection's reply stream, with an XTRIM MINID of what it read once
 * BQ_TRIM_EVERY entries came since the last one.  The
 * connection opens when the add script is loaded (SCRIPT LOAD's answer);
 * either context failing or closing loses the connection (conn.c fails
 * what it held and reconnects).  A context's callbacks check that it is
 * still the connection's current one: hiredis calls them with a NULL
 * reply while it frees a context, possibly after bq_shut() replaced it.
 *
 * Request ids ride in the request lines (`{"id":N...`, tmpl.c's layout);
 * an add refused by the script ("queue_full ...") answers that id with
 * the error queue_full, any other error with broker_error.  Reply
 * streams are not DELeted at the end of a run: the agentpoolds' PEXPIRE
 * (broker.replyTtl) removes them.
 */
#include "bq.h"
#include "ap_broker.h"
#include "ap_common.h"
#include "conn.h"
#include "load.h"
#include "rev.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define BQ_BLOCK_MS 1000
#define BQ_READ_COUNT 1024
/* Reply entries read before they are trimmed (the stream holds at most
 * this many read ones, plus those of the last read). */
#define BQ_TRIM_EVERY 256
/* Request lines per add call, at most. */
#define BQ_ADD_MAX 256

static void bq_read_cb(redisAsyncContext *ac, void *r, void *priv);

static const char *bq_pool(void)
{
    return bench.cfg->req.pool ? bench.cfg->req.pool : AP_BROKER_DEFAULT_POOL;
}

/* Queues the next XREAD of c's reply stream. */
static void bq_read_next(bench_conn *c)
{
    redisAsyncCommand(c->bq.rd, bq_read_cb, c, "XREAD COUNT %d BLOCK %d STREAMS %s %s", BQ_READ_COUNT,
                      BQ_BLOCK_MS, c->bq.reply, c->bq.last);
}

/* The reply stream's entries: [[key, [[id, [field, value, ...]], ...]]]. */
static void bq_read_cb(redisAsyncContext *ac, void *r, void *priv)
{
    bench_conn *c = priv;
    redisReply *reply = r;
    if (!reply || ac != c->bq.rd)
        return; /* freed, or an old context */
    bench.now = ap_now_ns();
    if (reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, BENCH_NAME ": connection %u: XREAD %s: %s\n", c->index, c->bq.reply, reply->str);
        conn_bq_lost(c);
        return;
    }
    size_t got = 0;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 && reply->element[0]->type == REDIS_REPLY_ARRAY &&
        reply->element[0]->elements == 2) {
        redisReply *entries = reply->element[0]->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
            redisReply *e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
                continue;
            snprintf(c->bq.last, sizeof(c->bq.last), "%s", e->element[0]->str);
            got++;
            redisReply *f = e->element[1];
            for (size_t j = 0; f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements; j += 2)
                if (f->element[j]->type == REDIS_REPLY_STRING && strcmp(f->element[j]->str, "line") == 0 &&
                    f->element[j + 1]->type == REDIS_REPLY_STRING)
                    conn_bq_line(c, f->element[j + 1]->str, f->element[j + 1]->len);
            if (c->bq.rd != ac)
                return; /* the run ended while answering */
        }
    }
    c->bq.untrimmed += got;
    if (c->bq.untrimmed >= BQ_TRIM_EVERY) { /* one XTRIM for many reads */
        redisAsyncCommand(ac, NULL, NULL, "XTRIM %s MINID %s", c->bq.reply, c->bq.last);
        c->bq.untrimmed = 0;
    }
    bq_read_next(c);
    load_fill(c);
    load_check_done();
}

/* The request ids of one add call, in their lines' order. */
typedef struct {
    size_t n;
    uint64_t id[];
} bq_adds;

/* A refusal of the add script for request id. */
static void bq_refused(bench_conn *c, uint64_t id, const redisReply *e)
{
    if (strncmp(e->str, "queue_full", 10) == 0)
        conn_bq_refused(c, id, "queue_full", 10);
    else
        conn_bq_refused(c, id, "broker_error", 12);
}

/* One add call's answer: an entry id or the script's refusal per line
 * (one line: the bare answer; more: an array of them). */
static void bq_add_cb(redisAsyncContext *ac, void *r, void *priv)
{
    bench_conn *c = ac->data;
    redisReply *reply = r;
    bq_adds *a = priv;
    if (!reply || ac != c->bq.add) {
        free(a);
        return;
    }
    bench.now = ap_now_ns();
    int refused = 0;
    for (size_t i = 0; i < a->n && c->bq.add == ac; i++) {
        const redisReply *e = reply;
        if (a->n > 1 && reply->type == REDIS_REPLY_ARRAY)
            e = i < reply->elements ? reply->element[i] : NULL;
        if (e == NULL || e->type == REDIS_REPLY_ERROR) {
            static const redisReply missing = {.type = REDIS_REPLY_ERROR, .str = (char *)"no answer for it"};
            bq_refused(c, a->id[i], e ? e : &missing);
            refused = 1;
        }
    }
    free(a);
    if (refused) {
        load_fill(c);
        load_check_done();
    }
}

static void bq_script_cb(redisAsyncContext *ac, void *r, void *priv)
{
    bench_conn *c = priv;
    redisReply *reply = r;
    char err[512];
    if (!reply || ac != c->bq.add)
        return;
    bench.now = ap_now_ns();
    if (reply->type != REDIS_REPLY_STRING || reply->len >= sizeof(c->bq.sha)) {
        snprintf(err, sizeof(err), "SCRIPT LOAD at %s: %s", bench.cfg->target.desc,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected answer");
        conn_bq_failed(c, err);
        return;
    }
    memcpy(c->bq.sha, reply->str, reply->len + 1);
    conn_bq_open(c);
}

/* One of c's two Redis connections is gone (hiredis frees ac after the
 * callback that tells it): c forgets it, then fails (still connecting:
 * why) or is lost. */
static void bq_gone(bench_conn *c, const redisAsyncContext *ac, const char *why)
{
    if (ac == c->bq.add)
        c->bq.add = NULL;
    else
        c->bq.rd = NULL;
    bench.now = ap_now_ns();
    if (c->state == CONN_CONNECTING)
        conn_bq_failed(c, why);
    else
        conn_bq_lost(c);
}

static void bq_connect_cb(const redisAsyncContext *ac, int status)
{
    bench_conn *c = ac->data;
    char err[512];
    if (status == REDIS_OK || (ac != c->bq.add && ac != c->bq.rd))
        return;
    snprintf(err, sizeof(err), "connect to %s: %s", bench.cfg->target.desc, ac->errstr);
    bq_gone(c, ac, err);
}

static void bq_disconnect_cb(const redisAsyncContext *ac, int status)
{
    bench_conn *c = ac->data;
    AP_UNUSED(status);
    if (ac != c->bq.add && ac != c->bq.rd)
        return; /* bq_shut() let it go */
    bq_gone(c, ac, ac->errstr[0] ? ac->errstr : "Redis closed the connection");
}

static redisAsyncContext *bq_context(bench_conn *c, char *err, size_t errlen)
{
    const addr_target *t = &bench.cfg->target;
    redisAsyncContext *ac = redisAsyncConnect(t->host, t->port);
    if (!ac) {
        snprintf(err, errlen, "redisAsyncConnect %s: out of memory", t->desc);
        return NULL;
    }
    if (ac->err) {
        snprintf(err, errlen, "connect to %s: %s", t->desc, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = c;
    if (rev_attach(ac, bench.base) != AP_OK) {
        snprintf(err, errlen, "attaching the Redis connection to libevent failed");
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, bq_connect_cb);
    redisAsyncSetDisconnectCallback(ac, bq_disconnect_cb);
    if (t->db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", t->db);
    return ac;
}

int bq_connect(bench_conn *c, char *err, size_t errlen)
{
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        snprintf(err, errlen, "getrandom: cannot name the reply stream");
        return AP_ERR;
    }
    int n = snprintf(c->bq.reply, sizeof(c->bq.reply), AP_BROKER_REPLY_PREFIX);
    for (size_t i = 0; i < sizeof(rnd); i++)
        n += snprintf(c->bq.reply + n, sizeof(c->bq.reply) - (size_t)n, "%02x", rnd[i]);
    snprintf(c->bq.requests, sizeof(c->bq.requests), AP_BROKER_REQUESTS, bq_pool());
    snprintf(c->bq.maxlen, sizeof(c->bq.maxlen), AP_BROKER_MAXLEN, bq_pool());
    snprintf(c->bq.last, sizeof(c->bq.last), "0-0");
    c->bq.untrimmed = 0;
    c->bq.sha[0] = '\0';
    c->bq.add = bq_context(c, err, errlen);
    if (!c->bq.add)
        return AP_ERR;
    c->bq.rd = bq_context(c, err, errlen);
    if (!c->bq.rd) {
        bq_shut(c);
        return AP_ERR;
    }
    redisAsyncCommand(c->bq.add, bq_script_cb, c, "SCRIPT LOAD %s", AP_BROKER_ADD_SCRIPT);
    bq_read_next(c);
    return AP_OK;
}

/* Adds lines [0, n) (one EVALSHA of the add script for them all). */
static void bq_add(bench_conn *c, const char *const *line, const size_t *len, size_t n)
{
    const char *argv[6 + BQ_ADD_MAX];
    size_t alen[6 + BQ_ADD_MAX];
    int argc = 0;
    bq_adds *a = malloc(sizeof(*a) + n * sizeof(a->id[0]));
    if (!a) {
        fprintf(stderr, BENCH_NAME ": connection %u: out of memory adding %zu requests\n", c->index, n);
        conn_bq_lost(c);
        return;
    }
    a->n = n;
#define BQ_ARG(p, l) (argv[argc] = (p), alen[argc++] = (l))
    BQ_ARG("EVALSHA", 7);
    BQ_ARG(c->bq.sha, strlen(c->bq.sha));
    BQ_ARG("2", 1);
    BQ_ARG(c->bq.requests, strlen(c->bq.requests));
    BQ_ARG(c->bq.maxlen, strlen(c->bq.maxlen));
    for (size_t i = 0; i < n; i++) {
        BQ_ARG(line[i], len[i]);
        if (i == 0)
            BQ_ARG(c->bq.reply, strlen(c->bq.reply)); /* the script's ARGV[2] */
        a->id[i] = strncmp(line[i], "{\"id\":", 6) == 0 ? strtoull(line[i] + 6, NULL, 10) : 0;
    }
#undef BQ_ARG
    if (redisAsyncCommandArgv(c->bq.add, bq_add_cb, a, argc, argv, alen) != REDIS_OK) {
        free(a);
        fprintf(stderr, BENCH_NAME ": connection %u: the add of %zu requests could not be queued\n", c->index, n);
        conn_bq_lost(c);
    }
}

void bq_flush(bench_conn *c)
{
    const char *line[BQ_ADD_MAX];
    size_t len[BQ_ADD_MAX], n = 0;
    size_t off = c->out_off;
    while (off < c->out_len) {
        const char *l = c->out + off;
        const char *nl = memchr(l, '\n', c->out_len - off);
        len[n] = nl ? (size_t)(nl - l) : c->out_len - off;
        line[n++] = l;
        off += len[n - 1] + (nl ? 1 : 0);
        if (n == BQ_ADD_MAX) {
            bq_add(c, line, len, n);
            n = 0;
            if (!c->bq.add)
                break;
        }
    }
    if (n > 0 && c->bq.add)
        bq_add(c, line, len, n);
    c->out_off = c->out_len = 0;
}

void bq_shut(bench_conn *c)
{
    redisAsyncContext *add = c->bq.add, *rd = c->bq.rd;
    c->bq.add = c->bq.rd = NULL; /* their callbacks now see an old context */
    if (add)
        redisAsyncFree(add);
    if (rd)
        redisAsyncFree(rd);
}
