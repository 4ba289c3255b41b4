/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * health.c - the one meaning of a healthy worker and of the pool's status
 * (see health.h).
 *
 * Two predicates over the master's own state (the worker table, the
 * server's state, supervisor's backoff), one pass over the table per
 * call, no state of its own.  Called by control.c, httpd.c, metrics.c,
 * alert.c and sdnotify.c; never changes anything.
 */
#include "health.h"
#include "ap_common.h"
#include "server.h"
#include "supervisor.h"

int health_worker_ok(const worker *w)
{
    return worker_is_accepting(w) && w->proc.missed_beats == 0;
}

int health_slot_in_backoff(const worker *w)
{
    if (w->slot < 0)
        return 0;
    /* waiting for its delayed respawn, or trying again after failed starts */
    return (w->state == WORKER_DEAD && w->respawn_due_ms != 0) ||
           (w->state == WORKER_STARTING && w->start_failures > 0);
}

int health_backoff_slots(const pool_t *p)
{
    int n = 0;
    for (int i = 0; i < p->nworkers; i++)
        n += health_slot_in_backoff(&p->workers[i]);
    return n;
}

/* The server's own state, when it is not READY (then pools do not count). */
static int server_status(void)
{
    switch (server.state) {
    case SERVER_STARTING: return HEALTH_STARTING;
    case SERVER_DRAINING: return HEALTH_DRAINING;
    case SERVER_STOPPING: return HEALTH_STOPPING;
    case SERVER_READY: break;
    }
    return -1;
}

health_status health_pool(const pool_t *p, int *healthy)
{
    int n = 0, waiting = 0;
    for (int i = 0; i < p->nworkers; i++) {
        n += health_worker_ok(&p->workers[i]);
        waiting += health_slot_in_backoff(&p->workers[i]);
    }
    if (healthy)
        *healthy = n;
    int st = server_status();
    if (st >= 0)
        return (health_status)st;
    if (p->state == POOL_STARTING)
        return HEALTH_STARTING; /* added by a reload: its first workers are not all ready */
    if (p->state >= POOL_RETIRING)
        return HEALTH_DRAINING; /* removed by a reload: finishing what it holds */
    /* One worker being respawned at once is not degraded: the others
     * serve.  A slot whose respawn waits in backoff is: it keeps failing
     * while the others hide it (a crash loop of one slot). */
    return supervisor_in_backoff(p) || waiting > 0 || n == 0 ? HEALTH_DEGRADED : HEALTH_READY;
}

health_status health_server(int *healthy)
{
    health_status worst = HEALTH_READY;
    int total = 0;
    POOLS_FOREACH(p) {
        int n = 0;
        /* Only running pools count: one a reload is adding or removing
         * does not make the server unready meanwhile. */
        if (health_pool(p, &n) == HEALTH_DEGRADED && p->state == POOL_RUNNING)
            worst = HEALTH_DEGRADED;
        total += n;
    }
    if (healthy)
        *healthy = total;
    int st = server_status();
    return st >= 0 ? (health_status)st : worst;
}

const char *health_status_name(health_status s)
{
    static const char *const names[] = {"starting", "ready", "degraded", "draining", "stopping"};
    return (unsigned)s < AP_ARRAY_LEN(names) ? names[s] : "?";
}
