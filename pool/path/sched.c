/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sched.c - admission and the queue pump (see sched.h).
 * Invariant: a message is queued only when no worker had a free slot,
 * older messages were already waiting, or its connection is parked
 * (client_parked: its answers are not being read); the FIFO order is
 * the order messages reach workers, parked ones passed over in place.
 * State: the deferred pump's event (an event with no fd, made active by
 * sched_pump_soon; libevent runs it after the callbacks already active
 * on this turn, so one pump serves every message ended on the turn).
 */
#include "sched.h"
#include "ap_log.h"
#include "client.h"
#include "server.h"
#include "sessrun.h"
#include "sessstate.h"

#include <event2/event.h>

static struct {
    struct event *ev;
    int pending;
} sched_soon;

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sched_soon.pending = 0;
    POOLS_FOREACH(p) {
        if (p->pump_pending && server.state < SERVER_STOPPING) {
            p->pump_pending = 0;
            sched_pump(p);
        }
        p->pump_pending = 0;
    }
}

int sched_init(struct event_base *base)
{
    sched_soon.pending = 0;
    sched_soon.ev = event_new(base, -1, 0, pump_cb, NULL);
    if (sched_soon.ev == NULL) {
        ap_error("sched: event_new failed");
        return AP_ERR;
    }
    return AP_OK;
}

void sched_free(void)
{
    if (sched_soon.ev)
        event_free(sched_soon.ev);
    sched_soon.ev = NULL;
}

void sched_pump_soon(pool_t *p)
{
    p->pump_pending = 1;
    if (!sched_soon.pending && sched_soon.ev) {
        sched_soon.pending = 1;
        event_active(sched_soon.ev, EV_TIMEOUT, 0);
    }
}

void sched_pump_all_soon(void)
{
    POOLS_FOREACH(p) sched_pump_soon(p);
}

/* A message whose connection is parked (client_parked: its answers are
 * not being read, or maxBufferedBytes is passed) waits in the queue. */
static int msg_parked(msg *m)
{
    if (m->client == NULL || !client_parked(m->client))
        return 0;
    if (!m->parked) {
        m->parked = 1;
        m->pool->stats.parked_msgs++;
        client_note_parked(m->client);
    }
    return 1;
}

/* A session's message goes back to its session's worker when that one
 * has a free slot (sessrun.c); anything else to the strategy's pick. */
static int pick_worker(pool_t *p, msg *m)
{
    int i = m->sess ? sessrun_preferred(m) : -1;
    if (i < 0)
        i = dispatch_pick(&p->dispatch, (int)p->cfg->strategy, p->workers, sizeof(worker), p->nworkers);
    if (i >= 0 && m->sess)
        sessrun_sent(m, i);
    return i;
}

sched_result sched_admit(msg *m, int count_reject)
{
    pool_t *p = m->pool;
    if (server.pending_bytes + m->line_len > (uint64_t)server.cfg->max_pending_bytes) {
        if (count_reject)
            p->queue.rejected++;
        return SCHED_FULL;
    }
    if (m->sess && sessrun_must_wait(m)) {
        /* Its session runs another: it waits in the session's FIFO,
         * holding a place of the queue's bound. */
        if (queue_hold(&p->queue, count_reject) != AP_OK)
            return SCHED_FULL;
        server.pending_bytes += m->line_len;
        p->stats.accepted++;
        sessrun_wait(m);
        return SCHED_QUEUED;
    }
    if (m->sess && !sessstate_ready(m)) {
        /* Its session's state is read, or committed, first, while it
         * holds a place of the queue's bound. */
        if (queue_hold(&p->queue, count_reject) != AP_OK)
            return SCHED_FULL;
        m->store_hold = 1;
        server.pending_bytes += m->line_len;
        p->stats.accepted++;
        sessrun_begin(m);
        sessstate_wait(m);
        return SCHED_QUEUED;
    }
    if (p->queue.depth == 0 && !msg_parked(m)) {
        int i = pick_worker(p, m);
        if (i >= 0) {
            server.pending_bytes += m->line_len;
            p->stats.accepted++;
            if (m->sess)
                sessrun_begin(m);
            worker_send(&p->workers[i], m);
            return SCHED_SENT;
        }
    }
    if (queue_push(&p->queue, &m->qlink, count_reject) != 0)
        return SCHED_FULL;
    server.pending_bytes += m->line_len;
    p->stats.accepted++;
    if (m->sess)
        sessrun_begin(m);
    msg_set_state(&server.msgs, m, MSG_QUEUED);
    /* Queued behind parked messages, a worker may be free for it. */
    if (!msg_parked(m))
        sched_pump_soon(p);
    return SCHED_QUEUED;
}

int sched_room_to_resume(const pool_t *p)
{
    return p->queue.depth + p->queue.held <= p->queue.capacity - p->queue.capacity / 4 &&
           server.pending_bytes <= (uint64_t)server.cfg->max_pending_bytes - (uint64_t)server.cfg->max_pending_bytes / 4;
}

void sched_pump(pool_t *p)
{
    /* Oldest first, passing over parked messages (they keep their place). */
    queue_link *l = p->queue.head.next;
    while (l != &p->queue.head) {
        msg *m = msg_from_qlink(l);
        queue_link *next = l->next;
        if (msg_parked(m)) {
            l = next;
            continue;
        }
        int i = pick_worker(p, m);
        if (i < 0)
            break;
        queue_remove(&p->queue, l);
        worker_send(&p->workers[i], m);
        l = next;
    }
    /* Hysteresis: paused connections resume together once a quarter of
     * the room is free, not one per freed slot, which under sustained
     * overload cost a pause and a resume (two epoll_ctl and a read) per
     * message and halved throughput (128 connections x depth 16 against
     * a 1024-message queue: 68k msg/s; now as without the pauses). */
    if (!link_empty(&p->room_waiters) && sched_room_to_resume(p))
        client_room_available(p);
}

void sched_release(msg *m)
{
    if (m->state != MSG_QUEUED && m->state != MSG_RUNNING && m->state != MSG_RETRY_WAIT &&
        m->state != MSG_SESSION_WAIT && m->state != MSG_STORE_WAIT && m->state != MSG_COMMITTING)
        return;
    uint64_t max = (uint64_t)server.cfg->max_pending_bytes, resume = max - max / 4;
    uint64_t before = server.pending_bytes;
    server.pending_bytes -= m->line_len;
    /* maxPendingBytes is the server's: connections held for room in
     * another pool may wait on it too.  They are pumped once, when the
     * total falls to the resume mark (sched_room_to_resume), not at every
     * message's end; room in their own pool's queue pumps them anyway. */
    if (server.npools > 1 && before > resume && server.pending_bytes <= resume) {
        POOLS_FOREACH(p) {
            if (p != m->pool && !link_empty(&p->room_waiters))
                sched_pump_soon(p);
        }
    }
}
