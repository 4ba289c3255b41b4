/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reload.c - rolling reload, pool after pool (see reload.h).
 *
 * A reload is a plan of steps, one per pool, run one after another:
 *   ROLL   a pool in both configs: it takes its new settings, and its
 *          workers are replaced one at a time, make before break;
 *   ADD    a pool new in the config: started (pools_add), done once its
 *          first workers are all ready;
 *   REMOVE a pool gone from the config: retired at once (it drains and
 *          stops on its own, pools.c).
 * Each step goes WAITING -> RUNNING -> DONE or FAILED.  A roll fails when
 * a new worker cannot start: the pool goes back to the settings its old
 * workers run with (they kept serving all along); an add fails when its
 * workers cannot start: the new pool is retired.  Either way the next
 * step runs, and the answer says which pools failed, with the traceback.
 *
 * Each worker process records its pool's reload epoch; a roll is done
 * when every live serving worker of the pool has the pool's current one.
 * Settings live in the top-level config they were read with (p->cfg_top):
 * after a failed roll a pool runs with an older config than server.cfg.
 * A top-level config that neither server.cfg nor any pool uses any more
 * is freed when the reload ends.
 */
#include "privs.h"
#include "reload.h"
#include "ap_alloc.h"
#include "ap_json.h"
#include "ap_log.h"
#include "answer.h"
#include "apikey.h"
#include "events.h"
#include "recycle.h"
#include "server.h"

#include <cJSON.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#define RELOAD_WAITERS_MAX 16
#define RELOAD_TRACE_MAX 8192
#define RELOAD_RETAINED_MAX (2 * CONFIG_MAX_POOLS + 2)

typedef struct {
    uint64_t serial;
    char *id;
    size_t id_len;
} waiter;

typedef enum { STEP_ROLL = 0, STEP_ADD, STEP_REMOVE } step_kind;
typedef enum { STEP_WAITING = 0, STEP_RUNNING, STEP_DONE, STEP_FAILED } step_state;

typedef struct {
    step_kind kind;
    step_state state;
    char name[CONFIG_POOL_NAME_MAX + 1];
    pool_t *pool;               /* ROLL, REMOVE: the pool; ADD: once made */
    const config_pool *to;      /* ROLL, ADD: its entry in the new config */
    const config *old_cfg;      /* ROLL: the settings to go back to */
    config *old_top;
    unsigned replaced;
    char *trace;                /* FAILED: why, with the new workers' traceback when there is one */
} step;

static struct {
    int argc;
    char **argv;
    int active;
    char target[CONFIG_POOL_NAME_MAX + 1]; /* "": every pool (SIGHUP, pool.reload without a pool) */
    config *nc;                 /* the config read for this reload */
    config *old_top;            /* server.cfg before it (all-pools reloads swap server.cfg) */
    step steps[POOLS_MAX];
    int nsteps;
    int cur;                    /* the step running */
    cJSON *restart_needed;      /* names of settings kept at their running value */
    waiter waiters[RELOAD_WAITERS_MAX];
    int nwaiters;
    char trace[RELOAD_TRACE_MAX];
    size_t trace_len;
    config *retained[RELOAD_RETAINED_MAX]; /* top-level configs some pool may still use */
    int nretained;
} reloading;

void reload_init(int argc, char **argv)
{
    reloading.argc = argc;
    reloading.argv = argv;
}

static void free_config(config *c)
{
    if (c == &server.boot_cfg) {
        config_free(c); /* the one main() filled lives inside `server` */
    } else if (c) {
        config_free(c);
        ap_free(c);
    }
}

/* Keeps c until no pool uses it (gc_configs). */
static void retain(config *c)
{
    for (int i = 0; i < reloading.nretained; i++)
        if (reloading.retained[i] == c)
            return;
    if (reloading.nretained < RELOAD_RETAINED_MAX) {
        reloading.retained[reloading.nretained++] = c;
        return;
    }
    ap_error("reload: more than %d configurations in use at once; one is kept until exit", RELOAD_RETAINED_MAX);
}

/* Frees every retained config that nothing uses any more. */
static void gc_configs(void)
{
    for (int i = 0; i < reloading.nretained;) {
        config *c = reloading.retained[i];
        if (c != server.cfg && c != reloading.nc && !pools_use_config(c)) {
            free_config(c);
            reloading.retained[i] = reloading.retained[--reloading.nretained];
        } else {
            i++;
        }
    }
}

