/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * recycle.c - recycling policies and the make-before-break hand-over
 * (see recycle.h).  worker.c calls back into it when a replacement is
 * ready (recycle_replacement_ready) and when a process dies
 * (recycle_process_ended), so the hand-over's two ends live here: which
 * process owns the slot is decided nowhere else.  A replacement that
 * cannot be forked or fails to start leaves the old worker serving, and
 * the next attempt for it waits RECYCLE_RETRY_MIN_MS doubling per failure up to
 * RECYCLE_RETRY_MAX_MS, never in a loop.
 */
#include "recycle.h"
#include "ap_backoff.h"
#include "ap_log.h"
#include "events.h"
#include "reload.h"
#include "server.h"
#include "supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How often worker RSS is read from /proc. */
#define RECYCLE_RSS_EVERY_MS 1000
#define RECYCLE_RETRY_MIN_MS 1000
#define RECYCLE_RETRY_MAX_MS 60000

/* A limit lowered by w's spread: limit x (1 - spread). */
static uint64_t spread(const worker *w, uint64_t limit)
{
    return limit - limit / 1000 * w->proc.spread_permille - limit % 1000 * w->proc.spread_permille / 1000;
}

void recycle_new_process(worker *w)
{
    unsigned max = (unsigned)w->pool->cfg->recycle_jitter * 10;
    w->proc.spread_permille = max ? (unsigned)random() % (max + 1) : 0;
}

/* ---- the policies: each says why w is due, or NULL ----------------- */

static const char *recycle_check_messages(const worker *w)
{
    uint64_t limit = (uint64_t)w->pool->cfg->max_messages_per_worker;
    return limit && w->load.processed >= spread(w, limit) ? "processed maxMessagesPerWorker messages" : NULL;
}

static const char *recycle_check_age(const worker *w, uint64_t now)
{
    uint64_t limit = (uint64_t)w->pool->cfg->worker_recycle_interval;
    return limit && now - w->proc.started_ms >= spread(w, limit) ? "older than workerRecycleInterval" : NULL;
}

static const char *recycle_check_memory(const worker *w)
{
    uint64_t limit = (uint64_t)w->pool->cfg->max_worker_rss;
    return limit && w->proc.rss_bytes >= spread(w, limit) ? "RSS over maxWorkerRss" : NULL;
}

/* The hard limit: not a recycle, a kill. */
static int recycle_check_memory_hard(worker *w)
{
    uint64_t limit = (uint64_t)w->pool->cfg->max_worker_rss_hard;
    if (!limit || w->proc.rss_bytes < limit || w->proc.kill != WORKER_KILL_NONE || w->proc.pid <= 0)
        return 0;
    char why[128];
    snprintf(why, sizeof(why), "uses %llu bytes, over maxWorkerRssHard (%llu)", (unsigned long long)w->proc.rss_bytes,
             (unsigned long long)limit);
    worker_kill_for_memory(w, why);
    return 1;
}

/* ---- the hand-over -------------------------------------------------- */

/* w's replacement could not be forked, or died before it was ready: w
 * serves on, and its next recycle waits, doubling per failure in a row. */
static void back_off(worker *w)
{
    w->proc.recycle_reason = NULL;
    w->recycle_failures++;
    w->recycle_after_ms = ap_now_ms() + ap_backoff_ms(RECYCLE_RETRY_MIN_MS, RECYCLE_RETRY_MAX_MS, w->recycle_failures);
}

int recycle_active(const pool_t *p)
{
    int n = 0;
    for (int i = 0; i < p->nworkers; i++)
        n += p->workers[i].replaced_by != NULL && p->workers[i].state != WORKER_DEAD;
    return n;
}

