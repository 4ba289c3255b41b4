/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cmd_stats.c - `agentpoolctl stats`: pool.stats for people.
 *
 * The table is a summary sheet, one labelled line per subject (pool,
 * workers by state, queue, throughput, latency and queue-wait
 * percentiles, restarts by reason, messages by outcome, errors by code,
 * memory, ...), then tables for the per-type answers, the circuit
 * breakers and, with --detailed, one row per worker.  Every member of
 * the answer is shown somewhere: a line lists the members of its object
 * that it has no special wording for after the ones it has, and
 * top-level members this file does not know are shown last, under their
 * names as words (scalars and objects as lines of the sheet, arrays of
 * objects as tables), so a field agentpoold adds tomorrow appears
 * without a change here.  Lines wrap (never cut) at the output's width,
 * 100 columns when it has none; only the JSON values of the worker
 * details (the agent's health() answer and metrics) are cut to fit.
 *
 * Named pools: the server's answer holds its totals (the sheet) and a
 * "pools" object; when that names more than the implicit "default" pool
 * (render_named_pools) a table of one row per pool follows the sheet.
 * With --pool NAME the answer is that pool's alone, and its name and
 * agent lead the sheet.
 *
 * The sheet counts workers by state, which only the detailed answer
 * lists, so the table always asks for {"detailed": true}; --json prints
 * the answer to exactly what was asked (detailed only with --detailed).
 */
#include "ctl.h"
#include "ap_alloc.h"
#include "render.h"
#include "table.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

/* Output width assumed when stdout has none; least room for values. */
#define STATS_WIDTH_DEFAULT 100
#define STATS_VALUE_MIN 30
/* The longest label of the sheet's own lines ("master memory"). */
#define STATS_LABEL_MIN 13
/* The least the value column of the worker details is cut to. */
#define STATS_DETAIL_MIN 20

/* Top-level members the sheet and its tables show. */
static const char *const stats_known[] = {
    "state", "pid", "uptime", "strategy", "overflow", "allocator", "total", "available", "busy",
    "healthy", "slots", "inFlight", "averageWorkerAge", "oldestWorker", "workerEvents", "restarts",
    "queue", "oldestQueuedAge", "connections", "connectionsTotal", "throughput", "latency",
    "queueWait", "totalMessagesProcessed", "messages", "errors", "deadLetters", "memory", "types",
    "breakers", "workers", "alerts", "pool", "agent", "pools"};

/* Strings to be joined into one sheet line. */
typedef struct {
    char *v[64];
    size_t n;
} stats_list;

/* Adds s (owned) to l; beyond its capacity s is dropped. */
static void stats_add(stats_list *l, char *s)
{
    if (l->n < AP_ARRAY_LEN(l->v))
        l->v[l->n++] = s;
    else
        ap_free(s);
}

/* A value for the sheet: durations (by name) humanised, byte counts in
 * binary units, wall-clock times as how long ago, booleans as yes/no,
 * the rest as render_value writes them. */
static char *stats_value(const char *name, const cJSON *item)
{
    char buf[64];
    size_t n = name ? strlen(name) : 0;
    if (cJSON_IsNumber(item) && name && render_is_duration(name)) {
        render_ms(item->valuedouble, buf, sizeof(buf));
        return ap_strdup(buf);
    }
    if (cJSON_IsNumber(item) && n >= 5 &&
        (strcmp(name + n - 5, "Bytes") == 0 || strcmp(name + n - 5, "bytes") == 0)) {
        render_bytes(item->valuedouble, buf, sizeof(buf));
        return ap_strdup(buf);
    }
    if (cJSON_IsBool(item))
        return ap_strdup(cJSON_IsTrue(item) ? "yes" : "no");
    int at = name && (strcmp(name, "at") == 0 || (n > 2 && strcmp(name + n - 2, "At") == 0));
    if (cJSON_IsNumber(item) && at && item->valuedouble > 1e12) {
        /* wall-clock ms since the epoch ("at", "lastMessageAt"): how long ago */
        double ago = (double)ap_wall_ms() - item->valuedouble;
        render_ms(ago > 0 ? ago : 0, buf, sizeof(buf));
        return render_fmt("%s ago", buf);
    }
    return render_value(name ? name : "?", item);
}

/* A member's name as words for a label, without the unit stats_value
 * turns into a humanised one ("retryAfterMs" -> "retry after",
 * "pendingBytes" -> "pending"). */
static char *stats_label(const cJSON *item)
{
    char *w = render_words(item->string);
    size_t n = strlen(w);
    if (cJSON_IsNumber(item) && render_is_duration(item->string ? item->string : "") && n > 3 &&
        strcmp(w + n - 3, " ms") == 0)
        w[n - 3] = '\0';
    else if (cJSON_IsNumber(item) && n > 6 && strcmp(w + n - 6, " bytes") == 0)
        w[n - 6] = '\0';
    return w;
}

/* "name value" for one member, the name as words. */
static char *stats_item(const cJSON *item)
{
    char *w = stats_label(item);
    char *v = stats_value(item->string, item);
    char *s = render_fmt("%s %s", w, v);
    ap_free(w);
    ap_free(v);
    return s;
}

static int stats_in(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (name && strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* Adds "name value" for each member of obj not named in skip. */
static void stats_rest(stats_list *l, const cJSON *obj, const char *const *skip, size_t nskip)
{
    for (const cJSON *c = cJSON_IsObject(obj) ? obj->child : NULL; c; c = c->next)
        if (!stats_in(c->string, skip, nskip))
            stats_add(l, stats_item(c));
}

/* Adds the rows of a sheet line: the items of l joined by ", ",
 * continued on rows without a label when the next item would pass room.
 * Frees the items.  Adds nothing when l is empty. */
static void stats_line(table *t, const char *label, stats_list *l, size_t room)
{
    char *cur = NULL;
    size_t len = 0;
    int first = 1;
    for (size_t i = 0; i < l->n; i++) {
        size_t w = table_width(l->v[i]);
        /* ", " and the item, and room for the comma that may end the row */
        if (cur && len + 2 + w + 1 > room) {
            char *c = render_fmt("%s,", cur);
            table_add_pair(t, first ? label : "", c);
            ap_free(c);
            ap_free(cur);
            cur = NULL;
            first = 0;
        }
        if (cur == NULL) {
            cur = ap_strdup(l->v[i]);
            len = w;
        } else {
            char *c = render_fmt("%s, %s", cur, l->v[i]);
            ap_free(cur);
            cur = c;
            len += 2 + w;
        }
        ap_free(l->v[i]);
    }
    if (cur) {
        table_add_pair(t, first ? label : "", cur);
        ap_free(cur);
    }
    l->n = 0;
}

/* "2 total: 1 ready, 1 busy" from total and the states in workers. */
static char *stats_by_state(const cJSON *res)
{
    const char *names[32];
    int counts[32];
    size_t n = 0;
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(res, "workers");
    for (const cJSON *w = cJSON_IsArray(ws) ? ws->child : NULL; w; w = w->next) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(w, "state");
        const char *s = cJSON_IsString(st) ? st->valuestring : "?";
        size_t k = 0;
        while (k < n && strcmp(names[k], s) != 0)
            k++;
        if (k == n) {
            if (n == AP_ARRAY_LEN(names))
                continue;
            names[n] = s;
            counts[n++] = 0;
        }
        counts[k]++;
    }
    char *out = render_fmt("%d total", ctl_int(res, "total", 0));
    for (size_t k = 0; k < n; k++) {
        char *name = render_fit(names[k], 24);
        char *next = render_fmt("%s%s%d %s", out, k ? ", " : ": ", counts[k], name);
        ap_free(name);
        ap_free(out);
        out = next;
    }
    return out;
}

/* The items of a percentile summary: "p50 1.20ms", ..., "1234 samples". */
static void stats_percentiles(stats_list *l, const cJSON *h)
{
    char buf[64];
    for (const cJSON *c = cJSON_IsObject(h) ? h->child : NULL; c; c = c->next) {
        if (c->string && strcmp(c->string, "samples") == 0) {
            char *v = render_value("samples", c);
            stats_add(l, render_fmt("%s samples in the last minute", v));
            ap_free(v);
        } else if (cJSON_IsNumber(c)) {
            render_ms(c->valuedouble, buf, sizeof(buf));
            char *w = render_words(c->string);
            stats_add(l, render_fmt("%s %s", w, buf));
            ap_free(w);
        } else {
            stats_add(l, stats_item(c));
        }
    }
}

/* Adds the summary sheet's lines to t. */
static void stats_sheet(table *t, const cJSON *res, size_t room)
{
    static const char *const no_skip[] = {""};
    stats_list l = {.n = 0};
    char buf[64];
    const cJSON *v;

    /* pool: its name (one pool's stats), state, pid, uptime */
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(res, "pool")))
        stats_add(&l, render_fit(v->valuestring, 0));
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(res, "state")))
        stats_add(&l, render_fit(v->valuestring, 0));
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(res, "pid")))
        stats_add(&l, render_fmt("pid %.0f", v->valuedouble));
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(res, "uptime"))) {
        render_duration(v->valuedouble, buf, sizeof(buf));
        stats_add(&l, render_fmt("up %s", buf));
    }
    stats_line(t, "pool", &l, room);

    static const char *const settings[] = {"agent", "strategy", "overflow", "allocator"};
    for (size_t i = 0; i < AP_ARRAY_LEN(settings); i++)
        if ((v = cJSON_GetObjectItemCaseSensitive(res, settings[i])))
            stats_add(&l, stats_item(v));
    stats_line(t, "settings", &l, room);

    /* workers */
    if (cJSON_GetObjectItemCaseSensitive(res, "total")) {
        stats_add(&l, stats_by_state(res));
        stats_line(t, "workers", &l, room);
    }
    static const char *const serving[] = {"available", "busy", "healthy"};
    for (size_t i = 0; i < AP_ARRAY_LEN(serving); i++)
        if ((v = cJSON_GetObjectItemCaseSensitive(res, serving[i])))
            stats_add(&l, stats_item(v));
    if (cJSON_GetObjectItemCaseSensitive(res, "inFlight"))
        stats_add(&l, render_fmt("in flight %d of %d slots", ctl_int(res, "inFlight", 0),
                                 ctl_int(res, "slots", 0)));
    stats_line(t, "serving", &l, room);
    if ((v = cJSON_GetObjectItemCaseSensitive(res, "averageWorkerAge"))) {
        render_duration(v->valuedouble, buf, sizeof(buf));
        stats_add(&l, render_fmt("average %s", buf));
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(res, "oldestWorker"))) {
        render_duration(v->valuedouble, buf, sizeof(buf));
        stats_add(&l, render_fmt("oldest %s", buf));
    }
    stats_line(t, "worker age", &l, room);
    stats_rest(&l, cJSON_GetObjectItemCaseSensitive(res, "workerEvents"), no_skip, 0);
    stats_line(t, "worker events", &l, room);
    stats_rest(&l, cJSON_GetObjectItemCaseSensitive(res, "restarts"), no_skip, 0);
    stats_line(t, "restarts", &l, room);

    /* queue */
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(res, "queue");
    if (cJSON_IsObject(q)) {
        static const char *const shown[] = {"depth", "capacity"};
        stats_add(&l, render_fmt("%d of %d", ctl_int(q, "depth", 0), ctl_int(q, "capacity", 0)));
        stats_rest(&l, q, shown, AP_ARRAY_LEN(shown));
    }
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(res, "oldestQueuedAge"))) {
        render_ms(v->valuedouble, buf, sizeof(buf));
        stats_add(&l, render_fmt("oldest queued %s", buf));
    }
    stats_line(t, "queue", &l, room);

    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(res, "connections")))
        stats_add(&l, render_fmt("%.0f open", v->valuedouble));
    stats_rest(&l, cJSON_GetObjectItemCaseSensitive(res, "connectionsTotal"), no_skip, 0);
    stats_line(t, "connections", &l, room);

    /* rates and distributions */
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(res, "throughput");
    for (const cJSON *c = cJSON_IsObject(tp) ? tp->child : NULL; c; c = c->next) {
        if (cJSON_IsNumber(c))
            stats_add(&l, render_fmt("%.1f/s over %s", c->valuedouble, c->string ? c->string : "?"));
        else
            stats_add(&l, stats_item(c));
    }
    stats_line(t, "throughput", &l, room);
    stats_percentiles(&l, cJSON_GetObjectItemCaseSensitive(res, "latency"));
    stats_line(t, "latency", &l, room);
    stats_percentiles(&l, cJSON_GetObjectItemCaseSensitive(res, "queueWait"));
    stats_line(t, "queue wait", &l, room);

    /* messages by outcome, errors by code */
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(res, "totalMessagesProcessed")))
        stats_add(&l, render_fmt("processed %.0f", v->valuedouble));
    stats_rest(&l, cJSON_GetObjectItemCaseSensitive(res, "messages"), no_skip, 0);
    stats_line(t, "messages", &l, room);
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(res, "errors");
    if (cJSON_IsObject(errs)) {
        int zero = 0;
        for (const cJSON *c = errs->child; c; c = c->next) {
            if (cJSON_IsNumber(c) && c->valuedouble == 0)
                zero++;
            else
                stats_add(&l, stats_item(c));
        }
        if (l.n == 0)
            stats_add(&l, ap_strdup("none"));
        else if (zero)
            stats_add(&l, ap_strdup("every other code 0"));
    }
    stats_line(t, "errors", &l, room);

    const cJSON *dl = cJSON_GetObjectItemCaseSensitive(res, "deadLetters");
    if (cJSON_IsObject(dl)) {
        static const char *const shown[] = {"records", "file"};
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(dl, "file");
        if (cJSON_IsString(f) && f->valuestring[0]) {
            char *path = render_fit(f->valuestring, 0);
            stats_add(&l, render_fmt("%d in %s", ctl_int(dl, "records", 0), path));
            ap_free(path);
        } else {
            stats_add(&l, render_fmt("%d (no dead-letter file)", ctl_int(dl, "records", 0)));
        }
        stats_rest(&l, dl, shown, AP_ARRAY_LEN(shown));
    }
    stats_line(t, "dead letters", &l, room);

    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(res, "memory");
    if (cJSON_IsObject(mem)) {
        int known = 0;
        for (const cJSON *c = mem->child; c; c = c->next)
            known |= cJSON_IsNumber(c) && c->valuedouble > 0;
        if (!known) /* all zero: a build without jemalloc */
            stats_add(&l, ap_strdup("unknown (agentpoold reports it only when built with jemalloc)"));
        for (const cJSON *c = mem->child; c && known; c = c->next) {
            if (cJSON_IsNumber(c)) {
                render_bytes(c->valuedouble, buf, sizeof(buf));
                char *w = render_words(c->string);
                stats_add(&l, render_fmt("%s %s", w, buf));
                ap_free(w);
            } else {
                stats_add(&l, stats_item(c));
            }
        }
    }
    stats_line(t, "master memory", &l, room);

    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(res, "alerts");
    if (cJSON_IsArray(alerts)) {
        int first = 1;
        double now = (double)ap_wall_ms();
        for (const cJSON *a = alerts->child; a; a = a->next, first = 0) {
            static const char *const shown[] = {"name", "level", "since"};
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "name");
            const cJSON *level = cJSON_GetObjectItemCaseSensitive(a, "level");
            const cJSON *since = cJSON_GetObjectItemCaseSensitive(a, "since");
            char *n = render_fit(cJSON_IsString(name) ? name->valuestring : "?", 0);
            char *lv = render_fit(cJSON_IsString(level) ? level->valuestring : "?", 0);
            if (cJSON_IsNumber(since)) {
                render_duration(now > since->valuedouble ? now - since->valuedouble : 0, buf, sizeof(buf));
                stats_add(&l, render_fmt("%s (%s) for %s", n, lv, buf));
            } else {
                stats_add(&l, render_fmt("%s (%s)", n, lv));
            }
            ap_free(n);
            ap_free(lv);
            stats_rest(&l, a, shown, AP_ARRAY_LEN(shown));
            stats_line(t, first ? "alerts" : "", &l, room);
        }
        if (alerts->child == NULL) {
            stats_add(&l, ap_strdup("none"));
            stats_line(t, "alerts", &l, room);
        }
    }
}

