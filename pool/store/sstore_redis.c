/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore_redis.c - the Redis session store backend (sstore_be.h):
 * hiredis on the master's loop (through rlink.c and rev.c), one
 * connection per store, commands pipelined.  Replies come back in the
 * order commands were sent, so operations complete in the order they
 * were started.  The one exception: an operation refused because too
 * many are pending completes on the next loop turn, possibly before
 * earlier ones still waiting for Redis.  (While the store is down it
 * holds nothing: what it held was failed, in order, when it went down.)
 *
 * Keys of pool P (P is [a-z0-9_-], so the "{P}" hash tag is plain):
 *   ap:{P}:s:KEY  a hash: v = the state text, t = updated_ms (decimal,
 *                 the master's wall clock); PEXPIRE ttl at each put or touch
 *   ap:{P}:lex    a sorted set, every score 0, member KEY: the listing
 *                 order (ZRANGEBYLEX is bytewise)
 *   ap:{P}:exp    a sorted set, score = when KEY expires (master's clock),
 *                 member KEY: finds index members whose hash expired
 * Puts, touches, deletes and lists are Lua scripts (loaded with SCRIPT
 * LOAD at each connect, run with EVALSHA), so a write and its index
 * change are atomic.  Each put or touch also looks at up to 8 members of
 * ap:{P}:exp past their time and removes those whose hash is gone (or
 * re-scores them), so the index never holds much more than the live
 * sessions: a write costs O(log N) (N sessions in the pool: HSET,
 * PEXPIRE, two ZADD, a ZRANGEBYSCORE) plus that bounded clean-up.  Both
 * index keys are kept at least ttl alive by every write, so an idle pool
 * leaves nothing behind.  A get is HMGET; a list walks ZRANGEBYLEX from
 * `after` and drops expired members it meets (at most 4 x (limit+1) per
 * call).  Standalone Redis only (not Cluster).
 *
 * The connection is rlink.h's (connect, SELECT and SCRIPT LOAD at each
 * connect, reconnect with backoff, the deadlines hiredis 0.14 lacks, the
 * outage logged once and its end).  While it is connecting or setting up
 * operations wait (bounded); while it is down they complete UNAVAILABLE
 * at once with the failure's reason; operations sent when it is lost
 * fail in order, then the ones that waited.  wait_ready (start-up only)
 * checks the server with rlink_probe first (a synchronous connection
 * running the same set-up, bounded by 10 s): simpler than running the
 * master's loop before it serves; then the async connection starts and
 * early operations wait for it.
 */
#include "sstore_be.h"
#include "rlink.h"
#include "rspec.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Operations held (waiting + sent) and their key and value bytes:
 * past either, new operations are refused UNAVAILABLE. */
#define RS_MAX_PENDING 10000
#define RS_MAX_PENDING_BYTES ((size_t)64 << 20)
/* A list scans at most this many index members per returned entry. */
#define RS_LIST_SCAN_FACTOR 4


enum { SC_PUT = 0, SC_TOUCH, SC_DEL, SC_LIST, SC_COUNT };

/* The index upkeep every put and touch runs (see the top comment).
 * KEYS: hash, lex, exp.  ARGV: value, now_ms, ttl_ms, KEY, hash prefix. */
#define LUA_INDEX                                                                                                      \
    "local function ix()\n"                                                                                            \
    " local now, ttl, k = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]\n"                                             \
    " redis.call('ZADD', KEYS[2], 0, k)\n"                                                                             \
    " redis.call('ZADD', KEYS[3], now + ttl, k)\n"                                                                     \
    " for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 8)) do\n"                       \
    "  local left = redis.call('PTTL', ARGV[5] .. m)\n"                                                                \
    "  if left == -2 then redis.call('ZREM', KEYS[2], m) redis.call('ZREM', KEYS[3], m)\n"                             \
    "  else redis.call('ZADD', KEYS[3], now + (left > 0 and left or ttl), m) end\n"                                    \
    " end\n"                                                                                                           \
    " for i = 2, 3 do\n"                                                                                               \
    "  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end\n"                            \
    " end\n"                                                                                                           \
    "end\n"

static const char *const rs_scripts[SC_COUNT] = {
    [SC_PUT] = LUA_INDEX "redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', ARGV[2])\n"
                         "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
                         "ix() return 1\n",
    [SC_TOUCH] = LUA_INDEX "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
                           "redis.call('HSET', KEYS[1], 't', ARGV[2])\n"
                           "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
                           "ix() return 1\n",
    [SC_DEL] = "local n = redis.call('DEL', KEYS[1])\n"
               "redis.call('ZREM', KEYS[2], ARGV[4]) redis.call('ZREM', KEYS[3], ARGV[4])\n"
               "return n\n",
    /* KEYS: lex, exp.  ARGV: range start ('-' or '(' .. after), limit,
     * hash prefix, scan factor.  Returns {more, KEY, t, bytes, ...}. */
    [SC_LIST] = "local lim, start, seen, out = tonumber(ARGV[2]), ARGV[1], 0, {0}\n"
                "while true do\n"
                " local ms = redis.call('ZRANGEBYLEX', KEYS[1], start, '+', 'LIMIT', 0, lim + 1)\n"
                " for _, m in ipairs(ms) do\n"
                "  local h = ARGV[3] .. m\n"
                "  local t = redis.call('HGET', h, 't')\n"
                "  if t then\n"
                "   if #out == 1 + 3 * lim then out[1] = 1 return out end\n"
                "   out[#out + 1] = m out[#out + 1] = t out[#out + 1] = redis.call('HSTRLEN', h, 'v')\n"
                "  else redis.call('ZREM', KEYS[1], m) redis.call('ZREM', KEYS[2], m) end\n"
                "  start = '(' .. m\n"
                " end\n"
                " seen = seen + #ms\n"
                " if #ms <= lim then return out end\n"
                " if seen >= tonumber(ARGV[4]) * (lim + 1) then out[1] = 1 return out end\n"
                "end\n",
};
static const char *const rs_script_names[SC_COUNT] = {"put", "touch", "delete", "list"};
static const char *const rs_kind_names[SSTORE_OP_KINDS] = {"get", "put", "touch", "delete", "list"};

typedef struct rconn rconn;

typedef struct {
    sstore *s;
    rspec addr;
    rlink *link;
    queue_link waiting;       /* connecting, setting up: operations not sent yet, in start order */
    queue_link sent;          /* operations sent, oldest first: replies come in this order */
    uint32_t npending;        /* waiting + sent */
    size_t pending_bytes;     /* their keys and values */
    int full_logged;          /* a refusal for too many pending was logged and they have not drained since */
    int closing;              /* redis_stop runs: what is held fails "the store is closing" */
    char sha[SC_COUNT][41];   /* the scripts' SHA1s, from SCRIPT LOAD */
    char *kbuf;               /* scratch for key names */
    size_t kcap;
    char *hprefix;            /* "ap:{P}:s:" */
    size_t hprefix_len;
    char *klex, *kexp;        /* "ap:{P}:lex", "ap:{P}:exp" */
} rstore;

static size_t rs_op_bytes(const sstore_op *op)
{
    return op->key_len + op->val_len;
}

/* Takes op off the backend's lists. */
static void rs_release(rstore *rb, sstore_op *op)
{
    link_del(&op->link);
    rb->npending--;
    rb->pending_bytes -= rs_op_bytes(op);
    if (rb->full_logged && rb->npending < RS_MAX_PENDING / 2 && rb->pending_bytes < RS_MAX_PENDING_BYTES / 2)
        rb->full_logged = 0;
}

/* What a failed operation says: the link's reason, or that the store closes. */
static const char *rs_fail_why(const rstore *rb)
{
    return rb->closing ? "the store is closing" : rlink_why(rb->link);
}

/* ---- set-up commands (after rlink's SELECT): SCRIPT LOAD each ----------- */

static unsigned rs_setup_count(void *owner)
{
    (void)owner;
    return SC_COUNT;
}

static int rs_setup_cmd(void *owner, unsigned i, const char **argv, size_t *len, char *scratch, size_t cap)
{
    (void)owner;
    (void)scratch;
    (void)cap;
    argv[0] = "SCRIPT";
    argv[1] = "LOAD";
    argv[2] = rs_scripts[i];
    len[0] = 6;
    len[1] = 4;
    len[2] = strlen(rs_scripts[i]);
    return 3;
}

/* Keeps script i's SHA1: AP_OK, or AP_ERR with why. */
static int rs_setup_check(void *owner, unsigned i, const redisReply *r, char *why, size_t cap)
{
    rstore *rb = owner;
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy(rb->sha[i], r->str, 40);
        rb->sha[i][40] = '\0';
        return AP_OK;
    }
    if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, cap, "SCRIPT LOAD (%s): %s", rs_script_names[i], r->str);
    else
        snprintf(why, cap, "SCRIPT LOAD (%s): unexpected reply (type %d)", rs_script_names[i], r->type);
    return AP_ERR;
}

