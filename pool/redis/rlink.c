/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rlink.c - one kept-up asynchronous Redis connection (see rlink.h).
 *
 * The commands sent and not yet answered are a ring of (reply function,
 * cookie) in send order; set-up commands are in it too (function NULL,
 * cookie = their index).  hiredis's own privdata is the per-connection
 * record rconn, so a reply that comes after we let go of a connection
 * finds it orphaned and does nothing.  One timer (tick): DOWN, the next
 * attempt; CONNECTING and SETUP, the attempt's deadline; UP, the
 * watchdog.
 */
#include "rlink.h"
#include "rev.h"
#include "ap_alloc.h"
#include "ap_backoff.h"
#include "ap_common.h"
#include "ap_log.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <event2/event.h>

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rlink_probe's whole check. */
#define RLINK_READY_MS 10000

static const char *const rl_state_names[RLINK_STATES] = {"down", "connecting", "setting up", "up"};

typedef struct rconn rconn;

typedef struct {
    rlink_reply_fn *fn; /* NULL: set-up command number (uintptr_t)cookie */
    void *cookie;
} rl_pending;

struct rlink {
    struct event_base *base;
    rspec addr;
    char name[80];            /* "HOST:PORT/DB" */
    char *what;               /* "pool P: session store" */
    const rlink_ops *ops;
    void *owner;
    rlink_state state;
    rconn *conn;              /* CONNECTING, SETUP, UP */
    struct event *tick;
    rl_pending *ring;         /* sent, not answered: [head, head + n) modulo cap */
    unsigned head, n, cap;
    unsigned setup_total;     /* SETUP: SELECT (unless db 0) + the owner's */
    unsigned setup_next;      /* SETUP: the set-up reply that comes next */
    int setup_failed;         /* SETUP: a set-up command could not be queued (setup_why): dropped at the tick */
    char setup_why[120];
    unsigned attempts;        /* failed attempts since it was last up */
    int outage;               /* the outage was logged, its end not yet */
    int ever_up;
    uint64_t connects;
    uint64_t down_since_ms;   /* out of UP since (0 while UP) */
    uint64_t outage_since_ms; /* the logged outage's start */
    uint64_t last_answer_ms;  /* UP: the last reply, or when the ring last became non-empty */
    uint64_t slack_ms;        /* a blocking command's allowance */
    char why[200];
};

struct rconn {
    rlink *l; /* NULL once orphaned */
    redisAsyncContext *ac;
};

static void rl_tick(evutil_socket_t fd, short what, void *arg);

static void rl_set_state(rlink *l, rlink_state to)
{
    static const unsigned char legal[RLINK_STATES][RLINK_STATES] = {
        [RLINK_DOWN] = {[RLINK_CONNECTING] = 1},
        [RLINK_CONNECTING] = {[RLINK_DOWN] = 1, [RLINK_SETUP] = 1},
        [RLINK_SETUP] = {[RLINK_DOWN] = 1, [RLINK_UP] = 1},
        [RLINK_UP] = {[RLINK_DOWN] = 1},
    };
    assert(legal[l->state][to]);
    ap_debug("%s Redis at %s: %s -> %s", l->what, l->name, rl_state_names[l->state], rl_state_names[to]);
    if (to == RLINK_UP)
        l->down_since_ms = 0;
    else if (l->state == RLINK_UP || l->down_since_ms == 0)
        l->down_since_ms = ap_now_ms();
    l->state = to;
}

static const char *rl_conn_err(const redisAsyncContext *ac)
{
    return ac->c.err && ac->c.errstr[0] ? ac->c.errstr : "the connection was closed";
}

static void rl_arm(rlink *l, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(l->tick, &tv);
}

