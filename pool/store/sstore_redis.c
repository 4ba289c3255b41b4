/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore_redis.c - the Redis session store backend (sstore_be.h):
 * hiredis through its libevent adapter, on the master's loop, one
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
 * States: DOWN -> CONNECTING -> SETUP (SELECT, SCRIPT LOAD) -> UP, and
 * any -> DOWN on failure.  While CONNECTING or SETUP operations wait
 * (bounded); while DOWN they complete UNAVAILABLE at once with the
 * failure's reason, and a timer tries again with backoff.  An outage is
 * logged once, with the address and the error, and so is its end.
 * hiredis 0.14 has no command timeout: one timer (tick) is the attempt's
 * deadline while connecting and setting up, and while UP a watchdog: if
 * operations wait and nothing has come from Redis for RS_ANSWER_MS, the
 * connection is dropped, what was pending fails, and it reconnects.
 *
 * Names are never resolved (rspec.h refuses them), so connecting
 * never blocks.  wait_ready (start-up only) checks the server with a
 * synchronous connection first (the connect bounded by RS_ANSWER_MS,
 * the whole by RS_READY_MS): simpler than running the master's loop before it
 * serves, and it runs the same set-up commands the async connection
 * does; then the async connection starts and early operations wait for it.
 *
 * hiredis writes with write(2): the master ignores SIGPIPE (server.c).
 * hiredis calls back with a per-connection rconn, not the store: a
 * connection being freed (inside hiredis, possibly later than we let go
 * of it) only ever finds an orphaned rconn, which its last callback
 * (disconnect) frees.  User callbacks run only from normal replies or,
 * for failures, from the front's next loop turn (sstore_fail_soon).
 */
#include "sstore_be.h"
#include "rspec.h"
#include "ap_alloc.h"
#include "ap_backoff.h"
#include "ap_common.h"
#include "ap_log.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An attempt's connect + set-up, and the longest Redis may stay silent
 * while operations wait for it. */
#define RS_ANSWER_MS 5000
/* wait_ready's whole check (sstore.h: "up to 10 s"). */
#define RS_READY_MS 10000
#define RS_BACKOFF_MIN_MS 100
#define RS_BACKOFF_MAX_MS 5000
/* Operations held (waiting + sent) and their key and value bytes:
 * past either, new operations are refused UNAVAILABLE. */
#define RS_MAX_PENDING 10000
#define RS_MAX_PENDING_BYTES ((size_t)64 << 20)
/* A list scans at most this many index members per returned entry. */
#define RS_LIST_SCAN_FACTOR 4

typedef enum { RS_DOWN = 0, RS_CONNECTING, RS_SETUP, RS_UP, RS_STATES } rs_state;
static const char *const rs_state_names[RS_STATES] = {"down", "connecting", "setting up", "up"};

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
    char name[80];            /* "HOST:PORT/DB", for logs and reasons */
    rs_state state;
    rconn *conn;              /* CONNECTING, SETUP, UP: the connection */
    struct event *tick;       /* DOWN: next attempt; CONNECTING, SETUP: the attempt's deadline; UP: watchdog */
    queue_link waiting;       /* CONNECTING, SETUP: operations not sent yet, in start order */
    queue_link sent;          /* operations sent, oldest first: replies come in this order */
    uint32_t npending;        /* waiting + sent */
    size_t pending_bytes;     /* their keys and values */
    int full_logged;          /* a refusal for too many pending was logged and they have not drained since */
    unsigned setup_next;      /* SETUP: the set-up command whose reply comes next */
    int setup_failed;         /* SETUP: a set-up command could not be queued (setup_why): drop at the tick */
    unsigned attempts;        /* failed attempts since it was last up */
    int outage;               /* the outage was logged, its end not yet */
    int ever_up;
    uint64_t down_since_ms;   /* the outage's start (monotonic) */
    uint64_t last_answer_ms;  /* UP: the last reply, or when the sent list last became non-empty */
    char sha[SC_COUNT][41];   /* the scripts' SHA1s, from SCRIPT LOAD */
    char why[160];            /* DOWN: "Redis at ADDR: ...", what operations fail with */
    char setup_why[120];
    char *kbuf;               /* scratch for key names */
    size_t kcap;
    char *hprefix;            /* "ap:{P}:s:" */
    size_t hprefix_len;
    char *klex, *kexp;        /* "ap:{P}:lex", "ap:{P}:exp" */
} rstore;