/* Prints a titled table of rows (the first row the header). */
static void stats_print_table(const char *title, table *t)
{
    if (t->nrows > 1) {
        printf("\n%s:\n", title);
        table_print(t, stdout, "");
    }
    table_free(t);
}

/* One row per pool of the server's stats ("pools"), with what tells
 * them apart at a glance; `stats --pool NAME` shows one pool's sheet. */
static void stats_pools(const cJSON *pools)
{
    static const char *const header[] = {"pool", "lifecycle", "state", "workers", "healthy", "in flight",
                                         "queue", "processed", "errors", "p99", "dead letters", "agent"};
    char buf[64];
    table t;
    char *row[AP_ARRAY_LEN(header)];
    table_init(&t, AP_ARRAY_LEN(header));
    for (size_t k = 0; k < AP_ARRAY_LEN(header); k++)
        row[k] = ap_strdup(header[k]);
    table_add_row(&t, row);
    for (const cJSON *p = pools->child; p; p = p->next) {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(p, "queue");
        const cJSON *p99 = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "latency"), "p99");
        const cJSON *dl = cJSON_GetObjectItemCaseSensitive(p, "deadLetters");
        const cJSON *v;
        double errors = 0;
        v = cJSON_GetObjectItemCaseSensitive(p, "errors");
        for (const cJSON *c = cJSON_IsObject(v) ? v->child : NULL; c; c = c->next)
            errors += cJSON_IsNumber(c) ? c->valuedouble : 0;
        row[0] = render_fit(p->string ? p->string : "?", 48);
        row[1] = (v = cJSON_GetObjectItemCaseSensitive(p, "lifecycle")) ? render_value("lifecycle", v) : ap_strdup("-");
        row[2] = (v = cJSON_GetObjectItemCaseSensitive(p, "state")) ? render_value("state", v) : ap_strdup("-");
        row[3] = render_fmt("%d", ctl_int(p, "total", 0));
        row[4] = render_fmt("%d", ctl_int(p, "healthy", 0));
        row[5] = render_fmt("%d/%d", ctl_int(p, "inFlight", 0), ctl_int(p, "slots", 0));
        row[6] = render_fmt("%d/%d", ctl_int(q, "depth", 0), ctl_int(q, "capacity", 0));
        row[7] = render_fmt("%.0f", ctl_num(p, "totalMessagesProcessed", 0));
        row[8] = render_fmt("%.0f", errors);
        if (cJSON_IsNumber(p99))
            render_ms(p99->valuedouble, buf, sizeof(buf));
        else
            snprintf(buf, sizeof(buf), "-");
        row[9] = ap_strdup(buf);
        row[10] = render_fmt("%d", ctl_int(dl, "records", 0));
        row[11] = (v = cJSON_GetObjectItemCaseSensitive(p, "agent")) ? render_value("agent", v) : ap_strdup("-");
        table_add_row(&t, row);
    }
    stats_print_table("pools (stats --pool NAME shows one in full)", &t);
}

