/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * broker.c - the broker ingress of one pool (see broker.h and
 * docs/scale-out.md).
 *
 * Three Redis links (rlink.h), all on the master's loop: `rd` only ever
 * has one XREADGROUP ... BLOCK out (COUNT = the pool's free slots, so a
 * busy machine never takes work another could do), `ctl` one XREAD BLOCK
 * on the control stream, `cmd` everything else, pipelined in one FIFO
 * (bcmd.c), so the chunk lines of an entry always reach Redis before
 * its final line.
 *
 * An entry held here is a job (bjob.c: checked, run through an origin
 * client, finished); commands go through one FIFO (bcmd.c); cancels of
 * entries not held here are remembered (bcancel.c).  This file owns the
 * pool's broker: its links and their set-up (the scripts, XGROUP CREATE,
 * the maxlen key), the reads (free slots only), claims (XAUTOCLAIM with
 * the delivery counts), heartbeats (XCLAIM JUSTID), XINFO, the control
 * stream, the interface of broker.h and its stats.
 *
 * The finish script (SC_FINISH) is the one exit of an entry, for every
 * entry finished in one loop turn at once: for an entry with an
 * idempotencyKey it sets the answer key unless it exists and writes the
 * final line to replyTo when this step set the key or the key belongs
 * to another entry (a retry with the same idempotencyKey: same answer,
 * its own id); for one without, it writes the line only when its XACK
 * acknowledged the entry (an entry leaves the pending list only in this
 * script, with its line); then XACK + XDEL: exactly one final line per
 * entry, even when two consumers ran it.  Commands lost with the connection are resent in
 * order once it is back (the scripts are idempotent; a chunk may then be
 * written twice, with its seq).  Chunk bytes taken from clients and not
 * yet accepted by Redis are bounded (BROKER_OUT_HIGH): past it the jobs
 * stop taking chunk lines (their streams' credit stops), and resume when
 * Redis has taken half.
 */
#include "bint.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "client.h"
#include "server.h"

#include <cJSON.h>
#include <hiredis/hiredis.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The finish of up to BROKER_FINISH_BATCH entries in one call.  KEYS:
 * the stream, then per entry i its answer key (the stream when it has
 * none) and its replyTo.  ARGV: group, answerTtl, replyTtl, then per
 * entry its id, its id text, rest and its mode: "k" (keyed: an
 * idempotencyKey; rest is the answer, stored unless the key exists), "l"
 * (keyed, look-up only: answered from the store, or -1 when it holds
 * nothing) or "a" (no key: answered only when this XACK acknowledged the
 * entry, i.e. nobody answered it yet; an entry is pending until its
 * answer is written, in this same script).  Returns one integer per
 * entry: 1: answered with rest; 2: with the stored answer (another
 * entry's, with "replayed":true); 0: this entry was answered already (no
 * line); 3: as 1 or 2 but replyTo refused the line; -1: no stored answer
 * ("l": run it; nothing changed).  Every entry but a -1 is acknowledged
 * and deleted, its replyTo's TTL renewed once per call. */
static const char *const b_scripts[SC_COUNT] = {
    [SC_FINISH] = "local out, del, ttl = {}, {}, {}\n"
                  "for i = 1, (#KEYS - 1) / 2 do\n"
                  " local a = 4 * i\n"
                  " local eid, mode, o, line = ARGV[a], ARGV[a + 3]\n"
                  " if mode == 'a' then\n"
                  "  if redis.call('XACK', KEYS[1], ARGV[1], eid) == 1 then o = 1 line = ARGV[a + 2] else o = 0 end\n"
                  " else\n"
                  "  local v = redis.call('GET', KEYS[2 * i])\n"
                  "  if v then\n"
                  "   local nl = string.find(v, '\\n', 1, true) or 0\n"
                  "   if string.sub(v, 1, nl - 1) == eid then o = 0\n"
                  "   else o = 2 line = string.sub(v, nl + 1, -2) .. ',\"replayed\":true}' end\n"
                  "  elseif mode == 'k' then\n"
                  "   redis.call('SET', KEYS[2 * i], eid .. '\\n' .. ARGV[a + 2], 'PX', ARGV[2])\n"
                  "   o = 1 line = ARGV[a + 2]\n"
                  "  else o = -1 end\n"
                  " end\n"
                  " if line then\n"
                  "  local r = redis.pcall('XADD', KEYS[2 * i + 1], '*', 'line', '{\"id\":' .. ARGV[a + 1] .. ',' .. line)\n"
                  "  if type(r) == 'table' and r.err then o = 3 else ttl[KEYS[2 * i + 1]] = true end\n"
                  " end\n"
                  " if o >= 0 then\n"
                  "  if mode ~= 'a' then redis.call('XACK', KEYS[1], ARGV[1], eid) end\n"
                  "  del[#del + 1] = eid\n"
                  " end\n"
                  " out[i] = o\n"
                  "end\n"
                  "if #del > 0 then redis.call('XDEL', KEYS[1], unpack(del)) end\n"
                  "for k in pairs(ttl) do redis.call('PEXPIRE', k, ARGV[3]) end\n"
                  "return out\n",
    /* KEYS: replyTo.  ARGV: line, replyTtl.  1, or 0 when replyTo refused it. */
    [SC_CHUNK] = "local r = redis.pcall('XADD', KEYS[1], '*', 'line', ARGV[1])\n"
                 "if type(r) == 'table' and r.err then return 0 end\n"
                 "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                 "return 1\n",
    /* KEYS: stream.  ARGV: group, consumer, min idle, count, cursor.
     * Returns {next cursor, {{entry, deliveries}, ...}} of the entries
     * claimed (XAUTOCLAIM scans at most 10 x count pending entries a call:
     * the cursor walks the whole pending list over the calls). */
    [SC_CLAIM] = "local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[5], 'COUNT', ARGV[4])\n"
                 "local out = {}\n"
                 "for _, e in ipairs(r[2]) do\n"
                 " if e[2] then\n"
                 "  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)\n"
                 "  local n = 0\n"
                 "  if p[1] then n = p[1][4] end\n"
                 "  out[#out + 1] = {e, n}\n"
                 " end\n"
                 "end\n"
                 "return {r[1], out}\n",
};
static const char *const b_script_names[SC_COUNT] = {"finish", "chunk", "claim"};


static void b_ctl_read(broker *b);

/* ---- replies on cmd ------------------------------------------------------- */

void bk_claim_reply(broker *b, const redisReply *r)
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
    if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *cur = r->element[0], *es = r->element[1];
    if (bentry_id_ok(cur->str, cur->len)) { /* "0-0" once the whole list was walked */
        memcpy(b->claim_cursor, cur->str, cur->len);
        b->claim_cursor[cur->len] = '\0';
    }
    for (size_t i = 0; i < es->elements; i++) {
        const redisReply *x = es->element[i];
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 || x->element[1]->type != REDIS_REPLY_INTEGER)
            continue;
        bj_ingest(b, x->element[0], 1, x->element[1]->integer);
    }
}

