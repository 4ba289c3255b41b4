/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cmd_pool.c - the pool management commands: health, history, reload
 * and scale.
 *
 * Each sends one pool.* request and turns its answer into a line or a
 * table for people (or, with --json, prints the result object as it
 * came).  Exit statuses carry the verdict so scripts need not parse:
 * health is 0 only when the pool is ready; reload is 0 only when every
 * worker was replaced, 1 when agentpoold refused or aborted it (a bad
 * config, or new code that failed to start: the old workers keep
 * serving).  A reload answers only when it ends, so it waits without a
 * time limit unless --timeout is given.
 */
#include "ctl.h"
#include "ap_alloc.h"
#include "render.h"
#include "table.h"

#include <cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* health [--json]: pool.health in one line; exit 0 only when "ready". */
int cmd_health(const ctl_opts *o, int argc, char **argv)
{
    cJSON *res;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    int status = ctl_call(o, "pool.health", NULL, &res);
    if (status != CTL_EXIT_OK)
        return status;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "status");
    int ready = cJSON_IsString(st) && strcmp(st->valuestring, "ready") == 0;
    if (o->json) {
        ctl_print_json(res);
    } else {
        char *name = render_fit(cJSON_IsString(st) ? st->valuestring : "unknown", 0);
        int restarts = ctl_int(res, "restartsInWindow", 0);
        printf("%s: %d/%d workers healthy", name, ctl_int(res, "healthy", 0),
               ctl_int(res, "workers", 0));
        if (!ready)
            printf("; backoff: %s",
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "backoff")) ? "yes" : "no");
        if (!ready || restarts > 0)
            printf("; restarts in window: %d", restarts);
        int drifted = ctl_int(res, "codeDrift", 0);
        if (drifted > 0)
            printf("; code drift: %d worker%s", drifted, drifted == 1 ? "" : "s");
        const cJSON *slots = cJSON_GetObjectItemCaseSensitive(res, "backoffSlots");
        const cJSON *e;
        int first = 1;
        cJSON_ArrayForEach(e, slots) {
            const cJSON *wn = cJSON_GetObjectItemCaseSensitive(e, "worker");
            char *wname = render_fit(cJSON_IsString(wn) ? wn->valuestring : "?", 0);
            int fails = ctl_int(e, "startFailures", 0);
            int next = ctl_int(e, "nextAttemptMs", 0);
            printf("%s%s (", first ? "; in restart backoff: " : ", ", wname);
            if (fails > 0)
                printf("%d failed start%s, ", fails, fails == 1 ? "" : "s");
            if (next > 0)
                printf("next attempt in %.1f s)", (double)next / 1000.0);
            else
                printf("starting again)");
            ap_free(wname);
            first = 0;
        }
        putchar('\n');
        ap_free(name);
    }
    cJSON_Delete(res);
    return ready ? CTL_EXIT_OK : CTL_EXIT_ANSWER_ERROR;
}

/* "status 3", "signal SIGKILL", or "-" for one pool.history entry. */
static char *pool_exit_text(const cJSON *entry)
{
    char buf[64];
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(entry, "signal");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(entry, "exitStatus");
    if (cJSON_IsNumber(sig)) {
        const char *abbrev =
            sig->valueint > 0 && sig->valueint < 128 ? sigabbrev_np(sig->valueint) : NULL;
        if (abbrev)
            snprintf(buf, sizeof(buf), "signal SIG%s", abbrev);
        else
            snprintf(buf, sizeof(buf), "signal %d", sig->valueint);
    } else if (cJSON_IsNumber(st)) {
        snprintf(buf, sizeof(buf), "status %d", st->valueint);
    } else {
        snprintf(buf, sizeof(buf), "-");
    }
    return ap_strdup(buf);
}

/* history [--json]: pool.history as a table, oldest first. */
int cmd_history(const ctl_opts *o, int argc, char **argv)
{
    static const char *const header[] = {"time", "worker", "generation", "pid", "reason", "exit"};
    cJSON *res;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    int status = ctl_call_human(o, "pool.history", NULL, &res);
    if (res == NULL)
        return status;
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(res, "history");
    if (cJSON_GetArraySize(hist) == 0) {
        printf("no worker has ended (of those agentpoold remembers)\n");
        cJSON_Delete(res);
        return CTL_EXIT_OK;
    }
    table t;
    char *row[AP_ARRAY_LEN(header)];
    table_init(&t, AP_ARRAY_LEN(header));
    for (size_t k = 0; k < AP_ARRAY_LEN(header); k++)
        row[k] = ap_strdup(header[k]);
    table_add_row(&t, row);
    for (const cJSON *e = hist->child; e; e = e->next) {
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(e, "time");
        char when[64];
        if (cJSON_IsNumber(tm) && tm->valuedouble >= 0)
            render_local_time((uint64_t)tm->valuedouble, when, sizeof(when));
        else
            snprintf(when, sizeof(when), "-");
        row[0] = ap_strdup(when);
        row[1] = render_value("worker", cJSON_GetObjectItemCaseSensitive(e, "worker"));
        row[2] = render_value("generation", cJSON_GetObjectItemCaseSensitive(e, "generation"));
        row[3] = render_value("pid", cJSON_GetObjectItemCaseSensitive(e, "pid"));
        row[4] = render_value("reason", cJSON_GetObjectItemCaseSensitive(e, "reason"));
        row[5] = pool_exit_text(e);
        table_add_row(&t, row);
    }
    table_print(&t, stdout, "");
    table_free(&t);
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}