/* ---- operations --------------------------------------------------------- */

/* rb->kbuf = prefix + (optional one-byte lead) + key: returns its length. */
static size_t rs_key(rstore *rb, const char *prefix, size_t plen, const char *key, size_t klen)
{
    size_t need = plen + klen + 1;
    if (need > rb->kcap) {
        rb->kbuf = ap_realloc(rb->kbuf, need);
        rb->kcap = need;
    }
    memcpy(rb->kbuf, prefix, plen);
    if (klen)
        memcpy(rb->kbuf + plen, key, klen);
    rb->kbuf[plen + klen] = '\0';
    return plen + klen;
}

static void rs_op_reply(void *owner, void *cookie, redisReply *r);

/* Sends op (UP).  A command that cannot be queued fails op soon. */
static void rs_send(rstore *rb, sstore_op *op)
{
    const char *argv[11];
    size_t len[11];
    int argc = 0;
    char now[24], ttl[24], lim[16], factor[8];
#define ARG(p, n) (argv[argc] = (p), len[argc++] = (n))
#define ARGS(p) ARG(p, strlen(p))
    if (op->kind == SSTORE_GET) {
        size_t n = rs_key(rb, rb->hprefix, rb->hprefix_len, op->key, op->key_len);
        ARGS("HMGET");
        ARG(rb->kbuf, n);
        ARGS("v");
        ARGS("t");
    } else if (op->kind == SSTORE_LIST) {
        size_t n = op->key_len ? rs_key(rb, "(", 1, op->key, op->key_len) : rs_key(rb, "-", 1, NULL, 0);
        snprintf(lim, sizeof(lim), "%u", op->limit);
        snprintf(factor, sizeof(factor), "%d", RS_LIST_SCAN_FACTOR);
        ARGS("EVALSHA");
        ARGS(rb->sha[SC_LIST]);
        ARGS("2");
        ARGS(rb->klex);
        ARGS(rb->kexp);
        ARG(rb->kbuf, n);
        ARGS(lim);
        ARG(rb->hprefix, rb->hprefix_len);
        ARGS(factor);
    } else {
        int sc = op->kind == SSTORE_PUT ? SC_PUT : op->kind == SSTORE_TOUCH ? SC_TOUCH : SC_DEL;
        size_t n = rs_key(rb, rb->hprefix, rb->hprefix_len, op->key, op->key_len);
        *ap_decimal(now, ap_wall_ms()) = '\0'; /* not snprintf: a put's hot path */
        *ap_decimal(ttl, rb->s->ttl_ms) = '\0';
        ARGS("EVALSHA");
        ARGS(rb->sha[sc]);
        ARGS("3");
        ARG(rb->kbuf, n);
        ARGS(rb->klex);
        ARGS(rb->kexp);
        ARG(op->val, op->val_len);
        ARGS(now);
        ARGS(ttl);
        ARG(op->key, op->key_len);
        ARG(rb->hprefix, rb->hprefix_len);
    }
#undef ARG
#undef ARGS
    if (rlink_cmd(rb->link, rs_op_reply, op, argc, argv, len) != AP_OK) {
        char why[200];
        snprintf(why, sizeof(why), "Redis at %s: the command could not be queued", rlink_name(rb->link));
        rs_release(rb, op);
        sstore_fail_soon(op, why);
        return;
    }
    link_del(&op->link);
    link_add_tail(&rb->sent, &op->link);
}