static void rl_push(rlink *l, rlink_reply_fn *fn, void *cookie)
{
    if (l->n == l->cap) {
        unsigned cap = l->cap ? 2 * l->cap : 16;
        rl_pending *r = ap_malloc(cap * sizeof(*r));
        for (unsigned i = 0; i < l->n; i++)
            r[i] = l->ring[(l->head + i) % l->cap];
        ap_free(l->ring);
        l->ring = r;
        l->cap = cap;
        l->head = 0;
    }
    l->ring[(l->head + l->n) % l->cap] = (rl_pending){fn, cookie};
    l->n++;
}

static rl_pending rl_pop(rlink *l)
{
    rl_pending p = l->ring[l->head];
    l->head = (l->head + 1) % l->cap;
    l->n--;
    return p;
}

/* Tells every command waiting for a reply that none will come, in send order. */
static void rl_fail_pending(rlink *l)
{
    while (l->n > 0) {
        rl_pending p = rl_pop(l);
        if (p.fn)
            p.fn(l->owner, p.cookie, NULL);
    }
    l->slack_ms = 0;
}

/* The connection is gone (why: without the address): pending replies
 * told NULL, the outage logged once, the next attempt scheduled, the
 * owner told. */
static void rl_down(rlink *l, const char *why)
{
    int n = snprintf(l->why, sizeof(l->why), "Redis at %s: %s", l->name, why);
    (void)n;
    if (l->state != RLINK_DOWN)
        rl_set_state(l, RLINK_DOWN);
    rl_fail_pending(l);
    l->attempts++;
    if (!l->outage) {
        l->outage = 1;
        l->outage_since_ms = ap_now_ms();
        ap_warn("%s %s; %s", l->what, l->why, l->ops->outage_note ? l->ops->outage_note : "retrying in the background");
    } else {
        ap_debug("%s: attempt %u failed: %s", l->what, l->attempts, l->why);
    }
    uint64_t d = ap_backoff_ms(RLINK_BACKOFF_MIN_MS, RLINK_BACKOFF_MAX_MS, l->attempts);
    rl_arm(l, ap_backoff_jitter(d, (uint64_t)random()));
    if (l->ops->down)
        l->ops->down(l->owner, l->why);
}

/* hiredis is tearing conn down: forget it (its disconnect callback, or
 * the caller, frees it) and go down. */
static void rl_lost(rlink *l, rconn *conn, const char *why)
{
    conn->l = NULL;
    l->conn = NULL;
    rl_down(l, why);
}

/* Lets go of the connection at our initiative.  Safe inside one of its
 * reply callbacks (hiredis frees it after the callback); never inside its
 * connect or disconnect callbacks. */
static void rl_let_go(rlink *l)
{
    rconn *conn = l->conn;
    if (conn == NULL)
        return;
    int connected = (conn->ac->c.flags & REDIS_CONNECTED) != 0;
    conn->l = NULL;
    l->conn = NULL;
    redisAsyncFree(conn->ac);
    if (!connected) /* no disconnect callback will come */
        ap_free(conn);
}

void rlink_drop(rlink *l, const char *why)
{
    rl_let_go(l);
    rl_down(l, why);
}

/* Set-up command i into argv/len: SELECT first unless db 0, then the owner's. */
static int rl_setup_cmd(rlink *l, unsigned i, const char **argv, size_t *len, char *scratch, size_t cap)
{
    if (l->addr.db != 0) {
        if (i == 0) {
            snprintf(scratch, cap, "%d", l->addr.db);
            argv[0] = "SELECT";
            argv[1] = scratch;
            len[0] = 6;
            len[1] = strlen(scratch);
            return 2;
        }
        i--;
    }
    return l->ops->setup_cmd(l->owner, i, argv, len, scratch, cap);
}

static int rl_setup_check(rlink *l, unsigned i, const redisReply *r, char *why, size_t cap)
{
    if (l->addr.db != 0) {
        if (i == 0) {
            if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0)
                return AP_OK;
            snprintf(why, cap, "SELECT %d: %s", l->addr.db, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            return AP_ERR;
        }
        i--;
    }
    return l->ops->setup_check(l->owner, i, r, why, cap);
}

