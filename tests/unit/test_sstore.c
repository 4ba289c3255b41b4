/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_sstore.c - the session store (pool/store/sstore.h) through its
 * public API, against a real store: table-driven over backends
 * (store_cases below), each case starting its server (a real
 * redis-server on a free port in a temp directory, no persistence; for
 * "sqlite:PATH" a database in a temp directory, run through the tests
 * that hold for every backend only: the rest assert Redis's ways of
 * expiring and of closing) and giving the spec to open.  Every test
 * drives a libevent loop until its callbacks have run, bounded
 * generously (BOUND_MS) only so that a bug fails instead of hanging:
 * nothing here asserts a duration.
 *
 * What it proves: put/get/touch/del/list and their statuses; operations
 * on one key complete in start order and never call back from inside
 * the call that started them; list pages in bytewise key order with
 * keys of odd bytes; two pools are apart; states expire after the ttl
 * and sstore_set_ttl applies to later writes; a store whose server
 * stops fails operations UNAVAILABLE with a reason and recovers when it
 * is back on the same port; a server that stops answering (SIGSTOP)
 * makes operations fail rather than hang; something else under a key
 * fails that key's operations with a reason; past the pending bound new
 * operations are refused; an IPv6 address reaches the same store; a
 * cancelled operation is never called back; sstore_put_ref stores the
 * caller's bytes, and a hint that names another key's row (SQLite: its
 * rowid) changes neither key's state wrongly; close calls back every
 * operation still pending exactly once ("the store is closing") and
 * nothing after; nothing leaks (cmocka's allocator checks every block
 * of the store's).
 *
 * A Redis case that cannot find redis-server fails: ./bootstrap installs it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sstore.h"
#include "ap_common.h"
#include "ap_log.h"

#include <hiredis/hiredis.h>
#include <event2/event.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The most any wait in here may take before the test calls it a hang. */
#define BOUND_MS 60000
#define TTL_LONG_MS (3600 * 1000)
#define MAX_ENTRIES 64

/* ---- the backends under test -------------------------------------------- */

typedef struct env env;
typedef struct {
    const char *name;
    /* Starts the server (once per case) and writes the spec into e->spec.  AP_OK or AP_ERR. */
    int (*start)(env *e);
    void (*stop)(env *e);
    /* NULL where the backend has no server: the tests that need them do nothing. */
    void (*kill_server)(env *e);    /* stops it, its port closed */
    void (*restart_server)(env *e); /* starts it again where it was */
    void (*freeze)(env *e, int on); /* it stops answering (on) / answers again */
    /* A spec of the same kind whose store cannot be reached, or NULL. */
    void (*dead_spec)(env *e, char *buf, size_t cap);
    /* Puts something that is not a session state where pool's key would be, behind the store's back. */
    void (*spoil)(env *e, const char *pool, const char *key);
    /* Another spec for the same store, over IPv6, when the machine has ::1 (0), or nothing (AP_ERR). */
    int (*ipv6_spec)(env *e, char *buf, size_t cap);
    int common_only; /* runs only the tests every backend passes (main's `common`) */
} store_case;

struct env {
    const store_case *c;
    char spec[256];
    /* redis */
    char dir[64];
    int port;
    pid_t pid;
};

static env g_env;

/* ---- redis-server ------------------------------------------------------- */

static const char *redis_binary(void)
{
    static char found[512];
    const char *env_bin = getenv("REDIS_SERVER");
    if (env_bin && access(env_bin, X_OK) == 0)
        return env_bin;
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s:/usr/bin:/usr/sbin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof(found), "%s/redis-server", d);
        if (access(found, X_OK) == 0)
            return found;
    }
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Whether redis on port answers PING now. */
static int redis_pings(int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

static int redis_spawn(env *e)
{
    const char *bin = redis_binary();
    if (bin == NULL) {
        fprintf(stderr, "redis-server not found (PATH, /usr/bin; ./bootstrap installs Debian's redis-server)\n");
        return AP_ERR;
    }
    char port[16], log[128];
    snprintf(port, sizeof(port), "%d", e->port);
    snprintf(log, sizeof(log), "%s/redis.log", e->dir);
    pid_t pid = fork();
    if (pid < 0)
        return AP_ERR;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* "-::1": IPv6 loopback too, where the machine has it */
        execl(bin, bin, "--port", port, "--bind", "127.0.0.1 -::1", "--save", "", "--appendonly", "no", "--dir", e->dir,
              "--daemonize", "no", "--logfile", log, (char *)NULL);
        _exit(127);
    }
    e->pid = pid;
    uint64_t t0 = ap_now_ms();
    while (!redis_pings(e->port)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "redis-server exited at start (status %d); see %s\n", st, log);
            e->pid = 0;
            return AP_ERR;
        }
        if (ap_now_ms() - t0 > BOUND_MS) {
            fprintf(stderr, "redis-server on port %d did not answer PING\n", e->port);
            return AP_ERR;
        }
        usleep(20000);
    }
    return AP_OK;
}

static void redis_kill(env *e)
{
    if (e->pid <= 0)
        return;
    kill(e->pid, SIGCONT);
    kill(e->pid, SIGTERM);
    waitpid(e->pid, NULL, 0);
    e->pid = 0;
}

