/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * idem.c - idempotency keys, one table per pool (see idem.h).
 *
 * The table is the entries by key (keytab.c) plus one list of finished entries in
 * the order they finished: the head is both the first to expire (one TTL
 * for the pool) and the first to evict.  An entry is RUNNING (runner set,
 * copies attached on `waiters` through their msg.qlink, which a message
 * that is never admitted does not otherwise use) or DONE (its answer
 * kept, on the `done` list); it never goes back.  "The same request" is
 * a 64-bit FNV-1a hash over the type, a separator and the data bytes as
 * sent, with both lengths kept beside it.
 *
 * Invariants: t->bytes is the sum of the entries' bytes; an entry is in
 * exactly one bucket chain; a message points to its entry (m->idem) as
 * long as it is the entry's runner or one of its waiters, never longer.
 * Owns the entries and their kept answers; never owns a message.
 */
#include "idem.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "client.h"
#include "keytab.h"
#include "msg.h"
#include "pools.h"
#include "reply.h"

#include <event2/buffer.h>
#include <string.h>

/* Finished entries a tick may expire, at most. */
#define IDEM_TICK_MAX 256
#define IDEM_BUCKETS_MIN 64u

typedef struct idem_entry {
    keytab_node node;           /* in its table, by key */
    queue_link done;            /* t->done while DONE */
    queue_link waiters;         /* attached messages while RUNNING */
    struct msg *runner;         /* the message running for the key; NULL once DONE */
    uint64_t req_hash;          /* of type and data */
    uint32_t type_len, data_len;
    uint64_t done_ms;           /* monotonic, when DONE */
    char *body;                 /* the kept answer's result or error JSON (DONE) */
    size_t body_len;
    size_t bytes;               /* counted against idempotencyCacheBytes */
    reply_code code;            /* of an error answer */
    uint8_t ok;                 /* the kept answer is a result */
    uint16_t key_len;
    char key[];
} idem_entry;

typedef struct idem_table {
    keytab keys;
    queue_link done;            /* DONE entries, oldest finished first */
    idem_stats st;
} idem_table;

idem_table *idem_new(void)
{
    idem_table *t = ap_calloc(1, sizeof(*t));
    keytab_init(&t->keys, IDEM_BUCKETS_MIN);
    link_init(&t->done);
    return t;
}

static void entry_free(idem_entry *e)
{
    ap_free(e->body);
    ap_free(e);
}

/* Lets go of an entry at exit: its messages forget it. */
static void free_node(keytab_node *n, void *arg)
{
    idem_entry *e = queue_entry(n, idem_entry, node);
    (void)arg;
    if (e->runner)
        e->runner->idem = NULL;
    while (!link_empty(&e->waiters)) {
        msg *w = msg_from_qlink(e->waiters.next);
        link_del(&w->qlink);
        w->idem = NULL;
    }
    entry_free(e);
}

void idem_free(idem_table *t)
{
    if (t == NULL)
        return;
    keytab_clear(&t->keys, free_node, NULL);
    keytab_free(&t->keys);
    ap_free(t);
}

void idem_stats_get(const idem_table *t, idem_stats *out)
{
    *out = t->st;
}

/* ---- the table ------------------------------------------------------ */

static uint64_t request_hash(const char *type, size_t type_len, const char *data, size_t data_len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < type_len; i++)
        h = (h ^ (unsigned char)type[i]) * 1099511628211ull;
    h = (h ^ 0xffu) * 1099511628211ull; /* never in UTF-8: type and data cannot trade bytes */
    for (size_t i = 0; i < data_len; i++)
        h = (h ^ (unsigned char)data[i]) * 1099511628211ull;
    return h;
}

static idem_entry *table_find(const idem_table *t, const char *key, size_t len)
{
    keytab_node *n = keytab_find(&t->keys, key, len);
    return n ? queue_entry(n, idem_entry, node) : NULL;
}

/* Takes e out of t and frees it (its waiters must be gone). */
static void table_remove(idem_table *t, idem_entry *e)
{
    keytab_remove(&t->keys, &e->node);
    if (e->done.next)
        link_del(&e->done);
    t->st.entries--;
    t->st.bytes -= e->bytes;
    entry_free(e);
}

static idem_entry *table_add(idem_table *t, const char *key, size_t len)
{
    idem_entry *e = ap_calloc(1, sizeof(*e) + len);
    memcpy(e->key, key, len);
    e->key_len = (uint16_t)len;
    e->bytes = sizeof(*e) + len;
    link_init(&e->waiters);
    keytab_add(&t->keys, &e->node, e->key, len);
    t->st.entries++;
    t->st.bytes += e->bytes;
    return e;
}

/* Evicts DONE entries, oldest first, while the table is over cap. */
static void table_evict(idem_table *t, uint64_t cap, const char *pool)
{
    unsigned n = 0;
    while (t->st.bytes > cap && !link_empty(&t->done)) {
        table_remove(t, queue_entry(t->done.next, idem_entry, done));
        t->st.evicted++;
        n++;
    }
    if (n)
        ap_debug("pool %s: %u idempotency entr%s evicted (idempotencyCacheBytes %llu)", pool, n, n == 1 ? "y" : "ies",
                 (unsigned long long)cap);
}

static int entry_expired(const idem_entry *e, uint64_t now_ms, uint64_t ttl)
{
    return e->runner == NULL && now_ms - e->done_ms >= ttl;
}

/* ---- admission ------------------------------------------------------ */

