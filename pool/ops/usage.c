/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * usage.c - usage accounting per (pool, type, key) (see usage.h).
 *
 * Rows are found through an open-addressing table (USAGE_TABLE_SLOTS,
 * at most half full) hashed on the three names; a message finds its row
 * once, at admission (msg->ucell), so the hooks that follow (sent,
 * answered, the CPU time in its answer frame's aux, its USAGE frame
 * when the handler reported) cost a few increments.  Rows are never
 * freed before usage_free: a pool removed by a reload keeps its rows
 * (its name stays in the series).  Key ids past maxTrackedKeys, and
 * every row past USAGE_MAX_CELLS, count under "other"; extra reported
 * names past USAGE_MAX_NAMES under the name "other".  A USAGE frame's
 * JSON is parsed with cJSON (at most AP_USAGE_JSON_MAX bytes) and
 * checked member by member: the worker runs agent code, so a frame the
 * bridge would not send is dropped and counted, never trusted.  State:
 * the `us` struct below, the loop's alone.
 */
#include "usage.h"
#include "apikey.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_defaults.h"
#include "ap_log.h"
#include "hist.h"
#include "msg.h"
#include "promtext.h"
#include "server.h"
#include "typetab.h"

#include <event2/buffer.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define USAGE_TABLE_SLOTS (2 * USAGE_MAX_CELLS)
#define USAGE_KEY_MAX 64

/* Prometheus buckets for worker CPU per message, in ns (10 us to 60 s). */
static const uint64_t cpu_bounds_ns[] = {
    10000ull,      50000ull,      100000ull,      250000ull,      500000ull,       1000000ull,
    2500000ull,    5000000ull,    10000000ull,    25000000ull,    50000000ull,     100000000ull,
    250000000ull,  500000000ull,  1000000000ull,  5000000000ull,  10000000000ull,  60000000000ull,
};
/* Queue wait and run time, in ns (0.5 ms to 5 min), as metrics.c's. */
static const uint64_t duration_bounds_ns[] = {
    500000ull,     1000000ull,     2500000ull,     5000000ull,     10000000ull,     25000000ull,
    50000000ull,   100000000ull,   250000000ull,   500000000ull,   1000000000ull,   2500000000ull,
    5000000000ull, 10000000000ull, 30000000000ull, 60000000000ull, 300000000000ull,
};

struct usage_cell {
    uint64_t hash;
    char pool[CONFIG_POOL_NAME_MAX + 1];
    char type[AP_MAX_TYPE_LEN + 1];
    char key[USAGE_KEY_MAX + 1];
    uint64_t requests;
    uint64_t ok;
    uint64_t errors[ERR_COUNT];
    hist_fixed queue_wait;
    hist_fixed run;
    hist_fixed cpu;
    uint64_t tokens_in, tokens_out;
    double cost;
    double other[USAGE_MAX_NAMES + 1]; /* by name index; [USAGE_MAX_NAMES]: "other" */
    int has_other;
};

static struct {
    usage_cell **slots;         /* USAGE_TABLE_SLOTS */
    usage_cell **cells;         /* in order of creation */
    unsigned ncells;
    usage_cell *overflow;       /* other/other/other: past USAGE_MAX_CELLS */
    char (*keys)[USAGE_KEY_MAX + 1]; /* key ids tracked, max_keys of them */
    unsigned nkeys, max_keys;
    char names[USAGE_MAX_NAMES][AP_USAGE_NAME_MAX + 1];
    unsigned nnames;
    uint64_t frames, frames_refused;
} us;

static uint64_t hash3(const char *a, const char *b, const char *c)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* a separator no name holds */
    }
    return h;
}

static usage_cell *cell_new(const char *pool, const char *type, const char *key, uint64_t h)
{
    usage_cell *c = ap_calloc(1, sizeof(*c));
    c->hash = h;
    snprintf(c->pool, sizeof(c->pool), "%s", pool);
    snprintf(c->type, sizeof(c->type), "%s", type);
    snprintf(c->key, sizeof(c->key), "%s", key);
    hist_fixed_init(&c->queue_wait, duration_bounds_ns, AP_ARRAY_LEN(duration_bounds_ns));
    hist_fixed_init(&c->run, duration_bounds_ns, AP_ARRAY_LEN(duration_bounds_ns));
    hist_fixed_init(&c->cpu, cpu_bounds_ns, AP_ARRAY_LEN(cpu_bounds_ns));
    return c;
}