static int redis_start(env *e)
{
    snprintf(e->dir, sizeof(e->dir), "/tmp/test_sstore.XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return AP_ERR;
    e->port = free_port();
    if (e->port <= 0)
        return AP_ERR;
    snprintf(e->spec, sizeof(e->spec), "redis://127.0.0.1:%d/3", e->port);
    return redis_spawn(e);
}

static void redis_stop(env *e)
{
    char cmd[128];
    redis_kill(e);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
}

static void redis_restart(env *e)
{
    assert_int_equal(redis_spawn(e), AP_OK);
}

static void redis_freeze(env *e, int on)
{
    assert_int_equal(kill(e->pid, on ? SIGSTOP : SIGCONT), 0);
}

static void redis_dead_spec(env *e, char *buf, size_t cap)
{
    (void)e;
    snprintf(buf, cap, "redis://127.0.0.1:%d", free_port());
}

/* Runs one command on the test's own connection to the server. */
static void redis_command(env *e, int argc, const char **argv)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", e->port, tv);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "SELECT 3");
    assert_non_null(r);
    freeReplyObject(r);
    r = redisCommandArgv(c, argc, argv, NULL);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    redisFree(c);
}

/* A string where the state's hash would be (sstore_redis.c's layout). */
static void redis_spoil(env *e, const char *pool, const char *key)
{
    char k[512];
    snprintf(k, sizeof(k), "ap:{%s}:s:%s", pool, key);
    const char *argv[] = {"SET", k, "not a hash"};
    redis_command(e, 3, argv);
}

static int redis_ipv6_spec(env *e, char *buf, size_t cap)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int have = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    if (!have)
        return AP_ERR;
    snprintf(buf, cap, "redis://[::1]:%d/3", e->port);
    return AP_OK;
}

/* ---- sqlite ------------------------------------------------------------- */

static int sqlite_start(env *e)
{
    snprintf(e->dir, sizeof(e->dir), "/tmp/test_sstore.XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return AP_ERR;
    snprintf(e->spec, sizeof(e->spec), "sqlite:%s/sessions.db", e->dir);
    return AP_OK;
}

static void sqlite_stop(env *e)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
}

static const store_case store_cases[] = {
    {"redis", redis_start, redis_stop, redis_kill, redis_restart, redis_freeze, redis_dead_spec, redis_spoil,
     redis_ipv6_spec, 0},
    {"sqlite", sqlite_start, sqlite_stop, NULL, NULL, NULL, NULL, NULL, NULL, 1},
};

/* ---- driving the loop --------------------------------------------------- */

typedef struct {
    int calls;
    int seq; /* the order it completed in, from g_seq */
    sstore_status st;
    char why[200];
    char val[512];
    size_t len;
    uint64_t updated_ms;
    uint64_t hint;
    size_t n;
    int more;
    struct {
        char key[257];
        size_t key_len;
        uint64_t updated_ms;
        size_t bytes;
    } e[MAX_ENTRIES];
} rec;

static int g_seq;

