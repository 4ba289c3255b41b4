/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bcmd.c - the broker's commands on its command connection (see broker.c
 * for the design and bint.h for the types).
 *
 * Every command (a finish, a chunk line, a drop, a claim, a heartbeat,
 * XINFO, XGROUP CREATE) is a bcmd queued at the tail of b->waiting and
 * sent in order while the connection is up, so an entry's chunk lines
 * always reach Redis before its final line.  What waits is sent at the
 * end of the loop's turn (pump_ev, activated by bc_queue: libevent runs
 * it after the events already active, flush.c's included), and
 * consecutive finishes go as one call of the finish script (up to
 * BROKER_FINISH_BATCH, chained by batch_next behind the first, which is
 * the call's cookie): one script call per turn instead of one per entry.
 * Replies come in send order (rlink.h) to bc_reply, which hands each to
 * its handler (a batch's, element by element).  When the connection is
 * lost, the finishes, chunks and drops it had sent are kept (b->resend,
 * in send order, a batch unchained) and put back in front of what waits
 * (bc_down): they are resent once it is back (the scripts are
 * idempotent; a chunk may then be written twice, with its seq); claims,
 * heartbeats and XINFO are dropped (the tick asks again).  A chunk's
 * bytes count in b->out_bytes from when it is taken to when Redis
 * accepted it; jobs that stalled at BROKER_OUT_HIGH resume below half.
 */
#include "bint.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "client.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <string.h>

/* ---- commands ---------------------------------------------------------- */

bcmd *bc_new(broker *b, bc_kind kind, bjob *j, const char *data, size_t len)
{
    bcmd *c = ap_calloc(1, sizeof(*c));
    c->kind = kind;
    c->j = j;
    if (j)
        j->refs++;
    if (data) {
        c->data = ap_malloc(len + 1);
        memcpy(c->data, data, len);
        c->data[len] = '\0';
        c->len = len;
    }
    if (kind == BC_CHUNK)
        b->out_bytes += len;
    return c;
}

void bc_queue(broker *b, bcmd *c)
{
    link_add_tail(&b->waiting, &c->link);
    b->nwaiting++;
    if (!b->pump_scheduled && b->pump_ev) {
        b->pump_scheduled = 1;
        event_active(b->pump_ev, 0, 0);
    }
}

void bc_pump_cb(evutil_socket_t fd, short what, void *arg)
{
    broker *b = arg;
    (void)fd;
    (void)what;
    b->pump_scheduled = 0;
    bc_pump(b);
}

/* Restarts the jobs that stopped taking chunk lines once Redis took half. */
static void bc_unstall(broker *b)
{
    if (b->closing || b->out_bytes > BROKER_OUT_HIGH / 2)
        return;
    while (!link_empty(&b->stalled)) {
        bjob *j = queue_entry(b->stalled.next, bjob, stall_link);
        link_del(&j->stall_link);
        j->stalled = 0;
        if (j->c)
            client_check_output(j->c); /* flush.c calls bj_take again at the end of the turn */
    }
}

void bc_free(broker *b, bcmd *c)
{
    if (c->kind == BC_CHUNK) {
        b->out_bytes -= c->len;
        bc_unstall(b);
    }
    bjob *j = c->j;
    ap_free(c->data);
    ap_free(c);
    if (j) {
        j->refs--;
        bj_maybe_free(j);
    }
}

/* The arguments of one call, at most: a heartbeat's or a finish batch's. */
#define BC_ARGV_BEAT (6 + BROKER_BEAT_BATCH)
#define BC_ARGV_FINISH (8 + 6 * BROKER_FINISH_BATCH)
#define BC_ARGV_MAX (BC_ARGV_BEAT > BC_ARGV_FINISH ? BC_ARGV_BEAT : BC_ARGV_FINISH)

/* A finish's mode in the finish script (broker.c). */
static const char *bc_finish_mode(const bcmd *c)
{
    if (c->j->akey == NULL)
        return "a";
    return c->have_rest ? "k" : "l";
}

/* Sends c on cmd: AP_ERR when the link refused it (c untouched; a
 * finish's batch unchained). */
static int bc_send(broker *b, bcmd *c)
{
    const char *argv[BC_ARGV_MAX];
    size_t len[BC_ARGV_MAX];
    int argc = 0;
    char n1[24], n2[24], n3[24];
#define ARG(p, n) (argv[argc] = (p), len[argc++] = (n))
#define ARGS(p) ARG(p, strlen(p))
    switch (c->kind) {
    case BC_FINISH: { /* c and its batch_next chain: KEYS first, then ARGV */
        unsigned n = 0;
        for (bcmd *x = c; x; x = x->batch_next)
            n++;
        snprintf(n1, sizeof(n1), "%llu", (unsigned long long)b->answer_ttl_ms);
        snprintf(n2, sizeof(n2), "%lld", (long long)b->cfg.reply_ttl_ms);
        snprintf(n3, sizeof(n3), "%u", 1 + 2 * n);
        ARGS("EVALSHA");
        ARGS(b->sha[SC_FINISH]);
        ARGS(n3);
        ARGS(b->stream);
        for (bcmd *x = c; x; x = x->batch_next) {
            ARGS(x->j->akey ? x->j->akey : b->stream); /* no key kept: the stream stands in, unused */
            ARGS(x->j->reply_to);
        }
        ARGS(b->group);
        ARGS(n1);
        ARGS(n2);
        for (bcmd *x = c; x; x = x->batch_next) {
            ARGS(x->j->eid);
            ARGS(x->j->id);
            ARG(x->data ? x->data : "", x->data ? x->len : 0);
            ARGS(bc_finish_mode(x));
        }
        break;
    }
    case BC_CHUNK:
        snprintf(n2, sizeof(n2), "%lld", (long long)b->cfg.reply_ttl_ms);
        ARGS("EVALSHA");
        ARGS(b->sha[SC_CHUNK]);
        ARGS("1");
        ARGS(c->j->reply_to);
        ARG(c->data, c->len);
        ARGS(n2);
        break;
    case BC_DROP: /* an entry that cannot be answered: acknowledged and deleted */
        ARGS("EVAL");
        ARGS("redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) return redis.call('XDEL', KEYS[1], ARGV[2])");
        ARGS("1");
        ARGS(b->stream);
        ARGS(b->group);
        ARG(c->data, c->len);
        break;
    case BC_CLAIM:
        snprintf(n1, sizeof(n1), "%llu", (unsigned long long)b->claim_idle_ms);
        snprintf(n3, sizeof(n3), "%zu", c->len);
        ARGS("EVALSHA");
        ARGS(b->sha[SC_CLAIM]);
        ARGS("1");
        ARGS(b->stream);
        ARGS(b->group);
        ARGS(b->consumer);
        ARGS(n1);
        ARGS(n3);
        ARGS(b->claim_cursor);
        break;
    case BC_BEAT: { /* batch number c->len: the held entries from c->len x BROKER_BEAT_BATCH on */
        ARGS("XCLAIM");
        ARGS(b->stream);
        ARGS(b->group);
        ARGS(b->consumer);
        ARGS("0");
        size_t skip = c->len * BROKER_BEAT_BATCH;
        unsigned n = 0;
        for (queue_link *l = b->jobs.next; l != &b->jobs && n < BROKER_BEAT_BATCH; l = l->next) {
            bjob *j = queue_entry(l, bjob, link);
            if (j->state == BJ_DONE || j->state == BJ_ABANDONED)
                continue;
            if (skip > 0) {
                skip--;
                continue;
            }
            ARGS(j->eid);
            n++;
        }
        if (n == 0) {
            bc_free(b, c);
            return AP_OK;
        }
        ARGS("JUSTID");
        break;
    }
    case BC_INFO:
        ARGS("XINFO");
        ARGS("GROUPS");
        ARGS(b->stream);
        break;
    case BC_GROUP:
        ARGS("XGROUP");
        ARGS("CREATE");
        ARGS(b->stream);
        ARGS(b->group);
        ARGS("0");
        ARGS("MKSTREAM");
        break;
    }
#undef ARG
#undef ARGS
    c->sent_ns = ap_now_ns();
    return rlink_cmd(b->cmd, bc_reply, c, argc, argv, len);
}

/* Puts c, and the finishes chained behind it, back at the head of
 * b->waiting in their order, unchained. */
static void bc_unsend(broker *b, bcmd *c)
{
    queue_link *at = b->waiting.next;
    while (c) {
        bcmd *next = c->batch_next;
        c->batch_next = NULL;
        link_add_tail(at, &c->link); /* before `at`: after the ones put back already */
        b->nwaiting++;
        c = next;
    }
}

/* Sends what waits, in order, while cmd is up. */
void bc_pump(broker *b)
{
    while (!link_empty(&b->waiting) && rlink_get_state(b->cmd) == RLINK_UP) {
        bcmd *c = queue_entry(b->waiting.next, bcmd, link);
        link_del(&c->link);
        b->nwaiting--;
        if (c->kind == BC_FINISH) { /* the finishes right behind it go with it */
            bcmd *last = c;
            for (unsigned n = 1; n < BROKER_FINISH_BATCH && !link_empty(&b->waiting); n++) {
                bcmd *x = queue_entry(b->waiting.next, bcmd, link);
                if (x->kind != BC_FINISH)
                    break;
                link_del(&x->link);
                b->nwaiting--;
                last->batch_next = x;
                last = x;
            }
        }
        if (bc_send(b, c) != AP_OK) {
            bc_unsend(b, c); /* back at the head: the link goes down and it is sent after */
            rlink_drop(b->cmd, "a command could not be queued");
            return;
        }
    }
}

/* c and the finishes chained behind it go to b->resend, in send order,
 * unchained. */
static void bc_lost(broker *b, bcmd *c)
{
    while (c) {
        bcmd *next = c->batch_next;
        c->batch_next = NULL;
        link_add_tail(&b->resend, &c->link);
        c = next;
    }
}

/* The finish script's reply for the batch c heads: element i to its
 * i-th finish (the whole reply to each when it is not such an array:
 * an error fails them all). */
static void bc_finish_batch_reply(broker *b, bcmd *c, const redisReply *r)
{
    size_t i = 0;
    while (c) {
        bcmd *next = c->batch_next;
        c->batch_next = NULL;
        const redisReply *e = r;
        if (r->type == REDIS_REPLY_ARRAY)
            e = i < r->elements ? r->element[i] : NULL;
        if (e == NULL) {
            redisReply missing = {.type = REDIS_REPLY_ERROR, .str = (char *)"no result for it in the reply", .len = 29};
            bj_finish_reply(b, c, &missing);
        } else {
            bj_finish_reply(b, c, e);
        }
        i++;
        bc_free(b, c);
        c = next;
    }
}

void bc_reply(void *owner, void *cookie, redisReply *r)
{
    broker *b = owner;
    bcmd *c = cookie;
    if (r == NULL) { /* lost with the connection */
        if (c->kind == BC_FINISH || c->kind == BC_CHUNK || c->kind == BC_DROP) {
            bc_lost(b, c);
            return;
        }
        if (c->kind == BC_CLAIM)
            b->claiming = 0;
        if (c->kind == BC_INFO)
            b->infoing = 0;
        bc_free(b, c);
        return;
    }
    hist_window_record(&b->rtt, ap_now_ms(), ap_now_ns() - c->sent_ns);
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        bc_lost(b, c);
        char why[200];
        snprintf(why, sizeof(why), "%.120s (scripts flushed? reconnecting)", r->str);
        rlink_drop(b->cmd, why);
        return;
    }
    switch (c->kind) {
    case BC_FINISH: bc_finish_batch_reply(b, c, r); return; /* each freed there */
    case BC_CHUNK:
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            b->st.chunks++;
            b->st.reply_bytes += c->len;
        } else {
            b->st.reply_errors++;
        }
        break;
    case BC_DROP: b->st.acked++; break;
    case BC_CLAIM: bk_claim_reply(b, r); break;
    case BC_BEAT:
        if (r->type == REDIS_REPLY_ARRAY)
            b->st.heartbeats++;
        break;
    case BC_INFO: bk_info_reply(b, r); break;
    case BC_GROUP:
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
            ap_warn("pool %s: broker: XGROUP CREATE %s %s failed: %s", b->p->name, b->stream, b->group, r->str);
        break;
    }
    bc_free(b, c);
}


void bc_down(void *owner, const char *why)
{
    broker *b = owner;
    (void)why;
    /* what was sent and lost goes first, in its order, then what waited */
    while (!link_empty(&b->resend)) {
        bcmd *c = queue_entry(b->resend.prev, bcmd, link);
        link_del(&c->link);
        link_add_tail(b->waiting.next, &c->link); /* at the head */
        b->nwaiting++;
    }
    b->claiming = 0;
    b->infoing = 0;
}