static void steps_clear(void)
{
    for (int i = 0; i < reloading.nsteps; i++)
        ap_free(reloading.steps[i].trace);
    memset(reloading.steps, 0, sizeof(reloading.steps));
    reloading.nsteps = 0;
    reloading.cur = 0;
}

void reload_free(void)
{
    for (int i = 0; i < reloading.nwaiters; i++)
        ap_free(reloading.waiters[i].id);
    reloading.nwaiters = 0;
    cJSON_Delete(reloading.restart_needed);
    reloading.restart_needed = NULL;
    steps_clear();
    reloading.nc = NULL;
    for (int i = 0; i < reloading.nretained; i++)
        if (reloading.retained[i] != server.cfg)
            free_config(reloading.retained[i]);
    reloading.nretained = 0;
    free_config(server.cfg);
    server.cfg = NULL;
}

int reload_in_progress(void)
{
    return reloading.active;
}

/* The step running, if it is for p. */
static step *step_of(const pool_t *p)
{
    if (!reloading.active || reloading.cur >= reloading.nsteps)
        return NULL;
    step *st = &reloading.steps[reloading.cur];
    return st->state == STEP_RUNNING && st->pool == p ? st : NULL;
}

void reload_note_start_failure(const worker *w, const char *text, size_t len)
{
    if (step_of(w->pool) == NULL)
        return;
    reloading.trace_len = len < RELOAD_TRACE_MAX - 1 ? len : RELOAD_TRACE_MAX - 1;
    memcpy(reloading.trace, text, reloading.trace_len);
    reloading.trace[reloading.trace_len] = '\0';
}

/* Answers every waiter: result (ok) or code + message. */
static void answer_waiters(cJSON *result, reply_code code, const char *message, const char *extra)
{
    char *text = result ? cJSON_PrintUnformatted(result) : NULL;
    for (int i = 0; i < reloading.nwaiters; i++) {
        waiter *wt = &reloading.waiters[i];
        answer_later(wt->serial, wt->id, wt->id_len, text, code, message, extra);
        ap_free(wt->id);
    }
    reloading.nwaiters = 0;
    cJSON_free(text);
}

static void add_waiter(uint64_t serial, const char *id, size_t id_len)
{
    if (serial == 0)
        return;
    if (reloading.nwaiters == RELOAD_WAITERS_MAX) {
        answer_later(serial, id, id_len, NULL, ERR_BAD_REQUEST, "too many pool.reload requests waiting", NULL);
        return;
    }
    waiter *wt = &reloading.waiters[reloading.nwaiters++];
    wt->serial = serial;
    wt->id = id_len ? ap_strndup(id, id_len) : NULL;
    wt->id_len = id_len;
}

/* ---- settings a reload cannot change ----------------------------------- */

#define KEEP_STR(f, key)                                                                                       \
    if (strcmp(nc->f, oc->f) != 0) {                                                                           \
        ap_free(nc->f);                                                                                        \
        nc->f = ap_strdup(oc->f);                                                                              \
        kept(names, prefix, key);                                                                              \
    }
#define KEEP_OPTSTR(f, key) /* NULL: not set */                                                            \
    if ((nc->f == NULL) != (oc->f == NULL) || (nc->f && strcmp(nc->f, oc->f) != 0)) {                         \
        ap_free(nc->f);                                                                                        \
        nc->f = oc->f ? ap_strdup(oc->f) : NULL;                                                               \
        kept(names, prefix, key);                                                                              \
    }
#define KEEP_INT(f, key)                                                                                       \
    if (nc->f != oc->f) {                                                                                      \
        nc->f = oc->f;                                                                                         \
        kept(names, prefix, key);                                                                              \
    }

static void kept(cJSON *names, const char *prefix, const char *key)
{
    char name[CONFIG_POOL_NAME_MAX + 64];
    snprintf(name, sizeof(name), "%s%s", prefix, key);
    cJSON_AddItemToArray(names, cJSON_CreateString(name));
}

static int same_list(const config_list *a, const config_list *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return 0;
    return 1;
}

/* The server's settings built into running structures: a reload keeps
 * the running value and says so. */