static void rl_up(rlink *l)
{
    evtimer_del(l->tick);
    rl_set_state(l, RLINK_UP);
    if (l->outage)
        ap_info("%s Redis at %s is back, after %llu ms", l->what, l->name,
                (unsigned long long)(ap_now_ms() - l->outage_since_ms));
    else if (!l->ever_up)
        ap_info("%s Redis at %s connected", l->what, l->name);
    l->outage = 0;
    l->attempts = 0;
    l->ever_up = 1;
    l->connects++;
    if (l->ops->up)
        l->ops->up(l->owner);
}

static void rl_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rconn *conn = privdata;
    rlink *l = conn->l;
    redisReply *r = reply;
    if (l == NULL)
        return;
    if (r == NULL) {
        rl_lost(l, conn, rl_conn_err(ac));
        return;
    }
    if (l->n == 0) {
        ap_error("%s Redis at %s: a reply with no command waiting for it", l->what, l->name);
        return;
    }
    l->last_answer_ms = ap_now_ms();
    rl_pending p = rl_pop(l);
    if (p.fn == NULL) {
        char why[160];
        if (rl_setup_check(l, (unsigned)(uintptr_t)p.cookie, r, why, sizeof(why)) != AP_OK) {
            rlink_drop(l, why);
            return;
        }
        if (++l->setup_next == l->setup_total)
            rl_up(l);
        return;
    }
    if (l->n == 0)
        l->slack_ms = 0;
    p.fn(l->owner, p.cookie, r);
}

static void rl_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rconn *conn = ac->data;
    rlink *l = conn->l;
    if (l == NULL)
        return;
    if (status != REDIS_OK) { /* hiredis frees ac after this, with no other callback */
        rl_lost(l, conn, rl_conn_err(ac));
        ap_free(conn);
        return;
    }
    rl_set_state(l, RLINK_SETUP);
    l->setup_next = 0;
    l->setup_total = (l->addr.db != 0) + (l->ops->setup_count ? l->ops->setup_count(l->owner) : 0);
    if (l->setup_total == 0) {
        rl_up(l);
        return;
    }
    for (unsigned i = 0; i < l->setup_total; i++) {
        const char *argv[8];
        size_t len[8];
        char scratch[32];
        int argc = rl_setup_cmd(l, i, argv, len, scratch, sizeof(scratch));
        if (redisAsyncCommandArgv(ac, rl_reply, conn, argc, argv, len) != REDIS_OK) {
            /* freeing ac here would pull it from under hiredis: the tick does it */
            snprintf(l->setup_why, sizeof(l->setup_why), "the set-up commands could not be queued: %.70s",
                     rl_conn_err(ac));
            l->setup_failed = 1;
            event_active(l->tick, EV_TIMEOUT, 0);
            return;
        }
        rl_push(l, NULL, (void *)(uintptr_t)i);
    }
}

static void rl_on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    rconn *conn = ac->data;
    (void)status;
    if (conn->l) /* lost with nothing pending: hiredis frees ac after this */
        rl_lost(conn->l, conn, rl_conn_err(ac));
    ap_free(conn);
}

/* Starts an attempt (DOWN). */
static void rl_attempt(rlink *l)
{
    redisAsyncContext *ac = redisAsyncConnect(l->addr.host, l->addr.port);
    rl_set_state(l, RLINK_CONNECTING);
    if (ac == NULL) {
        rl_down(l, "cannot allocate a connection");
        return;
    }
    if (ac->err) {
        char why[160];
        snprintf(why, sizeof(why), "%s", rl_conn_err(ac));
        redisAsyncFree(ac);
        rl_down(l, why);
        return;
    }
    rconn *conn = ap_calloc(1, sizeof(*conn));
    conn->l = l;
    conn->ac = ac;
    ac->data = conn;
    l->conn = conn;
    l->setup_failed = 0;
    if (rev_attach(ac, l->base) != AP_OK) {
        rlink_drop(l, "cannot attach the connection to the event loop");
        return;
    }
    redisAsyncSetConnectCallback(ac, rl_on_connect);
    redisAsyncSetDisconnectCallback(ac, rl_on_disconnect);
    rl_arm(l, RLINK_ANSWER_MS);
}

