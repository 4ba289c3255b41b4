/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.c - the broker ingress of one pool (see broker.h and
 * docs/scale-out.md).
 *
 * Three Redis links (rlink.h), all on the master's loop: `rd` only ever
 * has one XREADGROUP ... BLOCK out (COUNT = the pool's free slots, so a
 * busy machine never takes work another could do), `ctl` one XREAD BLOCK
 * on the control stream, `cmd` everything else, pipelined in one FIFO
 * (b->waiting, sent in order), so the chunk lines of an entry always
 * reach Redis before its final line.
 *
 * A job is one entry held here.  States: CHECKING (a claimed entry, or
 * one with an idempotencyKey: the finish script is asked first whether
 * the answer store has its answer) -> RUNNING (fed to its origin client)
 * -> FINISHING (its final line taken: the finish script is queued) ->
 * DONE; RUNNING -> ABANDONED when it ends without an answer that may be
 * kept (shutting_down, queue_full, or its client closed at exit): its
 * entry stays pending and another consumer claims it.  A job is freed
 * when it is DONE or ABANDONED, its client is gone and no command names
 * it (j->refs).
 *
 * The finish script (SC_FINISH) is the one exit of an entry: it sets the
 * answer key NX unless it exists, writes the final line to replyTo when
 * this step set the key or the key belongs to another entry (a retry
 * with the same idempotencyKey: same answer, its own id), and XACK +
 * XDEL the entry: exactly one final line per entry, even when two
 * consumers ran it.  Commands lost with the connection are resent in
 * order once it is back (the scripts are idempotent; a chunk may then be
 * written twice, with its seq).  Chunk bytes taken from clients and not
 * yet accepted by Redis are bounded (BROKER_OUT_HIGH): past it the jobs
 * stop taking chunk lines (their streams' credit stops), and resume when
 * Redis has taken half.
 */
#include "broker.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "answer.h"
#include "bentry.h"
#include "brokercfg.h"
#include "cancel.h"
#include "client.h"
#include "hist.h"
#include "pools.h"
#include "queue.h"
#include "reply.h"
#include "rlink.h"
#include "scan.h"
#include "server.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Chunk bytes taken from clients, not yet accepted by Redis. */
#define BROKER_OUT_HIGH ((size_t)4 << 20)
/* XREADGROUP / XREAD BLOCK, ms (within rlink's watchdog slack). */
#define BROKER_BLOCK_MS 1000
/* Entries read or claimed at once, at most. */
#define BROKER_READ_MAX 512
/* Cancels of entries not held here, remembered at once. */
#define BROKER_CANCELS_MAX 4096
/* Entry ids per heartbeat XCLAIM. */
#define BROKER_BEAT_BATCH 256

enum { SC_FINISH = 0, SC_CHUNK, SC_CLAIM, SC_COUNT };

/* KEYS: answer key, replyTo, stream.  ARGV: entry id, id text, rest,
 * answerTtl, replyTtl, group, have-rest ("1": rest is the answer; "0":
 * only answer from the store).  Returns 1: answered with rest; 2: with
 * the stored answer (another entry's, with "replayed":true); 0: this entry was answered
 * already (no line); 3: as 1 or 2 but replyTo refused the line; -1: no
 * stored answer (have-rest 0: run it; nothing changed). */
static const char *const b_scripts[SC_COUNT] = {
    [SC_FINISH] = "local v = redis.call('GET', KEYS[1])\n"
                  "local out, line\n"
                  "if v then\n"
                  " local nl = string.find(v, '\\n', 1, true) or 0\n"
                  " if string.sub(v, 1, nl - 1) == ARGV[1] then out = 0\n"
                  " else out = 2 line = string.sub(v, nl + 1, -2) .. ',\"replayed\":true}' end\n"
                  "elseif ARGV[7] == '1' then\n"
                  " redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. ARGV[3], 'PX', ARGV[4])\n"
                  " out = 1 line = ARGV[3]\n"
                  "else return -1 end\n"
                  "if line then\n"
                  " local r = redis.pcall('XADD', KEYS[2], '*', 'line', '{\"id\":' .. ARGV[2] .. ',' .. line)\n"
                  " if type(r) == 'table' and r.err then out = 3\n"
                  " else redis.call('PEXPIRE', KEYS[2], ARGV[5]) end\n"
                  "end\n"
                  "redis.call('XACK', KEYS[3], ARGV[6], ARGV[1])\n"
                  "redis.call('XDEL', KEYS[3], ARGV[1])\n"
                  "return out\n",
    /* KEYS: replyTo.  ARGV: line, replyTtl.  1, or 0 when replyTo refused it. */
    [SC_CHUNK] = "local r = redis.pcall('XADD', KEYS[1], '*', 'line', ARGV[1])\n"
                 "if type(r) == 'table' and r.err then return 0 end\n"
                 "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                 "return 1\n",
    /* KEYS: stream.  ARGV: group, consumer, min idle, count.  Returns
     * {{entry, deliveries}, ...} of the entries claimed. */
    [SC_CLAIM] = "local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])\n"
                 "local out = {}\n"
                 "for _, e in ipairs(r[2]) do\n"
                 " if e[2] then\n"
                 "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)\n"
                 "  local n = 0\n"
                 "  if p[1] then n = p[1][4] end\n"
                 "  out[#out + 1] = {e, n}\n"
                 " end\n"
                 "end\n"
                 "return out\n",
};
static const char *const b_script_names[SC_COUNT] = {"finish", "chunk", "claim"};

typedef enum { BJ_CHECKING = 0, BJ_RUNNING, BJ_FINISHING, BJ_DONE, BJ_ABANDONED, BJ_STATES } bj_state;
static const char *const bj_state_names[BJ_STATES] = {"checking", "running", "finishing", "done", "abandoned"};

typedef struct broker broker;

typedef struct bjob {
    broker *b;
    bj_state state;
    char eid[BENTRY_ID_MAX + 1];
    char *reply_to;
    char *req;
    size_t req_len;
    char *akey;                 /* the answer-store key */
    char *id;                   /* the request's id as written ("null" when none) */
    client *c;                  /* its origin client while it runs */
    int refs;                   /* commands that name it */
    int stalled;                /* in b->stalled: stopped taking chunk lines */
    uint64_t read_ns;
    queue_link link;            /* in b->jobs */
    queue_link stall_link;
} bjob;

typedef enum { BC_FINISH = 0, BC_CHUNK, BC_DROP, BC_CLAIM, BC_BEAT, BC_INFO, BC_GROUP } bc_kind;

typedef struct bcmd {
    bc_kind kind;
    bjob *j;                    /* FINISH, CHUNK, DROP */
    char *data;                 /* FINISH: rest; CHUNK: the line; DROP: entry id */
    size_t len;
    int have_rest;              /* FINISH: data is the answer (else: only from the store) */
    int dead_letter;            /* FINISH: a dead letter */
    uint64_t sent_ns;
    queue_link link;            /* in b->waiting or b->resend */
} bcmd;

typedef struct {
    char eid[BENTRY_ID_MAX + 1];
    uint64_t until_ms;
} bcancel;

struct broker {
    pool_t *p;
    brokercfg cfg;
    char *stream, *control, *group, *consumer, *akey_prefix, *maxlen_key;
    uint64_t claim_idle_ms, answer_ttl_ms;
    rlink *cmd, *rd, *ctl;
    char sha[SC_COUNT][41];
    int reading;                /* an XREADGROUP is out on rd */
    int ctl_reading;            /* an XREAD is out on ctl */
    int claiming, infoing;      /* a claim / XINFO is out */
    uint64_t read_after_ms;     /* no read before (NOGROUP: the group is being made again) */
    char ctl_last[BENTRY_ID_MAX + 1]; /* the last control entry read ("$": none yet) */
    queue_link jobs;
    unsigned njobs, nchecking, nfinishing;
    queue_link waiting;         /* commands not yet sent, in order */
    queue_link resend;          /* commands sent and lost with the connection, in send order */
    unsigned nwaiting;
    size_t out_bytes;           /* chunk bytes taken from clients and not yet accepted by Redis */
    queue_link stalled;         /* jobs that stopped taking chunk lines */
    uint64_t next_claim_ms, next_beat_ms;
    bcancel *cancels;           /* ring of remembered cancels */
    unsigned ncancels, cancel_head;
    int was_up;
    int closing;                /* b_free runs: jobs are freed by it, nothing new starts */
    int64_t lag, pending;
    broker_stats st;
    hist_window rtt;            /* command round trips, ns */
};

static size_t b_take(void *arg, struct evbuffer *out);
static void b_client_closed(void *arg);
static const client_origin b_origin = {b_take, b_client_closed};

static void b_pump(broker *b);
static void b_read(broker *b);
static void b_ctl_read(broker *b);
static void b_run(bjob *j);
static int b_cancel_remembered(broker *b, const char *eid, uint64_t now);

/* ---- jobs -------------------------------------------------------------- */

static void bj_set_state(bjob *j, bj_state to)
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
static void bj_maybe_free(bjob *j)
{
    if (j->b->closing || j->c || j->refs > 0 || (j->state != BJ_DONE && j->state != BJ_ABANDONED))
        return;
    broker *b = j->b;
    link_del(&j->link);
    if (j->stalled)
        link_del(&j->stall_link);
    b->njobs--;
    ap_free(j->reply_to);
    ap_free(j->req);
    ap_free(j->akey);
    ap_free(j->id);
    ap_free(j);
}

static bjob *bj_find(broker *b, const char *eid, size_t len)
{
    for (queue_link *l = b->jobs.next; l != &b->jobs; l = l->next) {
        bjob *j = queue_entry(l, bjob, link);
        if (strlen(j->eid) == len && memcmp(j->eid, eid, len) == 0)
            return j;
    }
    return NULL;
}

/* ---- commands ---------------------------------------------------------- */

static bcmd *bc_new(broker *b, bc_kind kind, bjob *j, const char *data, size_t len)
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

static void bc_queue(broker *b, bcmd *c)
{
    link_add_tail(&b->waiting, &c->link);
    b->nwaiting++;
    b_pump(b);
}

/* Restarts the jobs that stopped taking chunk lines once Redis took half. */
static void b_unstall(broker *b)
{
    if (b->closing || b->out_bytes > BROKER_OUT_HIGH / 2)
        return;
    while (!link_empty(&b->stalled)) {
        bjob *j = queue_entry(b->stalled.next, bjob, stall_link);
        link_del(&j->stall_link);
        j->stalled = 0;
        if (j->c)
            client_check_output(j->c); /* flush.c calls b_take again at the end of the turn */
    }
}

static void bc_free(broker *b, bcmd *c)
{
    if (c->kind == BC_CHUNK) {
        b->out_bytes -= c->len;
        b_unstall(b);
    }
    bjob *j = c->j;
    ap_free(c->data);
    ap_free(c);
    if (j) {
        j->refs--;
        bj_maybe_free(j);
    }
}

static void b_cmd_reply(void *owner, void *cookie, redisReply *r);

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
    return rlink_cmd(b->cmd, b_cmd_reply, c, argc, argv, len);
}

