/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bjob.c - one stream entry held by this agentpoold (see broker.c for the
 * design and bint.h for the types).
 *
 * States: CHECKING (an entry with an idempotencyKey: the finish script is
 * asked first whether the answer store has its answer)
 * -> RUNNING (fed to its origin client: the socket's admission path) ->
 * FINISHING (its final line taken: the finish script is queued) -> DONE;
 * RUNNING -> ABANDONED when it ends without an answer that may be kept
 * (shutting_down, queue_full, or its client closed at exit): its entry
 * stays pending and another consumer claims it.  Changed only by
 * bj_set_state, which keeps the broker's counts of checking and
 * finishing entries (they count against the free slots).  A job is freed
 * (bj_maybe_free) when it is DONE or ABANDONED, its client is gone and no
 * command names it.  Its client's lines are taken at the end of the turn
 * (bj_take, flush.c's sink): chunk and heartbeat lines are queued for
 * replyTo, not while BROKER_OUT_HIGH bytes wait for Redis (the job then
 * stalls, and its stream's credit with it); the final line finishes it.
 */
#include "bint.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "answer.h"
#include "dlq.h"
#include "retry.h"
#include "cancel.h"
#include "client.h"
#include "reply.h"
#include "scan.h"
#include "server.h"

#include <event2/buffer.h>
#include <hiredis/hiredis.h>

#include <stdio.h>
#include <string.h>

static size_t bj_take(void *arg, struct evbuffer *out);
static void bj_client_closed(void *arg);
static const client_origin bj_origin = {bj_take, bj_client_closed};

static void bj_run(bjob *j);

/* ---- jobs -------------------------------------------------------------- */

static const char *const bj_state_names[BJ_STATES] = {"checking", "running", "finishing", "done", "abandoned"};

void bj_set_state(bjob *j, bj_state to)
{
    ap_debug("pool %s: broker entry %s: %s -> %s", j->b->p->name, j->eid, bj_state_names[j->state],
             bj_state_names[to]);
    if (j->state == BJ_CHECKING)
        j->b->nchecking--;
    if (j->state == BJ_FINISHING)
        j->b->nfinishing--;
    if (to == BJ_CHECKING)
        j->b->nchecking++;
    if (to == BJ_FINISHING)
        j->b->nfinishing++;
    j->state = to;
}

/* Frees j when nothing holds it any more. */
void bj_maybe_free(bjob *j)
{
    if (j->b->closing || j->c || j->refs > 0 || (j->state != BJ_DONE && j->state != BJ_ABANDONED))
        return;
    broker *b = j->b;
    link_del(&j->link);
    idmap_del(&b->by_eid, j->eid, j->eid_len);
    if (j->stalled)
        link_del(&j->stall_link);
    b->njobs--;
    ap_free(j->reply_to);
    ap_free(j->req);
    ap_free(j->akey);
    ap_free(j->id);
    ap_free(j);
}

bjob *bj_find(broker *b, const char *eid, size_t len)
{
    return len <= BENTRY_ID_MAX ? idmap_get(&b->by_eid, eid, (uint32_t)len) : NULL;
}

/* ---- finishing an entry -------------------------------------------------- */

/* Queues j's finish: rest (the final line without its id) when have_rest,
 * else only the answer store is asked. */
static void bj_finish(bjob *j, const char *rest, size_t len, int have_rest, int dead_letter)
{
    bcmd *c = bc_new(j->b, BC_FINISH, j, have_rest ? rest : NULL, len);
    c->have_rest = have_rest;
    c->dead_letter = dead_letter;
    bj_set_state(j, have_rest ? BJ_FINISHING : BJ_CHECKING);
    bc_queue(j->b, c);
}

/* Finishes j with a made-up error (code, message), without running it. */
static void bj_finish_error(bjob *j, const char *code, const char *message, int dead_letter)
{
    size_t len;
    char *rest = bentry_error_rest(code, message, &len);
    bj_finish(j, rest, len, 1, dead_letter);
    ap_free(rest);
}

void bj_finish_reply(broker *b, bcmd *c, const redisReply *r)
{
    bjob *j = c->j;
    if (r->type != REDIS_REPLY_INTEGER) {
        /* the script failed before any write (the replyTo write is pcall'd): the entry stays pending */
        ap_error("pool %s: broker: finishing entry %s failed: %s; it stays pending and will be claimed", b->p->name,
                 j->eid, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        bj_set_state(j, BJ_ABANDONED);
        return;
    }
    switch (r->integer) {
    case -1: /* no stored answer: run it, unless a cancel came meanwhile */
        if (j->state != BJ_CHECKING)
            return;
        if (bcancel_has(&b->cancels, j->eid, ap_now_ms()))
            bj_finish_error(j, "cancelled", "cancelled through the broker's control stream before it ran", 0);
        else
            bj_run(j);
        return;
    case 0:
        b->st.already_answered++;
        break;
    case 2:
        b->st.replays++;
        /* fallthrough */
    case 1:
        b->st.answered++;
        b->st.reply_bytes += c->len + strlen(j->id) + 8;
        break;
    default:
        b->st.reply_errors++;
        ap_warn("pool %s: broker: entry %s answered and acknowledged, but its replyTo %s refused the line", b->p->name,
                j->eid, j->reply_to);
        break;
    }
    b->st.acked++;
    if (c->dead_letter)
        b->st.dead_lettered++;
    bj_set_state(j, BJ_DONE);
    bk_read(b); /* its slot counts as free now */
}

/* ---- running an entry ------------------------------------------------------ */

static void bj_run(bjob *j)
{
    broker *b = j->b;
    bj_set_state(j, BJ_RUNNING);
    j->c = client_open_origin(&bj_origin, j, 0, (uid_t)-1);
    if (j->c == NULL) {
        ap_error("pool %s: broker: entry %s: no client could be made; left pending for another consumer", b->p->name,
                 j->eid);
        bj_set_state(j, BJ_ABANDONED);
        b->st.abandoned++;
        bj_maybe_free(j);
        return;
    }
    size_t len;
    char *line = bentry_line(j->req, j->req_len, b->p->name, &len);
    client *c = j->c;
    if (len > (size_t)server.cfg->max_message_bytes) {
        server.stats.too_large_lines++;
        answer_refuse(c, NULL, NULL, ERR_TOO_LARGE, "request longer than maxMessageBytes", NULL, NULL, -1);
    } else {
        client_feed(c, line, len, NULL);
    }
    ap_free(line);
}

/* flush.c's sink: j's lines.  Chunk and heartbeat lines are queued for
 * replyTo (not while BROKER_OUT_HIGH bytes wait: then j stalls); the
 * final line finishes j. */
static size_t bj_take(void *arg, struct evbuffer *out)
{
    bjob *j = arg;
    broker *b = j->b;
    size_t taken = 0;
    while (j->state == BJ_RUNNING) {
        const char *line;
        size_t len;
        reply_line rl;
        int got = reply_next(out, &line, &len, &rl);
        if (got == 0)
            break;
        if (got < 0) {
            ap_error("pool %s: broker: entry %s: an answer line it cannot read (%zu bytes): dropped", b->p->name,
                     j->eid, len);
        } else if (rl.kind == REPLY_LINE_ANSWER) {
            bspan id, rest;
            if (!rl.ok && (rl.code == ERR_SHUTTING_DOWN || rl.code == ERR_QUEUE_FULL)) {
                /* not an answer to keep: another consumer (or this one, later) runs it */
                ap_info("pool %s: broker: entry %s was answered %s here: left pending for another consumer",
                        b->p->name, j->eid, reply_code_name(rl.code));
                bj_set_state(j, BJ_ABANDONED);
                b->st.abandoned++;
            } else if (bentry_split_answer(line, len, rl.rest_off, &id, &rest) != AP_OK) {
                ap_error("pool %s: broker: entry %s: a final line without its id: answered other", b->p->name,
                         j->eid);
                bj_finish_error(j, "other", "the answer could not be read", 0);
            } else {
                bj_finish(j, rest.ptr, rest.len, 1, 0);
                bk_read(b); /* its worker's slot is free now: the next entry comes while this one is finished */
            }
        } else if (b->out_bytes >= BROKER_OUT_HIGH) {
            if (!j->stalled) {
                j->stalled = 1;
                link_add_tail(&b->stalled, &j->stall_link);
            }
            break;
        } else {
            bc_queue(b, bc_new(b, BC_CHUNK, j, line, len));
        }
        evbuffer_drain(out, len + 1);
        taken += len + 1;
    }
    if (j->state != BJ_RUNNING) { /* nothing after the final line is written */
        taken += evbuffer_get_length(out);
        evbuffer_drain(out, evbuffer_get_length(out));
    }
    return taken;
}

static void bj_client_closed(void *arg)
{
    bjob *j = arg;
    j->c = NULL;
    if (j->state == BJ_RUNNING) { /* closed before its answer (exit, clientWriteTimeout) */
        ap_info("pool %s: broker: entry %s ended here without an answer: left pending for another consumer",
                j->b->p->name, j->eid);
        bj_set_state(j, BJ_ABANDONED);
        j->b->st.abandoned++;
    }
    bj_maybe_free(j);
    /* a slot may be free: the tick reads (not from inside client.c's close) */
}

/* ---- control entries -------------------------------------------------- */

/* A control entry: cancel the entry it names, here or later. */
void bj_cancel(broker *b, const bentry *e)
{
    if (e->cancel.len == 0 || !bentry_id_ok(e->cancel.ptr, e->cancel.len))
        return;
    bjob *j = bj_find(b, e->cancel.ptr, e->cancel.len);
    if (j == NULL) {
        bcancel_add(&b->cancels, e->cancel.ptr, e->cancel.len, ap_now_ms(), ap_now_ms() + b->claim_idle_ms);
        b->st.cancels_remembered++;
        return;
    }
    b->st.cancels++;
    if (j->state == BJ_RUNNING && j->c) {
        cancel_found f = cancel_request(j->c, j->id, strlen(j->id));
        ap_info("pool %s: broker: entry %s cancelled through the control stream (%s)", b->p->name, j->eid,
                cancel_found_name(f));
    } else if (j->state == BJ_CHECKING) {
        bcancel_add(&b->cancels, j->eid, strlen(j->eid), ap_now_ms(), ap_now_ms() + b->claim_idle_ms); /* answered cancelled once the check says run */
    }
}

/* ---- ingesting entries ----------------------------------------------------- */

/* j was delivered more than maxRetries + 1 times: the consumers that took
 * it died (or lost Redis) each time, like a local message whose worker
 * crashed at every attempt.  Written to the pool's dead-letter file
 * (sr: its request, scanned) and answered worker_crashed, not run. */
static void bj_dead_letter(bjob *j, const scan_result *sr, scan_status ss, long long deliveries)
{
    broker *b = j->b;
    char text[160];
    snprintf(text, sizeof(text), "delivered %lld times (more than maxRetries + 1): dead-lettered", deliveries);
    ap_error("pool %s: broker: entry %s (id %s) failed for good: %s", b->p->name, j->eid, j->id, text);
    dlq_failure f = {NULL, 0, "its consumers died or lost Redis while they held it (broker deliveries)", ap_wall_ms()};
    dlq_entry e = {
        .id = sr->id_kind != SCAN_ID_NONE ? j->req + sr->id.off : NULL,
        .id_len = sr->id_kind != SCAN_ID_NONE ? sr->id.len : 0,
        .type = ss == SCAN_OK ? sr->type : "", .type_len = ss == SCAN_OK ? sr->type_len : 0,
        .data = ss == SCAN_OK && sr->data.len ? j->req + sr->data.off : NULL,
        .data_len = ss == SCAN_OK ? sr->data.len : 0,
        .attempts = (unsigned)deliveries, .failures = &f, .nfailures = 1,
    };
    b->p->stats.dead_lettered++;
    retry_write_dead_letter(b->p, &e);
    bj_finish_error(j, "worker_crashed", text, 1);
}

/* One entry read (claimed: by XAUTOCLAIM, delivered `deliveries` times). */
void bj_ingest(broker *b, const redisReply *er, int claimed, long long deliveries)
{
    bentry e;
    char why[200];
    if (bentry_read(er, &e, why, sizeof(why)) != AP_OK) {
        ap_warn("pool %s: broker: an entry of %s it cannot read: %s", b->p->name, b->stream, why);
        if (e.eid.len) {
            b->st.bad_entries++;
            bcmd *c = bc_new(b, BC_DROP, NULL, e.eid.ptr, e.eid.len);
            bc_queue(b, c);
        }
        return;
    }
    if (claimed)
        b->st.claimed++;
    else
        b->st.read++;
    if (bj_find(b, e.eid.ptr, e.eid.len))
        return; /* held here already (claimed back while it runs) */
    if (e.req.ptr == NULL || e.reply_to.ptr == NULL) {
        ap_warn("pool %s: broker: entry %.*s has no %s: acknowledged and dropped", b->p->name, (int)e.eid.len,
                e.eid.ptr, e.req.ptr ? "replyTo" : "req");
        b->st.bad_entries++;
        bc_queue(b, bc_new(b, BC_DROP, NULL, e.eid.ptr, e.eid.len));
        return;
    }
    bjob *j = ap_calloc(1, sizeof(*j));
    j->b = b;
    j->state = BJ_DONE; /* set properly below */
    memcpy(j->eid, e.eid.ptr, e.eid.len);
    j->eid_len = (uint32_t)e.eid.len;
    j->reply_to = ap_strndup(e.reply_to.ptr, e.reply_to.len);
    j->req = ap_malloc(e.req.len + 1);
    memcpy(j->req, e.req.ptr, e.req.len);
    j->req[e.req.len] = '\0';
    j->req_len = e.req.len;
    j->read_ns = ap_now_ns();
    link_add_tail(&b->jobs, &j->link);
    idmap_put(&b->by_eid, j->eid, j->eid_len, j); /* not there: bj_find said so above */
    b->njobs++;
    scan_result *sr = ap_malloc(sizeof(*sr));
    scan_status ss = scan_request(j->req, j->req_len, 64, sr);
    (void)ss;
    j->id = sr->id_kind != SCAN_ID_NONE ? ap_strndup(j->req + sr->id.off, sr->id.len) : ap_strdup("null");
    int idem = ss == SCAN_OK && sr->idem_key_len > 0;
    size_t klen;
    if (idem) /* without one, no answer is kept: the finish's XACK tells whether it was answered */
        j->akey = bentry_answer_key(b->akey_prefix, sr->idem_key, sr->idem_key_len, &klen);
    if (bcancel_has(&b->cancels, j->eid, ap_now_ms())) {
        b->st.cancels++;
        bj_finish_error(j, "cancelled", "cancelled through the broker's control stream before it ran", 0);
    } else if (claimed && deliveries > b->p->cfg->max_retries + 1) {
        bj_dead_letter(j, sr, ss, deliveries);
    } else if (idem) { /* its answer may be stored (a claimed entry without a key is pending: not answered) */
        bj_finish(j, NULL, 0, 0, 0);
    } else {
        bj_run(j);
    }
    ap_free(sr);
}

