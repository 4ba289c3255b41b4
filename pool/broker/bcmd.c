/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bcmd.c - the broker's commands on its command connection (see broker.c
 * for the design and bint.h for the types).
 *
 * Every command (a finish, a chunk line, a drop, a claim, a heartbeat,
 * XINFO, XGROUP CREATE) is a bcmd queued at the tail of b->waiting and
 * sent in order while the connection is up, so an entry's chunk lines
 * always reach Redis before its final line.  Replies come in send order
 * (rlink.h) to bc_reply, which hands each to its handler.  When the
 * connection is lost, the finishes, chunks and drops it had sent are
 * kept (b->resend, in send order) and put back in front of what waits
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

/* Sends c on cmd: AP_ERR when the link refused it (c untouched). */
static int bc_send(broker *b, bcmd *c)
{
    const char *argv[6 + BROKER_BEAT_BATCH];
    size_t len[6 + BROKER_BEAT_BATCH];
    int argc = 0;
    char n1[24], n2[24], n3[24];
#define ARG(p, n) (argv[argc] = (p), len[argc++] = (n))
#define ARGS(p) ARG(p, strlen(p))
    switch (c->kind) {
    case BC_FINISH: {
        bjob *j = c->j;
        snprintf(n1, sizeof(n1), "%llu", (unsigned long long)b->answer_ttl_ms);
        snprintf(n2, sizeof(n2), "%lld", (long long)b->cfg.reply_ttl_ms);
        ARGS("EVALSHA");
        ARGS(b->sha[SC_FINISH]);
        ARGS("3");
        ARGS(j->akey);
        ARGS(j->reply_to);
        ARGS(b->stream);
        ARGS(j->eid);
        ARGS(j->id);
        ARG(c->data ? c->data : "", c->data ? c->len : 0);
        ARGS(n1);
        ARGS(n2);
        ARGS(b->group);
        ARGS(c->have_rest ? "1" : "0");
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

/* Sends what waits, in order, while cmd is up. */
void bc_pump(broker *b)
{
    while (!link_empty(&b->waiting) && rlink_get_state(b->cmd) == RLINK_UP) {
        bcmd *c = queue_entry(b->waiting.next, bcmd, link);
        link_del(&c->link);
        b->nwaiting--;
        if (bc_send(b, c) != AP_OK) {
            link_add_tail(b->waiting.next, &c->link); /* back at the head: the link goes down and it is sent after */
            b->nwaiting++;
            rlink_drop(b->cmd, "a command could not be queued");
            return;
        }
    }
}

void bc_reply(void *owner, void *cookie, redisReply *r)
{
    broker *b = owner;
    bcmd *c = cookie;
    if (r == NULL) { /* lost with the connection */
        if (c->kind == BC_FINISH || c->kind == BC_CHUNK || c->kind == BC_DROP) {
            link_add_tail(&b->resend, &c->link);
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
        link_add_tail(&b->resend, &c->link);
        char why[200];
        snprintf(why, sizeof(why), "%.120s (scripts flushed? reconnecting)", r->str);
        rlink_drop(b->cmd, why);
        return;
    }
    switch (c->kind) {
    case BC_FINISH: bj_finish_reply(b, c, r); break;
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