struct rconn {
    rstore *rb; /* NULL once orphaned: callbacks then do nothing */
    redisAsyncContext *ac;
};

static void rs_tick(evutil_socket_t fd, short what, void *arg);

/* ---- state -------------------------------------------------------------- */

static void rs_set_state(rstore *rb, rs_state to)
{
    static const unsigned char legal[RS_STATES][RS_STATES] = {
        [RS_DOWN] = {[RS_CONNECTING] = 1},
        [RS_CONNECTING] = {[RS_DOWN] = 1, [RS_SETUP] = 1},
        [RS_SETUP] = {[RS_DOWN] = 1, [RS_UP] = 1},
        [RS_UP] = {[RS_DOWN] = 1},
    };
    assert(legal[rb->state][to]);
    ap_debug("pool %s: session store Redis at %s: %s -> %s", rb->s->pool, rb->name, rs_state_names[rb->state],
             rs_state_names[to]);
    rb->state = to;
    rb->s->st.up = to == RS_UP;
}

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

static const char *rs_conn_err(const redisAsyncContext *ac)
{
    return ac->c.err && ac->c.errstr[0] ? ac->c.errstr : "the connection was closed";
}

/* Writes "Redis at ADDR: " and the formatted rest into out (truncated
 * to cap): the form every reason takes. */
