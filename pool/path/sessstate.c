/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sessstate.c - session state in the master (see sessstate.h).
 *
 * Every store operation takes a reference on its session (session.c), so
 * a session outlives what it asked the store; the callbacks find the
 * session's running message through s->current.  One write per session
 * is in flight at a time; a newer state waits for it (s->next_commit)
 * and replaces an older one waiting, so a handler that saves in a loop
 * holds at most two states in the master.  A state is a whole snapshot:
 * the newest write that succeeds decides what is durable and whether the
 * message's answer is store_unavailable.  The messages this file moves
 * are always their session's running one: STORE_WAIT (not sent yet) or
 * COMMITTING (answered by its worker, answer held here in m->held).
 * Never blocks: the store does its work off the loop.
 */
#include "sessstate.h"
#include "answer.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "retry.h"
#include "sched.h"
#include "scan.h"
#include "server.h"
#include "session.h"
#include "sstore.h"
#include "worker.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#define EMPTY_STATE "{}"
/* A message that sent no state touches its session's row when the last
 * write or touch is older than this part of sessionTtl. */
#define TOUCH_FRACTION 8

/* The answer a worker gave, held while its state commits. */
typedef struct {
    ap_frame_hdr h;
    char payload[];
} held_answer;

/* One commit in flight: the state it writes, which becomes the
 * session's cached state once it is durable (handed over, not copied). */
typedef struct {
    pool_t *p;
    session *s;
    uint32_t len;
    char *json;                 /* NUL-terminated */
} commit_ctx;

static void commit_free(commit_ctx *c)
{
    ap_free(c->json);
    ap_free(c);
}

/* Whether s has a state write in flight or waiting for one. */
static inline int committing(const session *s)
{
    return s->commits != 0 || s->next_commit != NULL;
}

/* One read in flight. */
typedef struct {
    pool_t *p;
    session *s;
} load_ctx;

static const char *store_spec(const pool_t *p, char *buf, size_t cap)
{
    if (p->cfg->session_store && p->cfg->session_store[0])
        return p->cfg->session_store;
    snprintf(buf, cap, "sqlite:%s.sessions.db", server.cfg->socket);
    return buf;
}

int sessstate_open(pool_t *p, int wait_ready)
{
    if (!p->cfg->sessions || p->store)
        return AP_OK;
    char spec_buf[4200], err[512];
    const char *spec = store_spec(p, spec_buf, sizeof(spec_buf));
    p->store = sstore_open(server.base, spec, p->name, (uint64_t)p->cfg->session_ttl, wait_ready, err, sizeof(err));
    if (p->store == NULL) {
        ap_error("%s", err); /* names the pool */
        return AP_ERR;
    }
    sstore_set_sync(p->store, (sstore_sync)p->cfg->session_sync);
    p->store_cfg = p->cfg;
    p->store_cfg_epoch = server.reload_epoch;
    p->store_spec = ap_strdup(spec);
    p->store_none = strcmp(spec, "none") == 0;
    ap_info("pool %s: session state in %s", p->name, spec);
    return AP_OK;
}

void sessstate_close(pool_t *p)
{
    p->store_closing = 1;
    sstore_close(p->store);
    p->store = NULL;
    ap_free(p->store_spec);
    p->store_spec = NULL;
}

/* p's store, opened late when a reload turned sessions on; NULL (state
 * not kept) when it cannot be, or with sessionStore none.  What a reload
 * may change (spec, TTL, sync) is looked at again only when p's settings
 * changed since the last look (another cfg, or a reload started since:
 * a freed cfg's address may come back), not at every state: the default
 * spec is a formatted print. */
static sstore *store_of(pool_t *p)
{
    if (p->store == NULL) {
        if (sessstate_open(p, 0) != AP_OK)
            return NULL;
    } else if (p->store_cfg != p->cfg || p->store_cfg_epoch != server.reload_epoch) {
        char spec_buf[4200];
        const char *want = store_spec(p, spec_buf, sizeof(spec_buf));
        if (strcmp(want, p->store_spec) != 0 && !p->store_spec_warned) {
            p->store_spec_warned = 1;
            ap_warn("pool %s: sessionStore changed to %s by a reload: it keeps %s until agentpoold restarts",
                    p->name, want, p->store_spec);
        }
        sstore_set_ttl(p->store, (uint64_t)p->cfg->session_ttl);
        sstore_set_sync(p->store, (sstore_sync)p->cfg->session_sync);
        p->store_cfg = p->cfg;
        p->store_cfg_epoch = server.reload_epoch;
    }
    return p->store_none ? NULL : p->store;
}

