/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sessrun.c - the messages of sessions: reception, acceptance, end,
 * interrupt and affinity (see sessrun.h).
 *
 * It decides and calls: session.c keeps the table and each session's
 * state, answer.c ends messages, cancel.c cancels them, the pool queue
 * takes a session's next message.  A waiting message holds one place of
 * the pool's queue bound (queue_hold), given back when it moves to the
 * queue or ends, so backpressure and overflow see it.  Never blocks,
 * never frees a message itself.  State: none of its own (each pool's
 * table is p->sessions).
 */
#include "sessrun.h"
#include "a2astore.h"
#include "answer.h"
#include "ap_common.h"
#include "ap_log.h"
#include "cancel.h"
#include "client.h"
#include "server.h"
#include "session.h"
#include "sessstate.h"

#include <stdio.h>
#include <string.h>

int sessrun_take(client *c, const char *line, const scan_result *r, pool_t *p, unsigned type_idx, session **out)
{
    *out = NULL;
    if (r->session_len == 0)
        return AP_OK;
    char why[160];
    if (!p->cfg->sessions) {
        snprintf(why, sizeof(why), "sessions are off in pool %s (set sessions: true)", p->name);
        answer_refuse(c, line, r, ERR_BAD_REQUEST, why, NULL, p, (int)type_idx);
        return AP_ERR;
    }
    if (r->session_len >= sizeof(A2ASTORE_PREFIX) - 1 &&
        memcmp(r->session, A2ASTORE_PREFIX, sizeof(A2ASTORE_PREFIX) - 1) == 0) {
        answer_refuse(c, line, r, ERR_BAD_REQUEST,
                      "session keys starting \"" A2ASTORE_PREFIX "\" are the server's (A2A task records, docs/a2a.md)",
                      NULL, p, (int)type_idx);
        return AP_ERR;
    }
    session_table *t = p->sessions;
    session_table_set_max(t, (uint32_t)p->cfg->max_sessions);
    if (p->cfg->session_busy == SESSION_BUSY_REJECT) {
        session *s = session_find(t, r->session, r->session_len);
        if (s && s->refs > 0) {
            t->n.busy_rejected++;
            answer_refuse(c, line, r, ERR_SESSION_BUSY, "its session has a message in flight (sessionBusy reject)",
                          NULL, p, (int)type_idx);
            return AP_ERR;
        }
    }
    *out = session_ref(t, r->session, r->session_len);
    if (*out && (*out)->refs == 1)
        sessstate_fresh(p, *out); /* idle until now: its cached state may have expired */
    if (*out == NULL) {
        if (t->n.refused == 1 || t->n.refused % 1000 == 0)
            ap_warn("pool %s: %llu new session%s refused: maxSessions (%u) are tracked and every one is busy",
                    p->name, (unsigned long long)t->n.refused, t->n.refused == 1 ? "" : "s", t->max);
        snprintf(why, sizeof(why), "pool %s tracks maxSessions (%u) sessions and every one has a message in flight",
                 p->name, t->max);
        answer_refuse(c, line, r, ERR_TOO_MANY_SESSIONS, why, NULL, p, (int)type_idx);
        return AP_ERR;
    }
    return AP_OK;
}

int sessrun_must_wait(const msg *m)
{
    return m->sess != NULL && session_busy(m->sess);
}

void sessrun_begin(msg *m)
{
    session_begin(m->pool->sessions, m->sess, m);
    m->sess->fail = 0;
}

/* Cancels what runs or waits in s before m (sessionBusy interrupt). */
static void interrupt(pool_t *p, session *s, msg *m)
{
    static const char by[] = "a later message of its session (sessionBusy interrupt)";
    while (s->waiting.next != &m->qlink) {
        msg *w = msg_from_qlink(s->waiting.next);
        p->sessions->n.interrupted++;
        answer_error(w, ERR_CANCELLED, "cancelled by a later message of its session (sessionBusy interrupt) before it ran",
                     NULL); /* answer_end takes it off the FIFO */
    }
    msg *cur = s->current;
    if (cur == NULL || cur->detached)
        return; /* already answered: its worker is letting go of it */
    p->sessions->n.interrupted++;
    ap_debug("pool %s: session %s: message %.*s (type %s, %s) interrupted by a later one", p->name, s->key,
             cur->id_len ? (int)cur->id_len : 4, cur->id_len ? cur->line + cur->id_off : "null", cur->type,
             msg_state_name(cur->state));
    cancel_message(cur, by, by);
}

void sessrun_wait(msg *m)
{
    pool_t *p = m->pool;
    session *s = m->sess;
    msg_set_state(&server.msgs, m, MSG_SESSION_WAIT);
    session_wait(p->sessions, s, &m->qlink);
    if (p->cfg->session_busy == SESSION_BUSY_INTERRUPT)
        interrupt(p, s, m);
}

void sessrun_end(msg *m)
{
    pool_t *p = m->pool;
    session *s = m->sess;
    session_table *t = p->sessions;
    m->sess = NULL;
    if (m->state == MSG_STORE_WAIT && m->store_hold) {
        m->store_hold = 0;
        queue_unhold(&p->queue);
    }
    if (m->state == MSG_SESSION_WAIT) {
        session_unwait(t, s, &m->qlink);
        queue_unhold(&p->queue);
    } else if (s->current == m) {
        queue_link *l = session_end(t, s, m);
        if (l) {
            msg *next = msg_from_qlink(l);
            session_begin_next(t, s, next);
            s->fail = 0;
            if (!sessstate_ready(next)) {
                next->store_hold = 1; /* keeps the place it held while it waited */
                sessstate_wait(next); /* its state first */
            } else {
                queue_unhold(&p->queue);
                msg_set_state(&server.msgs, next, MSG_QUEUED);
                queue_push_front(&p->queue, &next->qlink); /* accepted before what is queued: its turn */
            }
        }
    }
    session_unref(t, s);
    if (s->refs == 0)
        sessstate_trim(p);
}

void sessrun_take_over(msg *m, msg *n)
{
    session *s = m->sess;
    if (s == NULL)
        return;
    n->sess = s;
    s->refs++; /* n's reference; m's is dropped below (never 0 in between) */
    if (s->current == m)
        session_replace(s, m, n);
    m->sess = NULL;
    session_unref(m->pool->sessions, s);
}

int sessrun_preferred(const msg *m)
{
    const session *s = m->sess;
    if (s == NULL || s->worker < 0 || s->worker >= m->pool->nworkers)
        return -1;
    const worker *w = &m->pool->workers[s->worker];
    const dispatch_load *l = &w->load;
    if (w->slot != s->worker_slot || !l->accepting || l->suspect || l->in_flight >= l->slots)
        return -1;
    return s->worker;
}

void sessrun_sent(msg *m, int i)
{
    if (m->sess)
        session_sent_to(m->pool->sessions, m->sess, i, m->pool->workers[i].slot);
}

unsigned sessrun_fail_waiting(pool_t *p, reply_code code, const char *why)
{
    unsigned n = 0;
    session_table *t = p->sessions;
    for (uint32_t b = 0; t && t->waiting > 0 && b < t->keys.nbuckets; b++) {
        for (keytab_node *k = t->keys.buckets[b]; k; k = k->next) {
            session *s = queue_entry(k, session, node);
            while (!link_empty(&s->waiting)) {
                answer_error(msg_from_qlink(s->waiting.next), code, why, NULL);
                n++;
            }
        }
    }
    return n;
}