/* Parses the decimal updated_ms in s (len bytes) into *out: AP_ERR when it is not one. */
static int rs_parse_ms(const char *str, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 19)
        return AP_ERR;
    for (size_t i = 0; i < len; i++) {
        if (str[i] < '0' || str[i] > '9')
            return AP_ERR;
        v = v * 10 + (uint64_t)(str[i] - '0');
    }
    *out = v;
    return AP_OK;
}

/* Fills res from op's reply r: AP_OK, or AP_ERR with why when r is an
 * error or not the shape the command gives.  *entries (list) is
 * allocated for the caller to free. */
static int rs_result(const sstore_op *op, const redisReply *r, sstore_result *res, sstore_entry **entries,
                     char *why, size_t cap)
{
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, cap, "%s", r->str);
        return AP_ERR;
    }
    switch (op->kind) {
    case SSTORE_GET: {
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            break;
        const redisReply *v = r->element[0], *t = r->element[1];
        if (v->type == REDIS_REPLY_NIL) {
            res->status = SSTORE_MISSING;
            return AP_OK;
        }
        if (v->type != REDIS_REPLY_STRING)
            break;
        res->updated_ms = 0;
        if (t->type == REDIS_REPLY_STRING) {
            if (rs_parse_ms(t->str, t->len, &res->updated_ms) != AP_OK)
                break;
        } else if (t->type != REDIS_REPLY_NIL) {
            break;
        }
        res->status = SSTORE_OK;
        res->val = v->str;
        res->len = v->len;
        return AP_OK;
    }
    case SSTORE_PUT:
    case SSTORE_TOUCH:
    case SSTORE_DEL:
        if (r->type != REDIS_REPLY_INTEGER)
            break;
        res->status = op->kind == SSTORE_DEL && r->integer == 0 ? SSTORE_MISSING : SSTORE_OK;
        return AP_OK;
    case SSTORE_LIST: {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || (r->elements - 1) % 3 != 0 ||
            (r->elements - 1) / 3 > op->limit || r->element[0]->type != REDIS_REPLY_INTEGER)
            break;
        size_t n = (r->elements - 1) / 3;
        sstore_entry *e = n ? ap_calloc(n, sizeof(*e)) : NULL;
        for (size_t i = 0; i < n; i++) {
            const redisReply *k = r->element[1 + 3 * i], *t = r->element[2 + 3 * i], *b = r->element[3 + 3 * i];
            if (k->type != REDIS_REPLY_STRING || t->type != REDIS_REPLY_STRING || b->type != REDIS_REPLY_INTEGER ||
                b->integer < 0 || rs_parse_ms(t->str, t->len, &e[i].updated_ms) != AP_OK) {
                ap_free(e);
                snprintf(why, cap, "unexpected reply to list: entry %zu is malformed", i);
                return AP_ERR;
            }
            e[i].key = k->str;
            e[i].key_len = k->len;
            e[i].bytes = (size_t)b->integer;
        }
        res->status = SSTORE_OK;
        res->entries = e;
        res->nentries = n;
        res->more = r->element[0]->integer != 0;
        *entries = e;
        return AP_OK;
    }
    default:
        break;
    }
    snprintf(why, cap, "unexpected reply to %s (type %d)", op->kind < SSTORE_OP_KINDS ? rs_kind_names[op->kind] : "?",
             r->type);
    return AP_ERR;
}