/* Whether m's session carries state: sessions with a real store. */
static int carries_state(const msg *m)
{
    return m->sess != NULL && m->pool->store != NULL && !m->pool->store_none;
}

int sessstate_ready(const msg *m)
{
    const pool_t *p = m->pool;
    if (m->sess == NULL || p->store_none)
        return 1;
    if (p->store == NULL)
        return 0; /* sessions turned on by a reload: sessstate_wait opens it */
    const session *s = m->sess;
    return s->sstate == SSTATE_READY && !committing(s);
}

/* The state of s is ready and nothing commits: its waiting running
 * message goes to the head of the queue. */
static void send_on(pool_t *p, session *s)
{
    msg *m = s->current;
    if (m == NULL || m->state != MSG_STORE_WAIT || s->sstate != SSTATE_READY || committing(s))
        return;
    if (m->store_hold) {
        m->store_hold = 0;
        queue_unhold(&p->queue);
    }
    msg_set_state(&server.msgs, m, MSG_QUEUED);
    queue_push_front(&p->queue, &m->qlink);
    sched_pump_soon(p);
}

/* json (len bytes, NUL-terminated, allocated) becomes s's cached state. */
static void cache_take(pool_t *p, session *s, char *json, size_t len)
{
    session_table *t = p->sessions;
    session_drop_state(t, s);
    s->json = json;
    s->json_len = (uint32_t)len;
    t->state_bytes += len;
    s->sstate = SSTATE_READY;
}

/* A copy of json (len bytes) becomes s's cached state. */
static void cache(pool_t *p, session *s, const char *json, size_t len)
{
    char *copy = ap_malloc(len + 1);
    memcpy(copy, json, len);
    copy[len] = '\0';
    cache_take(p, s, copy, len);
}

/* Logs a store failure: the first, then one in 1000. */
static void log_failure(pool_t *p, const session *s, const char *what, const char *why)
{
    uint64_t n = p->sessions->n.store_failures;
    if (n == 1 || n % 1000 == 0)
        ap_error("pool %s: session %s: %s failed (%llu store failure%s so far): %s", p->name, s->key, what,
                 (unsigned long long)n, n == 1 ? "" : "s", why ? why : "?");
}

static void load_done(void *arg, const sstore_result *r)
{
    load_ctx *c = arg;
    pool_t *p = c->p;
    session *s = c->s;
    ap_free(c);
    if (r->status == SSTORE_UNAVAILABLE) {
        s->sstate = SSTATE_UNKNOWN;
        p->sessions->n.store_failures++;
        log_failure(p, s, "reading its state", r->why);
        msg *m = s->current;
        if (m && m->state == MSG_STORE_WAIT) {
            char why[320];
            snprintf(why, sizeof(why), "the session store could not read the session's state: %s",
                     r->why ? r->why : "?");
            answer_error(m, ERR_STORE_UNAVAILABLE, why, NULL);
        }
    } else {
        p->sessions->n.loads++;
        s->store_hint = r->hint;
        if (r->status == SSTORE_OK)
            cache(p, s, r->val, r->len);
        else
            cache(p, s, EMPTY_STATE, sizeof(EMPTY_STATE) - 1);
        s->touched_ms = ap_now_ms();
        send_on(p, s);
    }
    session_unref(p->sessions, s);
}

void sessstate_wait(msg *m)
{
    pool_t *p = m->pool;
    session *s = m->sess;
    msg_set_state(&server.msgs, m, MSG_STORE_WAIT);
    sstore *st = store_of(p);
    if (st == NULL) {
        answer_error(m, ERR_STORE_UNAVAILABLE, "the pool's session store could not be opened (see the server log)",
                     NULL);
        return;
    }
    if (s->sstate != SSTATE_UNKNOWN)
        return; /* LOADING, or READY with commits in flight: their end sends it on */
    s->sstate = SSTATE_LOADING;
    s->refs++;
    load_ctx *c = ap_malloc(sizeof(*c));
    c->p = p;
    c->s = s;
    sstore_get(st, s->key, s->key_len, load_done, c);
}

