/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reload.c - rolling reload (see reload.h).
 *
 * State: the new config is live from the start of a reload (new spawns
 * use it); the old one is kept until the reload ends, to be restored on
 * abort.  Each worker process records the reload epoch it was forked in;
 * a reload is done when every live serving worker has the current epoch.
 */
#include "privs.h"
#include "reload.h"
#include "ap_alloc.h"
#include "ap_json.h"
#include "ap_log.h"
#include "answer.h"
#include "recycle.h"
#include "server.h"

#include <cJSON.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#define RELOAD_WAITERS_MAX 16
#define RELOAD_TRACE_MAX 8192

typedef struct {
    uint64_t serial;
    char *id;
    size_t id_len;
} waiter;

static struct {
    int argc;
    char **argv;
    int active;
    config *old;                /* the settings to restore on abort */
    cJSON *restart_needed;      /* names of settings kept at their running value */
    waiter waiters[RELOAD_WAITERS_MAX];
    int nwaiters;
    char trace[RELOAD_TRACE_MAX];
    size_t trace_len;
    unsigned replaced;
} reloading;

void reload_init(int argc, char **argv)
{
    reloading.argc = argc;
    reloading.argv = argv;
}

static void free_config(config *c)
{
    if (c) {
        config_free(c);
        ap_free(c);
    }
}

/* Frees a config that is no longer in use: the one main() filled at
 * start lives inside `server`, the ones reloads read are allocated. */
static void release_config(config *c)
{
    if (c == &server.boot_cfg)
        config_free(c);
    else
        free_config(c);
}

void reload_free(void)
{
    for (int i = 0; i < reloading.nwaiters; i++)
        ap_free(reloading.waiters[i].id);
    reloading.nwaiters = 0;
    cJSON_Delete(reloading.restart_needed);
    reloading.restart_needed = NULL;
    if (reloading.old)
        release_config(reloading.old);
    reloading.old = NULL;
    release_config(server.cfg);
    server.cfg = NULL;
}

int reload_in_progress(void)
{
    return reloading.active;
}

