/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * supervisor.c - restart history, restart intensity and backoff (see
 * supervisor.h).
 *
 * The intensity check keeps the times of the last maxRestarts+1
 * unexpected ends in a ring: the pool enters backoff when the oldest of
 * them is within restartWindow of the newest.  In backoff, the k-th
 * respawn waits SUP_BACKOFF_MIN_MS x 2^(k-1), capped at SUP_BACKOFF_MAX_MS.
 * State: one sup_state per pool (p->sup): each pool is supervised on its
 * own, the master is the root above them.
 */
#include "supervisor.h"
#include "ap_alloc.h"
#include "ap_backoff.h"
#include "ap_log.h"
#include "events.h"
#include "server.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#define SUP_BACKOFF_MIN_MS 500
#define SUP_BACKOFF_MAX_MS 60000
#define SUP_START_BACKOFF_MIN_MS 250
#define SUP_START_BACKOFF_MAX_MS 30000

typedef struct {
    uint64_t wall_ms;
    uint64_t mono_ms;
    pid_t pid;
    int status;
    int slot;
    uint32_t generation;
    sup_reason reason;
} sup_event;

struct sup_state {
    sup_event *history;          /* ring of historySize entries */
    unsigned hcap, hlen, hnext;
    uint64_t *recent;            /* ring of maxRestarts+1 monotonic times */
    unsigned rcap, rlen, rnext;
    int backoff;
    unsigned backoff_level;
    uint64_t last_unexpected_ms;
    uint64_t ends[SUP_REASON_COUNT];
};

static const char *const reason_names[SUP_REASON_COUNT] = {"stopped",       "crashed",  "start_failed",
                                                           "killed_stuck",  "killed_memory", "recycled"};

const char *supervisor_reason_name(sup_reason r)
{
    return r < SUP_REASON_COUNT ? reason_names[r] : "?";
}

void supervisor_init(pool_t *p)
{
    struct sup_state *sv = p->sup = ap_calloc(1, sizeof(*sv));
    sv->hcap = (unsigned)p->cfg->history_size;
    sv->history = ap_calloc(sv->hcap, sizeof(sup_event));
    sv->rcap = (unsigned)p->cfg->max_restarts + 1;
    sv->recent = ap_calloc(sv->rcap, sizeof(uint64_t));
}

void supervisor_free(pool_t *p)
{
    if (p->sup == NULL)
        return;
    ap_free(p->sup->history);
    ap_free(p->sup->recent);
    ap_free(p->sup);
    p->sup = NULL;
}

int supervisor_in_backoff(const pool_t *p)
{
    return p->sup->backoff;
}

uint64_t supervisor_ends(const pool_t *p, sup_reason r)
{
    return r < SUP_REASON_COUNT ? p->sup->ends[r] : 0;
}

/* Counted from the history, so it is not capped by the intensity ring
 * (only by historySize). */
unsigned supervisor_recent_restarts(const pool_t *p, uint64_t now_ms)
{
    const struct sup_state *sv = p->sup;
    unsigned n = 0;
    for (unsigned k = 0; k < sv->hlen; k++) {
        const sup_event *e = &sv->history[k];
        if (e->reason != SUP_STOPPED && e->reason != SUP_RECYCLED &&
            now_ms - e->mono_ms < (uint64_t)p->cfg->restart_window)
            n++;
    }
    return n;
}

static void remember(const worker *w, int status, sup_reason reason)
{
    struct sup_state *sv = w->pool->sup;
    sup_event *e = &sv->history[sv->hnext];
    e->wall_ms = ap_wall_ms();
    e->mono_ms = ap_now_ms();
    e->pid = w->proc.pid;
    e->status = status;
    e->slot = w->slot;
    e->generation = w->proc.generation;
    e->reason = reason;
    sv->hnext = (sv->hnext + 1) % sv->hcap;
    if (sv->hlen < sv->hcap)
        sv->hlen++;
    sv->ends[reason]++;
}

/* Adds an unexpected end; says whether the intensity limit is passed. */
static int intensity_exceeded(pool_t *p, uint64_t now)
{
    struct sup_state *sv = p->sup;
    sv->recent[sv->rnext] = now;
    sv->rnext = (sv->rnext + 1) % sv->rcap;
    if (sv->rlen < sv->rcap)
        sv->rlen++;
    if (sv->rlen < sv->rcap)
        return 0;
    uint64_t oldest = sv->recent[sv->rnext]; /* the ring is full: next is oldest */
    return now - oldest < (uint64_t)p->cfg->restart_window;
}

/* One-for-all and rest-for-one: after an unexpected end, the other
 * serving workers of the pool (one-for-all) or those of a later slot
 * (rest-for-one: the slots started after it, which may depend on it) are
 * replaced too, make before break; recycle_tick starts the replacements
 * in slot order, maxConcurrentRecycles at a time. */
