/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * scale.c - growing and shrinking the pool (see scale.h).
 */
#include "scale.h"
#include "ap_log.h"
#include "msg.h"
#include "server.h"

static int add_slot(pool_t *p)
{
    worker *e = worker_free_entry(p);
    if (e == NULL)
        return AP_ERR;
    int slot = p->pool_size;
    worker_assign(e, slot);
    p->pool_size++;
    if (worker_spawn(p, e->index) != AP_OK) {
        p->pool_size--;
        worker_assign(e, -1);
        return AP_ERR;
    }
    return AP_OK;
}

/* Drains every process of the highest slot; worker_died frees its entries. */
static void remove_slot(pool_t *p)
{
    int slot = p->pool_size - 1;
    p->pool_size--;
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        if (w->slot != slot)
            continue;
        if (w->state == WORKER_DEAD)
            worker_assign(w, -1); /* waiting for a respawn that will not come */
        else
            worker_retire(w);
    }
}

scale_result scale_to(pool_t *p, int n, const char *why)
{
    scale_result r = {n, p->pool_size, p->pool_size, 0};
    int lo = (int)p->cfg->min_workers, hi = (int)p->cfg->max_workers;
    if (n < lo || n > hi) {
        r.clamped = 1;
        n = n < lo ? lo : hi;
    }
    if (server.state >= SERVER_DRAINING)
        return r;
    while (p->pool_size < n && add_slot(p) == AP_OK)
        ;
    while (p->pool_size > n)
        remove_slot(p);
    r.after = p->pool_size;
    if (r.after != r.before && server.npools > 1)
        ap_info("pool %s: scaled from %d to %d workers (%s)", p->name, r.before, r.after, why);
    else if (r.after != r.before)
        ap_info("scaled from %d to %d workers (%s)", r.before, r.after, why);
    return r;
}

void scale_tick(pool_t *p, uint64_t now)
{
    if (server.state != SERVER_READY)
        return;
    const queue_link *head = queue_peek(&p->queue);
    uint64_t after = (uint64_t)p->cfg->scale_up_after;
    if (head && p->pool_size < p->cfg->max_workers && now - p->last_scale_up_ms >= after) {
        const msg *m = msg_from_qlink(head);
        if (now - m->accepted_ns / 1000000 >= after) {
            p->last_scale_up_ms = now;
            scale_to(p, p->pool_size + 1, "messages waited longer than scaleUpAfter");
            return;
        }
    }
    if (p->pool_size > p->cfg->min_workers) {
        int slot = p->pool_size - 1;
        for (int i = 0; i < p->nworkers; i++) {
            const worker *w = &p->workers[i];
            if (w->slot == slot && w->state == WORKER_READY && w->load.in_flight == 0 &&
                now - w->proc.last_active_ms >= (uint64_t)p->cfg->idle_timeout) {
                scale_to(p, p->pool_size - 1, "a worker was idle longer than idleTimeout");
                return;
            }
        }
    }
}
