/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * topview.c - the lines of one `agentpoolctl top` frame (see topview.h).
 *
 * Column widths have floors (TOPVIEW_W_*) so that a frame does not jump
 * sideways when a number gains a digit, and grow past them when a value
 * needs it; numbers are right-aligned, names left-aligned.  Every string
 * that came from agentpoold goes through render_cut/render_fit (control
 * bytes become '?'), so nothing in an answer can drive the terminal.
 */
#include "topview.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "render.h"
#include "table.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Width floors of the worker columns. */
#define TOPVIEW_W_ID 8
#define TOPVIEW_W_PID 7
#define TOPVIEW_W_STATE 8
#define TOPVIEW_W_RSS 9
#define TOPVIEW_W_AGE 8
/* The longest a worker id or state may be shown. */
#define TOPVIEW_CELL_MAX 24

enum { COL_ID, COL_PID, COL_STATE, COL_INFLIGHT, COL_MESSAGES, COL_RSS, COL_AGE, COL_ERRORS, NCOLS };

static const char *const topview_headers[NCOLS] = {"WORKER", "PID", "STATE",  "IN-FLIGHT",
                                                   "MESSAGES", "RSS", "AGE", "ERRORS"};
static const size_t topview_floors[NCOLS] = {TOPVIEW_W_ID, TOPVIEW_W_PID, TOPVIEW_W_STATE, 0, 0,
                                             TOPVIEW_W_RSS, TOPVIEW_W_AGE, 0};
/* Columns written left-aligned; the others are numbers. */
static const int topview_left[NCOLS] = {1, 0, 1, 0, 0, 0, 0, 0};

/* Appends line (owned), cut to o->width, unless the frame is full. */
static void topview_push(topview_frame *f, const topview_opts *o, char *line)
{
    if (o->height && f->n >= o->height) {
        ap_free(line);
        return;
    }
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->lines = ap_realloc(f->lines, f->cap * sizeof(char *));
    }
    char *cut = render_cut(line, o->width);
    ap_free(line);
    f->lines[f->n++] = cut;
}

void topview_frame_free(topview_frame *f)
{
    for (size_t i = 0; i < f->n; i++)
        ap_free(f->lines[i]);
    ap_free(f->lines);
    f->lines = NULL;
    f->n = f->cap = 0;
}

double topview_error_total(const cJSON *stats)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(stats, "errors");
    double sum = 0;
    for (const cJSON *c = cJSON_IsObject(e) ? e->child : NULL; c; c = c->next)
        if (cJSON_IsNumber(c) && c->valuedouble > 0)
            sum += c->valuedouble;
    return sum;
}

/* A number member of obj as text ("-" when absent). */
static void topview_num(const cJSON *obj, const char *key, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v))
        snprintf(buf, cap, "%.0f", v->valuedouble);
    else
        snprintf(buf, cap, "-");
}

/* A rate with one decimal ("-" when absent). */
static void topview_rate_text(const cJSON *obj, const char *key, char *buf, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v))
        snprintf(buf, cap, "%.1f/s", v->valuedouble);
    else
        snprintf(buf, cap, "-");
}

