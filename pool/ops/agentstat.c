/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agentstat.c - per-worker cache of agent.metrics answers (see
 * agentstat.h).
 *
 * One entry per worker table entry of each pool (p->agentstat,
 * allocated on first use, sized by the pool's nworkers, which never
 * changes after the pool is made), about one
 * process at a time: an entry whose pid or generation is not its
 * worker's any more is stale, shown as null and reset at the next ask.
 * Invariants: at most one ask outstanding per process (pending_id != 0),
 * so a worker that is slow to answer never accumulates asks; a cached
 * answer is at most AGENTSTAT_MAX_BYTES + a few bytes and is valid JSON
 * (checked once, when it arrives, so detailed stats can splice it raw).
 * Asks are sent only when someone reads detailed stats
 * (agentstat_refresh), never on a heartbeat: an answer younger than
 * AGENTSTAT_FRESH_MS is reused.  A reader that must wait for answers is
 * one of at most AGENTSTAT_MAX_WAITERS callbacks, called when every
 * outstanding ask of a live process is answered or AGENTSTAT_WAIT_MS
 * after the first waited, whichever is first (a process that died or is
 * busy then shows its older answer, with its age).  Called from worker.c
 * (frame dispatch) and control.c/httpd.c (stats); never touches
 * messages, the queue or any counter of theirs.
 */
#include "agentstat.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "server.h"

#include <cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#define AGENTSTAT_TYPE "agent.metrics"

typedef struct agentstat_entry {
    pid_t pid;                  /* the process this entry is about; 0: none */
    uint32_t generation;
    uint32_t pending_id;        /* the outstanding ask's frame id; 0: none */
    char *json;                 /* its last answer; NULL: none yet */
    uint64_t at_ms;             /* when that answer came (monotonic) */
} agentstat_entry;

typedef struct {
    agentstat_done_fn done;
    void *arg;
} agentstat_waiter;

static struct {
    uint32_t next_id;
    agentstat_waiter waiters[AGENTSTAT_MAX_WAITERS];
    int nwaiters;
    struct event *wait_timer;   /* AGENTSTAT_WAIT_MS after the first waiter */
} stat_cache;

/* w's entry, made with its pool's table if need be (make: else NULL). */
static agentstat_entry *entry_at(const worker *w, int make)
{
    pool_t *p = w->pool;
    if (p->agentstat == NULL && make && p->nworkers > 0)
        p->agentstat = ap_calloc((size_t)p->nworkers, sizeof(agentstat_entry));
    return p->agentstat && w->index >= 0 && w->index < p->nworkers ? &p->agentstat[w->index] : NULL;
}

static agentstat_entry *entry_of(const worker *w)
{
    return entry_at(w, 1);
}

static int same_process(const agentstat_entry *e, const worker *w)
{
    return w->proc.pid > 0 && e->pid == w->proc.pid && e->generation == w->proc.generation;
}

/* Asks w for agent.metrics unless an ask is outstanding. */
static void agentstat_ask(worker *w)
{
    agentstat_entry *e = entry_of(w);
    if (e == NULL || w->out.out == NULL)
        return;
    if (!same_process(e, w)) {
        ap_free(e->json);
        memset(e, 0, sizeof(*e));
        e->pid = w->proc.pid;
        e->generation = w->proc.generation;
    }
    if (e->pending_id)
        return;
    if (++stat_cache.next_id == 0)
        stat_cache.next_id = 1;
    unsigned char hdr[AP_FRAME_HDR_SIZE];
    ap_frame_hdr h = {sizeof(AGENTSTAT_TYPE) - 1, AP_FRAME_REQUEST, 0, sizeof(AGENTSTAT_TYPE) - 1, stat_cache.next_id};
    ap_frame_encode(hdr, &h);
    struct evbuffer *out = w->out.out;
    evbuffer_add(out, hdr, sizeof(hdr));
    evbuffer_add(out, AGENTSTAT_TYPE, sizeof(AGENTSTAT_TYPE) - 1);
    flush_mark(&w->out);
    e->pending_id = stat_cache.next_id;
}

/* Whether w can answer an ask soon: taking messages, not being killed,
 * and (sync) holding no message. */
static int can_answer(const worker *w)
{
    return worker_is_accepting(w) && w->proc.kill == WORKER_KILL_NONE && (w->proc.async || w->load.in_flight == 0);
}

/* Asks still unanswered by processes that can answer soon (a sync
 * worker that took a message since is not waited for). */
static int outstanding(void)
{
    int n = 0;
    POOLS_FOREACH(p) {
        for (int i = 0; p->agentstat && i < p->nworkers; i++) {
            const worker *w = &p->workers[i];
            if (p->agentstat[i].pending_id && same_process(&p->agentstat[i], w) && can_answer(w))
                n++;
        }
    }
    return n;
}

/* Calls every waiter (answers are in, or waiting is over; reply_now 0: at
 * exit). */