/* Sends what waits, in order, while cmd is up. */
static void b_pump(broker *b)
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

/* ---- finishing an entry -------------------------------------------------- */

/* Queues j's finish: rest (the final line without its id) when have_rest,
 * else only the answer store is asked. */
static void b_finish(bjob *j, const char *rest, size_t len, int have_rest, int dead_letter)
{
    bcmd *c = bc_new(j->b, BC_FINISH, j, have_rest ? rest : NULL, len);
    c->have_rest = have_rest;
    c->dead_letter = dead_letter;
    bj_set_state(j, have_rest ? BJ_FINISHING : BJ_CHECKING);
    bc_queue(j->b, c);
}

/* Finishes j with a made-up error (code, message), without running it. */
static void b_finish_error(bjob *j, const char *code, const char *message, int dead_letter)
{
    size_t len;
    char *rest = bentry_error_rest(code, message, &len);
    b_finish(j, rest, len, 1, dead_letter);
    ap_free(rest);
}

static void b_finish_reply(broker *b, bcmd *c, const redisReply *r)
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
        if (b_cancel_remembered(b, j->eid, ap_now_ms()))
            b_finish_error(j, "cancelled", "cancelled through the broker's control stream before it ran", 0);
        else
            b_run(j);
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
    b_read(b); /* its slot counts as free now */
}