/* The answers by message type: type, ok, errors by code. */
static void stats_types(const cJSON *types)
{
    table t;
    char *row[3];
    table_init(&t, 3);
    row[0] = ap_strdup("type");
    row[1] = ap_strdup("ok");
    row[2] = ap_strdup("errors");
    table_add_row(&t, row);
    for (const cJSON *ty = cJSON_IsObject(types) ? types->child : NULL; ty; ty = ty->next) {
        stats_list l = {.n = 0};
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(ty, "errors");
        for (const cJSON *c = cJSON_IsObject(e) ? e->child : NULL; c; c = c->next)
            stats_add(&l, stats_item(c));
        static const char *const shown[] = {"ok", "errors"};
        stats_rest(&l, ty, shown, AP_ARRAY_LEN(shown));
        char *errs = ap_strdup(l.n ? "" : "0");
        for (size_t i = 0; i < l.n; i++) {
            char *next = render_fmt("%s%s%s", errs, i ? ", " : "", l.v[i]);
            ap_free(errs);
            ap_free(l.v[i]);
            errs = next;
        }
        row[0] = render_fit(ty->string ? ty->string : "?", 48);
        row[1] = render_value("ok", cJSON_GetObjectItemCaseSensitive(ty, "ok"));
        row[2] = errs;
        table_add_row(&t, row);
    }
    stats_print_table("answers by type", &t);
}