static void rec_cb(void *arg, const sstore_result *r)
{
    rec *x = arg;
    x->calls++;
    x->seq = g_seq++;
    x->st = r->status;
    x->why[0] = '\0';
    if (r->status == SSTORE_UNAVAILABLE) {
        assert_non_null(r->why);
        snprintf(x->why, sizeof(x->why), "%s", r->why);
    }
    x->len = r->len;
    x->updated_ms = r->updated_ms;
    x->hint = r->hint;
    if (r->status == SSTORE_OK && r->val) {
        assert_true(r->len < sizeof(x->val));
        memcpy(x->val, r->val, r->len);
        x->val[r->len] = '\0';
    }
    x->n = r->nentries;
    x->more = r->more;
    assert_true(r->nentries <= MAX_ENTRIES);
    for (size_t i = 0; i < r->nentries; i++) {
        assert_true(r->entries[i].key_len <= 256);
        memcpy(x->e[i].key, r->entries[i].key, r->entries[i].key_len);
        x->e[i].key_len = r->entries[i].key_len;
        x->e[i].updated_ms = r->entries[i].updated_ms;
        x->e[i].bytes = r->entries[i].bytes;
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *count reaches want (bounded by BOUND_MS). */
static void run_until_count(struct event_base *b, const int *count, int want)
{
    uint64_t t0 = ap_now_ms();
    struct event *t = evtimer_new(b, wake_cb, NULL);
    struct timeval tv = {0, 20000};
    while (*count < want) {
        if (ap_now_ms() - t0 > BOUND_MS)
            fail_msg("waited more than %d ms for a callback: a hang", BOUND_MS);
        evtimer_add(t, &tv);
        event_base_loop(b, EVLOOP_ONCE);
    }
    event_free(t);
}

static void run_until(struct event_base *b, rec *x)
{
    run_until_count(b, &x->calls, 1);
    assert_int_equal(x->calls, 1);
}

/* Runs the loop until nothing is ready, turns times (EVLOOP_NONBLOCK
 * goes on while callbacks run: an answer that came meanwhile is read). */
static void spin(struct event_base *b, int turns)
{
    for (int i = 0; i < turns; i++)
        event_base_loop(b, EVLOOP_NONBLOCK);
}

static sstore *open_store(struct event_base *b, const char *pool, uint64_t ttl_ms)
{
    char err[256] = "";
    sstore *s = sstore_open(b, g_env.spec, pool, ttl_ms, 1, err, sizeof(err));
    if (s == NULL)
        fail_msg("sstore_open(%s): %s", g_env.spec, err);
    return s;
}

static rec *do_get(struct event_base *b, sstore *s, const char *key, size_t klen, rec *x)
{
    memset(x, 0, sizeof(*x));
    sstore_get(s, key, klen, rec_cb, x);
    assert_int_equal(x->calls, 0); /* never from inside the call */
    run_until(b, x);
    return x;
}

static rec *do_put(struct event_base *b, sstore *s, const char *key, size_t klen, const char *val, rec *x)
{
    memset(x, 0, sizeof(*x));
    sstore_put(s, key, klen, val, strlen(val), rec_cb, x);
    assert_int_equal(x->calls, 0);
    run_until(b, x);
    return x;
}

/* sstore_put_ref: val is the caller's until the callback (here: until
 * this returns). */
static rec *do_put_ref(struct event_base *b, sstore *s, const char *key, const char *val, uint64_t hint, rec *x)
{
    char own[128];
    snprintf(own, sizeof(own), "%s", val);
    memset(x, 0, sizeof(*x));
    sstore_put_ref(s, key, strlen(key), own, strlen(own), hint, rec_cb, x);
    assert_int_equal(x->calls, 0);
    run_until(b, x);
    if (x->st != SSTORE_OK)
        fail_msg("put_ref %s: status %d (%s)", key, x->st, x->why);
    return x;
}

static rec *do_touch(struct event_base *b, sstore *s, const char *key, rec *x)
{
    memset(x, 0, sizeof(*x));
    sstore_touch(s, key, strlen(key), rec_cb, x);
    assert_int_equal(x->calls, 0);
    run_until(b, x);
    return x;
}

static rec *do_del(struct event_base *b, sstore *s, const char *key, rec *x)
{
    memset(x, 0, sizeof(*x));
    sstore_del(s, key, strlen(key), rec_cb, x);
    assert_int_equal(x->calls, 0);
    run_until(b, x);
    return x;
}

static rec *do_list(struct event_base *b, sstore *s, const char *after, size_t alen, unsigned limit, rec *x)
{
    memset(x, 0, sizeof(*x));
    sstore_list(s, after, alen, limit, rec_cb, x);
    assert_int_equal(x->calls, 0);
    run_until(b, x);
    return x;
}

#define PUT_OK(b, s, k, v)                                                                                             \
    do {                                                                                                               \
        rec r_;                                                                                                        \
        do_put(b, s, k, strlen(k), v, &r_);                                                                            \
        if (r_.st != SSTORE_OK)                                                                                        \
            fail_msg("put %s: status %d (%s)", k, r_.st, r_.why);                                                      \
    } while (0)

/* Puts until one succeeds (the store coming back), bounded. */
static void put_until_ok(struct event_base *b, sstore *s, const char *key, const char *val)
{
    uint64_t t0 = ap_now_ms();
    rec r;
    while (do_put(b, s, key, strlen(key), val, &r)->st != SSTORE_OK) {
        assert_int_equal(r.st, SSTORE_UNAVAILABLE);
        if (ap_now_ms() - t0 > BOUND_MS)
            fail_msg("the store did not come back: %s", r.why);
        usleep(50000);
    }
}

/* Random-looking bytes for an unique pool per test, so tests never see each other's keys. */
static const char *pool_name(char *buf, size_t cap, const char *base)
{
    snprintf(buf, cap, "%s-%d", base, (int)(ap_now_ms() % 100000));
    return buf;
}

/* ---- tests -------------------------------------------------------------- */

static void test_put_ref_follows_its_hint_and_a_wrong_hint_changes_no_other_key(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "hint"), TTL_LONG_MS);
    int hints = strcmp(g_env.c->name, "sqlite") == 0; /* Redis has nothing to say: 0 */
    rec r;
    uint64_t ha = do_put_ref(b, s, "a", "{\"a\":1}", 0, &r)->hint;
    assert_true(hints ? ha != 0 : ha == 0);
    assert_int_equal(do_put_ref(b, s, "a", "{\"a\":2}", ha, &r)->hint, ha); /* the same row, found by the hint */
    do_get(b, s, "a", 1, &r);
    assert_string_equal(r.val, "{\"a\":2}");
    assert_int_equal(r.hint, ha);
    uint64_t hb = do_put_ref(b, s, "b", "{\"b\":1}", 0, &r)->hint;
    assert_true(hints ? hb != 0 && hb != ha : hb == 0);
    /* b's row named as a's: a is written, b is not */
    assert_int_equal(do_put_ref(b, s, "a", "{\"a\":3}", hb, &r)->hint, 0);
    assert_string_equal(do_get(b, s, "b", 1, &r)->val, "{\"b\":1}");
    assert_string_equal(do_get(b, s, "a", 1, &r)->val, "{\"a\":3}");
    assert_int_equal(r.hint, ha);
    /* a deleted row's hint: the put inserts it again */
    assert_int_equal(do_del(b, s, "a", &r)->st, SSTORE_OK);
    uint64_t ha2 = do_put_ref(b, s, "a", "{\"a\":4}", ha, &r)->hint;
    assert_true(hints ? ha2 != 0 : ha2 == 0);
    assert_string_equal(do_get(b, s, "a", 1, &r)->val, "{\"a\":4}");
    sstore_close(s);
    event_base_free(b);
}

