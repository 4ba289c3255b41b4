/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * suspect.c - workers that do not take what was sent to them (see
 * suspect.h).
 *
 * The signal is the kernel's, not the worker's: what the master sent a
 * worker and the worker has not read yet is the worker's end of the
 * socketpair not draining, seen on the master's end as its send queue
 * (SIOCOUTQ: the memory of the not-yet-read skbs) plus what the master
 * still holds in its output buffer.  Checked on the tick, never per
 * message: the hot path only adds each frame's size to a counter.  A
 * tick proves the worker read something since the last one when that
 * unread amount is smaller than the last one plus what was added
 * meanwhile (a skb's memory is never less than its bytes, so a worker
 * that read nothing cannot pass this).  A worker with something unread
 * and no proof for dispatchAckMs is suspect: dispatch skips it
 * (load.suspect); a sync worker's messages it has not started (after the
 * last one its progress page names) are cancelled there and go back to
 * the head of the queue.  The first tick with a proof ends the
 * suspicion.  Owns worker_proc's ack_* fields and load.suspect.  Never
 * blocks (one ioctl per worker that has something unread, per tick).
 */
#include "suspect.h"
#include "ap_log.h"
#include "retry.h"
#include "sched.h"
#include "server.h"
#include "worker.h"
#include "wprog.h"

#include <errno.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <event2/buffer.h>

/* Bytes the master sent w that w has not read: its output buffer and
 * the socket's send queue.  Returns AP_ERR when the ioctl fails. */
static int suspect_unread(const worker *w, uint64_t *unread)
{
    int outq = 0;
    if (ioctl(w->fd, SIOCOUTQ, &outq) < 0)
        return AP_ERR;
    *unread = flush_pending(&w->out) + (uint64_t)(outq > 0 ? outq : 0);
    return AP_OK;
}

/* A suspect sync worker's messages that it has not started (behind the
 * last one its page names: the page is the worker's word, but a lie
 * only makes its own messages run twice): cancelled there, back to the
 * head of the queue.  Returns how many. */
static unsigned suspect_reroute(worker *w)
{
    uint64_t running = 0, last = 0;
    unsigned n = 0;
    if (w->proc.async || wprog_running(w, &running, &last) < 0)
        return 0;
    queue_link *from = w->running.next; /* the first not started */
    for (queue_link *l = w->running.next; l != &w->running && last; l = l->next)
        if (msg_from_qlink(l)->id == last) {
            from = l->next;
            break;
        }
    while (from != &w->running) {
        msg *m = msg_from_qlink(from);
        from = from->next;
        if (m->control || m->detached)
            continue;
        worker_cancel(w, m);
        worker_release(w, m);
        retry_not_started(m);
        n++;
    }
    return n;
}

static void suspect_mark(worker *w, uint64_t stalled_ms)
{
    w->load.suspect = 1;
    w->pool->stats.suspected++;
    unsigned n = suspect_reroute(w);
    w->pool->stats.rerouted += n;
    ap_warn("%s (pid %d) has not read what was sent to it for %llu ms (dispatchAckMs %lld): suspect, not chosen "
            "until it does; %u message%s it had not started sent elsewhere",
            w->name, (int)w->proc.pid, (unsigned long long)stalled_ms, (long long)w->pool->cfg->dispatch_ack_ms, n,
            n == 1 ? "" : "s");
    if (n)
        sched_pump(w->pool);
}

static void suspect_clear(worker *w)
{
    w->load.suspect = 0;
    ap_info("%s (pid %d) reads what is sent to it again: chosen again", w->name, (int)w->proc.pid);
    sched_pump(w->pool);
}

void suspect_tick(pool_t *pool, uint64_t now)
{
    uint64_t ack = (uint64_t)pool->cfg->dispatch_ack_ms;
    for (int i = 0; i < pool->nworkers; i++) {
        worker *w = &pool->workers[i];
        if (!worker_is_accepting(w) || w->out.out == NULL || w->proc.link_broken)
            continue;
        worker_proc *p = &w->proc;
        uint64_t added = p->sent_bytes - p->ack_sent_bytes, unread;
        if (ack == 0 || (added == 0 && p->ack_unread == 0)) {
            p->ack_sent_bytes = p->sent_bytes;
            p->ack_stalled_ms = 0; /* nothing outstanding (or off): nothing to judge */
            p->ack_checked_ms = now;
            if (w->load.suspect)
                suspect_clear(w);
            continue;
        }
        if (suspect_unread(w, &unread) != AP_OK) {
            ap_debug("%s: ioctl(SIOCOUTQ): %s", w->name, strerror(errno));
            continue;
        }
        int read_some = unread == 0 || unread < p->ack_unread + added;
        p->ack_sent_bytes = p->sent_bytes;
        p->ack_unread = unread;
        if (read_some) {
            p->ack_stalled_ms = 0;
            if (w->load.suspect)
                suspect_clear(w);
        } else {
            if (p->ack_stalled_ms == 0)
                p->ack_stalled_ms = p->ack_checked_ms ? p->ack_checked_ms : now;
            if (!w->load.suspect && now - p->ack_stalled_ms >= ack)
                suspect_mark(w, now - p->ack_stalled_ms);
        }
        p->ack_checked_ms = now;
    }
}

unsigned suspect_count(const pool_t *p)
{
    unsigned n = 0;
    for (int i = 0; i < p->nworkers; i++)
        n += p->workers[i].load.suspect != 0;
    return n;
}
