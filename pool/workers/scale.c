/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scale.c - growing and shrinking the pool (see scale.h).
 */
#include "scale.h"
#include "ap_log.h"
#include "msg.h"
#include "server.h"

static int add_slot(void)
{
    worker *e = worker_free_entry();
    if (e == NULL)
        return AP_ERR;
    int slot = server.pool_size;
    worker_assign(e, slot);
    server.pool_size++;
    if (worker_spawn(e->index) != AP_OK) {
        server.pool_size--;
        worker_assign(e, -1);
        return AP_ERR;
    }
    return AP_OK;
}

/* Drains every process of the highest slot; worker_died frees its entries. */
static void remove_slot(void)
{
    int slot = server.pool_size - 1;
    server.pool_size--;
    for (int i = 0; i < server.nworkers; i++) {
        worker *w = &server.workers[i];
        if (w->slot != slot)
            continue;
        if (w->state == WORKER_DEAD)
            worker_assign(w, -1); /* waiting for a respawn that will not come */
        else
            worker_retire(w);
    }
}

scale_result scale_to(int n, const char *why)
{
    scale_result r = {n, server.pool_size, server.pool_size, 0};
    int lo = (int)server.cfg->min_workers, hi = (int)server.cfg->max_workers;
    if (n < lo || n > hi) {
        r.clamped = 1;
        n = n < lo ? lo : hi;
    }
    if (server.state >= SERVER_DRAINING)
        return r;
    while (server.pool_size < n && add_slot() == AP_OK)
        ;
    while (server.pool_size > n)
        remove_slot();
    r.after = server.pool_size;
    if (r.after != r.before)
        ap_info("scaled from %d to %d workers (%s)", r.before, r.after, why);
    return r;
}

void scale_tick(uint64_t now)
{
    if (server.state != SERVER_READY)
        return;
    const queue_link *head = queue_peek(&server.queue);
    uint64_t after = (uint64_t)server.cfg->scale_up_after;
    if (head && server.pool_size < server.cfg->max_workers && now - server.last_scale_up_ms >= after) {
        const msg *m = msg_from_qlink(head);
        if (now - m->accepted_ns / 1000000 >= after) {
            server.last_scale_up_ms = now;
            scale_to(server.pool_size + 1, "messages waited longer than scaleUpAfter");
            return;
        }
    }
    if (server.pool_size > server.cfg->min_workers) {
        int slot = server.pool_size - 1;
        for (int i = 0; i < server.nworkers; i++) {
            const worker *w = &server.workers[i];
            if (w->slot == slot && w->state == WORKER_READY && w->load.in_flight == 0 &&
                now - w->proc.last_active_ms >= (uint64_t)server.cfg->idle_timeout) {
                scale_to(server.pool_size - 1, "a worker was idle longer than idleTimeout");
                return;
            }
        }
    }
}