static void test_put_get_touch_del_and_missing_keys(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "basic"), TTL_LONG_MS);
    rec r;
    assert_int_equal(do_get(b, s, "k1", 2, &r)->st, SSTORE_MISSING);
    uint64_t before = ap_wall_ms();
    PUT_OK(b, s, "k1", "{\"n\":1}");
    uint64_t after = ap_wall_ms();
    do_get(b, s, "k1", 2, &r);
    assert_int_equal(r.st, SSTORE_OK);
    assert_string_equal(r.val, "{\"n\":1}");
    assert_true(r.updated_ms >= before && r.updated_ms <= after);
    uint64_t first = r.updated_ms;
    PUT_OK(b, s, "k1", "{\"n\":2}");
    assert_string_equal(do_get(b, s, "k1", 2, &r)->val, "{\"n\":2}");
    assert_int_equal(do_touch(b, s, "k1", &r)->st, SSTORE_OK);
    do_get(b, s, "k1", 2, &r);
    assert_string_equal(r.val, "{\"n\":2}"); /* a touch does not rewrite */
    assert_true(r.updated_ms >= first);
    assert_int_equal(do_touch(b, s, "nobody", &r)->st, SSTORE_OK); /* OK also when there is none */
    assert_int_equal(do_get(b, s, "nobody", 6, &r)->st, SSTORE_MISSING);
    assert_int_equal(do_del(b, s, "k1", &r)->st, SSTORE_OK);
    assert_int_equal(do_del(b, s, "k1", &r)->st, SSTORE_MISSING);
    assert_int_equal(do_get(b, s, "k1", 2, &r)->st, SSTORE_MISSING);
    /* an empty state is a state */
    PUT_OK(b, s, "empty", "");
    assert_int_equal(do_get(b, s, "empty", 5, &r)->st, SSTORE_OK);
    assert_int_equal(r.len, 0);
    sstore_stats st;
    sstore_get_stats(s, &st);
    assert_string_equal(st.backend, g_env.c->name);
    assert_int_equal(st.up, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.gets, 7);
    assert_int_equal(st.puts, 3);
    assert_int_equal(st.touches, 2);
    assert_int_equal(st.deletes, 2);
    sstore_close(s);
    event_base_free(b);
}

/* 200 writes and reads of one key started at once complete in the order
 * they were started, and the last write wins. */
static void test_operations_on_one_key_complete_in_start_order(void **state)
{
    (void)state;
    enum { N = 200 };
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "order"), TTL_LONG_MS);
    static rec rs[N];
    int done = 0;
    memset(rs, 0, sizeof(rs));
    g_seq = 0;
    for (int i = 0; i < N; i++) {
        char v[32];
        snprintf(v, sizeof(v), "{\"i\":%d}", i);
        if (i % 3 == 2)
            sstore_get(s, "k", 1, rec_cb, &rs[i]);
        else
            sstore_put(s, "k", 1, v, strlen(v), rec_cb, &rs[i]);
        assert_int_equal(rs[i].calls, 0);
    }
    uint64_t t0 = ap_now_ms();
    while (done < N) {
        assert_true(ap_now_ms() - t0 < BOUND_MS);
        event_base_loop(b, EVLOOP_ONCE);
        done = 0;
        for (int i = 0; i < N; i++)
            done += rs[i].calls;
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(rs[i].calls, 1);
        assert_int_equal(rs[i].seq, i);
        assert_int_equal(rs[i].st, SSTORE_OK);
        if (i % 3 == 2) { /* a get sees the put just before it */
            char v[32];
            snprintf(v, sizeof(v), "{\"i\":%d}", i - 1);
            assert_string_equal(rs[i].val, v);
        }
    }
    rec r;
    assert_string_equal(do_get(b, s, "k", 1, &r)->val, "{\"i\":199}");
    sstore_close(s);
    event_base_free(b);
}