static void rs_why(const rstore *rb, char *out, size_t cap, const char *fmt, ...) AP_PRINTF(4, 5);
static void rs_why(const rstore *rb, char *out, size_t cap, const char *fmt, ...)
{
    int n = snprintf(out, cap, "Redis at %s: ", rb->name);
    if (n < 0 || (size_t)n >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Fails every held operation, sent ones first (they were started first). */
static void rs_fail_all(rstore *rb, const char *why)
{
    queue_link *lists[2] = {&rb->sent, &rb->waiting};
    for (int i = 0; i < 2; i++) {
        while (!link_empty(lists[i])) {
            sstore_op *op = queue_entry(lists[i]->next, sstore_op, link);
            rs_release(rb, op);
            sstore_fail_soon(op, why);
        }
    }
}

static struct timeval rs_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static void rs_arm(rstore *rb, uint64_t ms)
{
    struct timeval tv = rs_tv(ms);
    evtimer_add(rb->tick, &tv);
}

/* The connection is gone or failed (why: what happened, without the
 * address): fails what is held, logs the outage's start once, and
 * schedules the next attempt. */
static void rs_down(rstore *rb, const char *why)
{
    rs_why(rb, rb->why, sizeof(rb->why), "%s", why);
    if (rb->state != RS_DOWN)
        rs_set_state(rb, RS_DOWN);
    rs_fail_all(rb, rb->why);
    rb->attempts++;
    if (!rb->outage) {
        rb->outage = 1;
        rb->down_since_ms = ap_now_ms();
        ap_warn("pool %s: session store %s; session operations fail (store_unavailable) until it is back, "
                "retrying in the background",
                rb->s->pool, rb->why);
    } else {
        ap_debug("pool %s: session store attempt %u failed: %s", rb->s->pool, rb->attempts, rb->why);
    }
    uint64_t d = ap_backoff_ms(RS_BACKOFF_MIN_MS, RS_BACKOFF_MAX_MS, rb->attempts);
    rs_arm(rb, ap_backoff_jitter(d, (uint64_t)random()));
}

/* hiredis is tearing conn down (an error): forget it (its disconnect
 * callback, or the caller, frees it) and go down. */
static void rs_lost(rstore *rb, rconn *conn, const char *why)
{
    conn->rb = NULL;
    rb->conn = NULL;
    rs_down(rb, why);
}

/* Lets go of the connection, if any, at our initiative.  Safe inside
 * one of its reply callbacks (hiredis then frees it after the callback);
 * never called inside its connect or disconnect callbacks. */
static void rs_let_go(rstore *rb)
{
    rconn *conn = rb->conn;
    if (conn == NULL)
        return;
    int connected = (conn->ac->c.flags & REDIS_CONNECTED) != 0;
    conn->rb = NULL;
    rb->conn = NULL;
    redisAsyncFree(conn->ac);
    if (!connected) /* no disconnect callback will come */
        ap_free(conn);
}

static void rs_drop(rstore *rb, const char *why)
{
    rs_let_go(rb);
    rs_down(rb, why);
}


/* ---- set-up commands: SELECT (unless db 0), then SCRIPT LOAD each ----- */

static unsigned rs_setup_count(const rstore *rb)
{
    return (rb->addr.db != 0) + SC_COUNT;
}

/* Command i of the set-up into argv/len (dbbuf holds SELECT's number). */
static int rs_setup_cmd(const rstore *rb, unsigned i, const char **argv, size_t *len, char *dbbuf, size_t dbcap)
{
    if (rb->addr.db != 0) {
        if (i == 0) {
            snprintf(dbbuf, dbcap, "%d", rb->addr.db);
            argv[0] = "SELECT";
            argv[1] = dbbuf;
            len[0] = 6;
            len[1] = strlen(dbbuf);
            return 2;
        }
        i--;
    }
    argv[0] = "SCRIPT";
    argv[1] = "LOAD";
    argv[2] = rs_scripts[i];
    len[0] = 6;
    len[1] = 4;
    len[2] = strlen(rs_scripts[i]);
    return 3;
}

/* Checks set-up reply i (and keeps a script's SHA1): AP_OK, or AP_ERR
 * with why. */
static int rs_setup_check(rstore *rb, unsigned i, const redisReply *r, char *why, size_t cap)
{
    char what[40];
    if (rb->addr.db != 0 && i == 0) {
        if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
            return AP_OK;
        snprintf(what, sizeof(what), "SELECT %d", rb->addr.db);
    } else {
        unsigned sc = i - (rb->addr.db != 0);
        if (r->type == REDIS_REPLY_STRING && r->len == 40) {
            memcpy(rb->sha[sc], r->str, 40);
            rb->sha[sc][40] = '\0';
            return AP_OK;
        }
        snprintf(what, sizeof(what), "SCRIPT LOAD (%s)", rs_script_names[sc]);
    }
    if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, cap, "%s: %s", what, r->str);
    else
        snprintf(why, cap, "%s: unexpected reply (type %d)", what, r->type);
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

static void rs_op_reply(redisAsyncContext *ac, void *reply, void *privdata);

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
        snprintf(now, sizeof(now), "%llu", (unsigned long long)ap_wall_ms());
        snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)rb->s->ttl_ms);
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
    if (redisAsyncCommandArgv(rb->conn->ac, rs_op_reply, rb->conn, argc, argv, len) != REDIS_OK) {
        char why[200];
        rs_why(rb, why, sizeof(why), "the command could not be queued: %s", rs_conn_err(rb->conn->ac));
        rs_release(rb, op);
        sstore_fail_soon(op, why);
        return;
    }
    if (link_empty(&rb->sent)) {
        rb->last_answer_ms = ap_now_ms();
        if (!evtimer_pending(rb->tick, NULL))
            rs_arm(rb, RS_ANSWER_MS);
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

static void rs_op_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *conn = privdata;
    rstore *rb = conn->rb;
    const redisReply *r = reply;
    if (rb == NULL)
        return;
    if (r == NULL) { /* hiredis is dropping the connection: fails what is held */
        rs_lost(rb, conn, rs_conn_err(ac));
        return;
    }
    if (link_empty(&rb->sent)) {
        ap_error("pool %s: session store Redis at %s: a reply with no operation waiting for it", rb->s->pool,
                 rb->name);
        return;
    }
    sstore_op *op = queue_entry(rb->sent.next, sstore_op, link);
    rb->last_answer_ms = ap_now_ms();
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* the scripts were flushed: they are loaded again at the next connect */
        char why[200];
        snprintf(why, sizeof(why), "%s (scripts flushed? reconnecting)", r->str);
        rs_drop(rb, why);
        return;
    }
    rs_release(rb, op);
    sstore_result res = {0};
    sstore_entry *entries = NULL;
    char why[200];
    if (rs_result(op, r, &res, &entries, why, sizeof(why)) != AP_OK) {
        rs_why(rb, op->why, sizeof(op->why), "%s", why);
        ap_warn("pool %s: session store: a %s failed: %s", rb->s->pool,
                op->kind < SSTORE_OP_KINDS ? rs_kind_names[op->kind] : "?", op->why);
        res = (sstore_result){.status = SSTORE_UNAVAILABLE, .why = op->why};
    }
    sstore_complete(op, &res); /* last use of rb: the callback may close the store */
    ap_free(entries);
}