static void rl_tick(evutil_socket_t fd, short what, void *arg)
{
    rlink *l = arg;
    (void)fd;
    (void)what;
    char why[200];
    switch (l->state) {
    case RLINK_DOWN:
        rl_attempt(l);
        break;
    case RLINK_CONNECTING:
        snprintf(why, sizeof(why), "not connected within %d ms", RLINK_ANSWER_MS);
        rlink_drop(l, why);
        break;
    case RLINK_SETUP:
        if (l->setup_failed)
            snprintf(why, sizeof(why), "%s", l->setup_why);
        else
            snprintf(why, sizeof(why), "no answer to the set-up commands within %d ms", RLINK_ANSWER_MS);
        rlink_drop(l, why);
        break;
    case RLINK_UP: {
        if (l->n == 0)
            break;
        uint64_t allowed = RLINK_ANSWER_MS + l->slack_ms, idle = ap_now_ms() - l->last_answer_ms;
        if (idle < allowed) {
            rl_arm(l, allowed - idle);
            break;
        }
        snprintf(why, sizeof(why), "no answer within %llu ms with %u commands waiting: connection dropped",
                 (unsigned long long)allowed, l->n);
        rlink_drop(l, why);
        break;
    }
    default:
        break;
    }
}

rlink *rlink_new(struct event_base *base, const rspec *addr, const char *what, const rlink_ops *ops, void *owner,
                 char *err, size_t errlen)
{
    rlink *l = ap_calloc(1, sizeof(*l));
    l->base = base;
    l->addr = *addr;
    rspec_format(addr, l->name, sizeof(l->name));
    l->what = ap_strdup(what);
    l->ops = ops;
    l->owner = owner;
    l->down_since_ms = ap_now_ms();
    l->tick = evtimer_new(base, rl_tick, l);
    if (l->tick == NULL) {
        snprintf(err, errlen, "%s Redis at %s: cannot make a timer", what, l->name);
        ap_free(l->what);
        ap_free(l);
        return NULL;
    }
    return l;
}

void rlink_start(rlink *l)
{
    if (l->state == RLINK_DOWN && l->conn == NULL)
        rl_attempt(l);
}

int rlink_probe(rlink *l, char *err, size_t errlen)
{
    uint64_t deadline = ap_now_ms() + RLINK_READY_MS;
    char why[160] = "";
    struct timeval tv = {RLINK_ANSWER_MS / 1000, 0};
    redisContext *c = redisConnectWithTimeout(l->addr.host, l->addr.port, tv);
    unsigned total = (l->addr.db != 0) + (l->ops->setup_count ? l->ops->setup_count(l->owner) : 0);
    if (c == NULL) {
        snprintf(why, sizeof(why), "cannot allocate a connection");
    } else if (c->err) {
        snprintf(why, sizeof(why), "%s", c->errstr);
    } else {
        for (unsigned i = 0; i < total && why[0] == '\0'; i++) {
            const char *argv[8];
            size_t len[8];
            char scratch[32];
            int argc = rl_setup_cmd(l, i, argv, len, scratch, sizeof(scratch));
            uint64_t now = ap_now_ms();
            struct timeval left = {(time_t)((deadline - now) / 1000), (suseconds_t)((deadline - now) % 1000) * 1000};
            if (now >= deadline || redisSetTimeout(c, left) != REDIS_OK) {
                snprintf(why, sizeof(why), "no answer to the set-up commands within %d ms", RLINK_READY_MS);
                break;
            }
            redisReply *r = redisCommandArgv(c, argc, argv, len);
            if (r == NULL && ap_now_ms() >= deadline)
                snprintf(why, sizeof(why), "no answer to the set-up commands within %d ms (%.60s)", RLINK_READY_MS,
                         c->errstr);
            else if (r == NULL)
                snprintf(why, sizeof(why), "%s", c->errstr[0] ? c->errstr : "no reply");
            else if (rl_setup_check(l, i, r, why, sizeof(why)) != AP_OK && why[0] == '\0')
                snprintf(why, sizeof(why), "set-up failed");
            if (r)
                freeReplyObject(r);
        }
    }
    if (c)
        redisFree(c);
    if (why[0] == '\0')
        return AP_OK;
    snprintf(err, errlen, "%s Redis at %s: %s", l->what, l->name, why);
    return AP_ERR;
}