/* bytewise order: memcmp over the shorter, then the shorter first */
static int key_cmp(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    size_t lx = strlen(*x), ly = strlen(*y);
    int c = memcmp(*x, *y, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

static void test_list_pages_keys_in_bytewise_order(void **state)
{
    (void)state;
    static char longkey[257];
    memset(longkey, 'z', 256);
    const char *keys[] = {"a",  "b",     "a\x01", "\xff", "\xff\xfe", " ",      "{x}",  "ap:{p}:s:", "\xc3\xa9",
                          "a b", "\x7f", "(a",    "-",    "+",        "[abc",  "A",    "a\\\"q",     longkey};
    enum { NK = sizeof(keys) / sizeof(keys[0]) };
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "list"), TTL_LONG_MS);
    rec r;
    assert_int_equal(do_list(b, s, NULL, 0, 10, &r)->st, SSTORE_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.more, 0);
    for (int i = 0; i < NK; i++) {
        char v[64];
        snprintf(v, sizeof(v), "{\"k\":%d,\"pad\":\"%.*s\"}", i, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        PUT_OK(b, s, keys[i], v);
    }
    const char *sorted[NK];
    memcpy(sorted, keys, sizeof(keys));
    qsort(sorted, NK, sizeof(sorted[0]), key_cmp);
    /* pages of 4 from the start, each after the last key of the one before */
    char after[257] = "";
    size_t alen = 0;
    int seen = 0;
    for (;;) {
        do_list(b, s, after, alen, 4, &r);
        assert_int_equal(r.st, SSTORE_OK);
        assert_true(r.n <= 4);
        for (size_t i = 0; i < r.n; i++, seen++) {
            assert_true(seen < NK);
            assert_int_equal(r.e[i].key_len, strlen(sorted[seen]));
            assert_memory_equal(r.e[i].key, sorted[seen], r.e[i].key_len);
            assert_true(r.e[i].updated_ms > 0);
            int k = -1;
            for (int j = 0; j < NK; j++)
                if (strcmp(keys[j], sorted[seen]) == 0)
                    k = j;
            char v[64];
            snprintf(v, sizeof(v), "{\"k\":%d,\"pad\":\"%.*s\"}", k, k, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
            assert_int_equal(r.e[i].bytes, strlen(v));
        }
        if (!r.more)
            break;
        assert_int_equal(r.n, 4);
        memcpy(after, r.e[r.n - 1].key, r.e[r.n - 1].key_len);
        alen = r.e[r.n - 1].key_len;
    }
    assert_int_equal(seen, NK);
    /* one page holds all */
    do_list(b, s, NULL, 0, 1000, &r);
    assert_int_equal(r.n, NK);
    assert_int_equal(r.more, 0);
    /* after a key that is not there: from the next one */
    do_list(b, s, "a\x02", 2, 2, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.more, 1);
    assert_memory_equal(r.e[0].key, "a b", 3);
    /* after the last: nothing */
    do_list(b, s, sorted[NK - 1], strlen(sorted[NK - 1]), 10, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.more, 0);
    /* a deleted key leaves the listing */
    assert_int_equal(do_del(b, s, "a", &r)->st, SSTORE_OK);
    do_list(b, s, NULL, 0, 1000, &r);
    assert_int_equal(r.n, NK - 1);
    for (size_t i = 0; i < r.n; i++)
        assert_false(r.e[i].key_len == 1 && r.e[i].key[0] == 'a');
    /* and a get of each odd key gives its own state */
    for (int i = 1; i < NK; i++) {
        do_get(b, s, keys[i], strlen(keys[i]), &r);
        assert_int_equal(r.st, SSTORE_OK);
        char v[64];
        snprintf(v, sizeof(v), "{\"k\":%d,", i);
        assert_memory_equal(r.val, v, strlen(v));
    }
    sstore_close(s);
    event_base_free(b);
}

static void test_two_pools_are_kept_apart(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    char pa[32], pb[40];
    pool_name(pa, sizeof(pa), "pa");
    snprintf(pb, sizeof(pb), "%s-b", pa);
    sstore *a = open_store(b, pa, TTL_LONG_MS), *bb = open_store(b, pb, TTL_LONG_MS);
    rec r;
    PUT_OK(b, a, "same", "{\"pool\":\"a\"}");
    PUT_OK(b, bb, "same", "{\"pool\":\"b\"}");
    PUT_OK(b, bb, "only-b", "{}");
    assert_string_equal(do_get(b, a, "same", 4, &r)->val, "{\"pool\":\"a\"}");
    assert_string_equal(do_get(b, bb, "same", 4, &r)->val, "{\"pool\":\"b\"}");
    assert_int_equal(do_get(b, a, "only-b", 6, &r)->st, SSTORE_MISSING);
    assert_int_equal(do_list(b, a, NULL, 0, 100, &r)->n, 1);
    assert_int_equal(do_list(b, bb, NULL, 0, 100, &r)->n, 2);
    assert_int_equal(do_del(b, a, "same", &r)->st, SSTORE_OK);
    assert_string_equal(do_get(b, bb, "same", 4, &r)->val, "{\"pool\":\"b\"}");
    assert_int_equal(do_del(b, a, "only-b", &r)->st, SSTORE_MISSING);
    sstore_close(a);
    sstore_close(bb);
    event_base_free(b);
}

/* Polls get until key is MISSING, bounded. */
static void wait_gone(struct event_base *b, sstore *s, const char *key)
{
    uint64_t t0 = ap_now_ms();
    rec r;
    while (do_get(b, s, key, strlen(key), &r)->st != SSTORE_MISSING) {
        assert_int_equal(r.st, SSTORE_OK);
        if (ap_now_ms() - t0 > BOUND_MS)
            fail_msg("%s did not expire", key);
        usleep(50000);
    }
}

static void test_states_expire_after_the_ttl_and_set_ttl_applies_to_later_writes(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "ttl"), 300);
    rec r;
    PUT_OK(b, s, "brief", "{}");
    wait_gone(b, s, "brief");
    do_list(b, s, NULL, 0, 100, &r); /* the index forgets it too */
    assert_int_equal(r.st, SSTORE_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.more, 0);
    sstore_set_ttl(s, TTL_LONG_MS);
    PUT_OK(b, s, "long", "{\"l\":1}");
    sstore_set_ttl(s, 300);
    PUT_OK(b, s, "short", "{}");
    wait_gone(b, s, "short");
    assert_int_equal(do_get(b, s, "long", 4, &r)->st, SSTORE_OK); /* written under the long ttl */
    do_list(b, s, NULL, 0, 100, &r);
    assert_int_equal(r.n, 1);
    assert_memory_equal(r.e[0].key, "long", 4);
    /* many expired members in the index, then one write: the listing is right */
    for (int i = 0; i < 30; i++) {
        char k[16];
        snprintf(k, sizeof(k), "gone%02d", i);
        PUT_OK(b, s, k, "{}");
    }
    wait_gone(b, s, "gone29");
    do_list(b, s, NULL, 0, 5, &r);
    while (r.n == 0 && r.more) /* a page may stop early after dropping expired members */
        do_list(b, s, NULL, 0, 5, &r);
    assert_int_equal(r.n, 1);
    assert_memory_equal(r.e[0].key, "long", 4);
    assert_int_equal(r.more, 0);
    sstore_close(s);
    event_base_free(b);
}