int sessstate_text(const msg *m, const char **text, uint32_t *len)
{
    if (!carries_state(m) || m->sess->sstate != SSTATE_READY) {
        *text = NULL;
        *len = 0;
        return 0;
    }
    *text = m->sess->json;
    *len = m->sess->json_len;
    return 1;
}

/* The held answer of s's running message, or what replaces it. */
static void deliver(pool_t *p, session *s)
{
    msg *m = s->current;
    if (m == NULL || m->state != MSG_COMMITTING || committing(s))
        return;
    held_answer *ha = m->held;
    m->held = NULL;
    msg_set_state(&server.msgs, m, MSG_RUNNING); /* as when its worker answered: the one path writes it */
    if (s->fail) {
        reply_code code = (reply_code)(s->fail - 1);
        answer_error(m, code, s->fail_why ? s->fail_why : "the session state could not be committed", NULL);
    } else {
        worker_answer_frame(NULL, m, &ha->h, ha->payload, NULL);
    }
    ap_free(ha);
    (void)p;
}

static void commit_done(void *arg, const sstore_result *r);

/* Hands c (its session reference taken) to the store: c->json is not
 * copied, it lives until commit_done. */
static void write_state(pool_t *p, session *s, commit_ctx *c)
{
    s->commits++;
    sstore_put_ref(p->store, s->key, s->key_len, c->json, c->len, s->store_hint, commit_done, c);
}

static void commit_done(void *arg, const sstore_result *r)
{
    commit_ctx *c = arg;
    pool_t *p = c->p;
    session *s = c->s;
    s->commits--;
    if (r->status == SSTORE_OK) {
        p->sessions->n.commits++;
        s->store_hint = r->hint;
        cache_take(p, s, c->json, c->len);
        c->json = NULL;
        s->touched_ms = ap_now_ms();
        if (s->fail == ERR_STORE_UNAVAILABLE + 1) {
            /* a state is a whole snapshot: this later one, durable, holds
             * what the failed write had */
            s->fail = 0;
        }
    } else {
        p->sessions->n.store_failures++;
        log_failure(p, s, "committing its state", r->why);
        if (s->fail == 0 && s->current) {
            char why[320];
            snprintf(why, sizeof(why), "the session store could not commit the session's state: %s",
                     r->why ? r->why : "?");
            s->fail = (uint8_t)(ERR_STORE_UNAVAILABLE + 1);
            ap_free(s->fail_why);
            s->fail_why = ap_strdup(why);
        }
    }
    commit_free(c);
    commit_ctx *next = s->next_commit;
    if (next) {
        s->next_commit = NULL;
        if (p->store_closing) {
            commit_free(next); /* the store is closing: nobody waits for it any more */
            session_unref(p->sessions, s);
        } else {
            write_state(p, s, next); /* takes over next's reference */
        }
    }
    if (!committing(s)) {
        deliver(p, s);
        send_on(p, s);
    }
    session_unref(p->sessions, s);
}

/* Fails s's running message's state with code and why (the first
 * failure is the one told). */
static void fail_state(session *s, reply_code code, const char *why)
{
    if (s->fail)
        return;
    s->fail = (uint8_t)(code + 1);
    ap_free(s->fail_why);
    s->fail_why = ap_strdup(why);
}

