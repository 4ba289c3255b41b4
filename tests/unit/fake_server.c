/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_server.c - the server global, clock, log, RSS readings and random()
 * a module under test sees, and the call and answer recorders (see
 * fake_server.h).  Nothing here forks, signals, sleeps or reads /proc.
 */
#include "fake_server.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

server_t server;
config fake_cfg;
pool_t fake_pool;
worker fake_workers[FAKE_MAX_WORKERS];
uint64_t fake_now;
long fake_random_value;
uint64_t fake_rss[FAKE_MAX_WORKERS];
int fake_spawn_result;
int fake_wprog_result;
uint64_t fake_wprog_running;
uint64_t fake_wprog_last;
int fake_log_count[AP_LOG_CRIT + 1];
char fake_log_last[AP_LOG_CRIT + 1][512];

static char fake_client_storage;
struct client *const FAKE_CLIENT = (struct client *)&fake_client_storage;

static pool_t *pools[POOLS_MAX];
static fake_call calls[FAKE_MAX_CALLS];
static int ncalls;
static fake_answer answers[FAKE_MAX_ANSWERS];
static int nanswers;

/* ---- the table ------------------------------------------------------- */

void fake_config_baseline(config *cfg, size_t queue_cap)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->strategy = LB_ROUND_ROBIN;
    cfg->message_queue_size = (int64_t)queue_cap;
    cfg->max_pending_bytes = (int64_t)1 << 30;
    cfg->max_retries = 3;
    cfg->retry_delay = 100;
    cfg->max_retry_delay = 10000;
    cfg->restart_on_failure = 1;
    cfg->max_restarts = 5;
    cfg->restart_window = 60000;
    cfg->history_size = 100;
    cfg->graceful_timeout = 30000;
    cfg->max_concurrent_recycles = 1;
    cfg->restart_strategy = RESTART_ONE_FOR_ONE;
}

void fake_pool_add(pool_t *p, const char *name, const config *cfg, worker *workers, int n, int slots, int spare,
                   size_t queue_cap)
{
    assert_true(server.npools < POOLS_MAX);
    memset(p, 0, sizeof(*p));
    memset(workers, 0, (size_t)(n + spare) * sizeof(worker));
    p->index = server.npools;
    p->state = POOL_RUNNING;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->cfg = cfg;
    p->workers = workers;
    p->nworkers = n + spare;
    p->pool_size = n;
    queue_init(&p->queue, queue_cap);
    link_init(&p->retrying);
    link_init(&p->room_waiters);
    for (int i = 0; i < n + spare; i++) {
        worker *w = &workers[i];
        w->pool = p;
        w->index = i;
        link_init(&w->running);
        w->load.slots = slots;
        w->prog_fd = -1;
        if (i < n) {
            w->slot = i;
            snprintf(w->name, sizeof(w->name), "worker-%d", i);
            w->state = WORKER_READY;
            w->load.accepting = 1;
            w->proc.pid = 1000 + i;
            w->proc.generation = 1;
            w->proc.started_ms = fake_now;
            w->proc.ready_ms = fake_now;
        } else {
            w->slot = -1;
            snprintf(w->name, sizeof(w->name), "spare-%d", i);
            w->state = WORKER_DEAD;
        }
    }
    server.pools[server.npools++] = p;
}

void fake_server_setup(int n, int slots, int spare, size_t queue_cap)
{
    assert_true(n + spare <= FAKE_MAX_WORKERS);
    memset(&server, 0, sizeof(server));
    memset(pools, 0, sizeof(pools));
    memset(fake_workers, 0, sizeof(fake_workers));
    memset(fake_rss, 0, sizeof(fake_rss));
    memset(fake_log_count, 0, sizeof(fake_log_count));
    memset(fake_log_last, 0, sizeof(fake_log_last));
    fake_config_baseline(&fake_cfg, queue_cap);
    ncalls = 0;
    nanswers = 0;
    fake_now = 1000000;
    fake_random_value = 0;
    fake_spawn_result = AP_OK;
    fake_wprog_result = -1;
    fake_wprog_running = 0;
    fake_wprog_last = 0;

    server.cfg = &fake_cfg;
    server.state = SERVER_READY;
    server.pools = pools;
    msg_table_init(&server.msgs);
    link_init(&server.clients);
    fake_pool_add(&fake_pool, "default", &fake_cfg, fake_workers, n, slots, spare, queue_cap);
    server.default_pool = &fake_pool;
}

