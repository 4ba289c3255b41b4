/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * supervisor.c - restart history, restart intensity and backoff (see
 * supervisor.h).
 *
 * The intensity check keeps the times of the last maxRestarts+1
 * unexpected ends in a ring: the pool enters backoff when the oldest of
 * them is within restartWindow of the newest.  In backoff, the k-th
 * respawn waits SUP_BACKOFF_MIN_MS x 2^(k-1), capped at SUP_BACKOFF_MAX_MS.
 */
#include "supervisor.h"
#include "ap_alloc.h"
#include "ap_backoff.h"
#include "ap_log.h"
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

static struct {
    sup_event *history;          /* ring of historySize entries */
    unsigned hcap, hlen, hnext;
    uint64_t *recent;            /* ring of maxRestarts+1 monotonic times */
    unsigned rcap, rlen, rnext;
    int backoff;
    unsigned backoff_level;
    uint64_t last_unexpected_ms;
    uint64_t ends[SUP_REASON_COUNT];
} supervision;

static const char *const reason_names[SUP_REASON_COUNT] = {"stopped",       "crashed",  "start_failed",
                                                           "killed_stuck",  "killed_memory", "recycled"};

const char *supervisor_reason_name(sup_reason r)
{
    return r < SUP_REASON_COUNT ? reason_names[r] : "?";
}

void supervisor_init(void)
{
    memset(&supervision, 0, sizeof(supervision));
    supervision.hcap = (unsigned)server.cfg->history_size;
    supervision.history = ap_calloc(supervision.hcap, sizeof(sup_event));
    supervision.rcap = (unsigned)server.cfg->max_restarts + 1;
    supervision.recent = ap_calloc(supervision.rcap, sizeof(uint64_t));
}

void supervisor_free(void)
{
    ap_free(supervision.history);
    ap_free(supervision.recent);
    memset(&supervision, 0, sizeof(supervision));
}

int supervisor_in_backoff(void)
{
    return supervision.backoff;
}

uint64_t supervisor_ends(sup_reason r)
{
    return r < SUP_REASON_COUNT ? supervision.ends[r] : 0;
}

/* Counted from the history, so it is not capped by the intensity ring
 * (only by historySize). */
unsigned supervisor_recent_restarts(uint64_t now_ms)
{
    unsigned n = 0;
    for (unsigned k = 0; k < supervision.hlen; k++) {
        const sup_event *e = &supervision.history[k];
        if (e->reason != SUP_STOPPED && e->reason != SUP_RECYCLED &&
            now_ms - e->mono_ms < (uint64_t)server.cfg->restart_window)
            n++;
    }
    return n;
}

static void remember(const worker *w, int status, sup_reason reason)
{
    sup_event *e = &supervision.history[supervision.hnext];
    e->wall_ms = ap_wall_ms();
    e->mono_ms = ap_now_ms();
    e->pid = w->proc.pid;
    e->status = status;
    e->slot = w->slot;
    e->generation = w->proc.generation;
    e->reason = reason;
    supervision.hnext = (supervision.hnext + 1) % supervision.hcap;
    if (supervision.hlen < supervision.hcap)
        supervision.hlen++;
    supervision.ends[reason]++;
}

/* Adds an unexpected end; says whether the intensity limit is passed. */
static int intensity_exceeded(uint64_t now)
{
    supervision.recent[supervision.rnext] = now;
    supervision.rnext = (supervision.rnext + 1) % supervision.rcap;
    if (supervision.rlen < supervision.rcap)
        supervision.rlen++;
    if (supervision.rlen < supervision.rcap)
        return 0;
    uint64_t oldest = supervision.recent[supervision.rnext]; /* the ring is full: next is oldest */
    return now - oldest < (uint64_t)server.cfg->restart_window;
}

/* One-for-all: after an unexpected end, every other serving worker is
 * replaced too, rolling and make before break (recycle_tick starts the
 * replacements as it can). */
static void one_for_all(const worker *w, sup_reason reason)
{
    if (server.cfg->restart_strategy != RESTART_ONE_FOR_ALL || reason == SUP_STOPPED || reason == SUP_RECYCLED ||
        server.state != SERVER_READY)
        return;
    int n = 0;
    for (int i = 0; i < server.nworkers; i++) {
        worker *o = &server.workers[i];
        if (o != w && o->slot >= 0 && worker_is_accepting(o) && !o->replaced_by) {
            o->proc.replace_pending = 1;
            n++;
        }
    }
    if (n)
        ap_warn("one-for-all: %s %s; replacing the %d other worker%s", w->name, supervisor_reason_name(reason), n,
                n == 1 ? "" : "s");
}

int64_t supervisor_worker_ended(const worker *w, int status, sup_reason reason)
{
    remember(w, status, reason);
    one_for_all(w, reason);
    if (reason == SUP_STOPPED || reason == SUP_RECYCLED)
        return -1;
    if (!server.cfg->restart_on_failure) {
        ap_warn("%s: restartOnFailure is false: not respawning it", w->name);
        return -1;
    }
    uint64_t now = ap_now_ms();
    supervision.last_unexpected_ms = now;
    uint64_t delay = 0;
    if (intensity_exceeded(now)) {
        if (!supervision.backoff)
            ap_error("more than %lld worker restarts within %lld ms: the pool backs off (degraded)",
                     (long long)server.cfg->max_restarts, (long long)server.cfg->restart_window);
        supervision.backoff = 1;
        supervision.backoff_level++;
        delay = ap_backoff_ms(SUP_BACKOFF_MIN_MS, SUP_BACKOFF_MAX_MS, supervision.backoff_level);
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

void supervisor_tick(uint64_t now_ms)
{
    if (supervision.backoff && now_ms - supervision.last_unexpected_ms >= (uint64_t)server.cfg->restart_window) {
        supervision.backoff = 0;
        supervision.backoff_level = 0;
        ap_info("no worker has died for %lld ms: the pool leaves backoff", (long long)server.cfg->restart_window);
    }
}

cJSON *supervisor_history_json(void)
{
    cJSON *arr = cJSON_CreateArray();
    for (unsigned k = 0; k < supervision.hlen; k++) {
        const sup_event *e = &supervision.history[(supervision.hnext + supervision.hcap - supervision.hlen + k) % supervision.hcap];
        cJSON *o = cJSON_CreateObject();
        char name[32];
        snprintf(name, sizeof(name), "worker-%d", e->slot);
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