/* ---- the connection ----------------------------------------------------- */

static void rs_up(rstore *rb)
{
    evtimer_del(rb->tick);
    rs_set_state(rb, RS_UP);
    if (rb->outage)
        ap_info("pool %s: session store Redis at %s is back, after %llu ms", rb->s->pool, rb->name,
                (unsigned long long)(ap_now_ms() - rb->down_since_ms));
    else if (!rb->ever_up)
        ap_info("pool %s: session store Redis at %s connected", rb->s->pool, rb->name);
    rb->outage = 0;
    rb->attempts = 0;
    rb->ever_up = 1;
    while (!link_empty(&rb->waiting) && rb->state == RS_UP)
        rs_send(rb, queue_entry(rb->waiting.next, sstore_op, link));
}

static void rs_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *conn = privdata;
    rstore *rb = conn->rb;
    char why[160];
    if (rb == NULL)
        return;
    if (reply == NULL) {
        rs_lost(rb, conn, rs_conn_err(ac));
        return;
    }
    if (rs_setup_check(rb, rb->setup_next, reply, why, sizeof(why)) != AP_OK) {
        rs_drop(rb, why);
        return;
    }
    if (++rb->setup_next == rs_setup_count(rb))
        rs_up(rb);
}

static void rs_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rconn *conn = ac->data;
    rstore *rb = conn->rb;
    if (rb == NULL)
        return;
    if (status != REDIS_OK) { /* hiredis frees ac after this, with no other callback */
        rs_lost(rb, conn, rs_conn_err(ac));
        ap_free(conn);
        return;
    }
    rs_set_state(rb, RS_SETUP);
    rb->setup_next = 0;
    for (unsigned i = 0; i < rs_setup_count(rb); i++) {
        const char *argv[3];
        size_t len[3];
        char db[16];
        int argc = rs_setup_cmd(rb, i, argv, len, db, sizeof(db));
        if (redisAsyncCommandArgv(ac, rs_setup_reply, conn, argc, argv, len) != REDIS_OK) {
            /* freeing ac here would pull it from under hiredis: the tick does it */
            snprintf(rb->setup_why, sizeof(rb->setup_why), "the set-up commands could not be queued: %.70s",
                     rs_conn_err(ac));
            rb->setup_failed = 1;
            event_active(rb->tick, EV_TIMEOUT, 0);
            return;
        }
    }
}

static void rs_on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rconn *conn = ac->data;
    (void)status;
    if (conn->rb) /* lost with nothing pending: hiredis frees ac after this */
        rs_lost(conn->rb, conn, rs_conn_err(ac));
    ap_free(conn);
}