/* ---- running an entry ------------------------------------------------------ */

static void b_run(bjob *j)
{
    broker *b = j->b;
    bj_set_state(j, BJ_RUNNING);
    j->c = client_open_origin(&b_origin, j, 0, (uid_t)-1);
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
        client_feed(c, line, len);
    }
    ap_free(line);
}

/* flush.c's sink: j's lines.  Chunk and heartbeat lines are queued for
 * replyTo (not while BROKER_OUT_HIGH bytes wait: then j stalls); the
 * final line finishes j. */
static size_t b_take(void *arg, struct evbuffer *out)
{
    bjob *j = arg;
    broker *b = j->b;
    size_t taken = 0;
    while (j->state == BJ_RUNNING) {
        struct evbuffer_ptr eol = evbuffer_search_eol(out, NULL, NULL, EVBUFFER_EOL_LF);
        if (eol.pos < 0)
            break;
        size_t len = (size_t)eol.pos;
        const char *line = (const char *)evbuffer_pullup(out, (ev_ssize_t)len + 1);
        reply_line rl;
        if (line == NULL || reply_read(line, len, &rl) != AP_OK) {
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
                b_finish_error(j, "other", "the answer could not be read", 0);
            } else {
                b_finish(j, rest.ptr, rest.len, 1, 0);
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

static void b_client_closed(void *arg)
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

/* ---- cancels ----------------------------------------------------------- */

static int b_cancel_remembered(broker *b, const char *eid, uint64_t now)
{
    for (unsigned i = 0; i < b->ncancels; i++) {
        bcancel *x = &b->cancels[(b->cancel_head + i) % BROKER_CANCELS_MAX];
        if (x->until_ms > now && strcmp(x->eid, eid) == 0)
            return 1;
    }
    return 0;
}

static void b_cancel_remember(broker *b, const char *eid, size_t len, uint64_t now)
{
    if (b->cancels == NULL)
        b->cancels = ap_calloc(BROKER_CANCELS_MAX, sizeof(bcancel));
    while (b->ncancels > 0 && b->cancels[b->cancel_head].until_ms <= now) {
        b->cancel_head = (b->cancel_head + 1) % BROKER_CANCELS_MAX;
        b->ncancels--;
    }
    if (b->ncancels == BROKER_CANCELS_MAX) { /* full: the oldest goes */
        b->cancel_head = (b->cancel_head + 1) % BROKER_CANCELS_MAX;
        b->ncancels--;
    }
    bcancel *x = &b->cancels[(b->cancel_head + b->ncancels) % BROKER_CANCELS_MAX];
    memcpy(x->eid, eid, len);
    x->eid[len] = '\0';
    x->until_ms = now + b->claim_idle_ms;
    b->ncancels++;
}

/* A control entry: cancel the entry it names, here or later. */
static void b_control_entry(broker *b, const bentry *e)
{
    if (e->cancel.len == 0 || !bentry_id_ok(e->cancel.ptr, e->cancel.len))
        return;
    bjob *j = bj_find(b, e->cancel.ptr, e->cancel.len);
    if (j == NULL) {
        b_cancel_remember(b, e->cancel.ptr, e->cancel.len, ap_now_ms());
        b->st.cancels_remembered++;
        return;
    }
    b->st.cancels++;
    if (j->state == BJ_RUNNING && j->c) {
        cancel_found f = cancel_request(j->c, j->id, strlen(j->id));
        ap_info("pool %s: broker: entry %s cancelled through the control stream (%s)", b->p->name, j->eid,
                cancel_found_name(f));
    } else if (j->state == BJ_CHECKING) {
        b_cancel_remember(b, j->eid, strlen(j->eid), ap_now_ms()); /* answered cancelled once the check says run */
    }
}

/* ---- ingesting entries ----------------------------------------------------- */

/* One entry read (claimed: by XAUTOCLAIM, delivered `deliveries` times). */
static void b_ingest(broker *b, const redisReply *er, int claimed, long long deliveries)
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
    j->reply_to = ap_strndup(e.reply_to.ptr, e.reply_to.len);
    j->req = ap_malloc(e.req.len + 1);
    memcpy(j->req, e.req.ptr, e.req.len);
    j->req[e.req.len] = '\0';
    j->req_len = e.req.len;
    j->read_ns = ap_now_ns();
    link_add_tail(&b->jobs, &j->link);
    b->njobs++;
    scan_result *sr = ap_malloc(sizeof(*sr));
    scan_status ss = scan_request(j->req, j->req_len, 64, sr);
    (void)ss;
    j->id = sr->id_kind != SCAN_ID_NONE ? ap_strndup(j->req + sr->id.off, sr->id.len) : ap_strdup("null");
    size_t klen;
    j->akey = bentry_answer_key(b->akey_prefix, ss == SCAN_OK ? sr->idem_key : NULL,
                                ss == SCAN_OK ? sr->idem_key_len : 0, j->eid, strlen(j->eid), &klen);
    int idem = ss == SCAN_OK && sr->idem_key_len > 0;
    ap_free(sr);
    if (b_cancel_remembered(b, j->eid, ap_now_ms())) {
        b->st.cancels++;
        b_finish_error(j, "cancelled", "cancelled through the broker's control stream before it ran", 0);
    } else if (claimed && deliveries > b->p->cfg->max_retries + 1) {
        char text[160];
        snprintf(text, sizeof(text), "delivered %lld times (more than maxRetries + 1): dead-lettered", deliveries);
        ap_warn("pool %s: broker: entry %s %s", b->p->name, j->eid, text);
        b_finish_error(j, "worker_crashed", text, 1);
    } else if (claimed || idem) {
        b_finish(j, NULL, 0, 0, 0);
    } else {
        b_run(j);
    }
}

/* ---- replies on cmd ------------------------------------------------------- */

static void b_claim_reply(broker *b, const redisReply *r)
{
    b->claiming = 0;
    if (r->type != REDIS_REPLY_ARRAY) {
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOGROUP", 7) == 0)
            bc_queue(b, bc_new(b, BC_GROUP, NULL, NULL, 0));
        else
            ap_warn("pool %s: broker: XAUTOCLAIM failed: %s", b->p->name,
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *x = r->element[i];
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 || x->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        b_ingest(b, x->element[0], 1, x->element[1]->integer);
    }
}

static void b_info_reply(broker *b, const redisReply *r)
{
    b->infoing = 0;
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY || g->elements % 2)
            continue;
        int ours = 0;
        int64_t lag = -1, pending = -1;
        for (size_t k = 0; k + 1 < g->elements; k += 2) {
            const redisReply *n = g->element[k], *v = g->element[k + 1];
            if (n->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(n->str, "name") == 0 && v->type == REDIS_REPLY_STRING && strcmp(v->str, b->group) == 0)
                ours = 1;
            else if (strcmp(n->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                lag = v->integer;
            else if (strcmp(n->str, "pending") == 0 && v->type == REDIS_REPLY_INTEGER)
                pending = v->integer;
        }
        if (ours) {
            b->lag = lag;
            b->pending = pending;
        }
    }
}

static void b_cmd_reply(void *owner, void *cookie, redisReply *r)
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
    case BC_FINISH: b_finish_reply(b, c, r); break;
    case BC_CHUNK:
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1) {
            b->st.chunks++;
            b->st.reply_bytes += c->len;
        } else {
            b->st.reply_errors++;
        }
        break;
    case BC_DROP: b->st.acked++; break;
    case BC_CLAIM: b_claim_reply(b, r); break;
    case BC_BEAT:
        if (r->type == REDIS_REPLY_ARRAY)
            b->st.heartbeats++;
        break;
    case BC_INFO: b_info_reply(b, r); break;
    case BC_GROUP:
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
            ap_warn("pool %s: broker: XGROUP CREATE %s %s failed: %s", b->p->name, b->stream, b->group, r->str);
        break;
    }
    bc_free(b, c);
}