void bk_info_reply(broker *b, const redisReply *r)
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

/* ---- the reader (rd) ----------------------------------------------------- */

/* Slots of p free now: over its accepting workers, slots not in flight
 * and a fast sync worker's prefetch room (dispatch_room: what the pool
 * itself would send it without queueing, so a sync pool is not held to
 * one Redis round trip per message per worker), less the messages queued and the entries being checked against the
 * answer store (each will need a slot), so an entry read can run at once.
 * An entry answered and being finished needs none: its slot is read for
 * as soon as its final line is taken. */
static long b_free_slots(const broker *b)
{
    const pool_t *p = b->p;
    long free = 0;
    for (int i = 0; i < p->nworkers; i++)
        if (p->workers[i].slot >= 0)
            free += dispatch_room(&p->workers[i].load);
    free -= (long)p->queue.depth + (long)b->nchecking;
    return free;
}

static int b_may_read(const broker *b)
{
    return server.state == SERVER_READY && b->p->state == POOL_RUNNING && ap_now_ms() >= b->read_after_ms &&
           rlink_get_state(b->cmd) == RLINK_UP; /* answers could not be written otherwise */
}

/* Calls fn for each entry of an XREAD / XREADGROUP reply (an array of
 * [stream, [entry, ...]] pairs); malformed parts are skipped. */
static void b_each_entry(broker *b, const redisReply *r, void (*fn)(broker *, const redisReply *))
{
    for (size_t s = 0; s < r->elements; s++) {
        const redisReply *st = r->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 || st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        const redisReply *es = st->element[1];
        for (size_t i = 0; i < es->elements; i++)
            fn(b, es->element[i]);
    }
}

/* A new entry of the request stream: checked, then run. */
static void b_rd_entry(broker *b, const redisReply *entry)
{
    bj_ingest(b, entry, 0, 1);
}