static void rs_op_reply(void *owner, void *cookie, redisReply *r)
{
    rstore *rb = owner;
    sstore_op *op = cookie;
    rs_release(rb, op);
    if (r == NULL) { /* the connection went (or the store closes): the link's reason */
        sstore_fail_soon(op, rs_fail_why(rb));
        return;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* the scripts were flushed: they are loaded again at the next connect */
        char why[200];
        snprintf(why, sizeof(why), "%.120s (scripts flushed? reconnecting)", r->str);
        rlink_drop(rb->link, why);
        sstore_fail_soon(op, rlink_why(rb->link));
        return;
    }
    sstore_result res = {0};
    sstore_entry *entries = NULL;
    char why[200];
    if (rs_result(op, r, &res, &entries, why, sizeof(why)) != AP_OK) {
        snprintf(op->why, sizeof(op->why), "Redis at %s: %s", rlink_name(rb->link), why);
        ap_warn("pool %s: session store: a %s failed: %s", rb->s->pool,
                op->kind < SSTORE_OP_KINDS ? rs_kind_names[op->kind] : "?", op->why);
        res = (sstore_result){.status = SSTORE_UNAVAILABLE, .why = op->why};
    }
    sstore_complete(op, &res); /* last use of rb: the callback may close the store */
    ap_free(entries);
}

/* ---- the link's callbacks ------------------------------------------------ */

static void rs_up(void *owner)
{
    rstore *rb = owner;
    rb->s->st.up = 1;
    while (!link_empty(&rb->waiting) && rlink_get_state(rb->link) == RLINK_UP)
        rs_send(rb, queue_entry(rb->waiting.next, sstore_op, link));
}