static void test_stopped_server_fails_operations_with_a_reason_then_recovers(void **state)
{
    (void)state;
    if (g_env.c->kill_server == NULL)
        return;
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "down"), TTL_LONG_MS);
    rec r;
    PUT_OK(b, s, "k", "{\"v\":1}");
    char logpath[128];
    snprintf(logpath, sizeof(logpath), "%s/test.log", g_env.dir);
    FILE *log = fopen(logpath, "w+");
    assert_non_null(log);
    ap_log_set_fd(fileno(log));
    g_env.c->kill_server(&g_env);
    /* the first operations may meet the closing connection; then the refusals */
    uint64_t t0 = ap_now_ms();
    while (do_get(b, s, "k", 1, &r)->st != SSTORE_UNAVAILABLE) {
        assert_true(ap_now_ms() - t0 < BOUND_MS);
        usleep(20000);
    }
    char want[64];
    snprintf(want, sizeof(want), "Redis at 127.0.0.1:%d/3: ", g_env.port);
    assert_non_null(strstr(r.why, want));
    for (int i = 0; i < 3; i++) { /* and every operation while it is down */
        assert_int_equal(do_put(b, s, "k", 1, "{}", &r)->st, SSTORE_UNAVAILABLE);
        assert_non_null(strstr(r.why, want));
        assert_int_equal(do_list(b, s, NULL, 0, 10, &r)->st, SSTORE_UNAVAILABLE);
        usleep(200000); /* time for a few reconnection attempts, all failing */
        spin(b, 5);
    }
    sstore_stats st;
    sstore_get_stats(s, &st);
    assert_int_equal(st.up, 0);
    assert_true(st.failures >= 4);
    g_env.c->restart_server(&g_env);
    put_until_ok(b, s, "k", "{\"v\":2}");
    assert_string_equal(do_get(b, s, "k", 1, &r)->val, "{\"v\":2}");
    sstore_get_stats(s, &st);
    assert_int_equal(st.up, 1);
    /* one line for the outage (address and error) and one for its end, however many operations and attempts */
    ap_log_set_fd(2);
    char line[1024];
    int outage = 0, back = 0, other = 0;
    rewind(log);
    while (fgets(line, sizeof(line), log)) {
        if (strstr(line, "session operations fail (store_unavailable) until it is back") && strstr(line, want))
            outage++;
        else if (strstr(line, "is back, after"))
            back++;
        else
            other++;
    }
    fclose(log);
    assert_int_equal(outage, 1);
    assert_int_equal(back, 1);
    assert_int_equal(other, 0);
    sstore_close(s);
    event_base_free(b);
}

static void test_a_server_that_stops_answering_fails_operations_instead_of_hanging(void **state)
{
    (void)state;
    if (g_env.c->freeze == NULL)
        return;
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "frozen"), TTL_LONG_MS);
    rec r, r2;
    PUT_OK(b, s, "k", "{}");
    g_env.c->freeze(&g_env, 1);
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    sstore_put(s, "k", 1, "{\"x\":1}", 7, rec_cb, &r);
    sstore_get(s, "k", 1, rec_cb, &r2);
    run_until(b, &r);
    run_until(b, &r2);
    /* nor does opening at start-up (wait_ready) wait without end */
    char err[256] = "";
    assert_null(sstore_open(b, g_env.spec, "frozen-start", TTL_LONG_MS, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "pool frozen-start: session store Redis at 127.0.0.1:"));
    assert_non_null(strstr(err, "no answer"));
    g_env.c->freeze(&g_env, 0);
    assert_int_equal(r.st, SSTORE_UNAVAILABLE);
    assert_non_null(strstr(r.why, "no answer"));
    assert_int_equal(r2.st, SSTORE_UNAVAILABLE);
    assert_true(r.seq < r2.seq);
    put_until_ok(b, s, "k", "{\"v\":3}");
    assert_string_equal(do_get(b, s, "k", 1, &r)->val, "{\"v\":3}");
    sstore_close(s);
    event_base_free(b);
}

/* Past the bound on pending operations new ones are refused (at once,
 * with a reason) and every operation still completes exactly once. */
static void test_pending_operations_are_bounded(void **state)
{
    (void)state;
    if (g_env.c->freeze == NULL)
        return;
    enum { N = 10100 }; /* sstore_redis.c holds at most 10000 */
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "bound"), TTL_LONG_MS);
    rec r;
    PUT_OK(b, s, "k", "{}");
    g_env.c->freeze(&g_env, 1);
    static rec rs[N];
    int calls = 0;
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < N; i++)
        sstore_get(s, "k", 1, rec_cb, &rs[i]);
    spin(b, 3);
    int refused = 0;
    for (int i = 0; i < N; i++)
        if (rs[i].calls) {
            refused++;
            assert_int_equal(rs[i].st, SSTORE_UNAVAILABLE);
            assert_non_null(strstr(rs[i].why, "too many session operations pending"));
        }
    assert_true(refused >= N - 10000);
    g_env.c->freeze(&g_env, 0);
    uint64_t t0 = ap_now_ms();
    do {
        assert_true(ap_now_ms() - t0 < BOUND_MS);
        event_base_loop(b, EVLOOP_ONCE);
        calls = 0;
        for (int i = 0; i < N; i++)
            calls += rs[i].calls;
    } while (calls < N);
    for (int i = 0; i < N; i++)
        assert_int_equal(rs[i].calls, 1);
    put_until_ok(b, s, "k", "{}");
    (void)r;
    sstore_close(s);
    event_base_free(b);
}

static void test_cancelled_operations_never_call_back(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "cancel"), TTL_LONG_MS);
    rec a, c, d;
    memset(&a, 0, sizeof(a));
    memset(&c, 0, sizeof(c));
    sstore_op *op = sstore_get(s, "k", 1, rec_cb, &a);
    sstore_op *op2 = sstore_put(s, "k", 1, "{\"c\":1}", 7, rec_cb, &c);
    sstore_cancel(op);
    sstore_cancel(op2);
    do_get(b, s, "k", 1, &d); /* completes after both: they were started first */
    assert_int_equal(a.calls, 0);
    assert_int_equal(c.calls, 0);
    /* the cancelled put was handed to the store before the cancel: it may have happened */
    assert_true(d.st == SSTORE_OK || d.st == SSTORE_MISSING);
    sstore_stats st;
    sstore_get_stats(s, &st);
    assert_int_equal(st.pending, 0);
    sstore_close(s);
    event_base_free(b);
}

static int g_closed_calls;
static sstore *g_close_me;