void usage_init(unsigned max_keys)
{
    memset(&us, 0, sizeof(us));
    us.slots = ap_calloc(USAGE_TABLE_SLOTS, sizeof(*us.slots));
    us.cells = ap_calloc(USAGE_MAX_CELLS, sizeof(*us.cells));
    us.max_keys = max_keys;
    us.keys = max_keys ? ap_calloc(max_keys, sizeof(*us.keys)) : NULL;
    us.overflow = cell_new(TYPETAB_OTHER_NAME, TYPETAB_OTHER_NAME, TYPETAB_OTHER_NAME, 0);
}

void usage_free(void)
{
    for (unsigned i = 0; i < us.ncells; i++)
        ap_free(us.cells[i]);
    ap_free(us.overflow);
    ap_free(us.cells);
    ap_free(us.slots);
    ap_free(us.keys);
    memset(&us, 0, sizeof(us));
}

/* The label for key id: itself while maxTrackedKeys allows, else
 * "other".  Only asked when a row is made (rare). */
static const char *key_label(const char *id)
{
    for (unsigned i = 0; i < us.nkeys; i++)
        if (strcmp(us.keys[i], id) == 0)
            return id;
    if (us.nkeys == us.max_keys)
        return TYPETAB_OTHER_NAME;
    snprintf(us.keys[us.nkeys++], sizeof(*us.keys), "%s", id);
    return id;
}

/* The row of (pool, type, key), made when there is room. */
static usage_cell *cell_find(const char *pool, const char *type, const char *key)
{
    if (us.slots == NULL)
        return NULL;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t h = hash3(pool, type, key);
        unsigned i = (unsigned)(h & (USAGE_TABLE_SLOTS - 1));
        for (usage_cell *c; (c = us.slots[i]) != NULL; i = (i + 1) & (USAGE_TABLE_SLOTS - 1))
            if (c->hash == h && strcmp(c->key, key) == 0 && strcmp(c->type, type) == 0 && strcmp(c->pool, pool) == 0)
                return c;
        if (pass == 0 && strcmp(key, "none") != 0) {
            const char *label = key_label(key);
            if (label != key) { /* an untracked key: its row is "other"'s */
                key = label;
                continue;
            }
        }
        if (us.ncells == USAGE_MAX_CELLS)
            return us.overflow;
        usage_cell *c = cell_new(pool, type, key, h);
        us.slots[i] = c;
        us.cells[us.ncells++] = c;
        return c;
    }
    return us.overflow;
}

static usage_cell *cell_of(struct pool *p, unsigned type_idx, const apikey *k)
{
    const char *type = typetab_name(p->types, type_idx);
    if (k == NULL && type_idx < typetab_capacity(p->types)) {
        /* Most messages carry no key: their row is found once per type
         * and kept on the pool (rows live until usage_free, type indexes
         * for the pool's life), sparing the hash and three strcmp per
         * message (about 250 instructions, callgrind). */
        if (p->ucells == NULL)
            p->ucells = ap_calloc(typetab_capacity(p->types), sizeof(*p->ucells));
        usage_cell *c = p->ucells[type_idx];
        if (c == NULL) {
            c = cell_find(p->name, type ? type : TYPETAB_OTHER_NAME, "none");
            if (c != us.overflow)
                p->ucells[type_idx] = c;
        }
        return c;
    }
    return cell_find(p->name, type ? type : TYPETAB_OTHER_NAME, k ? apikey_id(k) : "none");
}

usage_cell *usage_admit(struct pool *p, unsigned type_idx, const apikey *k)
{
    usage_cell *c = cell_of(p, type_idx, k);
    if (c)
        c->requests++;
    return c;
}

