/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cmd_pool.c - the pool management commands: health, history, reload
 * and scale.
 *
 * Each sends one pool.* request and turns its answer into a line or a
 * table for people (or, with --json, prints the result object as it
 * came).  Exit statuses carry the verdict so scripts need not parse:
 * health is 0 only when the server (or --pool's pool) is ready; reload
 * is 0 only when every pool reloaded, 1 when agentpoold refused or
 * aborted it (a bad config, or new code that failed to start: the old
 * workers keep serving) or when some pool failed while others reloaded.
 * A reload answers only when it ends, so it waits without a time limit
 * unless --timeout is given.
 *
 * Named pools: --pool NAME puts {"pool": NAME} in the request's data
 * (ctl_request), and an answer about several pools, or about one pool
 * that is not the implicit "default" (render_named_pools), is shown pool by
 * pool: a health line each, a pool column in the history, a reload line
 * each.  A server of one unnamed pool gets the output it always got.
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

/* Prints one health line: "ready: 2/2 workers healthy", then when not
 * ready the backoff and the restarts in the window, code drift, and the
 * slots in restart backoff.  prefix ("pool writer: ") comes first. */
static void pool_health_line(const char *prefix, const cJSON *h)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(h, "status");
    int ready = cJSON_IsString(st) && strcmp(st->valuestring, "ready") == 0;
    char *name = render_fit(cJSON_IsString(st) ? st->valuestring : "unknown", 0);
    int restarts = ctl_int(h, "restartsInWindow", 0);
    printf("%s%s: %d/%d workers healthy", prefix, name, ctl_int(h, "healthy", 0), ctl_int(h, "workers", 0));
    if (!ready)
        printf("; backoff: %s", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "backoff")) ? "yes" : "no");
    if (!ready || restarts > 0)
        printf("; restarts in window: %d", restarts);
    int drifted = ctl_int(h, "codeDrift", 0);
    if (drifted > 0)
        printf("; code drift: %d worker%s", drifted, drifted == 1 ? "" : "s");
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(h, "backoffSlots");
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

/* "pool NAME: " for a line about one pool (free with ap_free). */
static char *pool_prefix(const char *name)
{
    char *n = render_fit(name ? name : "?", 0);
    char *p = render_fmt("pool %s: ", n);
    ap_free(n);
    return p;
}

/* health [--json] [--pool NAME]: pool.health in one line (the server's,
 * or with --pool that pool's), then one line per pool when the pools
 * are named; exit 0 only when "ready". */
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
        const cJSON *one = cJSON_GetObjectItemCaseSensitive(res, "pool");
        char *prefix = cJSON_IsString(one) ? pool_prefix(one->valuestring) : ap_strdup("");
        pool_health_line(prefix, res);
        ap_free(prefix);
        const cJSON *pools = cJSON_GetObjectItemCaseSensitive(res, "pools");
        for (const cJSON *p = render_named_pools(pools) ? pools->child : NULL; p; p = p->next) {
            prefix = pool_prefix(p->string);
            pool_health_line(prefix, p);
            ap_free(prefix);
        }
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

/* Adds a history row of 7 cells (owned) to t, without the pool column
 * (cell 1, freed) unless named. */
static void pool_history_row(table *t, char **cell, int named)
{
    if (!named) {
        ap_free(cell[1]);
        memmove(&cell[1], &cell[2], 5 * sizeof(char *));
    }
    table_add_row(t, cell);
}

/* history [--json] [--pool NAME]: pool.history as a table, oldest
 * first, with a pool column when the entries name their pool. */
int cmd_history(const ctl_opts *o, int argc, char **argv)
{
    static const char *const header[] = {"time", "pool", "worker", "generation", "pid", "reason", "exit"};
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
    int named = 0; /* the pool column: when any entry names its pool */
    for (const cJSON *e = hist->child; e; e = e->next)
        named |= cJSON_GetObjectItemCaseSensitive(e, "pool") != NULL;
    table t;
    char *cell[AP_ARRAY_LEN(header)];
    table_init(&t, AP_ARRAY_LEN(header) - (named ? 0 : 1));
    for (size_t k = 0; k < AP_ARRAY_LEN(header); k++)
        cell[k] = ap_strdup(header[k]);
    pool_history_row(&t, cell, named);
    for (const cJSON *e = hist->child; e; e = e->next) {
        const cJSON *tm = cJSON_GetObjectItemCaseSensitive(e, "time");
        char when[64];
        if (cJSON_IsNumber(tm) && tm->valuedouble >= 0)
            render_local_time((uint64_t)tm->valuedouble, when, sizeof(when));
        else
            snprintf(when, sizeof(when), "-");
        const cJSON *pn = cJSON_GetObjectItemCaseSensitive(e, "pool");
        cell[0] = ap_strdup(when);
        cell[1] = pn ? render_value("pool", pn) : ap_strdup("-");
        cell[2] = render_value("worker", cJSON_GetObjectItemCaseSensitive(e, "worker"));
        cell[3] = render_value("generation", cJSON_GetObjectItemCaseSensitive(e, "generation"));
        cell[4] = render_value("pid", cJSON_GetObjectItemCaseSensitive(e, "pid"));
        cell[5] = render_value("reason", cJSON_GetObjectItemCaseSensitive(e, "reason"));
        cell[6] = pool_exit_text(e);
        pool_history_row(&t, cell, named);
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

/* The line of a failed pool's error worth showing: its first, unless
 * that only opens a Python traceback, then its last (the exception).
 * Free with ap_free. */
static char *pool_error_line(const char *err)
{
    static const char opener[] = "Traceback (most recent call last):";
    const char *from = err, *end = strchr(err, '\n');
    if (strncmp(err, opener, sizeof(opener) - 1) == 0) {
        size_t n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == '\r' || err[n - 1] == ' '))
            n--;
        from = err + n;
        while (from > err && from[-1] != '\n')
            from--;
        end = err + n;
    }
    char *line = ap_strndup(from, end ? (size_t)(end - from) : strlen(from));
    char *fit = render_fit(line[0] ? line : "(no error text)", 0);
    ap_free(line);
    return fit;
}