/* ---- the reader (rd) ----------------------------------------------------- */

/* Slots of p free now: over its accepting workers, slots not in flight,
 * less the messages queued and the entries held here that are not
 * running (being checked, or answered and being finished), so an entry
 * read can run at once. */
static long b_free_slots(const broker *b)
{
    const pool_t *p = b->p;
    long free = 0;
    for (int i = 0; i < p->nworkers; i++) {
        const dispatch_load *l = &p->workers[i].load;
        if (p->workers[i].slot >= 0 && l->accepting && !l->suspect && l->in_flight < l->slots)
            free += l->slots - l->in_flight;
    }
    free -= (long)p->queue.depth + (long)b->nchecking + (long)b->nfinishing;
    return free;
}

static int b_may_read(const broker *b)
{
    return server.state == SERVER_READY && b->p->state == POOL_RUNNING && ap_now_ms() >= b->read_after_ms &&
           rlink_get_state(b->cmd) == RLINK_UP; /* answers could not be written otherwise */
}

static void b_rd_reply(void *owner, void *cookie, redisReply *r)
{
    broker *b = owner;
    (void)cookie;
    b->reading = 0;
    if (r == NULL)
        return; /* rd went down: read again once it is up */
    if (r->type == REDIS_REPLY_ERROR) {
        ap_warn("pool %s: broker: XREADGROUP on %s failed: %s", b->p->name, b->stream, r->str);
        b->read_after_ms = ap_now_ms() + 1000;
        if (strncmp(r->str, "NOGROUP", 7) == 0)
            bc_queue(b, bc_new(b, BC_GROUP, NULL, NULL, 0));
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *st = r->element[s];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            const redisReply *es = st->element[1];
            for (size_t i = 0; i < es->elements; i++)
                b_ingest(b, es->element[i], 0, 1);
        }
    }
    b_read(b);
}