/* The circuit breakers that have done anything, one row each: the type,
 * then every member found (in first-seen order) under its name as
 * words. */
static void stats_breakers(const cJSON *breakers)
{
    const char *cols[16];
    const cJSON *first[16];
    size_t ncols = 0;
    for (const cJSON *b = cJSON_IsObject(breakers) ? breakers->child : NULL; b; b = b->next)
        for (const cJSON *c = cJSON_IsObject(b) ? b->child : NULL; c; c = c->next)
            if (c->string && !stats_in(c->string, cols, ncols) && ncols < AP_ARRAY_LEN(cols)) {
                first[ncols] = c;
                cols[ncols++] = c->string;
            }
    table t;
    char *row[AP_ARRAY_LEN(cols) + 1];
    table_init(&t, ncols + 1);
    row[0] = ap_strdup("type");
    for (size_t k = 0; k < ncols; k++)
        row[k + 1] = stats_label(first[k]);
    table_add_row(&t, row);
    for (const cJSON *b = cJSON_IsObject(breakers) ? breakers->child : NULL; b; b = b->next) {
        row[0] = render_fit(b->string ? b->string : "?", 48);
        for (size_t k = 0; k < ncols; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, cols[k]);
            row[k + 1] = v ? stats_value(cols[k], v) : ap_strdup("-");
        }
        table_add_row(&t, row);
    }
    stats_print_table("breakers", &t);
}