static void keep_server(config *nc, const config *oc, cJSON *names)
{
    const char *prefix = "";
    KEEP_STR(socket, "socket")
    KEEP_INT(socket_mode, "socketMode")
    KEEP_INT(listen_backlog, "listenBacklog")
    KEEP_OPTSTR(metrics_listen, "metricsListen")
    if (!same_list(&nc->http_listen, &oc->http_listen))
        kept(names, prefix, "httpListen"); /* its listeners were made at start (httpfront.c) and stay */
    KEEP_STR(http_auth, "httpAuth")
    KEEP_INT(http_max_header_bytes, "httpMaxHeaderBytes")
    KEEP_INT(http_request_timeout_ms, "httpRequestTimeoutMs")
    KEEP_INT(http_idle_timeout_ms, "httpIdleTimeoutMs")
    KEEP_OPTSTR(log_file, "logFile")
    KEEP_OPTSTR(access_log, "accessLog")
    KEEP_OPTSTR(user, "user")
    KEEP_OPTSTR(group, "group")
    KEEP_INT(metrics_allow_remote, "metricsAllowRemote")
    KEEP_INT(event_history, "eventHistory")
    KEEP_OPTSTR(api_keys_file, "apiKeysFile") /* its path; the file itself is reread (apikey.c) */
    KEEP_INT(max_tracked_keys, "maxTrackedKeys")
}

/* A pool's: its tables are sized by them.  prefix names the pool ("" for
 * the one unnamed pool). */
static void keep_pool(config *nc, const config *oc, const char *prefix, cJSON *names)
{
    KEEP_INT(max_workers, "maxWorkers")
    KEEP_INT(max_concurrent_recycles, "maxConcurrentRecycles")
    KEEP_INT(max_restarts, "maxRestarts")
    KEEP_INT(history_size, "historySize")
    KEEP_INT(max_tracked_types, "maxTrackedTypes")
    KEEP_INT(timeout, "timeout")
    KEEP_OPTSTR(dead_letter_file, "deadLetterFile")
}
#undef KEEP_STR
#undef KEEP_OPTSTR
#undef KEEP_INT

/* ---- the plan --------------------------------------------------------- */

static const config_pool *config_pool_named(const config *c, const char *name)
{
    for (int i = 0; i < c->npools; i++)
        if (strcmp(c->pools[i].name, name) == 0)
            return &c->pools[i];
    return NULL;
}

static void add_step(step_kind kind, const char *name, pool_t *p, const config_pool *to)
{
    step *st = &reloading.steps[reloading.nsteps++];
    memset(st, 0, sizeof(*st));
    st->kind = kind;
    snprintf(st->name, sizeof(st->name), "%s", name);
    st->pool = p;
    st->to = to;
}

/* Fills the plan: the target pool alone, or every pool of either config
 * (removals first, so their workers' room is free; then the pools of the
 * new config in its order).  AP_ERR with err when it cannot be made. */
static int plan(config *nc, char *err, size_t errlen)
{
    char prefix[CONFIG_POOL_NAME_MAX + 2];
    if (nc->pools_named != server.cfg->pools_named) {
        snprintf(err, errlen, "switching between one unnamed pool and named pools (\"pools\") needs a restart");
        return AP_ERR;
    }
    if (reloading.target[0]) {
        pool_t *p = pools_find(reloading.target, strlen(reloading.target));
        const config_pool *to = config_pool_named(nc, reloading.target);
        if (p == NULL || to == NULL) {
            snprintf(err, errlen, "pool %s is %s; reload every pool to %s it", reloading.target,
                     p ? "no longer in the configuration" : "not running", p ? "remove" : "add");
            return AP_ERR;
        }
        snprintf(prefix, sizeof(prefix), "%s.", p->name);
        keep_pool(to->cfg, p->cfg, nc->pools_named ? prefix : "", reloading.restart_needed);
        add_step(STEP_ROLL, p->name, p, to);
        return AP_OK;
    }
    keep_server(nc, server.cfg, reloading.restart_needed);
    for (int i = 0; i < nc->npools; i++) {
        POOLS_FOREACH(p) {
            if (p->state >= POOL_RETIRING && strcmp(p->name, nc->pools[i].name) == 0) {
                snprintf(err, errlen, "pool %s is still draining since it was removed: reload again once it has "
                         "stopped (pool.stats shows it until then)", p->name);
                return AP_ERR;
            }
        }
    }
    POOLS_FOREACH(p) {
        if (p->state <= POOL_RUNNING && config_pool_named(nc, p->name) == NULL)
            add_step(STEP_REMOVE, p->name, p, NULL);
    }
    for (int i = 0; i < nc->npools; i++) {
        const config_pool *to = &nc->pools[i];
        pool_t *p = pools_find(to->name, strlen(to->name));
        if (p) {
            snprintf(prefix, sizeof(prefix), "%s.", p->name);
            keep_pool(to->cfg, p->cfg, nc->pools_named ? prefix : "", reloading.restart_needed);
        }
        add_step(p ? STEP_ROLL : STEP_ADD, to->name, p, to);
    }
    return AP_OK;
}