/* Reads up to the free slots' worth of new entries (one read out at a time). */
static void b_read(broker *b)
{
    if (b->closing || b->reading || rlink_get_state(b->rd) != RLINK_UP || !b_may_read(b))
        return;
    long free = b_free_slots(b);
    if (free <= 0)
        return;
    if (free > BROKER_READ_MAX)
        free = BROKER_READ_MAX;
    char count[24], block[24];
    snprintf(count, sizeof(count), "%ld", free);
    snprintf(block, sizeof(block), "%d", BROKER_BLOCK_MS);
    const char *argv[] = {"XREADGROUP", "GROUP", b->group, b->consumer, "COUNT", count, "BLOCK", block, "STREAMS",
                          b->stream, ">"};
    size_t len[AP_ARRAY_LEN(argv)];
    for (size_t i = 0; i < AP_ARRAY_LEN(argv); i++)
        len[i] = strlen(argv[i]);
    rlink_set_slack(b->rd, BROKER_BLOCK_MS);
    if (rlink_cmd(b->rd, b_rd_reply, NULL, (int)AP_ARRAY_LEN(argv), argv, len) == AP_OK)
        b->reading = 1;
}

/* ---- the control stream (ctl) --------------------------------------------- */

static void b_ctl_reply(void *owner, void *cookie, redisReply *r)
{
    broker *b = owner;
    (void)cookie;
    b->ctl_reading = 0;
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *st = r->element[s];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            const redisReply *es = st->element[1];
            for (size_t i = 0; i < es->elements; i++) {
                bentry e;
                char why[160];
                if (bentry_read(es->element[i], &e, why, sizeof(why)) != AP_OK)
                    continue;
                memcpy(b->ctl_last, e.eid.ptr, e.eid.len);
                b->ctl_last[e.eid.len] = '\0';
                b_control_entry(b, &e);
            }
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        ap_warn("pool %s: broker: XREAD on %s failed: %s", b->p->name, b->control, r->str);
        return; /* the tick tries again */
    }
    b_ctl_read(b);
}

static void b_ctl_read(broker *b)
{
    if (b->ctl_reading || rlink_get_state(b->ctl) != RLINK_UP)
        return;
    char block[24];
    snprintf(block, sizeof(block), "%d", BROKER_BLOCK_MS);
    const char *argv[] = {"XREAD", "BLOCK", block, "STREAMS", b->control, b->ctl_last};
    size_t len[AP_ARRAY_LEN(argv)];
    for (size_t i = 0; i < AP_ARRAY_LEN(argv); i++)
        len[i] = strlen(argv[i]);
    rlink_set_slack(b->ctl, BROKER_BLOCK_MS);
    if (rlink_cmd(b->ctl, b_ctl_reply, NULL, (int)AP_ARRAY_LEN(argv), argv, len) == AP_OK)
        b->ctl_reading = 1;
}