/* An entry of the control stream: a cancel (bjob.c finds what it names). */
static void b_ctl_entry(broker *b, const redisReply *entry)
{
    bentry e;
    char why[160];
    if (bentry_read(entry, &e, why, sizeof(why)) != AP_OK)
        return;
    memcpy(b->ctl_last, e.eid.ptr, e.eid.len);
    b->ctl_last[e.eid.len] = '\0';
    bj_cancel(b, &e);
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
    if (r->type == REDIS_REPLY_ARRAY)
        b_each_entry(b, r, b_rd_entry);
    bk_read(b);
}

/* Reads up to the free slots' worth of new entries (one read out at a time). */
void bk_read(broker *b)
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
        b_each_entry(b, r, b_ctl_entry);
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
    bc_pump(b);
    bk_read(b);
}

static void b_rd_up(void *owner)
{
    bk_read(owner);
}

static void b_ctl_up(void *owner)
{
    b_ctl_read(owner);
}

#define B_NOTE "entries are not read until it is back (answers wait), the local socket serves; retrying in the background"
static const rlink_ops b_cmd_ops = {b_cmd_setup_count, b_cmd_setup_cmd, b_cmd_setup_check, b_cmd_up, bc_down, B_NOTE};
static const rlink_ops b_rd_ops = {NULL, NULL, NULL, b_rd_up, NULL, B_NOTE};
static const rlink_ops b_ctl_ops = {NULL, NULL, NULL, b_ctl_up, NULL, "cancels are not read until it is back; retrying in the background"};

/* ---- the interface -------------------------------------------------------- */

static void b_free(broker *b)
{
    b->closing = 1;
    rlink_free(b->rd);
    rlink_free(b->ctl);
    if (b->pump_ev)
        event_free(b->pump_ev);
    b->pump_ev = NULL;
    if (b->cmd) {
        bc_pump(b); /* what this turn queued */
        rlink_flush(b->cmd);
    }
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
            client_drop(c, "its pool's broker closed"); /* bj_client_closed: j->c = NULL */
        }
        link_del(&j->link);
        ap_free(j->reply_to);
        ap_free(j->req);
        ap_free(j->akey);
        ap_free(j->id);
        ap_free(j);
    }
    idmap_free(&b->by_eid);
    bcancel_free(&b->cancels);
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
    idmap_init(&b->by_eid);
    link_init(&b->waiting);
    link_init(&b->resend);
    link_init(&b->stalled);
    bcancel_init(&b->cancels, BROKER_CANCELS_MAX);
    b->lag = b->pending = -1;
    strcpy(b->ctl_last, "$");
    strcpy(b->claim_cursor, "0-0");
    hist_window_init(&b->rtt, 10000);
    char pre[CONFIG_POOL_NAME_MAX + 32];
    snprintf(pre, sizeof(pre), "agentpool:%s:", p->name);
    b->stream = b->cfg.stream[0] ? ap_strdup(b->cfg.stream) : ap_strcat3(pre, "requests", "");
    b->control = b->cfg.control[0] ? ap_strdup(b->cfg.control) : ap_strcat3(pre, "control", "");
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
    b->akey_prefix = ap_strcat3(pre, "answer:", "");
    b->maxlen_key = ap_strcat3(pre, "maxlen", "");
    b->claim_idle_ms = b->cfg.claim_idle_ms ? (uint64_t)b->cfg.claim_idle_ms
                       : p->cfg->timeout ? 2 * (uint64_t)p->cfg->timeout
                                         : 30000;
    b->answer_ttl_ms = b->cfg.answer_ttl_ms ? (uint64_t)b->cfg.answer_ttl_ms : (uint64_t)p->cfg->idempotency_ttl;
    char what[3][CONFIG_POOL_NAME_MAX + 40];
    snprintf(what[0], sizeof(what[0]), "pool %s: broker", p->name);
    snprintf(what[1], sizeof(what[1]), "pool %s: broker (reader)", p->name);
    snprintf(what[2], sizeof(what[2]), "pool %s: broker (control)", p->name);
    b->pump_ev = event_new(server.base, -1, 0, bc_pump_cb, b);
    if (b->pump_ev == NULL) {
        ap_error("pool %s: broker: event_new for its command pump failed", p->name);
        b_free(b);
        return AP_ERR;
    }
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
    bk_read(b);
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

