/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * retry.c - deadlines, retries and dead letters (see retry.h).
 *
 * Timer states: while a message is NEW/HELD/QUEUED/RUNNING its timer is
 * its deadline; while RETRY_WAIT it fires at min(deadline, retry due);
 * after a timed-out (or pool.cancel'ed: retry_let_go) RUNNING message of
 * an async worker was cancelled it is the cancel grace: if the worker still holds the message when it
 * fires, the worker's event loop is stuck and the worker is killed.  A
 * sync worker's prefetched message (not first in its running list) has
 * not started: on timeout it is cancelled the same way, and its grace
 * only counts once it is first in line.
 * The common deadline (the server's timeout, what nearly every message
 * is armed with) is not one libevent timer per message: armed for the
 * same length at a clock that only goes forward, such messages fall due
 * in the order they were armed, so they wait in one FIFO under one timer
 * (arming and disarming are a list insert and unlink; libevent's
 * event_add/event_del cost ~500 instructions a message).  The timer is
 * set for the oldest; a message answered before its deadline just leaves
 * the list, and the timer, when it fires early for it, is set again for
 * the new oldest.
 */
#include "retry.h"
#include "ap_alloc.h"
#include "ap_backoff.h"
#include "ap_log.h"
#include "answer.h"
#include "client.h"
#include "dlq.h"
#include "dlqheld.h"
#include "events.h"
#include "privs.h"
#include "sched.h"
#include "server.h"
#include "sessstate.h"
#include "stream.h"
#include "wprog.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* How long an async worker may take to let go of a cancelled message
 * before its event loop is judged stuck. */
#define RETRY_CANCEL_GRACE_MS 2000
/* How often dead letters held in memory are offered to the file again. */
#define RETRY_HELD_EVERY_MS 1000

static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void retry_later(msg *m, const char *reason);

/* A pool's deadline FIFO (p->fifo): its messages whose timer is the
 * pool's own timeout share one event. */
struct retry_fifo {
    queue_link due;             /* sentinel: messages by due_ms, oldest first */
    struct event *ev;           /* NULL: not started (no pool timeout) */
    uint64_t for_ms;            /* the timer's length: the pool's timeout */
};

static void fifo_drop(msg *m)
{
    if (m->in_fifo) {
        link_del(&m->dlink);
        m->in_fifo = 0;
    }
}

static void fifo_arm(struct retry_fifo *fifo, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(fifo->ev, &tv);
}

/* m falls due fifo.for_ms after now_ms (the clock now, or a moment ago
 * in this callback); appended, since every earlier entry was armed for
 * the same length no later. */
static void fifo_put(struct retry_fifo *fifo, msg *m, uint64_t now_ms)
{
    fifo_drop(m);
    m->due_ms = now_ms + fifo->for_ms;
    link_add_tail(&fifo->due, &m->dlink);
    m->in_fifo = 1;
    if (!evtimer_pending(fifo->ev, NULL))
        fifo_arm(fifo, fifo->for_ms);
}

/* Every message due by now, oldest first, as its own timer would have
 * fired; then the timer for the next. */
static void fifo_cb(evutil_socket_t fd, short what, void *arg)
{
    struct retry_fifo *fifo = arg;
    (void)fd;
    (void)what;
    uint64_t now = ap_now_ms();
    while (!link_empty(&fifo->due)) {
        msg *m = queue_entry(fifo->due.next, msg, dlink);
        if (m->due_ms > now) {
            fifo_arm(fifo, m->due_ms - now);
            return;
        }
        fifo_drop(m);
        timer_cb(-1, EV_TIMEOUT, m); /* may answer, free or re-arm any message */
    }
}

int retry_start(pool_t *p)
{
    struct retry_fifo *fifo = p->fifo = ap_calloc(1, sizeof(*fifo));
    link_init(&fifo->due);
    fifo->for_ms = p->cfg->timeout > 0 ? (uint64_t)p->cfg->timeout : 0;
    if (fifo->for_ms == 0)
        return AP_OK;
    fifo->ev = evtimer_new(server.base, fifo_cb, fifo);
    if (fifo->ev == NULL) {
        ap_error("pool %s: evtimer_new failed for the deadline timer", p->name);
        return AP_ERR;
    }
    return AP_OK;
}

void retry_stop(pool_t *p)
{
    if (p->fifo && p->fifo->ev)
        event_free(p->fifo->ev);
    ap_free(p->fifo);
    p->fifo = NULL;
}

/* Arms m's timer for ms from now_ms (0: read the clock). */
static void arm_from(msg *m, uint64_t ms, uint64_t now_ms)
{
    struct retry_fifo *fifo = m->pool->fifo;
    if (fifo->ev && ms == fifo->for_ms) {
        if (m->timer_set)
            evtimer_del(&m->timer);
        fifo_put(fifo, m, now_ms ? now_ms : ap_now_ms());
        return;
    }
    fifo_drop(m);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    if (!m->timer_set) {
        event_assign(&m->timer, server.base, -1, 0, timer_cb, m);
        m->timer_set = 1;
    }
    evtimer_add(&m->timer, &tv);
}

static void arm_in(msg *m, uint64_t ms)
{
    arm_from(m, ms, 0);
}

/* The message's timeout: the server's, or the request's if smaller. */
static uint64_t effective_timeout(const msg *m)
{
    uint64_t t = (uint64_t)m->pool->fifo->for_ms; /* the pool's timeout as it started (reload keeps it) */
    if (m->timeout_ms > 0 && (t == 0 || (uint64_t)m->timeout_ms < t))
        t = (uint64_t)m->timeout_ms;
    return t;
}

void retry_arm(msg *m)
{
    uint64_t t = effective_timeout(m);
    if (t == 0)
        return;
    m->deadline_ms = m->accepted_ns / 1000000 + t;
    arm_from(m, t, m->accepted_ns / 1000000); /* accepted in this callback: no clock read */
}

void retry_disarm(msg *m)
{
    fifo_drop(m);
    if (m->timer_set)
        evtimer_del(&m->timer);
}

/* ---- dead letters --------------------------------------------------- */

/* p's dead-letter file: its deadLetterFile; else SOCKET.deadletter.jsonl
 * for a server of one unnamed pool, SOCKET.POOL.deadletter.jsonl with
 * named pools. */
static char *dead_letter_path(const pool_t *p)
{
    if (p->cfg->dead_letter_file)
        return ap_strdup(p->cfg->dead_letter_file);
    const char *sock = server.cfg->socket;
    size_t n = strlen(sock) + strlen(p->name) + sizeof("..deadletter.jsonl");
    char *path = ap_malloc(n);
    if (server.cfg->pools_named)
        snprintf(path, n, "%s.%s.deadletter.jsonl", sock, p->name);
    else
        snprintf(path, n, "%s.deadletter.jsonl", sock);
    return path;
}

int retry_open_dead_letters(pool_t *p)
{
    char err[512];
    if (p->dlq_path == NULL)
        p->dlq_path = dead_letter_path(p);
    p->dlq = dlq_open(p->dlq_path, (uint64_t)p->cfg->dead_letter_max_bytes, privs_service_uid(), privs_service_gid(),
                      err, sizeof(err));
    if (p->dlq == NULL)
        ap_error("pool %s: DEAD LETTERS CANNOT BE WRITTEN until this is fixed (they are held in memory meanwhile): %s",
                 p->name, err);
    else
        ap_info("pool %s: dead letters go to %s (%llu record%s there)", p->name, p->dlq_path,
                (unsigned long long)dlq_count(p->dlq), dlq_count(p->dlq) == 1 ? "" : "s");
    return p->dlq ? AP_OK : AP_ERR;
}

void retry_close_dead_letters(pool_t *p)
{
    char err[512], whose[CONFIG_POOL_NAME_MAX + 16];
    dlqheld_flush(p, p->dlq, err, sizeof(err)); /* a last try */
    snprintf(whose, sizeof(whose), "pool %s", p->name);
    dlqheld_free(p, whose);
    if (p->dlq)
        dlq_close(p->dlq);
    p->dlq = NULL;
    ap_free(p->dlq_path);
    p->dlq_path = NULL;
}

static void dead_letter(msg *m)
{
    char err[512];
    dlq_failure fails[256];
    pool_t *p = m->pool;
    p->stats.dead_lettered++;
    events_emit_msg(m, EVENTS_MESSAGE_DEAD_LETTERED, EVENTS_CRITICAL, "\"attempts\":%u,\"last\":\"%s\"", m->attempts,
                    events_esc(err, sizeof(err), m->nfail ? m->fail[m->nfail - 1].reason : "?"));
    ap_error("message %.*s (type %s) failed for good after %u attempt%s; last: %s", m->id_len ? (int)m->id_len : 4,
             m->id_len ? m->line + m->id_off : "null", m->type, m->attempts, m->attempts == 1 ? "" : "s",
             m->nfail ? m->fail[m->nfail - 1].reason : "?");
    for (unsigned i = 0; i < m->nfail; i++) {
        fails[i].worker = m->fail[i].worker;
        fails[i].pid = (int)m->fail[i].pid;
        fails[i].reason = m->fail[i].reason;
        fails[i].wall_ms = m->fail[i].wall_ms;
    }
    dlq_entry e = {
        .id = m->line + m->id_off, .id_len = m->id_len,
        .type = m->type, .type_len = m->type_len,
        .data = m->line + m->data_off, .data_len = m->data_len,
        .attempts = m->attempts, .failures = fails, .nfailures = m->nfail,
        .chunks = stream_partial(m) ? stream_chunks(m) : 0,
        .checkpoint = m->ckpt, .checkpoint_len = m->ckpt_len,
    };
    retry_write_dead_letter(p, &e);
}

void retry_write_dead_letter(pool_t *p, const dlq_entry *e)
{
    char err[512];
    uint64_t dlq_id;
    snprintf(err, sizeof(err), "the dead-letter file is not open");
    if (p->dlq == NULL)
        retry_open_dead_letters(p);
    /* Older records held in memory go first, so the file keeps their order. */
    dlqheld_flush(p, p->dlq, err, sizeof(err));
    if (p->dlq && dlqheld_count(p) == 0 && dlq_append(p->dlq, e, &dlq_id, err, sizeof(err)) == AP_OK)
        return;
    p->stats.dead_letter_errors++;
    if (dlqheld_keep(p, e) == AP_OK)
        ap_error("pool %s: COULD NOT WRITE A DEAD LETTER (%llu so far): %s; kept in memory until the file takes it "
                 "(%llu held)", p->name, (unsigned long long)p->stats.dead_letter_errors, err,
                 (unsigned long long)dlqheld_count(p));
    else
        ap_error("pool %s: COULD NOT WRITE A DEAD LETTER (%llu so far): %s; %llu are held in memory already (the "
                 "most kept): THIS ONE IS LOST (%llu lost so far)", p->name,
                 (unsigned long long)p->stats.dead_letter_errors, err, (unsigned long long)dlqheld_count(NULL),
                 (unsigned long long)dlqheld_dropped());
}

void retry_tick(pool_t *p, uint64_t now_ms)
{
    char err[512];
    if (now_ms < p->dlq_held_retry_ms || dlqheld_count(p) == 0)
        return;
    p->dlq_held_retry_ms = now_ms + RETRY_HELD_EVERY_MS;
    if (p->dlq == NULL && retry_open_dead_letters(p) != AP_OK)
        return;
    uint64_t before = dlqheld_count(p);
    unsigned n = dlqheld_flush(p, p->dlq, err, sizeof(err));
    if (n)
        ap_info("dead-letter file %s took %u held dead letter%s (%llu still held)", dlq_path(p->dlq), n,
                n == 1 ? "" : "s", (unsigned long long)dlqheld_count(p));
    else if (before)
        ap_debug("dead-letter file still refuses the %llu held dead letters: %s", (unsigned long long)before, err);
}

/* ---- retries -------------------------------------------------------- */

/* retryDelay x 2^(attempt-1), capped by maxRetryDelay, anywhere in
 * [d/2, d] so crashed messages do not all come back in the same instant. */
static uint64_t retry_delay_ms(const pool_t *p, unsigned attempt)
{
    uint64_t d = ap_backoff_ms((uint64_t)p->cfg->retry_delay, (uint64_t)p->cfg->max_retry_delay, attempt);
    return ap_backoff_jitter(d, (uint64_t)random());
}

/* Keeps f in m's list of failures: room for maxRetries + 1 (at most
 * 255), grown when a reload raised maxRetries since the list was made and
 * never shrunk; once full, the newest failure replaces the last entry. */
static void record_failure(msg *m, const msg_failure *f)
{
    unsigned cap = (unsigned)m->pool->cfg->max_retries + 1;
    if (cap > 255)
        cap = 255;
    if (cap > m->fail_cap) {
        m->fail = ap_realloc(m->fail, cap * sizeof(msg_failure));
        m->fail_cap = (uint8_t)cap;
    }
    if (m->nfail < m->fail_cap)
        m->fail[m->nfail++] = *f;
    else
        m->fail[m->fail_cap - 1] = *f;
}

static void give_up(msg *m, const msg_failure *f)
{
    char extra[96], why[256];
    if (WIFSIGNALED(f->status))
        snprintf(extra, sizeof(extra), ",\"attempts\":%u,\"signal\":%d", m->attempts, WTERMSIG(f->status));
    else
        snprintf(extra, sizeof(extra), ",\"attempts\":%u,\"exitStatus\":%d", m->attempts, WEXITSTATUS(f->status));
    snprintf(why, sizeof(why), "%s%s", f->reason,
             m->attempts > 1 ? "; it was running this message at each of its crashes" : "");
    dead_letter(m);
    answer_error(m, ERR_WORKER_CRASHED, why, extra);
}

/* ---- a worker died: what it held ------------------------------------ */

/* A message whose client has chunks of its answer already is not run
 * again: it is failed for good, worker_crashed with "partial": true and
 * the chunks sent, and dead-lettered with them.  Returns 1 when m was
 * such a message (it is answered), else 0. */
static int give_up_partial(msg *m, const msg_failure *f)
{
    char extra[128];
    if (!stream_partial(m))
        return 0;
    record_failure(m, f);
    dead_letter(m);
    if (WIFSIGNALED(f->status))
        snprintf(extra, sizeof(extra), ",\"attempts\":%u,\"signal\":%d,\"partial\":true,\"chunks\":%u", m->attempts,
                 WTERMSIG(f->status), stream_chunks(m));
    else
        snprintf(extra, sizeof(extra), ",\"attempts\":%u,\"exitStatus\":%d,\"partial\":true,\"chunks\":%u",
                 m->attempts, WEXITSTATUS(f->status), stream_chunks(m));
    answer_error(m, ERR_WORKER_CRASHED, f->reason, extra);
    return 1;
}

/* A message is sent to workers at most this many times maxRetries + 1,
 * whatever progress pages say (retry_deliveries_spent). */
#define RETRY_DELIVERY_FACTOR 2

/* The message w was running when it died, or NULL; *nran = how many of
 * the messages it held, from the first, had run (started, and finished
 * unless it is the culprit's place).  A sync worker runs its messages one
 * by one, in the order sent: its progress page says which it started
 * last and whether it finished it (without a page: the first it held is
 * charged, nothing else ran); an async worker runs them all, so there
 * is no single one.  The page is written by the worker, so what it says
 * is checked against what the master knows: a page naming as running a
 * message this process did not hold is a lie or a corruption: logged,
 * counted, and the death judged as without a page. */
static msg *crash_culprit(worker *w, unsigned *nran)
{
    uint64_t running = 0, last = 0;
    unsigned i = 0;
    *nran = 0;
    if (w->proc.async || link_empty(&w->running))
        return NULL;
    if (wprog_running(w, &running, &last) < 0)
        return msg_from_qlink(w->running.next);
    for (queue_link *l = w->running.next; l != &w->running && last; l = l->next, i++) {
        if (msg_from_qlink(l)->id != last)
            continue;
        if (running) {
            *nran = i;
            return msg_from_qlink(l);
        }
        *nran = i + 1; /* between messages, after this one: it ran */
        return NULL;
    }
    if (running == 0)
        return NULL; /* between messages, its last answered already: what it holds never started */
    w->pool->stats.bad_progress_pages++;
    ap_warn("%s (pid %d): its progress page says it was running message %llu, which it did not hold: ignored, the "
            "first message it held is charged",
            w->name, (int)w->proc.pid, (unsigned long long)running);
    return msg_from_qlink(w->running.next);
}

/* Whether m has been sent to workers RETRY_DELIVERY_FACTOR x (maxRetries
 * + 1) times.  Deliveries are never given back, so this is the master's
 * own bound on the deaths one message can ride, whatever the pages of
 * the workers that held it said (a page reset to zero at each crash
 * gives every attempt back). */
static int retry_deliveries_spent(const msg *m)
{
    return (int64_t)m->deliveries >= RETRY_DELIVERY_FACTOR * (m->pool->cfg->max_retries + 1);
}

/* m is failed for good at a death it was not charged with: it had run
 * (attempts > maxRetries) or its deliveries are spent. */
static void give_up_uncharged(msg *m, msg_failure *f, const char *why)
{
    char extra[96];
    size_t n = strlen(f->reason);
    snprintf(f->reason + n, sizeof(f->reason) - n, "%s", why);
    record_failure(m, f);
    if (m->attempts < m->deliveries && retry_deliveries_spent(m))
        m->attempts = m->deliveries;
    m->pool->stats.failed_uncharged++;
    dead_letter(m);
    if (WIFSIGNALED(f->status))
        snprintf(extra, sizeof(extra), ",\"attempts\":%u,\"signal\":%d", m->attempts, WTERMSIG(f->status));
    else
        snprintf(extra, sizeof(extra), ",\"attempts\":%u,\"exitStatus\":%d", m->attempts, WEXITSTATUS(f->status));
    answer_error(m, ERR_WORKER_CRASHED, f->reason, extra);
}

/* Puts m at the head of the queue as it was; `ran`: it ran in the
 * worker that died (its answer was lost), so its attempt stays spent. */
static void requeue(msg *m, int ran)
{
    if (m->detached || m->client == NULL) {
        answer_drop(m);
        return;
    }
    if (!ran && m->attempts > 0)
        m->attempts--;
    stream_restart(m);
    m->worker = NULL;
    msg_set_state(&server.msgs, m, MSG_QUEUED);
    queue_push_front(&m->pool->queue, &m->qlink);
}

/* A message w held, not charged with its death: back to the queue, or
 * failed for good when it ran as often as a charged one may, or its
 * deliveries are spent. */
static void uncharged(worker *w, msg *m, int ran, const msg_failure *f, const char *how)
{
    msg_failure g = *f;
    if (m->detached || m->client == NULL) {
        answer_drop(m);
        return;
    }
    if (give_up_partial(m, f))
        return;
    if (ran && m->attempts > m->pool->cfg->max_retries) {
        snprintf(g.reason, sizeof(g.reason), "%s (pid %d) %s after this message had run, before its answer was sent",
                 w->name, (int)w->proc.pid, how);
        give_up_uncharged(m, &g, "; it ran at each of its attempts");
    } else if (retry_deliveries_spent(m)) {
        snprintf(g.reason, sizeof(g.reason), "%s (pid %d) %s while holding this message", w->name, (int)w->proc.pid,
                 how);
        give_up_uncharged(m, &g, "; it was sent to a worker that died each time");
    } else
        requeue(m, ran);
}

void retry_worker_died(worker *w, int status, const char *how)
{
    msg_failure f;
    memset(&f, 0, sizeof(f));
    f.wall_ms = ap_wall_ms();
    f.pid = w->proc.pid;
    f.status = status;
    snprintf(f.worker, sizeof(f.worker), "%s", w->name);
    snprintf(f.reason, sizeof(f.reason), "%s (pid %d) %s%s while running this message", w->name, (int)w->proc.pid, how,
             w->proc.kill == WORKER_KILL_STACKS || w->proc.kill == WORKER_KILL_TERM ? " after it was found stuck" : "");
    if (!w->proc.async) {
        /* Only the culprit is charged.  The others go back to the head of
         * the queue as they were: those behind it never started (no
         * attempt spent), those before it ran but their answers were
         * still in the worker's buffer, so they run again (at least
         * once), their attempt spent.  Either way within the deliveries
         * bound. */
        unsigned nran, held = 0;
        msg *culprit = crash_culprit(w, &nran);
        for (queue_link *l = w->running.next; l != &w->running; l = l->next)
            held++;
        while (!link_empty(&w->running)) { /* from the tail: order kept */
            msg *m = msg_from_qlink(w->running.prev);
            held--;
            worker_release(w, m);
            if (m == culprit)
                continue;
            if (m->control) /* asked of this worker: no other may answer it */
                retry_worker_lost(m, &f);
            else
                uncharged(w, m, held < nran, &f, how);
        }
        if (culprit)
            retry_worker_lost(culprit, &f);
    }
    while (!link_empty(&w->running)) {
        msg *m = msg_from_qlink(w->running.next);
        worker_release(w, m);
        retry_worker_lost(m, &f);
    }
}

void retry_worker_lost(msg *m, const msg_failure *f)
{
    if (m->detached || m->client == NULL) {
        answer_drop(m);
        return;
    }
    if (give_up_partial(m, f))
        return;
    record_failure(m, f);
    if (m->control || m->retry == 0 || m->attempts > m->pool->cfg->max_retries || retry_deliveries_spent(m)) {
        give_up(m, f);
        return;
    }
    retry_later(m, f->reason);
}

void retry_not_started(msg *m)
{
    requeue(m, 0);
}

/* Puts m (state RUNNING with no worker, or NEW) into RETRY_WAIT. */
static void retry_later(msg *m, const char *reason)
{
    uint64_t delay = retry_delay_ms(m->pool, m->attempts);
    uint64_t now = ap_now_ms();
    if (m->deadline_ms && now + delay >= m->deadline_ms)
        delay = m->deadline_ms > now ? m->deadline_ms - now : 0;
    msg_set_state(&server.msgs, m, MSG_RETRY_WAIT);
    stream_restart(m);
    m->worker = NULL;
    link_add_tail(&m->pool->retrying, &m->qlink);
    m->pool->stats.retries++;
    char esc[512];
    events_emit_msg(m, EVENTS_MESSAGE_RETRIED, EVENTS_NORMAL, "\"attempt\":%u,\"delayMs\":%llu,\"why\":\"%s\"",
                    m->attempts + 1, (unsigned long long)delay, events_esc(esc, sizeof(esc), reason));
    ap_info("message %.*s (type %s) will be retried in %llu ms (attempt %u of %lld): %s",
            m->id_len ? (int)m->id_len : 4, m->id_len ? m->line + m->id_off : "null", m->type,
            (unsigned long long)delay, m->attempts + 1, (long long)m->pool->cfg->max_retries + 1, reason);
    retry_disarm(m);
    arm_in(m, delay);
}

unsigned retry_fail_waiting(pool_t *p, reply_code code, const char *why)
{
    unsigned n = 0;
    while (!link_empty(&p->retrying)) {
        answer_error(msg_from_qlink(p->retrying.next), code, why, NULL);
        n++;
    }
    return n;
}

/* ---- the timer ---------------------------------------------------- */

static void timed_out(msg *m)
{
    char why[160];
    snprintf(why, sizeof(why), "no answer within %llu ms (%s after %u attempt%s)",
             (unsigned long long)effective_timeout(m),
             m->state == MSG_RUNNING ? "running" : m->attempts ? "waiting to be retried" : "waiting in the queue",
             m->attempts, m->attempts == 1 ? "" : "s");
    events_emit_msg(m, EVENTS_MESSAGE_TIMEOUT, EVENTS_NORMAL, "\"timeoutMs\":%llu,\"why\":\"%s\"",
                    (unsigned long long)effective_timeout(m), why);
    if (m->state != MSG_RUNNING) {
        answer_error(m, ERR_TIMEOUT, why, NULL);
        return;
    }
    worker *w = m->worker;
    ap_warn("message %.*s (type %s) timed out on %s (pid %d) after %llu ms", m->id_len ? (int)m->id_len : 4,
            m->id_len ? m->line + m->id_off : "null", m->type, w->name, (int)w->proc.pid,
            (unsigned long long)((ap_now_ns() - m->sent_ns) / 1000000));
    if (m->pool->cfg->retry_on_timeout && m->client && !m->control && m->retry != 0 && !stream_partial(m) &&
        m->attempts <= m->pool->cfg->max_retries && !retry_deliveries_spent(m)) {
        /* retryOnTimeout: the timeout bounds each attempt.  A copy takes
         * the message's place and is retried with a fresh deadline; this
         * one stays with its worker until the worker lets go. */
        msg_failure f;
        memset(&f, 0, sizeof(f));
        f.wall_ms = ap_wall_ms();
        f.pid = w->proc.pid;
        snprintf(f.worker, sizeof(f.worker), "%s", w->name);
        snprintf(f.reason, sizeof(f.reason), "timed out on %s (pid %d)", w->name, (int)w->proc.pid);
        msg *n = client_take_over(m);
        record_failure(n, &f);
        server.pending_bytes += n->line_len;
        n->deadline_ms = ap_now_ms() + effective_timeout(m);
        retry_later(n, f.reason);
    } else {
        answer_detach(m, ERR_TIMEOUT, why, NULL);
    }
    char reason[160];
    snprintf(reason, sizeof(reason), "message %.*s (type %s) ran past its deadline", m->id_len ? (int)m->id_len : 4,
             m->id_len ? m->line + m->id_off : "null", m->type);
    retry_let_go(m, RETRY_SYNC_KILL, reason);
}

void retry_let_go(msg *m, retry_sync_policy sync, const char *why)
{
    worker *w = m->worker;
    if (w->proc.async || msg_from_qlink(w->running.next) != m) {
        /* The task is cancelled (its finally blocks run); if the loop does
         * not let go of it, the loop is stuck: see the grace in timer_cb.
         * A sync worker's prefetched message has not started: it skips
         * it.  If it started it meanwhile, RETRY_SYNC_KILL's grace
         * counts once it is first in line; RETRY_SYNC_FINISH lets it
         * run, as a running one. */
        worker_cancel(w, m);
        if (w->proc.async || sync == RETRY_SYNC_KILL)
            arm_in(m, RETRY_CANCEL_GRACE_MS);
    } else if (sync == RETRY_SYNC_KILL) {
        worker_kill_stuck(w, why);
    } else if (m->stream) {
        worker_cancel(w, m); /* a sync stream stops at its next chunk (StreamCancelled), its result dropped */
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    msg *m = arg;
    (void)fd;
    (void)what;
    uint64_t now = ap_now_ms();
    if (m->state == MSG_RUNNING && m->detached) {
        if (!m->worker->proc.async && msg_from_qlink(m->worker->running.next) != m) {
            arm_in(m, RETRY_CANCEL_GRACE_MS); /* still behind the one it runs */
            return;
        }
        char reason[160];
        snprintf(reason, sizeof(reason), "its event loop did not let go of cancelled message %.*s within %d ms",
                 m->id_len ? (int)m->id_len : 4, m->id_len ? m->line + m->id_off : "null", RETRY_CANCEL_GRACE_MS);
        worker_kill_stuck(m->worker, reason);
        return;
    }
    if (m->state == MSG_RETRY_WAIT && (m->deadline_ms == 0 || now < m->deadline_ms)) {
        link_del(&m->qlink);
        if (m->deadline_ms)
            arm_in(m, m->deadline_ms - now);
        if (m->sess && !sessstate_ready(m)) {
            sessstate_wait(m); /* what its last attempt saved is committed first */
            return;
        }
        msg_set_state(&server.msgs, m, MSG_QUEUED);
        queue_push_front(&m->pool->queue, &m->qlink);
        sched_pump(m->pool);
        return;
    }
    timed_out(m);
}