/* The two header lines. */
static void topview_header(const cJSON *s, const topview_opts *o, topview_frame *f)
{
    char up[48], depth[32], capacity[32], t1[32], t10[32], p99[32], errmin[32], errtot[32];
    const cJSON *v;

    const cJSON *st = cJSON_GetObjectItemCaseSensitive(s, "state");
    char *state = render_fit(cJSON_IsString(st) ? st->valuestring : "-", TOPVIEW_CELL_MAX);
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(s, "uptime")))
        render_duration(v->valuedouble, up, sizeof(up));
    else
        snprintf(up, sizeof(up), "-");
    /* ready: able to take messages (ready or busy) */
    int ready = 0;
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(s, "workers");
    for (const cJSON *w = cJSON_IsArray(ws) ? ws->child : NULL; w; w = w->next) {
        const cJSON *ws_state = cJSON_GetObjectItemCaseSensitive(w, "state");
        if (cJSON_IsString(ws_state) && (strcmp(ws_state->valuestring, "ready") == 0 ||
                                         strcmp(ws_state->valuestring, "busy") == 0))
            ready++;
    }
    /* Out of the pool's size (its slots), not the processes alive: a
     * dead slot shows as not ready ("3/4 ready" above a dead row). */
    char total[32];
    topview_num(s, cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(s, "poolSize")) ? "poolSize" : "total", total,
                sizeof(total));
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(s, "queue");
    topview_num(q, "depth", depth, sizeof(depth));
    topview_num(q, "capacity", capacity, sizeof(capacity));
    /* One pool's stats (--pool) name it and have no uptime of their own. */
    const cJSON *pn = cJSON_GetObjectItemCaseSensitive(s, "pool");
    char *pname = cJSON_IsString(pn) ? render_fit(pn->valuestring, TOPVIEW_CELL_MAX) : NULL;
    char *uptime = pname && !cJSON_GetObjectItemCaseSensitive(s, "uptime") ? ap_strdup("")
                                                                           : render_fmt("   uptime %s", up);
    topview_push(f, o, render_fmt("pool %s%s%s%s   workers %d/%s ready   queue %s/%s", pname ? pname : "",
                                  pname ? " " : "", state, uptime, ready, total, depth, capacity));
    ap_free(uptime);
    ap_free(pname);
    ap_free(state);

    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(s, "throughput");
    topview_rate_text(tp, "1s", t1, sizeof(t1));
    topview_rate_text(tp, "10s", t10, sizeof(t10));
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(s, "latency");
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(lat, "p99")))
        render_ms(v->valuedouble, p99, sizeof(p99));
    else
        snprintf(p99, sizeof(p99), "-");
    if (isnan(o->errors_per_min))
        snprintf(errmin, sizeof(errmin), "-");
    else
        snprintf(errmin, sizeof(errmin), "%.1f", o->errors_per_min);
    snprintf(errtot, sizeof(errtot), "%.0f", topview_error_total(s));
    topview_push(f, o, render_fmt("throughput %s (1s) %s (10s)   p99 %s   errors/min %s (%s total)",
                                  t1, t10, p99, errmin, errtot));

    /* Alerts agentpoold raised, when there are any. */
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(s, "alerts");
    if (cJSON_IsArray(alerts) && alerts->child) {
        char *line = ap_strdup("ALERTS:");
        for (const cJSON *a = alerts->child; a; a = a->next) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "name");
            const cJSON *level = cJSON_GetObjectItemCaseSensitive(a, "level");
            char *n = render_fit(cJSON_IsString(name) ? name->valuestring : "?", TOPVIEW_CELL_MAX);
            char *l = render_fit(cJSON_IsString(level) ? level->valuestring : "?", TOPVIEW_CELL_MAX);
            char *next = render_fmt("%s%s %s (%s)", line, a == alerts->child ? "" : ",", n, l);
            ap_free(n);
            ap_free(l);
            ap_free(line);
            line = next;
        }
        topview_push(f, o, line);
    }
}

/* The cells of one worker's row (each allocated). */
static void topview_cells(const cJSON *w, char *cells[NCOLS])
{
    char buf[64];
    const cJSON *v;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(w, "id");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(w, "state");
    if (cJSON_IsString(id)) {
        cells[COL_ID] = render_fit(id->valuestring, TOPVIEW_CELL_MAX);
    } else {
        topview_num(w, "id", buf, sizeof(buf));
        cells[COL_ID] = ap_strdup(buf);
    }
    topview_num(w, "pid", buf, sizeof(buf));
    cells[COL_PID] = ap_strdup(buf);
    cells[COL_STATE] = render_fit(cJSON_IsString(st) ? st->valuestring : "-", TOPVIEW_CELL_MAX);
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(w, "inFlight"))) {
        const cJSON *slots = cJSON_GetObjectItemCaseSensitive(w, "slots");
        if (cJSON_IsNumber(slots))
            cells[COL_INFLIGHT] = render_fmt("%.0f/%.0f", v->valuedouble, slots->valuedouble);
        else
            cells[COL_INFLIGHT] = render_fmt("%.0f", v->valuedouble);
    } else {
        cells[COL_INFLIGHT] = ap_strdup("-");
    }
    topview_num(w, "messagesProcessed", buf, sizeof(buf));
    cells[COL_MESSAGES] = ap_strdup(buf);
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(w, "rssBytes")))
        render_bytes(v->valuedouble, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "-");
    cells[COL_RSS] = ap_strdup(buf);
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(w, "age")))
        render_duration(v->valuedouble, buf, sizeof(buf));
    else
        snprintf(buf, sizeof(buf), "-");
    cells[COL_AGE] = ap_strdup(buf);
    topview_num(w, "errors", buf, sizeof(buf));
    cells[COL_ERRORS] = ap_strdup(buf);
}

