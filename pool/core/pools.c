/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pools.c - the table of named pools: building each pool's state from
 * its settings, finding a pool by name, and the totals over all of them
 * (see pools.h).
 */
#include "pools.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "a2acard.h"
#include "a2astore.h"
#include "agentev.h"
#include "agentstat.h"
#include "alert.h"
#include "answer.h"
#include "client.h"
#include "breaker.h"
#include "drift.h"
#include "idem.h"
#include "events.h"
#include "metrics.h"
#include "retry.h"
#include "server.h"
#include "session.h"
#include "broker.h"
#include "sessrun.h"
#include "sessstate.h"
#include "supervisor.h"
#include "typetab.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(server_stats) % sizeof(uint64_t) == 0, "server_stats holds uint64_t fields only");

static void breaker_changed(void *arg, unsigned idx, const breaker_change *c)
{
    pool_t *p = arg;
    const char *type = typetab_name(p->types, idx);
    if (c->to == BREAKER_OPEN && c->from == BREAKER_HALF_OPEN)
        ap_warn("pool %s: breaker for type %s: the probe failed: open again for %llu ms", p->name, type,
                (unsigned long long)c->open_ms);
    else if (c->to == BREAKER_OPEN)
        ap_warn("pool %s: breaker for type %s: %s -> open (%u failures in %llu ms); answering circuit_open for %llu ms",
                p->name, type, breaker_state_name(c->from), c->failures, (unsigned long long)c->span_ms,
                (unsigned long long)c->open_ms);
    else
        ap_info("pool %s: breaker for type %s: %s -> %s", p->name, type, breaker_state_name(c->from),
                breaker_state_name(c->to));
    char esc[768];
    if (c->to == BREAKER_OPEN || c->to == BREAKER_CLOSED)
        events_emit(p, c->to == BREAKER_OPEN ? EVENTS_BREAKER_OPENED : EVENTS_BREAKER_CLOSED, EVENTS_NORMAL,
                    "\"type\":\"%s\",\"from\":\"%s\",\"failures\":%u,\"openMs\":%llu", events_esc(esc, sizeof(esc), type),
                    breaker_state_name(c->from), c->failures, (unsigned long long)c->open_ms);
}

static int pool_init(pool_t *p, int index, const config_pool *cp, config *top)
{
    const config *cfg = cp->cfg;
    p->index = index;
    p->cfg_top = top;
    snprintf(p->name, sizeof(p->name), "%s", cp->name);
    p->cfg = cfg;
    link_init(&p->room_waiters);
    link_init(&p->retrying);
    queue_init(&p->queue, (size_t)cfg->message_queue_size);
    dispatch_init(&p->dispatch, ((uint64_t)server.pid * 0x9E3779B97F4A7C15ull ^ ap_now_ns()) + (uint64_t)index);
    worker_table_init(p);
    supervisor_init(p);
    drift_init(p);
    alert_init(p);
    retry_open_dead_letters(p);
    if (retry_start(p) != AP_OK)
        return AP_ERR;
    p->types = typetab_new((unsigned)cfg->max_tracked_types);
    breaker_config bc = {(unsigned)cfg->breaker_failure_threshold, (uint64_t)cfg->breaker_window,
                         (uint64_t)cfg->breaker_reset_timeout};
    p->breakers = p->types ? breaker_new(typetab_capacity(p->types), &bc, breaker_changed, p) : NULL;
    if (p->types == NULL || p->breakers == NULL) {
        ap_error("pool %s: could not set up the type table and breakers (maxTrackedTypes %lld, "
                 "breakerFailureThreshold %lld)",
                 p->name, (long long)cfg->max_tracked_types, (long long)cfg->breaker_failure_threshold);
        return AP_ERR;
    }
    p->metrics = metrics_new(typetab_capacity(p->types));
    p->sessions = session_table_new((uint32_t)cfg->max_sessions);
    p->idem = idem_new();
    /* at start-up a store that cannot be reached stops agentpoold; added by a reload, it is retried */
    if (sessstate_open(p, p->state == POOL_RUNNING) != AP_OK)
        return AP_ERR;
    if (broker_open(p) != AP_OK)
        return AP_ERR;
    a2astore_load(p); /* its A2A tasks of the last run, read back in the background */
    return AP_OK;
}

int pools_init(void)
{
    const config *cfg = server.cfg;
    server.pools = ap_calloc(POOLS_MAX, sizeof(pool_t *));
    for (int i = 0; i < cfg->npools; i++) {
        pool_t *p = server.pools[i] = ap_calloc(1, sizeof(pool_t));
        server.npools++;
        p->state = POOL_RUNNING;
        if (pool_init(p, i, &cfg->pools[i], server.cfg) != AP_OK)
            return AP_ERR;
    }
    server.default_pool = server.pools[cfg->default_pool >= 0 && cfg->default_pool < server.npools ? cfg->default_pool : 0];
    return AP_OK;
}

static void pool_free(pool_t *p)
{
    broker_close(p); /* its entries' clients are dropped: they stay pending for other consumers */
    agentstat_pool_free(p);
    worker_table_free(p);
    supervisor_free(p);
    drift_free(p);
    alert_free(p);
    retry_close_dead_letters(p);
    retry_stop(p);
    breaker_free(p->breakers);
    typetab_free(p->types);
    metrics_free(p->metrics);
    a2astore_pool_free(p); /* before its store closes: the loader's last callbacks find no pool */
    sessstate_close(p); /* before the sessions its callbacks would name */
    session_table_free(p->sessions);
    idem_free(p->idem);
    agentev_pool_free(p);
    ap_free(p->ucells);
    a2acard_pool_free(p);
    ap_free(p);
}