/* Worker columns: header, and the member each shows. */
static const char *const stats_worker_cols[][2] = {
    {"id", "id"},
    {"pid", "pid"},
    {"state", "state"},
    {"healthy", "healthy"},
    {"in-flight", "inFlight"},
    {"messages", "messagesProcessed"},
    {"errors", "errors"},
    {"RSS", "rssBytes"},
    {"generation", "generation"},
    {"age", "age"},
    {"last message", "lastMessageAt"},
    {"missed beats", "missedBeats"},
    {"async", "async"},
    {"recycling", "recycling"},
};
/* Members shown through another column: slots with in-flight, startedAt
 * as the age. */
static const char *const stats_worker_implied[] = {"slots", "startedAt"};

/* One cell of a worker row. */
static char *stats_worker_cell(const cJSON *w, const char *member, double now_wall)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(w, member);
    char buf[64];
    if (strcmp(member, "inFlight") == 0 && cJSON_IsNumber(v)) {
        if (cJSON_GetObjectItemCaseSensitive(w, "slots"))
            return render_fmt("%d/%d", v->valueint, ctl_int(w, "slots", 0));
        return render_fmt("%d", v->valueint);
    }
    if (strcmp(member, "lastMessageAt") == 0) {
        if (!cJSON_IsNumber(v))
            return ap_strdup(v ? "never" : "-");
        double ago = now_wall - v->valuedouble;
        render_ms(ago < 0 ? 0 : ago, buf, sizeof(buf));
        return render_fmt("%s ago", buf);
    }
    if (strcmp(member, "age") == 0 && cJSON_IsNumber(v)) {
        render_duration(v->valuedouble, buf, sizeof(buf));
        return ap_strdup(buf);
    }
    if (v == NULL)
        return ap_strdup("-");
    return stats_value(member, v);
}