static void restart_others(const worker *w, sup_reason reason)
{
    pool_t *p = w->pool;
    int64_t strategy = p->cfg->restart_strategy;
    if (strategy == RESTART_ONE_FOR_ONE || reason == SUP_STOPPED || reason == SUP_RECYCLED ||
        server.state != SERVER_READY)
        return;
    int n = 0;
    for (int i = 0; i < p->nworkers; i++) {
        worker *o = &p->workers[i];
        if (o == w || o->slot < 0 || !worker_is_accepting(o) || o->replaced_by)
            continue;
        if (strategy == RESTART_REST_FOR_ONE && o->slot <= w->slot)
            continue;
        o->proc.replace_pending = 1;
        n++;
    }
    if (n)
        ap_warn("%s: %s %s; replacing the %d %sworker%s", strategy == RESTART_ONE_FOR_ALL ? "one-for-all" : "rest-for-one",
                w->name, supervisor_reason_name(reason), n, strategy == RESTART_ONE_FOR_ALL ? "other " : "later ",
                n == 1 ? "" : "s");
}

const char *supervisor_replace_reason(const pool_t *p)
{
    return p->cfg->restart_strategy == RESTART_REST_FOR_ONE ? "rest-for-one: a worker of an earlier slot died"
                                                             : "one-for-all: another worker died";
}

int64_t supervisor_worker_ended(const worker *w, int status, sup_reason reason)
{
    pool_t *p = w->pool;
    struct sup_state *sv = p->sup;
    remember(w, status, reason);
    restart_others(w, reason);
    if (reason == SUP_STOPPED || reason == SUP_RECYCLED)
        return -1;
    if (!p->cfg->restart_on_failure) {
        ap_warn("%s: restartOnFailure is false: not respawning it", w->name);
        return -1;
    }
    uint64_t now = ap_now_ms();
    sv->last_unexpected_ms = now;
    uint64_t delay = 0;
    if (intensity_exceeded(p, now)) {
        if (!sv->backoff) {
            ap_error("pool %s: more than %lld worker restarts within %lld ms: the pool backs off (degraded)", p->name,
                     (long long)p->cfg->max_restarts, (long long)p->cfg->restart_window);
            events_emit(p, EVENTS_POOL_BACKOFF_ENTERED, EVENTS_CRITICAL, "\"maxRestarts\":%lld,\"restartWindowMs\":%lld",
                        (long long)p->cfg->max_restarts, (long long)p->cfg->restart_window);
        }
        sv->backoff = 1;
        sv->backoff_level++;
        delay = ap_backoff_ms(SUP_BACKOFF_MIN_MS, SUP_BACKOFF_MAX_MS, sv->backoff_level);
    }
    if (w->start_failures > 0) {
        uint64_t d = ap_backoff_ms(SUP_START_BACKOFF_MIN_MS, SUP_START_BACKOFF_MAX_MS, w->start_failures);
        if (d > delay)
            delay = d;
        ap_warn("%s: agent failed to start %u time(s) in a row; next attempt in %llu ms", w->name,
                w->start_failures, (unsigned long long)delay);
    } else if (delay) {
        ap_warn("%s: next respawn in %llu ms", w->name, (unsigned long long)delay);
    }
    return (int64_t)delay;
}

void supervisor_tick(pool_t *p, uint64_t now_ms)
{
    struct sup_state *sv = p->sup;
    if (sv->backoff && now_ms - sv->last_unexpected_ms >= (uint64_t)p->cfg->restart_window) {
        sv->backoff = 0;
        sv->backoff_level = 0;
        ap_info("pool %s: no worker has died for %lld ms: the pool leaves backoff", p->name,
                (long long)p->cfg->restart_window);
        events_emit(p, EVENTS_POOL_BACKOFF_LEFT, EVENTS_NORMAL, "\"quietMs\":%lld", (long long)p->cfg->restart_window);
    }
}

cJSON *supervisor_history_json(const pool_t *p, cJSON *arr)
{
    const struct sup_state *sv = p->sup;
    for (unsigned k = 0; k < sv->hlen; k++) {
        const sup_event *e = &sv->history[(sv->hnext + sv->hcap - sv->hlen + k) % sv->hcap];
        cJSON *o = cJSON_CreateObject();
        char name[32];
        snprintf(name, sizeof(name), "worker-%d", e->slot);
        if (server.cfg->pools_named)
            cJSON_AddStringToObject(o, "pool", p->name);
        cJSON_AddNumberToObject(o, "time", (double)e->wall_ms);
        cJSON_AddStringToObject(o, "worker", name);
        cJSON_AddNumberToObject(o, "generation", e->generation);
        cJSON_AddNumberToObject(o, "pid", e->pid);
        cJSON_AddStringToObject(o, "reason", reason_names[e->reason]);
        if (WIFSIGNALED(e->status))
            cJSON_AddNumberToObject(o, "signal", WTERMSIG(e->status));
        else
            cJSON_AddNumberToObject(o, "exitStatus", WEXITSTATUS(e->status));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