void usage_refused(struct pool *p, unsigned type_idx, const apikey *k, reply_code code)
{
    usage_cell *c = cell_of(p, type_idx, k);
    if (c) {
        c->requests++;
        c->errors[code < ERR_COUNT ? code : ERR_OTHER]++;
    }
}

void usage_sent(const msg *m)
{
    if (m->ucell)
        hist_fixed_record(&m->ucell->queue_wait, m->sent_ns > m->accepted_ns ? m->sent_ns - m->accepted_ns : 0);
}

void usage_answered(const msg *m, int code, uint64_t now_ns)
{
    usage_cell *c = m->ucell;
    if (c == NULL)
        return;
    if (code < 0)
        c->ok++;
    else
        c->errors[code < ERR_COUNT ? code : ERR_OTHER]++;
    if (m->sent_ns != 0 && (code < 0 || code == ERR_AGENT_ERROR))
        hist_fixed_record(&c->run, now_ns > m->sent_ns ? now_ns - m->sent_ns : 0);
}

/* ---- USAGE frames -------------------------------------------------------- */

const char *usage_header_refused(uint32_t len)
{
    if (len < 2)
        return "a usage frame without an object";
    if (len > AP_USAGE_JSON_MAX)
        return "a usage frame over its bound";
    return NULL;
}

void usage_cpu(const msg *m, uint16_t aux)
{
    uint64_t ns = ap_frame_cpu_decode(aux);
    if (m->ucell && ns != AP_FRAME_CPU_NONE)
        hist_fixed_record(&m->ucell->cpu, ns);
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AP_USAGE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

/* The index of a reported name, added while there is room, else
 * USAGE_MAX_NAMES ("other"). */
static unsigned name_index(const char *s)
{
    for (unsigned i = 0; i < us.nnames; i++)
        if (strcmp(us.names[i], s) == 0)
            return i;
    if (us.nnames == USAGE_MAX_NAMES)
        return USAGE_MAX_NAMES;
    snprintf(us.names[us.nnames], sizeof(us.names[0]), "%s", s);
    return us.nnames++;
}

/* Checks a reported object: NULL when fine, else why not. */
static const char *report_refused(const cJSON *o)
{
    if (!cJSON_IsObject(o))
        return "not a JSON object";
    int n = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, o)
    {
        if (++n > AP_USAGE_NAMES_MAX)
            return "too many names";
        if (!name_ok(v->string))
            return "a bad name";
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0)
            return "a value that is not a finite number >= 0";
        int tokens = strcmp(v->string, "tokens_in") == 0 || strcmp(v->string, "tokens_out") == 0;
        if (tokens && (v->valuedouble != floor(v->valuedouble) || v->valuedouble > 9007199254740992.0))
            return "tokens that are not an integer below 2^53";
    }
    return NULL;
}

/* Adds a checked report to c; returns its tokens (in + out). */
static uint64_t report_add(usage_cell *c, const cJSON *o)
{
    uint64_t tokens = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, o)
    {
        double x = v->valuedouble;
        if (strcmp(v->string, "tokens_in") == 0) {
            c->tokens_in += (uint64_t)x;
            tokens += (uint64_t)x;
        } else if (strcmp(v->string, "tokens_out") == 0) {
            c->tokens_out += (uint64_t)x;
            tokens += (uint64_t)x;
        } else if (strcmp(v->string, "cost") == 0) {
            c->cost += x;
        } else {
            c->other[name_index(v->string)] += x;
            c->has_other = 1;
        }
    }
    return tokens;
}

static void frame_refused(const worker *w, const ap_frame_hdr *h, const char *why)
{
    us.frames_refused++;
    ap_warn("%s (pid %d): usage frame for message %llu dropped: %s", w->name, (int)w->proc.pid,
            (unsigned long long)h->id, why);
}