/* Member names of the workers not shown by a fixed column, in
 * first-seen order: those holding a scalar in every worker (extra
 * columns) and those holding an object or array in any (detail rows). */
typedef struct {
    const char *cols[16];
    size_t ncols;
    const char *details[16];
    size_t ndetails;
} stats_worker_extra;

static void stats_worker_classify(const cJSON *workers, stats_worker_extra *x)
{
    const size_t nfixed = AP_ARRAY_LEN(stats_worker_cols);
    x->ncols = x->ndetails = 0;
    for (const cJSON *w = workers->child; w; w = w->next)
        for (const cJSON *c = w->child; c; c = c->next) {
            if (c->string == NULL ||
                stats_in(c->string, stats_worker_implied, AP_ARRAY_LEN(stats_worker_implied)))
                continue;
            int known = 0;
            for (size_t k = 0; k < nfixed && !known; k++)
                known = strcmp(c->string, stats_worker_cols[k][1]) == 0;
            if (known)
                continue;
            int deep = cJSON_IsObject(c) || cJSON_IsArray(c);
            size_t at = x->ncols;
            for (size_t k = 0; k < x->ncols; k++)
                if (strcmp(x->cols[k], c->string) == 0)
                    at = k;
            int in_details = stats_in(c->string, x->details, x->ndetails);
            if (deep && at < x->ncols) { /* a scalar elsewhere: move it to the details */
                memmove(&x->cols[at], &x->cols[at + 1], (x->ncols - at - 1) * sizeof(char *));
                x->ncols--;
            }
            if (deep && !in_details && x->ndetails < AP_ARRAY_LEN(x->details))
                x->details[x->ndetails++] = c->string;
            else if (!deep && !in_details && at == x->ncols && x->ncols < AP_ARRAY_LEN(x->cols))
                x->cols[x->ncols++] = c->string;
        }
}