void pools_free(void)
{
    POOLS_FOREACH(p) pool_free(p);
    ap_free(server.pools);
    server.pools = NULL;
    server.npools = 0;
}

pool_t *pools_find(const char *name, size_t len)
{
    POOLS_FOREACH(p) {
        if (p->state <= POOL_RUNNING && strlen(p->name) == len && memcmp(p->name, name, len) == 0)
            return p;
    }
    return NULL;
}

const char *pools_state_name(pool_state s)
{
    static const char *const names[] = {"starting", "running", "retiring", "stopping"};
    return (unsigned)s < AP_ARRAY_LEN(names) ? names[s] : "?";
}

unsigned pools_fail_waiting(pool_t *p, reply_code code, const char *why)
{
    unsigned n = client_fail_held(p, code, why);
    n += retry_fail_waiting(p, code, why);
    n += sessrun_fail_waiting(p, code, why);
    while (p->queue.depth > 0) {
        answer_error(msg_from_qlink(queue_peek(&p->queue)), code, why, NULL);
        n++;
    }
    return n;
}

/* p's workers are gone: its counters go to the server's (totals stay
 * whole), it is freed and the table closes up. */
static void pool_remove(pool_t *p)
{
    uint64_t *t = (uint64_t *)&server.stats;
    const uint64_t *s = (const uint64_t *)&p->stats;
    for (size_t k = 0; k < sizeof(server_stats) / sizeof(uint64_t); k++)
        t[k] += s[k];
    ap_info("pool %s stopped and removed", p->name);
    int at = p->index;
    pool_free(p);
    for (int i = at; i < server.npools - 1; i++) {
        server.pools[i] = server.pools[i + 1];
        server.pools[i]->index = i;
    }
    server.pools[--server.npools] = NULL;
}

pool_t *pools_add(const config_pool *cp, config *top)
{
    if (server.npools >= POOLS_MAX) {
        ap_error("pool %s: cannot be added: %d pools are still running or draining", cp->name, server.npools);
        return NULL;
    }
    pool_t *p = ap_calloc(1, sizeof(pool_t));
    p->state = POOL_STARTING;
    server.pools[server.npools] = p;
    server.npools++;
    if (pool_init(p, server.npools - 1, cp, top) != AP_OK) {
        /* Half made (logged by pool_init): never seen by a request or a
         * reader of the stats, it goes at once rather than retiring. */
        pool_remove(p);
        return NULL;
    }
    ap_info("pool %s added: %d worker%s running %s", p->name, p->pool_size, p->pool_size == 1 ? "" : "s",
            p->cfg->agent);
    for (int i = 0; i < p->pool_size; i++) {
        if (worker_spawn(p, i) != AP_OK) {
            pools_retire(p, "its workers could not be forked");
            return NULL;
        }
    }
    return p;
}

void pools_retire(pool_t *p, const char *why)
{
    if (p->state >= POOL_RETIRING)
        return;
    int failed = p->state == POOL_STARTING;
    p->state = POOL_RETIRING;
    ap_info("pool %s is removed (%s): it takes no new requests and stops once it holds none", p->name, why);
    if (failed) {
        /* It never served: what waits for it would wait in vain. */
        char why_failed[CONFIG_POOL_NAME_MAX + 96];
        snprintf(why_failed, sizeof(why_failed), "pool %s could not start and was removed", p->name);
        unsigned n = pools_fail_waiting(p, ERR_SHUTTING_DOWN, why_failed);
        if (n)
            ap_warn("pool %s: answered %u waiting message%s shutting_down", p->name, n, n == 1 ? "" : "s");
        p->state = POOL_STOPPING;
        worker_stop_all(p);
    }
}

/* Whether p still holds a message: queued, held for room, waiting to be
 * retried, or on one of its workers. */
static int pool_holds_messages(const pool_t *p)
{
    if (p->queue.depth || p->queue.held || !link_empty(&p->room_waiters) || !link_empty(&p->retrying))
        return 1;
    if (p->sessions->by_state[SESSION_RUNNING]) /* waiting for the store, or committing */
        return 1;
    for (int i = 0; i < p->nworkers; i++)
        if (p->workers[i].state != WORKER_DEAD && p->workers[i].proc.running_count > 0)
            return 1;
    return 0;
}

void pools_tick(void)
{
    for (int i = 0; i < server.npools; i++) {
        pool_t *p = server.pools[i];
        if (p->state == POOL_RETIRING && !pool_holds_messages(p)) {
            p->state = POOL_STOPPING;
            worker_stop_all(p);
        }
        if (p->state == POOL_STOPPING && worker_live_count(p) == 0) {
            pool_remove(p);
            i--;
        }
    }
}

int pools_use_config(const config *top)
{
    POOLS_FOREACH(p) {
        if (p->cfg_top == top)
            return 1;
    }
    return 0;
}

void pools_names(char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    POOLS_FOREACH(p) {
        int k = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", p->name);
        if (k > 0 && (size_t)k < cap - n)
            n += (size_t)k;
    }
}

void pools_total(server_stats *out)
{
    *out = server.stats;
    uint64_t *t = (uint64_t *)out;
    POOLS_FOREACH(p) {
        const uint64_t *s = (const uint64_t *)&p->stats;
        for (size_t k = 0; k < sizeof(server_stats) / sizeof(uint64_t); k++)
            t[k] += s[k];
    }
}

int pools_live_workers(void)
{
    int n = 0;
    POOLS_FOREACH(p) n += worker_live_count(p);
    return n;
}