void usage_frame(worker *w, const ap_frame_hdr *h, const char *payload)
{
    msg *m = msg_lookup(&server.msgs, h->id);
    if (m == NULL || m->state != MSG_RUNNING || m->worker != w || m->worker_gen != w->proc.generation) {
        ap_debug("%s: USAGE for unknown message %llu dropped", w->name, (unsigned long long)h->id);
        return;
    }
    cJSON *o = cJSON_ParseWithLength(payload, h->len);
    const char *why = o ? report_refused(o) : "not JSON";
    if (why) {
        cJSON_Delete(o);
        frame_refused(w, h, why);
        return;
    }
    us.frames++;
    uint64_t tokens = m->ucell ? report_add(m->ucell, o) : 0;
    if (m->key)
        apikey_charge(m->key, tokens, ap_now_ms());
    cJSON_Delete(o);
}

/* ---- reading ------------------------------------------------------------- */

/* Every row, the overflow row last when it holds anything. */
#define CELLS_FOREACH(c)                                                                                               \
    for (unsigned ci_ = 0; ci_ <= us.ncells; ci_++)                                                                    \
        for (usage_cell *c = ci_ < us.ncells ? us.cells[ci_] : us.overflow; c && (ci_ < us.ncells || c->requests);     \
             c = NULL)

void usage_prometheus(struct evbuffer *out)
{
    if (us.slots == NULL)
        return;
    promtext_family(out, "agentpool_usage_requests_total", "counter",
                    "Requests by pool, message type, API key (none: sent without one; other: past maxTrackedKeys) "
                    "and outcome (ok, an error code, or accepted: every request counted once).");
    CELLS_FOREACH(c)
    {
        promtext_label l[4] = {{"pool", c->pool}, {"type", c->type}, {"key", c->key}, {"outcome", "accepted"}};
        promtext_u64(out, "agentpool_usage_requests_total", l, 4, c->requests);
        l[3].value = "ok";
        promtext_u64(out, "agentpool_usage_requests_total", l, 4, c->ok);
        for (int e = 0; e < ERR_COUNT; e++) {
            if (c->errors[e] == 0)
                continue;
            l[3].value = reply_code_name((reply_code)e);
            promtext_u64(out, "agentpool_usage_requests_total", l, 4, c->errors[e]);
        }
    }
    promtext_family(out, "agentpool_usage_tokens_total", "counter",
                    "Tokens handlers reported with ctx.usage(tokens_in=, tokens_out=), by pool, type, key and "
                    "direction (in or out).");
    CELLS_FOREACH(c)
    {
        promtext_label l[4] = {{"pool", c->pool}, {"type", c->type}, {"key", c->key}, {"direction", "in"}};
        promtext_u64(out, "agentpool_usage_tokens_total", l, 4, c->tokens_in);
        l[3].value = "out";
        promtext_u64(out, "agentpool_usage_tokens_total", l, 4, c->tokens_out);
    }
    promtext_family(out, "agentpool_usage_cost_total", "counter",
                    "Cost handlers reported with ctx.usage(cost=), by pool, type and key (the agent's unit).");
    CELLS_FOREACH(c)
    {
        promtext_label l[3] = {{"pool", c->pool}, {"type", c->type}, {"key", c->key}};
        promtext_double(out, "agentpool_usage_cost_total", l, 3, c->cost);
    }
    promtext_family(out, "agentpool_usage_reported_total", "counter",
                    "Other numbers handlers reported with ctx.usage(name=...), by pool, type, key and name (at most "
                    "32 names, the rest as other).");
    CELLS_FOREACH(c)
    {
        if (!c->has_other)
            continue;
        for (unsigned i = 0; i <= USAGE_MAX_NAMES; i++) {
            if (i < USAGE_MAX_NAMES && i >= us.nnames)
                continue;
            if (i == USAGE_MAX_NAMES && c->other[i] == 0)
                continue;
            promtext_label l[4] = {{"pool", c->pool}, {"type", c->type}, {"key", c->key},
                                   {"name", i < USAGE_MAX_NAMES ? us.names[i] : TYPETAB_OTHER_NAME}};
            promtext_double(out, "agentpool_usage_reported_total", l, 4, c->other[i]);
        }
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } hists[] = {
        {"agentpool_message_cpu_seconds", "Thread CPU time a worker spent on a message (sync: since its previous answer; "
         "async: the message's own steps; gevent workers do not measure it), by pool, type and key.", offsetof(usage_cell, cpu)},
        {"agentpool_usage_queue_wait_seconds", "Time from a message's acceptance to its first sending to a worker, by "
         "pool, type and key.", offsetof(usage_cell, queue_wait)},
        {"agentpool_usage_run_seconds", "Time from a message's last sending to a worker to its answer (ok or "
         "agent_error), by pool, type and key.", offsetof(usage_cell, run)},
    };
    for (size_t k = 0; k < AP_ARRAY_LEN(hists); k++) {
        promtext_family(out, hists[k].name, "histogram", hists[k].help);
        CELLS_FOREACH(c)
        {
            promtext_label l[3] = {{"pool", c->pool}, {"type", c->type}, {"key", c->key}};
            promtext_histogram(out, hists[k].name, l, 3, (const hist_fixed *)((const char *)c + hists[k].off), 1e9);
        }
    }
    promtext_family(out, "agentpool_usage_frames_total", "counter",
                    "Usage frames from workers, by outcome: recorded, or refused (not a valid usage object).");
    promtext_label rec = {"outcome", "recorded"}, ref = {"outcome", "refused"};
    promtext_u64(out, "agentpool_usage_frames_total", &rec, 1, us.frames);
    promtext_u64(out, "agentpool_usage_frames_total", &ref, 1, us.frames_refused);
}

