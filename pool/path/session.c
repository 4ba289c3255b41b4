/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * session.c - a pool's table of sessions (see session.h).
 *
 * The sessions by key (keytab.c), an intrusive idle list for the least recently used order, and one transition
 * function for a session's state.  Invariants: a session is on the idle
 * list exactly when refs is 0; a RUNNING session has a current message;
 * an IDLE one has none and an empty FIFO.  No libevent, no messages, no
 * logging: what a refusal means is the caller's.
 */
#include "session.h"
#include "ap_alloc.h"

#include <assert.h>
#include <string.h>

#define SESSION_MIN_BUCKETS 64u

session_table *session_table_new(uint32_t max)
{
    session_table *t = ap_calloc(1, sizeof(*t));
    keytab_init(&t->keys, SESSION_MIN_BUCKETS);
    t->max = max ? max : 1;
    link_init(&t->idle);
    return t;
}

static void free_session(session_table *t, session *s)
{
    session_drop_state(t, s);
    ap_free(s->fail_why);
    ap_free(s);
}

static void free_node(keytab_node *n, void *arg)
{
    free_session(arg, queue_entry(n, session, node));
}

void session_drop_state(session_table *t, session *s)
{
    if (s->json) {
        t->state_bytes -= s->json_len;
        ap_free(s->json);
        s->json = NULL;
        s->json_len = 0;
    }
    if (s->sstate == SSTATE_READY)
        s->sstate = SSTATE_UNKNOWN;
}

void session_table_free(session_table *t)
{
    if (t == NULL)
        return;
    keytab_clear(&t->keys, free_node, t);
    keytab_free(&t->keys);
    ap_free(t);
}

const char *session_state_name(session_state st)
{
    static const char *const names[SESSION_STATE_COUNT] = {"idle", "running"};
    return st < SESSION_STATE_COUNT ? names[st] : "?";
}

/* The one place a session's state changes. */
static void set_state(session_table *t, session *s, session_state to)
{
    assert(to < SESSION_STATE_COUNT && to != s->state);
    t->by_state[s->state]--;
    t->by_state[to]++;
    s->state = to;
}

session *session_find(const session_table *t, const char *key, size_t len)
{
    keytab_node *n = keytab_find(&t->keys, key, len);
    return n ? queue_entry(n, session, node) : NULL;
}

/* Unlinks s (idle: refs 0) from the table and frees it. */
static void forget(session_table *t, session *s)
{
    assert(s->refs == 0 && s->state == SESSION_IDLE);
    keytab_remove(&t->keys, &s->node);
    link_del(&s->lru);
    t->by_state[SESSION_IDLE]--;
    t->count--;
    free_session(t, s);
}

void session_table_set_max(session_table *t, uint32_t max)
{
    t->max = max ? max : 1;
    while (t->count > t->max && !link_empty(&t->idle)) {
        forget(t, queue_entry(t->idle.next, session, lru));
        t->n.forgotten++;
    }
}

session *session_ref(session_table *t, const char *key, size_t len)
{
    assert(len > 0 && len <= UINT16_MAX);
    session *s = session_find(t, key, len);
    if (s) {
        if (s->refs++ == 0)
            link_del(&s->lru);
        return s;
    }
    if (t->count >= t->max) {
        if (link_empty(&t->idle)) {
            t->n.refused++;
            return NULL;
        }
        forget(t, queue_entry(t->idle.next, session, lru));
        t->n.forgotten++;
    }
    s = ap_calloc(1, sizeof(*s) + len + 1);
    s->state = SESSION_IDLE;
    link_init(&s->waiting);
    s->refs = 1;
    s->worker = -1;
    s->worker_slot = -1;
    s->key_len = (uint16_t)len;
    memcpy(s->key, key, len);
    keytab_add(&t->keys, &s->node, s->key, len);
    t->by_state[SESSION_IDLE]++;
    t->count++;
    return s;
}

void session_unref(session_table *t, session *s)
{
    assert(s->refs > 0);
    if (--s->refs == 0) {
        assert(s->state == SESSION_IDLE);
        link_add_tail(&t->idle, &s->lru);
    }
}

void session_begin(session_table *t, session *s, void *cur)
{
    assert(s->current == NULL && cur != NULL);
    set_state(t, s, SESSION_RUNNING);
    s->current = cur;
}

queue_link *session_end(session_table *t, session *s, void *cur)
{
    assert(s->state == SESSION_RUNNING && s->current == cur);
    s->current = NULL;
    if (link_empty(&s->waiting)) {
        set_state(t, s, SESSION_IDLE);
        return NULL;
    }
    queue_link *l = s->waiting.next;
    link_del(l);
    s->nwaiting--;
    t->waiting--;
    return l;
}

void session_begin_next(session_table *t, session *s, void *cur)
{
    (void)t;
    assert(s->state == SESSION_RUNNING && s->current == NULL && cur != NULL);
    s->current = cur;
}

void session_replace(session *s, void *old, void *cur)
{
    assert(s->current == old);
    s->current = cur;
}

void session_wait(session_table *t, session *s, queue_link *l)
{
    assert(s->state == SESSION_RUNNING);
    link_add_tail(&s->waiting, l);
    s->nwaiting++;
    t->waiting++;
}

void session_unwait(session_table *t, session *s, queue_link *l)
{
    assert(s->nwaiting > 0);
    link_del(l);
    s->nwaiting--;
    t->waiting--;
}

void session_sent_to(session_table *t, session *s, int index, int slot)
{
    if (s->worker >= 0) {
        if (s->worker == index && s->worker_slot == slot)
            t->n.hits++;
        else
            t->n.moves++;
    }
    s->worker = index;
    s->worker_slot = slot;
}