/* Down: what was sent failed already (in order); what waited fails now. */
static void rs_down(void *owner, const char *why)
{
    rstore *rb = owner;
    rb->s->st.up = 0;
    while (!link_empty(&rb->waiting)) {
        sstore_op *op = queue_entry(rb->waiting.next, sstore_op, link);
        rs_release(rb, op);
        sstore_fail_soon(op, why);
    }
}

static const rlink_ops rs_link_ops = {rs_setup_count, rs_setup_cmd, rs_setup_check, rs_up, rs_down,
                                      "session operations fail (store_unavailable) until it is back, retrying in "
                                      "the background"};

/* ---- the backend table -------------------------------------------------- */

static void rs_free(rstore *rb)
{
    rlink_free(rb->link);
    ap_free(rb->kbuf);
    ap_free(rb->hprefix);
    ap_free(rb->klex);
    ap_free(rb->kexp);
    ap_free(rb);
}

static int redis_start(sstore *s, const char *rest, int wait_ready, char *err, size_t errlen)
{
    rstore *rb = ap_calloc(1, sizeof(*rb));
    rb->s = s;
    link_init(&rb->waiting);
    link_init(&rb->sent);
    char perr[256], what[160];
    if (rspec_parse("sessionStore", rest, &rb->addr, perr, sizeof(perr)) != AP_OK) {
        snprintf(err, errlen, "pool %s: %s", s->pool, perr); /* sstore.h: the error names the pool */
        rs_free(rb);
        return AP_ERR;
    }
    rb->hprefix = ap_strcat3("ap:{", s->pool, "}:s:");
    rb->hprefix_len = strlen(rb->hprefix);
    rb->klex = ap_strcat3("ap:{", s->pool, "}:lex");
    rb->kexp = ap_strcat3("ap:{", s->pool, "}:exp");
    snprintf(what, sizeof(what), "pool %s: session store", s->pool);
    rb->link = rlink_new(s->base, &rb->addr, what, &rs_link_ops, rb, err, errlen);
    if (rb->link == NULL || (wait_ready && rlink_probe(rb->link, err, errlen) != AP_OK)) {
        rs_free(rb);
        return AP_ERR;
    }
    s->be_data = rb;
    rlink_start(rb->link);
    return AP_OK;
}

static void redis_submit(sstore *s, sstore_op *op)
{
    rstore *rb = s->be_data;
    link_init(&op->link);
    if (rlink_get_state(rb->link) == RLINK_DOWN) {
        sstore_fail_soon(op, rlink_why(rb->link));
        return;
    }
    if (rb->npending >= RS_MAX_PENDING || rb->pending_bytes + rs_op_bytes(op) > RS_MAX_PENDING_BYTES) {
        char why[160];
        snprintf(why, sizeof(why), "Redis at %s: too many session operations pending (%u, %zu bytes; at most %d, %zu)",
                 rlink_name(rb->link), rb->npending, rb->pending_bytes, RS_MAX_PENDING, RS_MAX_PENDING_BYTES);
        if (!rb->full_logged) {
            rb->full_logged = 1;
            ap_warn("pool %s: session store: %s: refusing new ones until they drain", s->pool, why);
        }
        sstore_fail_soon(op, why);
        return;
    }
    rb->npending++;
    rb->pending_bytes += rs_op_bytes(op);
    link_add_tail(&rb->waiting, &op->link);
    if (rlink_get_state(rb->link) == RLINK_UP)
        rs_send(rb, op);
}

static void redis_stop(sstore *s)
{
    rstore *rb = s->be_data;
    if (rb == NULL)
        return;
    /* hand what is written so far to the kernel, without waiting: the
     * writes among it may still happen (sstore.h) */
    rlink_flush(rb->link);
    rb->closing = 1;
    rlink_free(rb->link); /* the sent fail (the front calls them back after stop: sstore.h) */
    rb->link = NULL;
    rs_down(rb, "the store is closing");
    s->st.up = 0;
    s->be_data = NULL;
    rs_free(rb);
}

static void redis_set_ttl(sstore *s)
{
    /* every put and touch sends s->ttl_ms: nothing to change here */
    (void)s;
}

const sstore_backend sstore_redis_backend = {"redis", redis_start, redis_submit, redis_stop, redis_set_ttl, NULL};