void fake_server_teardown(void)
{
    if (server.msgs.slots == NULL)
        return;
    for (uint32_t i = 0; i < server.msgs.cap; i++) {
        msg *m = server.msgs.slots[i];
        if (m == NULL)
            continue;
        if (m->timer_set)
            event_del(&m->timer);
        msg_free(&server.msgs, m);
    }
    msg_table_free(&server.msgs);
}

/* ---- messages -------------------------------------------------------- */

msg *fake_msg(int id, const char *type)
{
    char line[128];
    int len = snprintf(line, sizeof(line), "{\"id\":%d,\"type\":\"%s\",\"data\":null}", id, type);
    msg *m = msg_new(&server.msgs, line, (size_t)len, strlen(type));
    m->id_off = 6;
    m->id_len = (uint32_t)(strchr(line + 6, ',') - (line + 6));
    strcpy(m->type, type);
    m->type_len = (uint16_t)strlen(type);
    m->client = FAKE_CLIENT;
    m->pool = server.default_pool;
    m->accepted_ns = fake_now * 1000000u;
    return m;
}

msg *fake_msg_by_id(int id)
{
    char want[32];
    int n = snprintf(want, sizeof(want), "%d", id);
    for (uint32_t i = 0; i < server.msgs.cap; i++) {
        msg *m = server.msgs.slots[i];
        if (m && m->id_len == (uint32_t)n && memcmp(m->line + m->id_off, want, (size_t)n) == 0)
            return m;
    }
    return NULL;
}

/* ---- recorders ------------------------------------------------------- */

void fake_record(const char *fn, const worker *w, const msg *m, long long arg, const char *text)
{
    assert_true(ncalls < FAKE_MAX_CALLS);
    fake_call *c = &calls[ncalls++];
    c->fn = fn;
    c->w = w;
    c->msg_id = m ? m->id : 0;
    c->arg = arg;
    snprintf(c->text, sizeof(c->text), "%s", text ? text : "");
}

int fake_calls(const char *fn)
{
    int n = 0;
    for (int i = 0; i < ncalls; i++)
        n += strcmp(calls[i].fn, fn) == 0;
    return n;
}

const fake_call *fake_call_nth(const char *fn, int k)
{
    for (int i = 0; i < ncalls; i++)
        if (strcmp(calls[i].fn, fn) == 0 && k-- == 0)
            return &calls[i];
    return NULL;
}

void fake_record_answer(const msg *m, const answer *a, int detached)
{
    assert_true(nanswers < FAKE_MAX_ANSWERS);
    fake_answer *r = &answers[nanswers++];
    memset(r, 0, sizeof(*r));
    if (m->id_len)
        snprintf(r->id, sizeof(r->id), "%.*s", (int)m->id_len, m->line + m->id_off);
    else
        snprintf(r->id, sizeof(r->id), "null");
    r->msg_id = m->id;
    r->kind = a->kind;
    r->code = a->code;
    r->detached = detached;
    snprintf(r->message, sizeof(r->message), "%s", a->message ? a->message : "");
    snprintf(r->extra, sizeof(r->extra), "%s", a->extra ? a->extra : "");
}

int fake_nanswers(void)
{
    return nanswers;
}

const fake_answer *fake_answer_nth(int k)
{
    return k >= 0 && k < nanswers ? &answers[k] : NULL;
}

const fake_answer *fake_answer_for(int id)
{
    char want[32];
    snprintf(want, sizeof(want), "%d", id);
    for (int i = 0; i < nanswers; i++)
        if (strcmp(answers[i].id, want) == 0)
            return &answers[i];
    return NULL;
}

/* ---- common/: clock, log, RSS; libc's random() ---------------------- */

uint64_t ap_now_ms(void)
{
    return fake_now;
}

uint64_t ap_now_ns(void)
{
    return fake_now * 1000000u;
}

uint64_t ap_wall_ms(void)
{
    return 1700000000000ull + fake_now;
}

uint64_t ap_rss_bytes(int pid)
{
    int i = pid - 1000;
    return i >= 0 && i < FAKE_MAX_WORKERS ? fake_rss[i] : 0;
}

void ap_log(ap_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fake_log_last[level], sizeof(fake_log_last[level]), fmt, ap);
    va_end(ap);
    fake_log_count[level]++;
    if (getenv("FAKE_LOG"))
        fprintf(stderr, "[log %d] %s\n", (int)level, fake_log_last[level]);
}

/* Reached only from a test linked with -Wl,--wrap=random. */
long __wrap_random(void);
long __wrap_random(void)
{
    return fake_random_value;
}