/* One line of cells in columns of the given widths. */
static char *topview_line(char *const cells[NCOLS], const size_t width[NCOLS])
{
    size_t cap = 1;
    for (int c = 0; c < NCOLS; c++)
        cap += width[c] + strlen(cells[c]) + 2;
    char *line = ap_malloc(cap);
    size_t len = 0;
    for (int c = 0; c < NCOLS; c++) {
        size_t w = table_width(cells[c]);
        size_t pad = width[c] > w ? width[c] - w : 0;
        if (c > 0) {
            memcpy(line + len, "  ", 2);
            len += 2;
        }
        if (!topview_left[c]) {
            memset(line + len, ' ', pad);
            len += pad;
        }
        memcpy(line + len, cells[c], strlen(cells[c]));
        len += strlen(cells[c]);
        if (topview_left[c] && c + 1 < NCOLS) {
            memset(line + len, ' ', pad);
            len += pad;
        }
    }
    line[len] = '\0';
    return line;
}

/* 1 when worker w is one of pool name's: it says so ("pool"), or its
 * id is "name/..." (how agentpoold names the workers of named pools). */
static int topview_in_pool(const cJSON *w, const char *name)
{
    const cJSON *pn = cJSON_GetObjectItemCaseSensitive(w, "pool");
    if (cJSON_IsString(pn))
        return strcmp(pn->valuestring, name) == 0;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(w, "id");
    size_t n = strlen(name);
    return cJSON_IsString(id) && strncmp(id->valuestring, name, n) == 0 && id->valuestring[n] == '/';
}

/* The line that heads one pool's block of a server with named pools:
 * its name, lifecycle when not running, state, workers ready, queue,
 * throughput, p99 and errors (all from the pool's own stats). */
static void topview_pool_line(const char *name, const cJSON *p, int ready, const topview_opts *o,
                              topview_frame *f)
{
    char total[32], depth[32], capacity[32], t10[32], p99[32];
    const cJSON *lc = cJSON_GetObjectItemCaseSensitive(p, "lifecycle");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, "state");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "latency"), "p99");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(p, "queue");
    char *n = render_fit(name, TOPVIEW_CELL_MAX);
    char *state = render_fit(cJSON_IsString(st) ? st->valuestring : "-", TOPVIEW_CELL_MAX);
    char *life = cJSON_IsString(lc) && strcmp(lc->valuestring, "running") != 0
                     ? render_fmt(" (%s)", lc->valuestring) : ap_strdup("");
    char *life_fit = render_fit(life, TOPVIEW_CELL_MAX + 3);
    topview_num(p, cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, "poolSize")) ? "poolSize" : "total", total,
                sizeof(total));
    topview_num(q, "depth", depth, sizeof(depth));
    topview_num(q, "capacity", capacity, sizeof(capacity));
    topview_rate_text(cJSON_GetObjectItemCaseSensitive(p, "throughput"), "10s", t10, sizeof(t10));
    if (cJSON_IsNumber(v))
        render_ms(v->valuedouble, p99, sizeof(p99));
    else
        snprintf(p99, sizeof(p99), "-");
    topview_push(f, o, render_fmt("pool %s%s %s   workers %d/%s ready   queue %s/%s   %s (10s)   p99 %s   errors %.0f",
                                  n, life_fit, state, ready, total, depth, capacity, t10, p99,
                                  topview_error_total(p)));
    ap_free(n);
    ap_free(state);
    ap_free(life);
    ap_free(life_fit);
}

/* Pushes the column header and the rows of the workers pick[0..n) (their
 * cells freed), as many as fit the height, the last saying what did not. */
static void topview_rows(char *(*cells)[NCOLS], const size_t *pick, size_t n, const size_t width[NCOLS],
                         const topview_opts *o, topview_frame *f)
{
    topview_push(f, o, topview_line((char *const *)topview_headers, width));
    size_t room = n;
    if (o->height) {
        size_t left = o->height > f->n ? o->height - f->n : 0;
        if (n > left)
            room = left > 0 ? left - 1 : 0;
    }
    for (size_t i = 0; i < n && i < room; i++)
        topview_push(f, o, topview_line(cells[pick[i]], width));
    if (room < n)
        topview_push(f, o, render_fmt("... %zu more worker%s (a taller terminal shows them)", n - room,
                                      n - room == 1 ? "" : "s"));
}