/* ---- links -------------------------------------------------------------- */

static unsigned b_cmd_setup_count(void *owner)
{
    (void)owner;
    return SC_COUNT + 2; /* the scripts, XGROUP CREATE, SET maxlen */
}

static int b_cmd_setup_cmd(void *owner, unsigned i, const char **argv, size_t *len, char *scratch, size_t cap)
{
    broker *b = owner;
    int argc = 0;
    if (i < SC_COUNT) {
        argv[argc++] = "SCRIPT";
        argv[argc++] = "LOAD";
        argv[argc++] = b_scripts[i];
    } else if (i == SC_COUNT) {
        argv[argc++] = "XGROUP";
        argv[argc++] = "CREATE";
        argv[argc++] = b->stream;
        argv[argc++] = b->group;
        argv[argc++] = "0";
        argv[argc++] = "MKSTREAM";
    } else {
        snprintf(scratch, cap, "%lld", (long long)b->cfg.max_length);
        argv[argc++] = "SET";
        argv[argc++] = b->maxlen_key;
        argv[argc++] = scratch;
    }
    for (int k = 0; k < argc; k++)
        len[k] = strlen(argv[k]);
    return argc;
}

static int b_cmd_setup_check(void *owner, unsigned i, const redisReply *r, char *why, size_t cap)
{
    broker *b = owner;
    if (i < SC_COUNT) {
        if (r->type == REDIS_REPLY_STRING && r->len == 40) {
            memcpy(b->sha[i], r->str, 40);
            b->sha[i][40] = '\0';
            return AP_OK;
        }
        snprintf(why, cap, "SCRIPT LOAD (%s): %s", b_script_names[i],
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return AP_ERR;
    }
    if (r->type == REDIS_REPLY_STATUS || (i == SC_COUNT && r->type == REDIS_REPLY_ERROR &&
                                          strncmp(r->str, "BUSYGROUP", 9) == 0))
        return AP_OK;
    snprintf(why, cap, "%s: %s", i == SC_COUNT ? "XGROUP CREATE" : "SET maxlen",
             r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    return AP_ERR;
}

static void b_cmd_up(void *owner)
{
    broker *b = owner;
    if (b->was_up)
        b->st.reconnects++;
    b->was_up = 1;
    b_pump(b);
    b_read(b);
}

static void b_cmd_down(void *owner, const char *why)
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

static void b_rd_up(void *owner)
{
    b_read(owner);
}

static void b_ctl_up(void *owner)
{
    b_ctl_read(owner);
}

#define B_NOTE "entries are not read until it is back (answers wait), the local socket serves; retrying in the background"
static const rlink_ops b_cmd_ops = {b_cmd_setup_count, b_cmd_setup_cmd, b_cmd_setup_check, b_cmd_up, b_cmd_down, B_NOTE};
static const rlink_ops b_rd_ops = {NULL, NULL, NULL, b_rd_up, NULL, B_NOTE};
static const rlink_ops b_ctl_ops = {NULL, NULL, NULL, b_ctl_up, NULL, "cancels are not read until it is back; retrying in the background"};

/* ---- the interface -------------------------------------------------------- */

static char *b_strcat3(const char *a, const char *m, const char *z)
{
    size_t la = strlen(a), lm = strlen(m), lz = strlen(z);
    char *s = ap_malloc(la + lm + lz + 1);
    memcpy(s, a, la);
    memcpy(s + la, m, lm);
    memcpy(s + la + lm, z, lz + 1);
    return s;
}

static void b_free(broker *b)
{
    b->closing = 1;
    rlink_free(b->rd);
    rlink_free(b->ctl);
    if (b->cmd)
        rlink_flush(b->cmd);
    rlink_free(b->cmd);
    queue_link *lists[2] = {&b->resend, &b->waiting};
    for (int i = 0; i < 2; i++) {
        while (!link_empty(lists[i])) {
            bcmd *c = queue_entry(lists[i]->next, bcmd, link);
            link_del(&c->link);
            if (c->j)
                c->j->refs--;
            ap_free(c->data);
            ap_free(c);
        }
    }
    while (!link_empty(&b->jobs)) {
        bjob *j = queue_entry(b->jobs.next, bjob, link);
        if (j->c) {
            client *c = j->c;
            client_drop(c, "its pool's broker closed"); /* b_client_closed: j->c = NULL */
        }
        link_del(&j->link);
        ap_free(j->reply_to);
        ap_free(j->req);
        ap_free(j->akey);
        ap_free(j->id);
        ap_free(j);
    }
    ap_free(b->cancels);
    ap_free(b->stream);
    ap_free(b->control);
    ap_free(b->group);
    ap_free(b->consumer);
    ap_free(b->akey_prefix);
    ap_free(b->maxlen_key);
    ap_free(b);
}

int broker_open(pool_t *p)
{
    if (p->cfg->broker == NULL)
        return AP_OK;
    broker *b = ap_calloc(1, sizeof(*b));
    char err[512];
    b->p = p;
    if (brokercfg_parse(p->cfg->broker, &b->cfg, err, sizeof(err)) != AP_OK) { /* checked at load: not expected */
        ap_error("pool %s: %s", p->name, err);
        ap_free(b);
        return AP_ERR;
    }
    link_init(&b->jobs);
    link_init(&b->waiting);
    link_init(&b->resend);
    link_init(&b->stalled);
    b->lag = b->pending = -1;
    strcpy(b->ctl_last, "$");
    hist_window_init(&b->rtt, 10000);
    char pre[CONFIG_POOL_NAME_MAX + 32];
    snprintf(pre, sizeof(pre), "agentpool:%s:", p->name);
    b->stream = b->cfg.stream[0] ? ap_strdup(b->cfg.stream) : b_strcat3(pre, "requests", "");
    b->control = b->cfg.control[0] ? ap_strdup(b->cfg.control) : b_strcat3(pre, "control", "");
    b->group = ap_strdup(b->cfg.group[0] ? b->cfg.group : "agentpool");
    if (b->cfg.consumer[0]) {
        b->consumer = ap_strdup(b->cfg.consumer);
    } else {
        char host[256] = "localhost", c[300];
        if (gethostname(host, sizeof(host) - 1) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(c, sizeof(c), "%s-%ld", host, (long)getpid());
        b->consumer = ap_strdup(c);
    }
    b->akey_prefix = b_strcat3(pre, "answer:", "");
    b->maxlen_key = b_strcat3(pre, "maxlen", "");
    b->claim_idle_ms = b->cfg.claim_idle_ms ? (uint64_t)b->cfg.claim_idle_ms
                       : p->cfg->timeout ? 2 * (uint64_t)p->cfg->timeout
                                         : 30000;
    b->answer_ttl_ms = b->cfg.answer_ttl_ms ? (uint64_t)b->cfg.answer_ttl_ms : (uint64_t)p->cfg->idempotency_ttl;
    char what[3][CONFIG_POOL_NAME_MAX + 40];
    snprintf(what[0], sizeof(what[0]), "pool %s: broker", p->name);
    snprintf(what[1], sizeof(what[1]), "pool %s: broker (reader)", p->name);
    snprintf(what[2], sizeof(what[2]), "pool %s: broker (control)", p->name);
    b->cmd = rlink_new(server.base, &b->cfg.addr, what[0], &b_cmd_ops, b, err, sizeof(err));
    b->rd = b->cmd ? rlink_new(server.base, &b->cfg.addr, what[1], &b_rd_ops, b, err, sizeof(err)) : NULL;
    b->ctl = b->rd ? rlink_new(server.base, &b->cfg.addr, what[2], &b_ctl_ops, b, err, sizeof(err)) : NULL;
    if (b->ctl == NULL) {
        ap_error("%s", err);
        b_free(b);
        return AP_ERR;
    }
    p->broker = b;
    ap_info("pool %s: broker: stream %s, group %s, consumer %s, Redis at %s (claimIdleMs %llu)", p->name, b->stream,
            b->group, b->consumer, rlink_name(b->cmd), (unsigned long long)b->claim_idle_ms);
    rlink_start(b->cmd);
    rlink_start(b->rd);
    rlink_start(b->ctl);
    return AP_OK;
}

void broker_close(pool_t *p)
{
    broker *b = p->broker;
    if (b == NULL)
        return;
    p->broker = NULL;
    b_free(b);
}

void broker_tick(pool_t *p, uint64_t now)
{
    broker *b = p->broker;
    if (b == NULL)
        return;
    b_read(b);
    b_ctl_read(b);
    int up = rlink_get_state(b->cmd) == RLINK_UP;
    uint64_t heartbeat = b->claim_idle_ms / 3 < (uint64_t)b->cfg.claim_interval_ms ? b->claim_idle_ms / 3
                                                                                    : (uint64_t)b->cfg.claim_interval_ms;
    if (up && now >= b->next_beat_ms) {
        b->next_beat_ms = now + heartbeat;
        for (size_t k = 0; k * BROKER_BEAT_BATCH < b->njobs; k++) {
            bcmd *c = bc_new(b, BC_BEAT, NULL, NULL, 0);
            c->len = k;
            bc_queue(b, c);
        }
    }
    if (up && now >= b->next_claim_ms && b_may_read(b)) {
        b->next_claim_ms = now + (uint64_t)b->cfg.claim_interval_ms;
        long free = b_free_slots(b);
        if (free > 0 && !b->claiming) {
            bcmd *c = bc_new(b, BC_CLAIM, NULL, NULL, 0);
            c->len = (size_t)(free > BROKER_READ_MAX ? BROKER_READ_MAX : free);
            b->claiming = 1;
            bc_queue(b, c);
        }
        if (!b->infoing) {
            b->infoing = 1;
            bc_queue(b, bc_new(b, BC_INFO, NULL, NULL, 0));
        }
    }
}

uint64_t broker_down_alert_ms(const pool_t *p)
{
    return p->broker ? (uint64_t)p->broker->cfg.down_alert_ms : 0;
}

uint64_t broker_down_ms(const pool_t *p, uint64_t now_ms)
{
    uint64_t since = p->broker ? rlink_down_since_ms(p->broker->cmd) : 0;
    return since && now_ms > since ? now_ms - since : 0;
}

const char *broker_down_why(const pool_t *p)
{
    return p->broker ? rlink_why(p->broker->cmd) : "";
}

int broker_all_flushed(void)
{
    POOLS_FOREACH(p) {
        const broker *b = p->broker;
        if (b && rlink_get_state(b->cmd) == RLINK_UP && (b->nwaiting > 0 || b->nfinishing > 0 || b->out_bytes > 0))
            return 0;
    }
    return 1;
}

int broker_enabled(const pool_t *p)
{
    return p->broker != NULL;
}

int broker_connected(const pool_t *p)
{
    const broker *b = p->broker;
    return b && rlink_get_state(b->cmd) == RLINK_UP && rlink_get_state(b->rd) == RLINK_UP &&
           rlink_get_state(b->ctl) == RLINK_UP;
}

const broker_stats *broker_get_stats(const pool_t *p)
{
    return p->broker ? &p->broker->st : NULL;
}

int broker_round_trips(const pool_t *p, hist_summary *out)
{
    if (p->broker == NULL)
        return 0;
    hist_window_summary(&p->broker->rtt, ap_now_ms(), out);
    return 1;
}

void broker_lag(const pool_t *p, int64_t *lag, int64_t *pending)
{
    *lag = p->broker ? p->broker->lag : -1;
    *pending = p->broker ? p->broker->pending : -1;
}

void broker_stats_json(const pool_t *p, cJSON *o)
{
    const broker *b = p->broker;
    if (b == NULL)
        return;
    const broker_stats *s = &b->st;
    cJSON_AddStringToObject(o, "state", broker_connected(p) ? "connected" : "disconnected");
    cJSON_AddStringToObject(o, "redis", rlink_name(b->cmd));
    cJSON_AddStringToObject(o, "stream", b->stream);
    cJSON_AddStringToObject(o, "group", b->group);
    cJSON_AddStringToObject(o, "consumer", b->consumer);
    if (rlink_get_state(b->cmd) != RLINK_UP) {
        cJSON_AddStringToObject(o, "error", rlink_why(b->cmd));
        cJSON_AddNumberToObject(o, "downMs", (double)broker_down_ms(p, ap_now_ms()));
    }
    uint64_t down = broker_down_ms(p, ap_now_ms());
    cJSON_AddBoolToObject(o, "alert", b->cfg.down_alert_ms > 0 && down >= (uint64_t)b->cfg.down_alert_ms);
    static const struct {
        const char *name;
        size_t off;
    } f[] = {
        {"read", offsetof(broker_stats, read)},
        {"claimed", offsetof(broker_stats, claimed)},
        {"acked", offsetof(broker_stats, acked)},
        {"answered", offsetof(broker_stats, answered)},
        {"replays", offsetof(broker_stats, replays)},
        {"alreadyAnswered", offsetof(broker_stats, already_answered)},
        {"deadLettered", offsetof(broker_stats, dead_lettered)},
        {"heartbeats", offsetof(broker_stats, heartbeats)},
        {"chunks", offsetof(broker_stats, chunks)},
        {"replyBytes", offsetof(broker_stats, reply_bytes)},
        {"cancels", offsetof(broker_stats, cancels)},
        {"cancelsRemembered", offsetof(broker_stats, cancels_remembered)},
        {"abandoned", offsetof(broker_stats, abandoned)},
        {"badEntries", offsetof(broker_stats, bad_entries)},
        {"replyErrors", offsetof(broker_stats, reply_errors)},
        {"reconnects", offsetof(broker_stats, reconnects)},
    };
    for (size_t i = 0; i < AP_ARRAY_LEN(f); i++)
        cJSON_AddNumberToObject(o, f[i].name, (double)*(const uint64_t *)(const void *)((const char *)s + f[i].off));
    cJSON_AddNumberToObject(o, "held", b->njobs);
    cJSON_AddNumberToObject(o, "waitingWrites", b->nwaiting);
    cJSON_AddNumberToObject(o, "waitingBytes", (double)b->out_bytes);
    cJSON_AddNumberToObject(o, "lag", (double)b->lag);
    cJSON_AddNumberToObject(o, "pending", (double)b->pending);
    hist_summary h;
    hist_window_summary(&b->rtt, ap_now_ms(), &h);
    cJSON *rt = cJSON_AddObjectToObject(o, "roundTripUs");
    cJSON_AddNumberToObject(rt, "count", (double)h.count);
    cJSON_AddNumberToObject(rt, "p50", (double)(h.p50 / 1000));
    cJSON_AddNumberToObject(rt, "p90", (double)(h.p90 / 1000));
    cJSON_AddNumberToObject(rt, "p99", (double)(h.p99 / 1000));
    cJSON_AddNumberToObject(rt, "max", (double)(h.max / 1000));
}