void reload_note_start_failure(const char *text, size_t len)
{
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

/* Settings whose value is built into running structures: a reload keeps
 * the running value and says so. */
static void keep_immutable(config *nc, const config *oc, cJSON *names)
{
#define KEEP_STR(f, key)                                                                                       \
    if (strcmp(nc->f, oc->f) != 0) {                                                                           \
        ap_free(nc->f);                                                                                        \
        nc->f = ap_strdup(oc->f);                                                                              \
        cJSON_AddItemToArray(names, cJSON_CreateString(key));                                                  \
    }
#define KEEP_OPTSTR(f, key) /* NULL: not set */                                                            \
    if ((nc->f == NULL) != (oc->f == NULL) || (nc->f && strcmp(nc->f, oc->f) != 0)) {                         \
        ap_free(nc->f);                                                                                        \
        nc->f = oc->f ? ap_strdup(oc->f) : NULL;                                                               \
        cJSON_AddItemToArray(names, cJSON_CreateString(key));                                                  \
    }
#define KEEP_INT(f, key)                                                                                       \
    if (nc->f != oc->f) {                                                                                      \
        nc->f = oc->f;                                                                                         \
        cJSON_AddItemToArray(names, cJSON_CreateString(key));                                                  \
    }
    KEEP_STR(socket, "socket")
    KEEP_INT(socket_mode, "socketMode")
    KEEP_INT(listen_backlog, "listenBacklog")
    KEEP_INT(max_workers, "maxWorkers")
    KEEP_INT(max_concurrent_recycles, "maxConcurrentRecycles")
    KEEP_INT(max_restarts, "maxRestarts")
    KEEP_INT(history_size, "historySize")
    KEEP_INT(max_tracked_types, "maxTrackedTypes")
    KEEP_INT(timeout, "timeout")
    KEEP_OPTSTR(dead_letter_file, "deadLetterFile")
    KEEP_OPTSTR(metrics_listen, "metricsListen")
    KEEP_OPTSTR(log_file, "logFile")
    KEEP_OPTSTR(access_log, "accessLog")
    KEEP_OPTSTR(user, "user")
    KEEP_OPTSTR(group, "group")
    KEEP_INT(metrics_allow_remote, "metricsAllowRemote")
#undef KEEP_STR
#undef KEEP_OPTSTR
#undef KEEP_INT
}

void reload_start(const char *why, uint64_t serial, const char *id, size_t id_len)
{
    char err[512];
    if (server.state != SERVER_READY) {
        answer_later(serial, id, id_len, NULL, ERR_BAD_REQUEST, "the pool is not ready: no reload now", NULL);
        return;
    }
    if (reloading.active) {
        add_waiter(serial, id, id_len); /* answered with the running reload */
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
    reloading.restart_needed = cJSON_CreateArray();
    keep_immutable(nc, server.cfg, reloading.restart_needed);
    for (cJSON *n = reloading.restart_needed->child; n; n = n->next)
        ap_warn("reload: %s cannot change without a restart; keeping the running value", n->valuestring);
    reloading.old = server.cfg;
    server.cfg = nc;
    server.queue.capacity = (size_t)nc->message_queue_size;
    reloading.active = 1;
    reloading.replaced = 0;
    reloading.trace_len = 0;
    server.reload_epoch++;
    add_waiter(serial, id, id_len);
    ap_info("reload started (%s): replacing %d worker%s one at a time with agent %s", why, server.pool_size,
            server.pool_size == 1 ? "" : "s", nc->agent);
    reload_step();
}

static void finish(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "replaced", reloading.replaced);
    cJSON_AddStringToObject(o, "agent", server.cfg->agent);
    cJSON_AddItemToObject(o, "requiresRestart", reloading.restart_needed);
    reloading.restart_needed = NULL;
    ap_info("reload finished: %u worker%s replaced", reloading.replaced, reloading.replaced == 1 ? "" : "s");
    answer_waiters(o, ERR_OTHER, NULL, NULL);
    cJSON_Delete(o);
    reloading.active = 0;
    release_config(reloading.old);
    reloading.old = NULL;
}

void reload_step(void)
{
    if (!reloading.active || server.state != SERVER_READY)
        return;
    int pending = 0;
    for (int i = 0; i < server.nworkers; i++) {
        worker *w = &server.workers[i];
        if (w->slot < 0 || w->state == WORKER_DEAD || w->proc.epoch == server.reload_epoch)
            continue;
        if (w->replaced_by)
            return; /* one at a time: its hand-over is under way */
        pending = 1;
    }
    if (!pending) {
        finish();
        return;
    }
    if (recycle_active() > 0)
        return;
    for (int i = 0; i < server.nworkers; i++) {
        worker *w = &server.workers[i];
        if (w->slot >= 0 && worker_is_accepting(w) && w->proc.epoch != server.reload_epoch) {
            w->recycle_after_ms = 0;
            if (recycle_start(w, "rolling reload") == AP_OK)
                reloading.replaced++;
            return;
        }
    }
}

void reload_replacement_failed(void)
{
    if (!reloading.active)
        return;
    char esc[RELOAD_TRACE_MAX * 2];
    char extra[sizeof(esc) + 32];
    ap_json_escape(esc, sizeof(esc), reloading.trace, reloading.trace_len);
    snprintf(extra, sizeof(extra), ",\"traceback\":\"%s\"", esc);
    ap_error("reload aborted: a new worker could not start; the old workers keep serving with the old settings");
    /* Back to the settings the old workers run with. */
    config *nc = server.cfg;
    server.cfg = reloading.old;
    server.queue.capacity = (size_t)server.cfg->message_queue_size;
    reloading.old = NULL;
    release_config(nc);
    server.reload_epoch--;
    answer_waiters(NULL, ERR_AGENT_ERROR, "reload aborted: the new agent code failed to start; the old workers keep serving",
                   extra);
    cJSON_Delete(reloading.restart_needed);
    reloading.restart_needed = NULL;
    reloading.active = 0;
}