/* Writes e's kept answer to c as the answer to `line` and counts it. */
static void replay(pool_t *p, client *c, const char *line, const scan_result *r, const idem_entry *e)
{
    const char *id = r->id_kind != SCAN_ID_NONE ? line + r->id.off : NULL;
    reply_replayed(client_output(c), id, id ? r->id.len : 0, e->ok, e->body, e->body_len);
    if (e->ok)
        p->stats.answered_ok++;
    else
        p->stats.errors[e->code]++;
    client_check_output(c);
}

idem_verdict idem_admit(pool_t *p, client *c, const char *line, const scan_result *r, uint64_t now_ms,
                        idem_entry **out)
{
    idem_table *t = p->idem;
    *out = NULL;
    if (r->stream) {
        answer_refuse(c, line, r, ERR_BAD_REQUEST,
                      "idempotencyKey cannot be used with \"stream\": true (a stream is not replayed)", NULL, p, -1);
        return IDEM_ANSWERED;
    }
    idem_entry *e = table_find(t, r->idem_key, r->idem_key_len);
    if (e == NULL)
        return IDEM_RUN;
    if (entry_expired(e, now_ms, (uint64_t)p->cfg->idempotency_ttl)) {
        table_remove(t, e);
        t->st.expired++;
        return IDEM_RUN;
    }
    const char *data = line + r->data.off;
    if (e->type_len != r->type_len || e->data_len != r->data.len ||
        e->req_hash != request_hash(r->type, r->type_len, data, r->data.len)) {
        t->st.mismatched++;
        answer_refuse(c, line, r, ERR_BAD_REQUEST, "idempotency key reused with a different request", NULL, p, -1);
        return IDEM_ANSWERED;
    }
    if (e->runner == NULL) {
        t->st.replayed++;
        replay(p, c, line, r, e);
        return IDEM_ANSWERED;
    }
    *out = e;
    return IDEM_ATTACH;
}

void idem_bind(pool_t *p, msg *m, const scan_result *r, idem_entry *e)
{
    idem_table *t = p->idem;
    if (e) {
        link_add_tail(&e->waiters, &m->qlink);
        m->idem = e;
        m->idem_waiter = 1;
        t->st.attached++;
        return;
    }
    e = table_add(t, r->idem_key, r->idem_key_len);
    e->runner = m;
    e->type_len = (uint32_t)m->type_len;
    e->data_len = m->data_len;
    e->req_hash = request_hash(m->type, m->type_len, m->line + m->data_off, m->data_len);
    m->idem = e;
}

/* ---- the end of a message -------------------------------------------- */

/* Whether an answer is what running the request again would give again. */
static int answer_keepable(const answer *a)
{
    return a->kind == ANSWER_OK || (a->kind == ANSWER_WORKER_ERROR && a->code == ERR_AGENT_ERROR);
}

void idem_end(msg *m, const answer *a)
{
    idem_entry *e = m->idem;
    idem_table *t = m->pool->idem;
    m->idem = NULL;
    if (m->idem_waiter) {
        link_del(&m->qlink);
        m->idem_waiter = 0;
        return;
    }
    e->runner = NULL;
    uint64_t cap = (uint64_t)m->pool->cfg->idempotency_cache_bytes;
    int keep = answer_keepable(a), fits = e->bytes + a->len <= cap;
    /* The body, in one place that outlives a (a src is moved to m's
     * client); not copied when nobody needs it (an answer too large to
     * keep: counted evicted at once). */
    char *body = NULL;
    size_t len = a->len;
    if ((a->kind == ANSWER_OK || a->kind == ANSWER_WORKER_ERROR) && ((keep && fits) || !link_empty(&e->waiters))) {
        if (a->kind == ANSWER_OK && len == 0) {
            body = ap_strdup("null");
            len = 4;
        } else {
            body = ap_malloc(len ? len : 1);
            if (a->src)
                evbuffer_copyout(a->src, body, len);
            else if (len)
                memcpy(body, a->body, len);
        }
    }
    while (!link_empty(&e->waiters)) {
        msg *w = msg_from_qlink(e->waiters.next);
        if (a->kind == ANSWER_NONE) {
            answer_error(w, ERR_CANCELLED,
                         "the first request with this idempotency key was cancelled before it was answered: send it again",
                         NULL);
        } else {
            answer b = *a;
            b.src = NULL;
            b.body = body;
            b.len = len;
            answer_end(w, &b);
        }
    }
    if (!keep || !fits) {
        ap_free(body);
        table_remove(t, e);
        t->st.evicted += keep;
        return;
    }
    e->body = body;
    e->body_len = len;
    e->ok = a->kind == ANSWER_OK;
    e->code = a->code;
    e->done_ms = ap_now_ms();
    e->bytes += len;
    t->st.bytes += len;
    link_add_tail(&t->done, &e->done);
    table_evict(t, (uint64_t)m->pool->cfg->idempotency_cache_bytes, m->pool->name);
}

void idem_moved(msg *m, msg *n)
{
    idem_entry *e = m->idem;
    if (e == NULL)
        return;
    m->idem = NULL;
    n->idem = e;
    e->runner = n;
}

int idem_keeps_running(const msg *m)
{
    return m->idem && !m->idem_waiter;
}

void idem_tick(pool_t *p, uint64_t now_ms)
{
    idem_table *t = p->idem;
    uint64_t ttl = (uint64_t)p->cfg->idempotency_ttl;
    for (unsigned n = 0; n < IDEM_TICK_MAX && !link_empty(&t->done); n++) {
        idem_entry *e = queue_entry(t->done.next, idem_entry, done);
        if (!entry_expired(e, now_ms, ttl))
            break;
        table_remove(t, e);
        t->st.expired++;
    }
    table_evict(t, (uint64_t)p->cfg->idempotency_cache_bytes, p->name);
}