/* Starts an attempt (DOWN, at the tick or at start). */
static void rs_attempt(rstore *rb)
{
    redisAsyncContext *ac = redisAsyncConnect(rb->addr.host, rb->addr.port);
    if (ac == NULL) {
        rs_set_state(rb, RS_CONNECTING);
        rs_down(rb, "cannot allocate a connection");
        return;
    }
    rs_set_state(rb, RS_CONNECTING);
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "%s", rs_conn_err(ac));
        redisAsyncFree(ac);
        rs_down(rb, why);
        return;
    }
    rconn *conn = ap_calloc(1, sizeof(*conn));
    conn->rb = rb;
    conn->ac = ac;
    ac->data = conn;
    rb->conn = conn;
    rb->setup_failed = 0;
    if (redisLibeventAttach(ac, rb->s->base) != REDIS_OK) {
        rs_drop(rb, "cannot attach the connection to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, rs_on_connect);
    redisAsyncSetDisconnectCallback(ac, rs_on_disconnect);
    rs_arm(rb, RS_ANSWER_MS);
}

static void rs_tick(evutil_socket_t fd, short what, void *arg)
{
    rstore *rb = arg;
    (void)fd;
    (void)what;
    char why[200];
    switch (rb->state) {
    case RS_DOWN:
        rs_attempt(rb);
        break;
    case RS_CONNECTING:
        snprintf(why, sizeof(why), "not connected within %d ms", RS_ANSWER_MS);
        rs_drop(rb, why);
        break;
    case RS_SETUP:
        if (rb->setup_failed)
            snprintf(why, sizeof(why), "%s", rb->setup_why);
        else
            snprintf(why, sizeof(why), "no answer to SELECT/SCRIPT LOAD within %d ms", RS_ANSWER_MS);
        rs_drop(rb, why);
        break;
    case RS_UP: {
        if (link_empty(&rb->sent))
            break;
        uint64_t idle = ap_now_ms() - rb->last_answer_ms;
        if (idle < RS_ANSWER_MS) {
            rs_arm(rb, RS_ANSWER_MS - idle);
            break;
        }
        snprintf(why, sizeof(why), "no answer within %d ms with %u operations waiting: connection dropped",
                 RS_ANSWER_MS, rb->npending);
        rs_drop(rb, why);
        break;
    }
    default:
        break;
    }
}

/* Start-up only: connects synchronously and runs the set-up commands,
 * all within RS_READY_MS (the connect within RS_ANSWER_MS).  AP_OK, or
 * AP_ERR with err. */
static int rs_probe(rstore *rb, char *err, size_t errlen)
{
    uint64_t deadline = ap_now_ms() + RS_READY_MS;
    char why[160] = "";
    redisContext *c = redisConnectWithTimeout(rb->addr.host, rb->addr.port, rs_tv(RS_ANSWER_MS));
    if (c == NULL) {
        snprintf(why, sizeof(why), "cannot allocate a connection");
    } else if (c->err) {
        snprintf(why, sizeof(why), "%s", c->errstr);
    } else {
        for (unsigned i = 0; i < rs_setup_count(rb) && why[0] == '\0'; i++) {
            const char *argv[3];
            size_t len[3];
            char db[16];
            int argc = rs_setup_cmd(rb, i, argv, len, db, sizeof(db));
            uint64_t now = ap_now_ms();
            if (now >= deadline || redisSetTimeout(c, rs_tv(deadline - now)) != REDIS_OK) {
                snprintf(why, sizeof(why), "no answer to SELECT/SCRIPT LOAD within %d ms", RS_READY_MS);
                break;
            }
            redisReply *r = redisCommandArgv(c, argc, argv, len);
            if (r == NULL && ap_now_ms() >= deadline)
                snprintf(why, sizeof(why), "no answer to SELECT/SCRIPT LOAD within %d ms (%.60s)", RS_READY_MS,
                         c->errstr);
            else if (r == NULL)
                snprintf(why, sizeof(why), "%s", c->errstr[0] ? c->errstr : "no reply");
            else if (rs_setup_check(rb, i, r, why, sizeof(why)) != AP_OK && why[0] == '\0')
                snprintf(why, sizeof(why), "set-up failed");
            if (r)
                freeReplyObject(r);
        }
    }
    if (c)
        redisFree(c);
    if (why[0] == '\0')
        return AP_OK;
    snprintf(err, errlen, "pool %s: session store Redis at %s: %s", rb->s->pool, rb->name, why);
    return AP_ERR;
}

/* ---- the backend table -------------------------------------------------- */

static void rs_free(rstore *rb)
{
    if (rb->tick)
        event_free(rb->tick);
    ap_free(rb->kbuf);
    ap_free(rb->hprefix);
    ap_free(rb->klex);
    ap_free(rb->kexp);
    ap_free(rb);
}

static char *rs_strcat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *p = ap_malloc(la + lb + lc + 1);
    memcpy(p, a, la);
    memcpy(p + la, b, lb);
    memcpy(p + la + lb, c, lc + 1);
    return p;
}

