/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * health.h - what "healthy" means, once, for every reader.
 *
 * A worker is healthy when it takes messages (READY or BUSY) and answered
 * its last heartbeat round (no unanswered PING counted, no falsy health()
 * answer: missed_beats is 0).  The pool's status is derived from the
 * master's state, restart backoff and the number of healthy workers:
 *
 *   starting / draining / stopping   as the master's state says
 *   degraded                         ready, but in restart backoff (the
 *                                    pool's, or any slot's respawn delayed
 *                                    by backoff) or with no healthy worker
 *   ready                            otherwise
 *
 * pool.ping, pool.health, pool.stats (and per worker in detailed stats),
 * /healthz, the agentpool_ready and agentpool_workers_healthy metrics,
 * the no_healthy_worker alert and systemd's STATUS= line all ask here, so
 * they cannot disagree.  Read-only: nothing here changes a worker or the
 * pool (replacing a worker that misses maxMissedBeats is worker.c's).
 */
#ifndef AP_HEALTH_H
#define AP_HEALTH_H

struct worker;
struct pool;

typedef enum {
    HEALTH_STARTING = 0,
    HEALTH_READY,
    HEALTH_DEGRADED,
    HEALTH_DRAINING,
    HEALTH_STOPPING
} health_status;

/* 1 when w takes messages and answered its last heartbeat, else 0. */
int health_worker_ok(const struct worker *w);
/* Pool p's status; when healthy is not NULL, *healthy is set to the
 * number of healthy workers the status was judged from.  Never fails. */
health_status health_pool(const struct pool *p, int *healthy);
/* The server's: ready when every pool is, degraded when any is (each
 * pool is supervised on its own); *healthy counts every pool's. */
health_status health_server(int *healthy);
/* 1 when w's slot is in restart backoff: it waits for a respawn delayed
 * by backoff (its process failed to start, or the pool backs off), or it
 * is starting again after failed starts (until one gets ready), else 0. */
int health_slot_in_backoff(const struct worker *w);
/* Slots waiting in restart backoff now. */
int health_backoff_slots(const struct pool *p);
/* "starting", "ready", "degraded", "draining" or "stopping". */
const char *health_status_name(health_status s);

#endif