void sessstate_frame(worker *w, const ap_frame_hdr *h, const char *payload)
{
    msg *m = msg_lookup(&server.msgs, h->id);
    if (m == NULL || m->state != MSG_RUNNING || m->worker != w || m->worker_gen != w->proc.generation ||
        !carries_state(m) || m->sess->current != m) {
        ap_debug("%s: STATE for message %llu it does not run dropped", w->name, (unsigned long long)h->id);
        return;
    }
    if (m->detached) {
        /* answered timeout or cancelled already: what its handler goes on
         * to change is not committed (its saves before that were) */
        m->pool->sessions->n.state_dropped++;
        ap_debug("%s: STATE for message %llu (type %s), answered already, not committed", w->name,
                 (unsigned long long)h->id, m->type);
        return;
    }
    pool_t *p = m->pool;
    session *s = m->sess;
    char err[SCAN_ERROR_MAX];
    const char *bad = NULL;
    size_t i = 0;
    while (i < h->len && (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\n' || payload[i] == '\r'))
        i++;
    if (h->len > (uint64_t)p->cfg->max_session_bytes)
        bad = "session state too large";
    else if (scan_json_value(payload, h->len, AP_MAX_JSON_DEPTH, 0, err, NULL) != AP_OK)
        bad = err;
    else if (i >= h->len || payload[i] != '{')
        bad = "session state is not a JSON object";
    if (bad) {
        char why[256];
        snprintf(why, sizeof(why), "its session state was refused: %s", bad);
        ap_warn("%s (pid %d): message %llu (type %s): %s; not committed", w->name, (int)w->proc.pid,
                (unsigned long long)h->id, m->type, why);
        fail_state(s, ERR_AGENT_ERROR, why);
        return;
    }
    sstore *st = store_of(p);
    if (st == NULL) {
        fail_state(s, ERR_STORE_UNAVAILABLE, "the pool's session store could not be opened (see the server log)");
        return;
    }
    commit_ctx *c = ap_malloc(sizeof(*c));
    c->p = p;
    c->s = s;
    c->len = h->len;
    c->json = ap_malloc((size_t)h->len + 1);
    memcpy(c->json, payload, h->len);
    c->json[h->len] = '\0';
    if (s->commits) {
        /* One write at a time per session: the newest state waits for the
         * one in flight and replaces any older one waiting (what a handler
         * saving in a loop leaves is bounded by two states). */
        if (s->next_commit) {
            commit_free(s->next_commit);
            p->sessions->n.coalesced++;
        } else {
            s->refs++;
        }
        s->next_commit = c;
        return;
    }
    s->refs++;
    write_state(p, s, c);
}

/* The store has nothing new of s: restart its TTL now and then. */
static void maybe_touch(pool_t *p, session *s)
{
    uint64_t now = ap_now_ms(), every = (uint64_t)p->cfg->session_ttl / TOUCH_FRACTION;
    if (now - s->touched_ms < every || p->store == NULL)
        return;
    s->touched_ms = now;
    sstore_touch(p->store, s->key, s->key_len, NULL, NULL);
}

int sessstate_answer(msg *m, const ap_frame_hdr *h, const char *payload, struct evbuffer *src)
{
    if (!carries_state(m) || m->sess->current != m)
        return 0;
    pool_t *p = m->pool;
    session *s = m->sess;
    if (!committing(s)) {
        if (s->fail == 0) {
            maybe_touch(p, s);
            return 0;
        }
        answer_error(m, (reply_code)(s->fail - 1), s->fail_why, NULL);
        return 1;
    }
    /* Its state is being committed: the answer waits for it. */
    held_answer *ha = ap_malloc(sizeof(*ha) + h->len + 1);
    ha->h = *h;
    if (src)
        evbuffer_remove(src, ha->payload, h->len);
    else if (h->len)
        memcpy(ha->payload, payload, h->len);
    ha->payload[h->len] = '\0';
    m->held = ha;
    retry_disarm(m); /* its worker is done: only the store is waited for */
    msg_set_state(&server.msgs, m, MSG_COMMITTING);
    return 1;
}

void sessstate_fresh(pool_t *p, session *s)
{
    if (s->sstate == SSTATE_READY && !committing(s) &&
        ap_now_ms() - s->touched_ms >= (uint64_t)p->cfg->session_ttl)
        session_drop_state(p->sessions, s);
}

void sessstate_trim(pool_t *p)
{
    session_table *t = p->sessions;
    uint64_t max = (uint64_t)p->cfg->session_cache_bytes;
    unsigned looked = 0;
    for (queue_link *l = t->idle.next; t->state_bytes > max && l != &t->idle && looked < 64; looked++) {
        session *s = queue_entry(l, session, lru);
        l = l->next;
        if (s->json && !committing(s)) {
            session_drop_state(t, s);
            t->n.dropped++;
        }
    }
}