static void close_in_cb(void *arg, const sstore_result *r)
{
    (void)arg;
    (void)r;
    g_closed_calls++;
    sstore_close(g_close_me); /* from inside a reply: the others pending are called back from here */
    g_close_me = NULL;
}

/* Each of rs[from..to) was called back exactly once, UNAVAILABLE with why. */
static void assert_closed(const rec *rs, int from, int to, const char *why)
{
    for (int i = from; i < to; i++) {
        if (rs[i].calls != 1)
            fail_msg("operation %d was called back %d times at close", i, rs[i].calls);
        assert_int_equal(rs[i].st, SSTORE_UNAVAILABLE);
        if (strstr(rs[i].why, why) == NULL)
            fail_msg("operation %d: '%s', not '%s'", i, rs[i].why, why);
    }
}

/* sstore_close calls back every operation not called back yet (so its
 * caller can free its arg): UNAVAILABLE "the store is closing" when the
 * store had not finished it, its own result when it had; a cancelled
 * one never.  Nothing is called back after close returns, and nothing
 * leaks. */
static void test_close_calls_back_what_is_pending_once_and_nothing_after(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    char pool[32];
    pool_name(pool, sizeof(pool), "close");
    static rec rs[20];
    memset(rs, 0, sizeof(rs));
    /* 1: closed before the loop ran (operations waiting for the connection) */
    sstore *s = open_store(b, pool, TTL_LONG_MS);
    for (int i = 0; i < 10; i++)
        sstore_put(s, "k", 1, "{}", 2, rec_cb, &rs[i]);
    sstore_op *gone = sstore_get(s, "k", 1, rec_cb, &rs[10]);
    sstore_cancel(gone);
    sstore_close(s);
    assert_closed(rs, 0, 10, "the store is closing");
    assert_int_equal(rs[10].calls, 0);
    /* 2: closed with operations sent and not answered (the server made
     * to hold its answers where it can be) */
    memset(rs, 0, sizeof(rs));
    s = open_store(b, pool, TTL_LONG_MS);
    rec r;
    PUT_OK(b, s, "k", "{}");
    if (g_env.c->freeze)
        g_env.c->freeze(&g_env, 1);
    for (int i = 10; i < 20; i++)
        sstore_get(s, "k", 1, rec_cb, &rs[i]);
    spin(b, 1);
    sstore_close(s);
    if (g_env.c->freeze)
        g_env.c->freeze(&g_env, 0);
    assert_closed(rs, 10, 20, "the store is closing");
    spin(b, 5);
    for (int i = 10; i < 20; i++)
        assert_int_equal(rs[i].calls, 1);
    /* 3: closed from inside a callback, the next replies maybe already read */
    memset(rs, 0, sizeof(rs));
    s = open_store(b, pool, TTL_LONG_MS);
    g_close_me = s;
    g_closed_calls = 0;
    sstore_get(s, "k", 1, close_in_cb, NULL);
    for (int i = 0; i < 10; i++)
        sstore_get(s, "k", 1, rec_cb, &rs[i]);
    run_until_count(b, &g_closed_calls, 1);
    assert_closed(rs, 0, 10, "the store is closing");
    spin(b, 5);
    assert_int_equal(g_closed_calls, 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rs[i].calls, 1);
    /* 4: closed while down: what had failed already is called back with
     * its own reason (or, if an attempt to connect had started again, as
     * closing) */
    if (g_env.c->dead_spec) {
        char spec[128], err[256];
        memset(rs, 0, sizeof(rs));
        g_env.c->dead_spec(&g_env, spec, sizeof(spec));
        s = sstore_open(b, spec, pool, TTL_LONG_MS, 0, err, sizeof(err));
        assert_non_null(s);
        assert_int_equal(do_get(b, s, "k", 1, &r)->st, SSTORE_UNAVAILABLE); /* it is down now */
        memset(rs, 0, sizeof(rs));
        for (int i = 0; i < 5; i++)
            sstore_get(s, "k", 1, rec_cb, &rs[i]);
        sstore_close(s);
        assert_closed(rs, 0, 5, "");
        for (int i = 0; i < 5; i++)
            assert_true(strstr(rs[i].why, "Connection refused") || strstr(rs[i].why, "the store is closing"));
        spin(b, 3);
        for (int i = 0; i < 5; i++)
            assert_int_equal(rs[i].calls, 1);
    }
    (void)r;
    event_base_free(b);
}

static void test_a_store_that_cannot_be_reached(void **state)
{
    (void)state;
    if (g_env.c->dead_spec == NULL)
        return;
    struct event_base *b = event_base_new();
    char spec[128], err[256] = "";
    g_env.c->dead_spec(&g_env, spec, sizeof(spec));
    /* at start-up (wait_ready): no store, and why */
    assert_null(sstore_open(b, spec, "dead", TTL_LONG_MS, 1, err, sizeof(err)));
    assert_non_null(strstr(err, "pool dead: session store Redis at 127.0.0.1:"));
    assert_non_null(strstr(err, "Connection refused"));
    /* at a reload: a store whose operations fail with the reason until it is there */
    sstore *s = sstore_open(b, spec, "dead", TTL_LONG_MS, 0, err, sizeof(err));
    assert_non_null(s);
    rec r;
    assert_int_equal(do_get(b, s, "k", 1, &r)->st, SSTORE_UNAVAILABLE);
    assert_non_null(strstr(r.why, "Connection refused"));
    assert_int_equal(do_put(b, s, "k", 1, "{}", &r)->st, SSTORE_UNAVAILABLE);
    sstore_stats st;
    sstore_get_stats(s, &st);
    assert_int_equal(st.up, 0);
    assert_int_equal(st.failures, 2);
    sstore_close(s);
    event_base_free(b);
}