static cJSON *row_json(const usage_cell *c)
{
    cJSON *r = cJSON_CreateObject(), *errs = cJSON_CreateObject(), *other = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "pool", c->pool);
    cJSON_AddStringToObject(r, "type", c->type);
    cJSON_AddStringToObject(r, "key", c->key);
    cJSON_AddNumberToObject(r, "requests", (double)c->requests);
    cJSON_AddNumberToObject(r, "ok", (double)c->ok);
    for (int e = 0; e < ERR_COUNT; e++)
        if (c->errors[e])
            cJSON_AddNumberToObject(errs, reply_code_name((reply_code)e), (double)c->errors[e]);
    cJSON_AddItemToObject(r, "errors", errs);
    cJSON_AddNumberToObject(r, "tokensIn", (double)c->tokens_in);
    cJSON_AddNumberToObject(r, "tokensOut", (double)c->tokens_out);
    cJSON_AddNumberToObject(r, "cost", c->cost);
    for (unsigned i = 0; i <= USAGE_MAX_NAMES; i++)
        if (c->other[i] != 0)
            cJSON_AddNumberToObject(other, i < USAGE_MAX_NAMES ? us.names[i] : TYPETAB_OTHER_NAME, c->other[i]);
    cJSON_AddItemToObject(r, "other", other);
    cJSON_AddNumberToObject(r, "cpuSeconds", hist_fixed_sum(&c->cpu, 1e9));
    cJSON_AddNumberToObject(r, "cpuMessages", (double)c->cpu.n);
    cJSON_AddNumberToObject(r, "queueWaitSeconds", hist_fixed_sum(&c->queue_wait, 1e9));
    cJSON_AddNumberToObject(r, "runSeconds", hist_fixed_sum(&c->run, 1e9));
    cJSON_AddNumberToObject(r, "runMessages", (double)c->run.n);
    return r;
}

cJSON *usage_json(const struct pool *p)
{
    cJSON *o = cJSON_CreateObject(), *rows = cJSON_CreateArray();
    if (us.slots) {
        CELLS_FOREACH(c)
        {
            if (p == NULL || strcmp(p->name, c->pool) == 0)
                cJSON_AddItemToArray(rows, row_json(c));
        }
    }
    cJSON_AddItemToObject(o, "rows", rows);
    cJSON_AddNumberToObject(o, "keysTracked", us.nkeys);
    cJSON_AddNumberToObject(o, "rowsTracked", us.ncells);
    cJSON_AddNumberToObject(o, "framesRefused", (double)us.frames_refused);
    cJSON_AddNumberToObject(o, "apiKeys", apikey_count());
    cJSON_AddNumberToObject(o, "apiKeysReloads", (double)apikey_reloads());
    cJSON_AddNumberToObject(o, "apiKeysReloadFailures", (double)apikey_reload_failures());
    return o;
}