/* One line per pool of a reload's answer ("pool writer: reloaded, 2
 * workers replaced, agent X", "pool bad: FAILED: ..."), and the failed
 * pools' error text in full on stderr. */
static void pool_reload_pools(const cJSON *pools)
{
    for (const cJSON *p = pools->child; p; p = p->next) {
        char *prefix = pool_prefix(p->string);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "status");
        const cJSON *agent = cJSON_GetObjectItemCaseSensitive(p, "agent");
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(p, "error");
        const char *status = cJSON_IsString(st) ? st->valuestring : "?";
        char *ag = cJSON_IsString(agent) ? render_fit(agent->valuestring, 0) : NULL;
        if (strcmp(status, "failed") == 0) {
            char *line = pool_error_line(cJSON_IsString(err) ? err->valuestring : "");
            printf("%sFAILED: %s\n", prefix, line);
            ap_free(line);
            if (cJSON_IsString(err) && strchr(err->valuestring, '\n')) {
                fprintf(stderr, "%serror of the new code, as its first new worker reported it:\n", prefix);
                fputs(err->valuestring, stderr);
                if (err->valuestring[strlen(err->valuestring) - 1] != '\n')
                    fputc('\n', stderr);
            }
        } else {
            char *sn = render_fit(status, 0);
            printf("%s%s", prefix, sn);
            if (cJSON_GetObjectItemCaseSensitive(p, "replaced")) {
                int n = ctl_int(p, "replaced", 0);
                printf(", %d worker%s replaced", n, n == 1 ? "" : "s");
            }
            if (ag)
                printf(", agent %s", ag);
            putchar('\n');
            ap_free(sn);
        }
        ap_free(ag);
        ap_free(prefix);
    }
}

/* reload [--json] [--pool NAME]: pool.reload, waited for to its end.
 * Exit 1 also when the reload went through but some pool failed. */
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
        const cJSON *failed = cJSON_GetObjectItemCaseSensitive(res, "failed");
        const cJSON *pools = cJSON_GetObjectItemCaseSensitive(res, "pools");
        if (!cJSON_IsObject(res)) {
            ctl_warn("pool.reload: malformed answer from agentpoold: %.200s", a.cap.data);
            status = CTL_EXIT_EXCHANGE;
        } else if (o->json) {
            ctl_print_json(res);
        } else if (render_named_pools(pools)) {
            pool_reload_pools(pools);
        } else {
            const cJSON *agent = cJSON_GetObjectItemCaseSensitive(res, "agent");
            int n = ctl_int(res, "replaced", 0);
            char *ag = render_fit(cJSON_IsString(agent) ? agent->valuestring : "?", 0);
            printf("reloaded: %d worker%s replaced, agent %s\n", n, n == 1 ? "" : "s", ag);
            ap_free(ag);
        }
        const cJSON *keep = cJSON_GetObjectItemCaseSensitive(res, "requiresRestart");
        if (status == CTL_EXIT_OK && !o->json && cJSON_GetArraySize(keep) > 0) {
            char *names = render_value("requiresRestart", keep);
            printf("kept at their running value (they change only with a restart): %s\n", names);
            ap_free(names);
        }
        if (status == CTL_EXIT_OK && cJSON_GetArraySize(failed) > 0) {
            char *names = render_value("failed", failed);
            ctl_warn("reload failed in %d pool%s: %s", cJSON_GetArraySize(failed),
                     cJSON_GetArraySize(failed) == 1 ? "" : "s", names);
            ap_free(names);
            status = CTL_EXIT_ANSWER_ERROR;
        }
        cJSON_Delete(res);
    }
    ctl_answer_free(&a);
    return status;
}

/* scale N [--json] [--pool NAME]: pool.scale {"workers": N}. */
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
    const cJSON *pool = cJSON_GetObjectItemCaseSensitive(res, "pool");
    if (cJSON_IsString(pool) && strcmp(pool->valuestring, "default") != 0) {
        char *prefix = pool_prefix(pool->valuestring);
        fputs(prefix, stdout);
        ap_free(prefix);
    }
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