/* Prints a reload's failure: its code and message, and the traceback of
 * the new code when agentpoold sent one, all to stderr. */
static void pool_reload_failed(jspan error)
{
    cJSON *e = error.p ? cJSON_ParseWithLength(error.p, error.len) : NULL;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    const cJSON *tb = cJSON_GetObjectItemCaseSensitive(e, "traceback");
    int aborted = cJSON_IsString(code) && strcmp(code->valuestring, "agent_error") == 0;
    char *m = render_fit(cJSON_IsString(msg) ? msg->valuestring : "(no message)", 0);
    char *c = render_fit(cJSON_IsString(code) ? code->valuestring : "?", 0);
    if (aborted)
        ctl_warn("reload failed (%s): %s", c, m);
    else
        ctl_warn("reload refused (%s): %s", c, m);
    if (cJSON_IsString(tb) && tb->valuestring[0]) {
        fputs("traceback of the new code, as the first new worker reported it:\n", stderr);
        fputs(tb->valuestring, stderr);
        if (tb->valuestring[strlen(tb->valuestring) - 1] != '\n')
            fputc('\n', stderr);
    }
    ap_free(m);
    ap_free(c);
    cJSON_Delete(e);
}

/* reload [--json]: pool.reload, waited for to its end. */
int cmd_reload(const ctl_opts *o, int argc, char **argv)
{
    char err[512];
    ctl_answer a;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    int timeout = o->timeout_given ? o->timeout_ms : 0;
    int status = ctl_request(o, "pool.reload", NULL, timeout, CTL_MAX_CAPTURE, &a, err, sizeof(err));
    if (status == CTL_EXIT_ANSWER_ERROR) {
        pool_reload_failed(a.error);
    } else if (status != CTL_EXIT_OK) {
        ctl_warn("%s", err);
    } else {
        cJSON *res = cJSON_ParseWithLength(a.result.p, a.result.len);
        if (!cJSON_IsObject(res)) {
            ctl_warn("pool.reload: malformed answer from agentpoold: %.200s", a.cap.data);
            status = CTL_EXIT_EXCHANGE;
        } else if (o->json) {
            ctl_print_json(res);
        } else {
            const cJSON *agent = cJSON_GetObjectItemCaseSensitive(res, "agent");
            const cJSON *keep = cJSON_GetObjectItemCaseSensitive(res, "requiresRestart");
            int n = ctl_int(res, "replaced", 0);
            char *ag = render_fit(cJSON_IsString(agent) ? agent->valuestring : "?", 0);
            printf("reloaded: %d worker%s replaced, agent %s\n", n, n == 1 ? "" : "s", ag);
            if (cJSON_GetArraySize(keep) > 0) {
                char *names = render_value("requiresRestart", keep);
                printf("kept at their running value (they change only with a restart): %s\n",
                       names);
                ap_free(names);
            }
            ap_free(ag);
        }
        cJSON_Delete(res);
    }
    ctl_answer_free(&a);
    return status;
}

/* scale N [--json]: pool.scale {"workers": N}. */
int cmd_scale(const ctl_opts *o, int argc, char **argv)
{
    uint64_t n;
    char data[64];
    cJSON *res;
    AP_UNUSED(argc);
    if (ctl_parse_u64(argv[0], &n) != AP_OK || n > INT_MAX)
        return ctl_usage_error("scale wants a number of workers (0 to %d), not '%s'", INT_MAX,
                               argv[0]);
    snprintf(data, sizeof(data), "{\"workers\":%" PRIu64 "}", n);
    int status = ctl_call_human(o, "pool.scale", data, &res);
    if (res == NULL)
        return status;
    int before = ctl_int(res, "before", -1), after = ctl_int(res, "workers", -1);
    if (before == after)
        printf("the pool already has %d worker%s", after, after == 1 ? "" : "s");
    else
        printf("scaled from %d to %d worker%s", before, after, after == 1 ? "" : "s");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "clamped")))
        printf(" (%" PRIu64 " asked for; minWorkers %d, maxWorkers %d)", n,
               ctl_int(res, "minWorkers", -1), ctl_int(res, "maxWorkers", -1));
    putchar('\n');
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}