int recycle_start(worker *w, const char *reason)
{
    if (!worker_is_accepting(w) || w->replaced_by || server.state != SERVER_READY ||
        ap_now_ms() < w->recycle_after_ms)
        return AP_ERR;
    pool_t *p = w->pool;
    if (recycle_active(p) >= p->cfg->max_concurrent_recycles)
        return AP_ERR;
    worker *e = worker_free_entry(p);
    if (e == NULL)
        return AP_ERR;
    ap_info("%s (pid %d) is recycled: %s; starting its replacement first", w->name, (int)w->proc.pid, reason);
    worker_assign(e, w->slot);
    e->replaces = w;
    w->replaced_by = e;
    w->proc.recycle_reason = reason;
    if (worker_spawn(p, e->index) != AP_OK) {
        w->replaced_by = NULL;
        e->replaces = NULL;
        worker_assign(e, -1);
        back_off(w);
        return AP_ERR;
    }
    w->proc.replace_pending = 0;
    p->stats.recycles++;
    char esc[256];
    events_emit(p, EVENTS_WORKER_RECYCLE_STARTED, EVENTS_NORMAL,
                "\"worker\":\"%s\",\"pid\":%d,\"why\":\"%s\",\"replacement\":\"%s\"", w->name, (int)w->proc.pid,
                events_esc(esc, sizeof(esc), reason), e->name);
    return AP_OK;
}

void recycle_replacement_ready(worker *w)
{
    worker *old = w->replaces;
    if (old == NULL)
        return;
    /* Make before break: the replacement serves, the old one drains. */
    old->recycle_failures = 0;
    w->replaces = NULL;
    ap_info("%s (pid %d) hands over to pid %d and drains %d message%s", old->name, (int)old->proc.pid, (int)w->proc.pid,
            old->proc.running_count, old->proc.running_count == 1 ? "" : "s");
    if (worker_is_accepting(old))
        worker_drain(old);
}

int recycle_process_ended(worker *w)
{
    if (w->replaced_by) {
        /* The old process is gone (drained, or died during the hand-over):
         * its replacement owns the slot. */
        w->replaced_by->replaces = NULL;
        w->replaced_by = NULL;
        return 1;
    }
    if (w->replaces) {
        worker *old = w->replaces;
        ap_warn("%s: replacement pid %d died before it was ready; the old worker (pid %d) keeps serving", w->name,
                (int)w->proc.pid, (int)old->proc.pid);
        old->replaced_by = NULL;
        back_off(old);
        w->replaces = NULL;
        reload_replacement_failed(old->pool);
        return 1;
    }
    return 0;
}

void recycle_after_answer(worker *w)
{
    if (AP_UNLIKELY(w->pool->cfg->max_messages_per_worker && !w->replaced_by)) {
        const char *why = recycle_check_messages(w);
        if (why)
            recycle_start(w, why);
    }
}

/* Workers marked by the restart strategy (one-for-all, rest-for-one)
 * are replaced in slot order: a later slot's replacement never starts
 * before an earlier one's (maxConcurrentRecycles at a time). */
static void replace_pending_in_order(pool_t *p)
{
    for (int slot = 0; slot < p->pool_size; slot++) {
        for (int i = 0; i < p->nworkers; i++) {
            worker *w = &p->workers[i];
            if (w->slot != slot || !w->proc.replace_pending || !worker_is_accepting(w) || w->replaced_by)
                continue;
            if (recycle_start(w, supervisor_replace_reason(p)) != AP_OK)
                return;
        }
    }
}

void recycle_tick(pool_t *p, uint64_t now)
{
    int sample = now - p->last_rss_ms >= RECYCLE_RSS_EVERY_MS;
    if (sample)
        p->last_rss_ms = now;
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        if (w->state == WORKER_DEAD || w->proc.pid <= 0)
            continue;
        if (sample)
            w->proc.rss_bytes = ap_rss_bytes((int)w->proc.pid);
        if (recycle_check_memory_hard(w))
            continue;
        if ((w->state == WORKER_STOPPING || w->state == WORKER_DRAINING) && w->proc.stop_sent_ms && w->proc.kill == WORKER_KILL_NONE &&
            now - w->proc.stop_sent_ms >= (uint64_t)w->pool->cfg->graceful_timeout) {
            char why[96];
            snprintf(why, sizeof(why), "it did not exit within gracefulTimeout (%lld ms) of being asked",
                     (long long)w->pool->cfg->graceful_timeout);
            worker_kill_stuck(w, why);
            continue;
        }
        if (!worker_is_accepting(w) || w->replaced_by || w->proc.replace_pending)
            continue;
        const char *why = recycle_check_messages(w);
        if (!why)
            why = recycle_check_age(w, now);
        if (!why)
            why = recycle_check_memory(w);
        if (why)
            recycle_start(w, why);
    }
    if (server.state == SERVER_READY)
        replace_pending_in_order(p);
}