static int redis_start(sstore *s, const char *rest, int wait_ready, char *err, size_t errlen)
{
    rstore *rb = ap_calloc(1, sizeof(*rb));
    rb->s = s;
    link_init(&rb->waiting);
    link_init(&rb->sent);
    char perr[256];
    if (rspec_parse("sessionStore", rest, &rb->addr, perr, sizeof(perr)) != AP_OK) {
        snprintf(err, errlen, "pool %s: %s", s->pool, perr); /* sstore.h: the error names the pool */
        rs_free(rb);
        return AP_ERR;
    }
    rspec_format(&rb->addr, rb->name, sizeof(rb->name));
    rb->hprefix = rs_strcat3("ap:{", s->pool, "}:s:");
    rb->hprefix_len = strlen(rb->hprefix);
    rb->klex = rs_strcat3("ap:{", s->pool, "}:lex");
    rb->kexp = rs_strcat3("ap:{", s->pool, "}:exp");
    rb->tick = evtimer_new(s->base, rs_tick, rb);
    if (rb->tick == NULL) {
        snprintf(err, errlen, "pool %s: session store Redis at %s: cannot make a timer", s->pool, rb->name);
        rs_free(rb);
        return AP_ERR;
    }
    if (wait_ready && rs_probe(rb, err, errlen) != AP_OK) {
        rs_free(rb);
        return AP_ERR;
    }
    s->be_data = rb;
    rs_attempt(rb);
    return AP_OK;
}

static void redis_submit(sstore *s, sstore_op *op)
{
    rstore *rb = s->be_data;
    link_init(&op->link);
    if (rb->state == RS_DOWN) {
        sstore_fail_soon(op, rb->why);
        return;
    }
    if (rb->npending >= RS_MAX_PENDING || rb->pending_bytes + rs_op_bytes(op) > RS_MAX_PENDING_BYTES) {
        char why[160];
        rs_why(rb, why, sizeof(why), "too many session operations pending (%u, %zu bytes; at most %d, %zu)",
               rb->npending, rb->pending_bytes, RS_MAX_PENDING, RS_MAX_PENDING_BYTES);
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
    if (rb->state == RS_UP)
        rs_send(rb, op);
}

static void redis_stop(sstore *s)
{
    rstore *rb = s->be_data;
    if (rb == NULL)
        return;
    if (rb->conn && rb->state == RS_UP && !rb->conn->ac->c.err) {
        /* hand what is written so far to the kernel, without waiting: the
         * writes among it may still happen (sstore.h) */
        int done = 0;
        redisBufferWrite(&rb->conn->ac->c, &done);
    }
    rs_let_go(rb);
    rs_fail_all(rb, "the store is closing"); /* the front calls them back after stop (sstore.h) */
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