/* What is under a key is not a state (someone else wrote there): the
 * operations on it fail with the store's reason, nothing crashes, and
 * the store goes on working; a delete clears it. */
static void test_a_key_holding_something_else_fails_its_operations_with_a_reason(void **state)
{
    (void)state;
    if (g_env.c->spoil == NULL)
        return;
    struct event_base *b = event_base_new();
    char pool[32];
    sstore *s = open_store(b, pool_name(pool, sizeof(pool), "spoilt"), TTL_LONG_MS);
    rec r;
    PUT_OK(b, s, "good", "{}");
    PUT_OK(b, s, "bad", "{}");
    g_env.c->spoil(&g_env, pool, "bad");
    assert_int_equal(do_get(b, s, "bad", 3, &r)->st, SSTORE_UNAVAILABLE);
    assert_non_null(strstr(r.why, "WRONGTYPE"));
    assert_int_equal(do_put(b, s, "bad", 3, "{}", &r)->st, SSTORE_UNAVAILABLE);
    assert_non_null(strstr(r.why, "WRONGTYPE"));
    assert_int_equal(do_touch(b, s, "bad", &r)->st, SSTORE_UNAVAILABLE);
    assert_int_equal(do_list(b, s, NULL, 0, 10, &r)->st, SSTORE_UNAVAILABLE);
    assert_non_null(strstr(r.why, "WRONGTYPE"));
    assert_int_equal(do_get(b, s, "good", 4, &r)->st, SSTORE_OK);
    assert_int_equal(do_del(b, s, "bad", &r)->st, SSTORE_OK);
    PUT_OK(b, s, "bad", "{\"ok\":1}");
    assert_string_equal(do_get(b, s, "bad", 3, &r)->val, "{\"ok\":1}");
    assert_int_equal(do_list(b, s, NULL, 0, 10, &r)->n, 2);
    sstore_stats st;
    sstore_get_stats(s, &st);
    assert_int_equal(st.up, 1);
    assert_int_equal(st.failures, 4);
    sstore_close(s);
    event_base_free(b);
}

/* The same server reached over IPv6 ([::1]) sees the same states. */
static void test_an_ipv6_address_reaches_the_same_store(void **state)
{
    (void)state;
    char spec6[128];
    if (g_env.c->ipv6_spec == NULL || g_env.c->ipv6_spec(&g_env, spec6, sizeof(spec6)) != AP_OK)
        return; /* the machine has no IPv6 loopback */
    struct event_base *b = event_base_new();
    char pool[32], err[256] = "";
    pool_name(pool, sizeof(pool), "six");
    sstore *s4 = open_store(b, pool, TTL_LONG_MS);
    sstore *s6 = sstore_open(b, spec6, pool, TTL_LONG_MS, 1, err, sizeof(err));
    if (s6 == NULL)
        fail_msg("sstore_open(%s): %s", spec6, err);
    rec r;
    PUT_OK(b, s6, "k", "{\"via\":6}");
    assert_string_equal(do_get(b, s4, "k", 1, &r)->val, "{\"via\":6}");
    sstore_close(s4);
    sstore_close(s6);
    event_base_free(b);
}

/* ---- the table ---------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return g_env.c->start(&g_env) == AP_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    g_env.c->stop(&g_env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_touch_del_and_missing_keys),
        cmocka_unit_test(test_put_ref_follows_its_hint_and_a_wrong_hint_changes_no_other_key),
        cmocka_unit_test(test_operations_on_one_key_complete_in_start_order),
        cmocka_unit_test(test_list_pages_keys_in_bytewise_order),
        cmocka_unit_test(test_two_pools_are_kept_apart),
        cmocka_unit_test(test_states_expire_after_the_ttl_and_set_ttl_applies_to_later_writes),
        cmocka_unit_test(test_cancelled_operations_never_call_back),
        cmocka_unit_test(test_close_calls_back_what_is_pending_once_and_nothing_after),
        cmocka_unit_test(test_a_store_that_cannot_be_reached),
        cmocka_unit_test(test_a_key_holding_something_else_fails_its_operations_with_a_reason),
        cmocka_unit_test(test_an_ipv6_address_reaches_the_same_store),
        cmocka_unit_test(test_stopped_server_fails_operations_with_a_reason_then_recovers),
        cmocka_unit_test(test_a_server_that_stops_answering_fails_operations_instead_of_hanging),
        cmocka_unit_test(test_pending_operations_are_bounded),
    };
    const struct CMUnitTest common[] = {
        cmocka_unit_test(test_put_get_touch_del_and_missing_keys),
        cmocka_unit_test(test_put_ref_follows_its_hint_and_a_wrong_hint_changes_no_other_key),
        cmocka_unit_test(test_operations_on_one_key_complete_in_start_order),
        cmocka_unit_test(test_list_pages_keys_in_bytewise_order),
        cmocka_unit_test(test_two_pools_are_kept_apart),
        cmocka_unit_test(test_cancelled_operations_never_call_back),
    };
    int failed = 0;
    ap_log_init("test_sstore", AP_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < AP_ARRAY_LEN(store_cases); i++) {
        memset(&g_env, 0, sizeof(g_env));
        g_env.c = &store_cases[i];
        if (store_cases[i].common_only)
            failed += _cmocka_run_group_tests(store_cases[i].name, common, AP_ARRAY_LEN(common), group_setup,
                                              group_teardown);
        else
            failed += _cmocka_run_group_tests(store_cases[i].name, tests, AP_ARRAY_LEN(tests), group_setup,
                                              group_teardown);
    }
    return failed;
}