/* Adds the detail rows of one worker: each object member's members
 * (one level: "agent.metrics"), other containers whole, as compact
 * JSON. */
static void stats_worker_details(table *t, const cJSON *w, const stats_worker_extra *x)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(w, "id");
    for (size_t k = 0; k < x->ndetails; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(w, x->details[k]);
        if (v == NULL)
            continue;
        const cJSON *one = cJSON_IsObject(v) && v->child ? v->child : v;
        for (; one; one = one == v ? NULL : one->next) {
            char *row[3];
            row[0] = render_value("id", id);
            row[1] = one == v ? render_fit(x->details[k], 0)
                              : render_fmt("%s.%s", x->details[k], one->string ? one->string : "?");
            row[2] = stats_value(one->string, one);
            table_add_row(t, row);
        }
    }
}

/* One row per worker (--detailed), then the workers' structured members
 * (the agent's health() answer and metrics, ...) one per line. */
static void stats_workers(const cJSON *workers, size_t width)
{
    const size_t nfixed = AP_ARRAY_LEN(stats_worker_cols);
    stats_worker_extra x;
    stats_worker_classify(workers, &x);
    size_t ncols = nfixed + x.ncols;
    char **row = ap_malloc(ncols * sizeof(char *));
    table t;
    table_init(&t, ncols);
    for (size_t k = 0; k < nfixed; k++)
        row[k] = ap_strdup(stats_worker_cols[k][0]);
    for (size_t k = 0; k < x.ncols; k++)
        row[nfixed + k] = render_words(x.cols[k]);
    table_add_row(&t, row);
    double now = (double)ap_wall_ms();
    for (const cJSON *w = workers->child; w; w = w->next) {
        for (size_t k = 0; k < nfixed; k++)
            row[k] = stats_worker_cell(w, stats_worker_cols[k][1], now);
        for (size_t k = 0; k < x.ncols; k++)
            row[nfixed + k] = stats_worker_cell(w, x.cols[k], now);
        table_add_row(&t, row);
    }
    printf("\nworkers:\n");
    table_print(&t, stdout, "");
    table_free(&t);
    ap_free(row);

    if (x.ndetails == 0)
        return;
    table_init(&t, 3);
    for (const cJSON *w = workers->child; w; w = w->next)
        stats_worker_details(&t, w, &x);
    render_fit_last_column(&t, width, STATS_DETAIL_MIN);
    printf("\nworker details:\n");
    table_print(&t, stdout, "");
    table_free(&t);
}