/* ---- running it ----------------------------------------------------- */

static void step_fail(step *st, const char *why)
{
    size_t n = strlen(why) + reloading.trace_len + 2;
    st->trace = ap_malloc(n);
    snprintf(st->trace, n, "%s%s%s", why, reloading.trace_len ? "\n" : "", reloading.trace);
    st->state = STEP_FAILED;
    reloading.trace_len = 0;
}

/* Requests naming no pool go to defaultPool once it runs; until then
 * (it is being added) to the one they went to, or any running pool. */
static void refresh_default(void)
{
    const char *name = server.cfg->pools[server.cfg->default_pool].name;
    pool_t *p = pools_find(name, strlen(name));
    if (p == NULL && server.default_pool && server.default_pool->state <= POOL_RUNNING)
        p = server.default_pool;
    for (int i = 0; p == NULL && i < server.npools; i++)
        if (server.pools[i]->state <= POOL_RUNNING)
            p = server.pools[i];
    server.default_pool = p;
}

static void step_begin(step *st)
{
    st->state = STEP_RUNNING;
    reloading.trace_len = 0;
    if (st->kind == STEP_REMOVE) {
        pools_retire(st->pool, "not in the configuration any more");
        st->state = STEP_DONE;
        return;
    }
    if (st->kind == STEP_ADD) {
        st->pool = pools_add(st->to, reloading.nc);
        if (st->pool == NULL)
            step_fail(st, "the pool could not be set up (see the log)");
        return;
    }
    pool_t *p = st->pool;
    st->old_cfg = p->cfg;
    st->old_top = p->cfg_top;
    p->cfg = st->to->cfg;
    p->cfg_top = reloading.nc;
    p->queue.capacity = (size_t)p->cfg->message_queue_size;
    p->epoch++;
    server.reload_epoch++;
    ap_info("reload: pool %s: replacing %d worker%s one at a time with agent %s", p->name, p->pool_size,
            p->pool_size == 1 ? "" : "s", p->cfg->agent);
    char esc[512];
    events_emit(p, EVENTS_POOL_RELOAD_STARTED, EVENTS_NORMAL, "\"workers\":%d,\"agent\":\"%s\",\"epoch\":%u", p->pool_size,
                events_esc(esc, sizeof(esc), p->cfg->agent), p->epoch);
}

/* A roll's pool back on the settings its old workers run with. */
static void roll_back(step *st)
{
    pool_t *p = st->pool;
    p->cfg = st->old_cfg;
    p->cfg_top = st->old_top;
    p->queue.capacity = (size_t)p->cfg->message_queue_size;
    p->epoch--;
    ap_error("reload aborted for pool %s: a new worker could not start; its old workers keep serving with the old "
             "settings", p->name);
    events_emit(p, EVENTS_POOL_RELOAD_FINISHED, EVENTS_NORMAL, "\"ok\":false,\"replaced\":%u", st->replaced);
}