/* argv as one RESP array of bulk strings, in an allocation of the
 * caller's to free, its length in *out_len, with a NUL after it (not
 * counted): hiredis looks at a formatted command with strchr to find its
 * first argument, as its own sds-built ones are NUL-terminated.  hiredis's
 * own redisFormatSdsCommandArgv builds it with a formatted print per
 * argument (7,000 instructions for a session put of 1 KiB, measured):
 * this is the same bytes. */
static char *rl_format(int argc, const char **argv, const size_t *len, size_t *out_len)
{
    size_t total = 1 + 20 + 2 + 1;
    for (int i = 0; i < argc; i++)
        total += 1 + 20 + 2 + len[i] + 2;
    char *buf = ap_malloc(total), *p = buf;
    *p++ = '*';
    p = ap_decimal(p, (uint64_t)argc);
    *p++ = '\r';
    *p++ = '\n';
    for (int i = 0; i < argc; i++) {
        *p++ = '$';
        p = ap_decimal(p, len[i]);
        *p++ = '\r';
        *p++ = '\n';
        if (len[i])
            memcpy(p, argv[i], len[i]);
        p += len[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    *out_len = (size_t)(p - buf);
    *p = '\0';
    return buf;
}

int rlink_cmd(rlink *l, rlink_reply_fn *fn, void *cookie, int argc, const char **argv, const size_t *len)
{
    if (l->state != RLINK_UP || l->conn == NULL)
        return AP_ERR;
    size_t n;
    char *cmd = rl_format(argc, argv, len, &n);
    int rc = redisAsyncFormattedCommand(l->conn->ac, rl_reply, l->conn, cmd, n);
    ap_free(cmd);
    if (rc != REDIS_OK) {
        snprintf(l->setup_why, sizeof(l->setup_why), "a command could not be queued: %.80s",
                 rl_conn_err(l->conn->ac));
        ap_warn("%s Redis at %s: %s", l->what, l->name, l->setup_why);
        return AP_ERR;
    }
    if (l->n == 0) {
        l->last_answer_ms = ap_now_ms();
        if (!evtimer_pending(l->tick, NULL))
            rl_arm(l, RLINK_ANSWER_MS + l->slack_ms);
    }
    rl_push(l, fn, cookie);
    return AP_OK;
}

void rlink_set_slack(rlink *l, uint64_t ms)
{
    l->slack_ms = ms;
}

void rlink_flush(rlink *l)
{
    if (l->conn && l->state == RLINK_UP && !l->conn->ac->c.err) {
        int done = 0;
        redisBufferWrite(&l->conn->ac->c, &done);
    }
}

void rlink_free(rlink *l)
{
    if (l == NULL)
        return;
    rl_let_go(l);
    rl_fail_pending(l);
    event_free(l->tick);
    ap_free(l->ring);
    ap_free(l->what);
    ap_free(l);
}

rlink_state rlink_get_state(const rlink *l)
{
    return l->state;
}

const char *rlink_state_name(rlink_state s)
{
    return s < RLINK_STATES ? rl_state_names[s] : "?";
}

const char *rlink_why(const rlink *l)
{
    return l->why;
}

const char *rlink_name(const rlink *l)
{
    return l->name;
}

unsigned rlink_pending(const rlink *l)
{
    return l->n;
}

uint64_t rlink_down_since_ms(const rlink *l)
{
    return l->state == RLINK_UP ? 0 : l->down_since_ms;
}

uint64_t rlink_connects(const rlink *l)
{
    return l->connects;
}