void topview_render(const cJSON *stats, const topview_opts *o, topview_frame *f)
{
    topview_header(stats, o, f);

    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(stats, "workers");
    size_t nw = (size_t)cJSON_GetArraySize(ws);
    char *(*cells)[NCOLS] = ap_calloc(nw ? nw : 1, sizeof(*cells));
    size_t *pick = ap_calloc(nw ? nw : 1, sizeof(size_t));
    size_t width[NCOLS];
    for (int c = 0; c < NCOLS; c++) {
        size_t h = strlen(topview_headers[c]);
        width[c] = h > topview_floors[c] ? h : topview_floors[c];
    }
    size_t k = 0;
    for (const cJSON *w = cJSON_IsArray(ws) ? ws->child : NULL; w && k < nw; w = w->next, k++) {
        topview_cells(w, cells[k]);
        for (int c = 0; c < NCOLS; c++) {
            size_t cw = table_width(cells[k][c]);
            if (cw > width[c])
                width[c] = cw;
        }
    }

    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(stats, "pools");
    if (!render_named_pools(pools)) {
        topview_push(f, o, ap_strdup(""));
        for (size_t i = 0; i < k; i++)
            pick[i] = i;
        topview_rows(cells, pick, k, width, o, f);
    }
    /* Named pools: one block each, its workers under its line. */
    for (const cJSON *p = render_named_pools(pools) ? pools->child : NULL; p; p = p->next) {
        const char *name = p->string ? p->string : "?";
        size_t n = 0, i = 0;
        int ready = 0;
        for (const cJSON *w = cJSON_IsArray(ws) ? ws->child : NULL; w && i < k; w = w->next, i++) {
            if (!topview_in_pool(w, name))
                continue;
            const cJSON *wst = cJSON_GetObjectItemCaseSensitive(w, "state");
            ready += cJSON_IsString(wst) &&
                     (strcmp(wst->valuestring, "ready") == 0 || strcmp(wst->valuestring, "busy") == 0);
            pick[n++] = i;
        }
        topview_push(f, o, ap_strdup(""));
        topview_pool_line(name, p, ready, o, f);
        if (n > 0)
            topview_rows(cells, pick, n, width, o, f);
        else if (cJSON_IsArray(ws))
            topview_push(f, o, ap_strdup("(no workers)"));
    }
    if (nw == 0 && !cJSON_IsArray(ws)) /* plain stats (no "workers"): the asker is not an administrator */
        topview_push(f, o, ap_strdup("(worker rows need an administrator of agentpoold: adminUids/adminGids)"));
    else if (nw == 0 && !render_named_pools(pools))
        topview_push(f, o, ap_strdup("(no workers)"));
    for (size_t i = 0; i < k; i++)
        for (int c = 0; c < NCOLS; c++)
            ap_free(cells[i][c]);
    ap_free(cells);
    ap_free(pick);
}

void topview_render_problem(const char *socket_path, const char *why, const topview_opts *o,
                            topview_frame *f)
{
    char *path = render_fit(socket_path, 0);
    topview_push(f, o, render_fmt("agentpoolctl top: %s", path));
    topview_push(f, o, render_fmt("no statistics: %s", why));
    topview_push(f, o, ap_strdup("(trying again at every refresh)"));
    ap_free(path);
}

void topview_rate_add(topview_rate *r, uint64_t now_ms, double value)
{
    if (r->n > 0 && (value < r->v[r->n - 1] || now_ms < r->t[r->n - 1]))
        r->n = 0; /* the counter went back: another server */
    /* The newest sample is replaced while it is less than a step past
     * the one before it; once it is, it stays. */
    if (r->n >= 2 && r->t[r->n - 1] - r->t[r->n - 2] < TOPVIEW_RATE_STEP_MS)
        r->n--;
    if (r->n == TOPVIEW_RATE_SLOTS) {
        memmove(r->t, r->t + 1, (r->n - 1) * sizeof(r->t[0]));
        memmove(r->v, r->v + 1, (r->n - 1) * sizeof(r->v[0]));
        r->n--;
    }
    r->t[r->n] = now_ms;
    r->v[r->n] = value;
    r->n++;
    /* Keep one sample at or before the window's start, none older. */
    size_t drop = 0;
    while (r->n - drop > 2 && now_ms - r->t[drop + 1] >= TOPVIEW_RATE_WINDOW_MS)
        drop++;
    if (drop) {
        memmove(r->t, r->t + drop, (r->n - drop) * sizeof(r->t[0]));
        memmove(r->v, r->v + drop, (r->n - drop) * sizeof(r->v[0]));
        r->n -= drop;
    }
}

double topview_rate_per_min(const topview_rate *r)
{
    if (r->n < 2 || r->t[r->n - 1] == r->t[0])
        return NAN;
    return (r->v[r->n - 1] - r->v[0]) * 60000.0 / (double)(r->t[r->n - 1] - r->t[0]);
}