/* A roll: one worker at a time.  Returns 1 when the step is over. */
static int roll_step(step *st)
{
    pool_t *p = st->pool;
    int pending = 0;
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        if (w->slot < 0 || w->state == WORKER_DEAD || w->proc.epoch == p->epoch)
            continue;
        if (w->replaced_by)
            return 0; /* one at a time: its hand-over is under way */
        pending = 1;
    }
    if (!pending) {
        st->state = STEP_DONE;
        ap_info("reload: pool %s: %u worker%s replaced", p->name, st->replaced, st->replaced == 1 ? "" : "s");
        events_emit(p, EVENTS_POOL_RELOAD_FINISHED, EVENTS_NORMAL, "\"ok\":true,\"replaced\":%u", st->replaced);
        return 1;
    }
    if (recycle_active(p) > 0)
        return 0;
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        if (w->slot >= 0 && worker_is_accepting(w) && w->proc.epoch != p->epoch) {
            w->recycle_after_ms = 0;
            if (recycle_start(w, "rolling reload") == AP_OK)
                st->replaced++;
            return 0;
        }
    }
    return 0;
}

/* An add: done when every first worker is ready; failed when one could
 * not start.  Returns 1 when the step is over. */
static int add_step_check(step *st)
{
    pool_t *p = st->pool;
    int ready = 0;
    for (int i = 0; i < p->nworkers; i++) {
        const worker *w = &p->workers[i];
        if (w->slot < 0)
            continue;
        if (w->start_failures > 0 || w->proc.said_start_failed) {
            step_fail(st, "the new pool's agent failed to start");
            pools_retire(p, "its agent failed to start");
            return 1;
        }
        ready += worker_is_accepting(w);
    }
    if (ready < p->pool_size)
        return 0;
    p->state = POOL_RUNNING;
    st->state = STEP_DONE;
    ap_info("reload: pool %s started: %d worker%s ready", p->name, ready, ready == 1 ? "" : "s");
    return 1;
}

/* The answer: totals as a single-pool server always gave them, and what
 * became of each pool. */
static cJSON *result_json(unsigned *failed, unsigned *tried, const step **first_failed)
{
    cJSON *o = cJSON_CreateObject(), *pools = cJSON_CreateObject(), *names = cJSON_CreateArray();
    unsigned replaced = 0;
    *failed = *tried = 0;
    *first_failed = NULL;
    for (int i = 0; i < reloading.nsteps; i++) {
        const step *st = &reloading.steps[i];
        static const char *const done[] = {"reloaded", "added", "removed"};
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "status", st->state == STEP_FAILED ? "failed" : done[st->kind]);
        if (st->kind == STEP_ROLL)
            cJSON_AddNumberToObject(e, "replaced", st->replaced);
        if (st->kind != STEP_REMOVE) {
            (*tried)++;
            cJSON_AddStringToObject(e, "agent", st->to->cfg->agent);
        }
        if (st->state == STEP_FAILED) {
            cJSON_AddStringToObject(e, "error", st->trace);
            cJSON_AddItemToArray(names, cJSON_CreateString(st->name));
            if (!*first_failed)
                *first_failed = st;
            (*failed)++;
        }
        replaced += st->replaced;
        cJSON_AddItemToObject(pools, st->name, e);
    }
    cJSON_AddNumberToObject(o, "replaced", replaced);
    const pool_t *d = pools_default();
    cJSON_AddStringToObject(o, "agent", d ? d->cfg->agent : "");
    cJSON_AddItemToObject(o, "requiresRestart", reloading.restart_needed);
    reloading.restart_needed = NULL;
    if (server.cfg->pools_named) {
        cJSON_AddItemToObject(o, "pools", pools);
        cJSON_AddItemToObject(o, "failed", names);
    } else { /* one unnamed pool: the totals are all there is */
        cJSON_Delete(pools);
        cJSON_Delete(names);
    }
    return o;
}

/* Every step is over: answer, and let go of what nothing uses. */
static void finish(void)
{
    unsigned failed, tried;
    const step *first;
    cJSON *o = result_json(&failed, &tried, &first);
    if (failed && failed == tried && !reloading.target[0] && reloading.old_top != server.cfg) {
        /* Nothing took the new settings: the server's go back too. */
        server.cfg = reloading.old_top;
    }
    refresh_default();
    if (failed && failed == tried) {
        char esc[RELOAD_TRACE_MAX * 2];
        char extra[sizeof(esc) + 64];
        ap_json_escape(esc, sizeof(esc), first->trace, strlen(first->trace));
        snprintf(extra, sizeof(extra), ",\"traceback\":\"%s\"", esc);
        ap_error("reload aborted: the new agent code failed to start; the old workers keep serving");
        answer_waiters(NULL, ERR_AGENT_ERROR,
                       "reload aborted: the new agent code failed to start; the old workers keep serving", extra);
    } else {
        unsigned replaced = (unsigned)cJSON_GetObjectItemCaseSensitive(o, "replaced")->valuedouble;
        if (failed)
            ap_warn("reload finished with %u pool%s failed: %u worker%s replaced", failed, failed == 1 ? "" : "s",
                    replaced, replaced == 1 ? "" : "s");
        else
            ap_info("reload finished: %u worker%s replaced", replaced, replaced == 1 ? "" : "s");
        answer_waiters(o, ERR_OTHER, NULL, NULL);
    }
    cJSON_Delete(o);
    reloading.active = 0;
    reloading.nc = NULL;
    steps_clear();
    gc_configs();
}

