/*
 * sched.c - admission and the queue pump (see sched.h).
 * Invariant: a message is queued only when no worker had a free slot or
 * older messages were already waiting, so the FIFO order is the order
 * messages reach workers.
 */
#include "sched.h"
#include "client.h"
#include "server.h"

static int pick_worker(void)
{
    return dispatch_pick(&server.dispatch, (int)server.cfg->strategy, server.workers, sizeof(worker),
                         server.nworkers);
}

sched_result sched_admit(msg *m, int count_reject)
{
    if (server.pending_bytes + m->line_len > (uint64_t)server.cfg->max_pending_bytes) {
        if (count_reject)
            server.queue.rejected++;
        return SCHED_FULL;
    }
    if (server.queue.depth == 0) {
        int i = pick_worker();
        if (i >= 0) {
            server.pending_bytes += m->line_len;
            server.stats.accepted++;
            worker_send(&server.workers[i], m);
            return SCHED_SENT;
        }
    }
    if (queue_push(&server.queue, &m->qlink, count_reject) != 0)
        return SCHED_FULL;
    server.pending_bytes += m->line_len;
    server.stats.accepted++;
    msg_set_state(&server.msgs, m, MSG_QUEUED);
    return SCHED_QUEUED;
}

void sched_pump(void)
{
    while (server.queue.depth > 0) {
        int i = pick_worker();
        if (i < 0)
            break;
        msg *m = msg_from_qlink(queue_pop(&server.queue));
        worker_send(&server.workers[i], m);
    }
    if (!link_empty(&server.room_waiters))
        client_room_available();
}

void sched_release(msg *m)
{
    if (m->state == MSG_QUEUED || m->state == MSG_RUNNING || m->state == MSG_RETRY_WAIT)
        server.pending_bytes -= m->line_len;
}