/* Adds sheet lines for the top-level members this file does not know:
 * scalars and objects as lines labelled with their names as words;
 * arrays of objects are left for stats_unknown_tables. */
static void stats_unknown_lines(table *t, const cJSON *res, size_t room)
{
    stats_list l = {.n = 0};
    for (const cJSON *c = res->child; c; c = c->next) {
        if (c->string == NULL || stats_in(c->string, stats_known, AP_ARRAY_LEN(stats_known)) ||
            render_is_row_array(c))
            continue;
        if (cJSON_IsObject(c) && c->child) {
            for (const cJSON *m = c->child; m; m = m->next)
                stats_add(&l, stats_item(m));
        } else {
            stats_add(&l, stats_value(c->string, c));
        }
        char *label = render_words(c->string);
        stats_line(t, label, &l, room);
        ap_free(label);
    }
}

/* Prints the arrays of objects this file does not know as tables. */
static void stats_unknown_tables(const cJSON *res)
{
    for (const cJSON *c = res->child; c; c = c->next) {
        if (c->string == NULL || stats_in(c->string, stats_known, AP_ARRAY_LEN(stats_known)) ||
            !render_is_row_array(c))
            continue;
        char *title = render_words(c->string);
        printf("\n%s:\n", title);
        render_rows(stdout, c, NULL, 0);
        ap_free(title);
    }
}

/* Prints the sheet, the tables, and whatever else the answer holds. */
static void stats_print(const cJSON *res, int detailed)
{
    size_t width = ctl_out_width();
    size_t wrap = width ? width : STATS_WIDTH_DEFAULT;
    size_t label = STATS_LABEL_MIN;
    for (const cJSON *c = res->child; c; c = c->next) {
        if (c->string == NULL || stats_in(c->string, stats_known, AP_ARRAY_LEN(stats_known)))
            continue;
        char *w = render_words(c->string);
        if (table_width(w) > label)
            label = table_width(w);
        ap_free(w);
    }
    label += 2;
    size_t room = wrap > label + STATS_VALUE_MIN ? wrap - label : STATS_VALUE_MIN;
    table t;
    table_init(&t, 2);
    stats_sheet(&t, res, room);
    stats_unknown_lines(&t, res, room);
    table_print(&t, stdout, "");
    table_free(&t);

    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(res, "pools");
    if (render_named_pools(pools))
        stats_pools(pools);
    stats_types(cJSON_GetObjectItemCaseSensitive(res, "types"));
    stats_breakers(cJSON_GetObjectItemCaseSensitive(res, "breakers"));
    stats_unknown_tables(res);
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(res, "workers");
    if (detailed && cJSON_IsArray(ws) && ws->child)
        stats_workers(ws, width);
}

/* stats [--json] [--detailed]: pool.stats as a sheet and tables, or as
 * the JSON answer. */
int cmd_stats(const ctl_opts *o, int argc, char **argv)
{
    cJSON *res;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    int detailed_request = o->detailed || !o->json;
    int status = ctl_call(o, "pool.stats", detailed_request ? "{\"detailed\":true}" : "{}", &res);
    if (status != CTL_EXIT_OK)
        return status;
    if (o->json) {
        ctl_print_json(res);
    } else if (!cJSON_IsObject(res)) {
        char *txt = cJSON_PrintUnformatted(res);
        printf("%s\n", txt ? txt : "?");
        cJSON_free(txt);
    } else {
        stats_print(res, o->detailed);
    }
    cJSON_Delete(res);
    return CTL_EXIT_OK;
}