void reload_step(void)
{
    if (!reloading.active || server.state != SERVER_READY)
        return;
    while (reloading.cur < reloading.nsteps) {
        step *st = &reloading.steps[reloading.cur];
        if (st->state == STEP_WAITING) {
            step_begin(st);
            refresh_default();
        }
        if (st->state == STEP_RUNNING) {
            int over = st->kind == STEP_ROLL ? roll_step(st) : add_step_check(st);
            if (!over)
                return;
        }
        reloading.cur++;
    }
    finish();
}

void reload_replacement_failed(pool_t *p)
{
    step *st = step_of(p);
    if (st == NULL || st->kind != STEP_ROLL)
        return;
    roll_back(st);
    step_fail(st, "a new worker could not start");
    reload_step();
}

void reload_start(const char *why, const char *pool, uint64_t serial, const char *id, size_t id_len)
{
    char err[512];
    apikey_reload(why); /* the keys file is reread whatever becomes of the workers' reload */
    if (server.state != SERVER_READY) {
        answer_later(serial, id, id_len, NULL, ERR_BAD_REQUEST, "the pool is not ready: no reload now", NULL);
        return;
    }
    if (reloading.active) {
        if (strcmp(reloading.target, pool ? pool : "") == 0) {
            add_waiter(serial, id, id_len); /* answered with the running reload */
        } else {
            snprintf(err, sizeof(err), "a reload of %s%s is running: try again once it has ended",
                     reloading.target[0] ? "pool " : "every pool", reloading.target);
            answer_later(serial, id, id_len, NULL, ERR_BAD_REQUEST, err, NULL);
        }
        return;
    }
    config *nc = ap_calloc(1, sizeof(config));
    config_action action;
    config_init(nc);
    if (config_parse_args(nc, reloading.argc, reloading.argv, &action, err, sizeof(err)) != AP_OK) {
        ap_error("reload (%s) aborted: the configuration is invalid: %s; the running settings stay", why, err);
        free_config(nc);
        answer_later(serial, id, id_len, NULL, ERR_BAD_REQUEST, err, NULL);
        return;
    }
    if (privs_check_reload(nc, err, sizeof(err)) != AP_OK) {
        ap_error("reload (%s) aborted: %s; the running settings stay", why, err);
        free_config(nc);
        answer_later(serial, id, id_len, NULL, ERR_BAD_REQUEST, err, NULL);
        return;
    }
    snprintf(reloading.target, sizeof(reloading.target), "%s", pool ? pool : "");
    reloading.restart_needed = cJSON_CreateArray();
    if (plan(nc, err, sizeof(err)) != AP_OK) {
        ap_error("reload (%s) refused: %s; the running settings stay", why, err);
        cJSON_Delete(reloading.restart_needed);
        reloading.restart_needed = NULL;
        steps_clear();
        free_config(nc);
        answer_later(serial, id, id_len, NULL, ERR_BAD_REQUEST, err, NULL);
        return;
    }
    for (cJSON *n = reloading.restart_needed->child; n; n = n->next)
        ap_warn("reload: %s cannot change without a restart; keeping the running value", n->valuestring);
    retain(server.cfg);
    retain(nc);
    reloading.nc = nc;
    reloading.old_top = server.cfg;
    if (!reloading.target[0])
        server.cfg = nc; /* the server's own settings, and the pools' as each one's turn comes */
    reloading.active = 1;
    reloading.trace_len = 0;
    add_waiter(serial, id, id_len);
    ap_info("reload started (%s): %s", why, reloading.target[0] ? reloading.target : "every pool");
    reload_step();
}