static void wake_waiters(int reply_now)
{
    int n = stat_cache.nwaiters;
    agentstat_waiter w[AGENTSTAT_MAX_WAITERS];
    memcpy(w, stat_cache.waiters, sizeof(w[0]) * (size_t)n);
    stat_cache.nwaiters = 0;
    if (stat_cache.wait_timer)
        evtimer_del(stat_cache.wait_timer);
    for (int i = 0; i < n; i++)
        w[i].done(w[i].arg, reply_now);
}

static void wait_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    wake_waiters(1);
}

int agentstat_refresh(agentstat_done_fn done, void *arg)
{
    uint64_t now = ap_now_ms();
    POOLS_FOREACH(p) {
        for (int i = 0; i < p->nworkers; i++) {
            worker *w = &p->workers[i];
            if (!can_answer(w))
                continue;
            agentstat_entry *e = entry_of(w);
            if (e && same_process(e, w) && e->json && now - e->at_ms < AGENTSTAT_FRESH_MS)
                continue;
            agentstat_ask(w);
        }
    }
    if (done == NULL || outstanding() == 0 || stat_cache.nwaiters == AGENTSTAT_MAX_WAITERS)
        return 0;
    if (stat_cache.wait_timer == NULL)
        stat_cache.wait_timer = evtimer_new(server.base, wait_timer_cb, NULL);
    if (stat_cache.wait_timer == NULL)
        return 0;
    if (stat_cache.nwaiters == 0) {
        struct timeval tv = {AGENTSTAT_WAIT_MS / 1000, (AGENTSTAT_WAIT_MS % 1000) * 1000};
        evtimer_add(stat_cache.wait_timer, &tv);
    }
    stat_cache.waiters[stat_cache.nwaiters].done = done;
    stat_cache.waiters[stat_cache.nwaiters].arg = arg;
    stat_cache.nwaiters++;
    return 1;
}


int agentstat_owns(const worker *w, const ap_frame_hdr *h)
{
    const agentstat_entry *e = entry_at(w, 0);
    if (e == NULL)
        return 0;
    return e->pending_id != 0 && h->id == (uint64_t)e->pending_id && same_process(e, w);
}

/* The text to keep for an answer: the result itself, or the error
 * wrapped, or a note when it is too large or not JSON.  Never NULL. */
static char *answer_text(const ap_frame_hdr *h, const char *payload)
{
    char note[96];
    int is_error = h->kind == AP_FRAME_ERROR;
    size_t wrap = is_error ? sizeof("{\"error\":}") - 1 : 0;
    if ((size_t)h->len + wrap > AGENTSTAT_MAX_BYTES) {
        snprintf(note, sizeof(note), "{\"error\":\"too large\",\"bytes\":%u}", (unsigned)h->len);
        return ap_strdup(note);
    }
    cJSON *check = h->len ? cJSON_ParseWithLength(payload, h->len) : NULL;
    int valid = check != NULL;
    cJSON_Delete(check);
    if (!valid)
        return ap_strdup("{\"error\":\"not JSON\"}");
    if (!is_error)
        return ap_strndup(payload, h->len);
    size_t cap = (size_t)h->len + wrap + 1;
    char *s = ap_malloc(cap);
    snprintf(s, cap, "{\"error\":%.*s}", (int)h->len, payload);
    return s;
}

void agentstat_answer(worker *w, const ap_frame_hdr *h, const char *payload)
{
    agentstat_entry *e = entry_of(w);
    if (e == NULL)
        return;
    e->pending_id = 0;
    ap_free(e->json);
    e->json = answer_text(h, payload);
    e->at_ms = ap_now_ms();
    if (stat_cache.nwaiters && outstanding() == 0)
        wake_waiters(1);
}

void agentstat_add_json(cJSON *o, const worker *w, uint64_t now_ms, uint64_t wall_ms)
{
    cJSON *a = cJSON_AddObjectToObject(o, "agent");
    int live = w->state != WORKER_DEAD;
    const agentstat_entry *e = entry_at(w, 0);
    if (live && e && e->json && same_process(e, w)) {
        cJSON_AddRawToObject(a, "metrics", e->json);
        cJSON_AddNumberToObject(a, "at", (double)(wall_ms - (now_ms - e->at_ms)));
        cJSON_AddNumberToObject(a, "ageMs", (double)(now_ms - e->at_ms));
    } else {
        cJSON_AddNullToObject(a, "metrics");
        cJSON_AddNullToObject(a, "at");
        cJSON_AddNullToObject(a, "ageMs");
    }
    if (live && w->proc.health)
        cJSON_AddRawToObject(a, "health", w->proc.health);
    else
        cJSON_AddNullToObject(a, "health");
}

void agentstat_pool_free(pool_t *p)
{
    for (int i = 0; p->agentstat && i < p->nworkers; i++)
        ap_free(p->agentstat[i].json);
    ap_free(p->agentstat);
    p->agentstat = NULL;
}

void agentstat_free(void)
{
    wake_waiters(0);
    if (stat_cache.wait_timer)
        event_free(stat_cache.wait_timer);
    memset(&stat_cache, 0, sizeof(stat_cache));
}
