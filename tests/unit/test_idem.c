/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_idem.c - cmocka tests for idempotency keys (pool/path/idem.c).
 *
 * Linked with the real idem.c, scan.c (request lines are scanned as the
 * master scans them), reply.c (the replayed line is checked byte for
 * byte) and the fake server of fake_server.h (one pool, a clock the test
 * moves).  This file stands in for the rest: client_output is one
 * evbuffer the test reads, answer_refuse records its refusal, and
 * answer_end does what the real one does for idem.c (idem_end first,
 * then the message is recorded, with its answer's body, and freed).
 * Built with AP_ALLOC_TEST, so a leaked entry or body fails.
 */
#include "idem.h"
#include "client.h"
#include "fake_server.h"
#include "pools.h"

#include <event2/buffer.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

/* ---- the rest of the master, as idem.c sees it ----------------------- */

static struct evbuffer *out;  /* FAKE_CLIENT's output */
static int checks;            /* client_check_output calls */
static char refused[256];     /* the last answer_refuse's message */
static int nrefused;
static char bodies[FAKE_MAX_ANSWERS][256]; /* each answer's body, by answer number */
static int quiet;             /* answer_end records nothing (more answers than the recorder holds) */

struct evbuffer *client_output(client *c)
{
    assert_ptr_equal(c, FAKE_CLIENT);
    return out;
}

void client_check_output(client *c)
{
    assert_ptr_equal(c, FAKE_CLIENT);
    checks++;
}

void answer_refuse(client *c, const char *line, const scan_result *r, reply_code code, const char *why,
                   const char *extra, pool_t *p, int type_idx)
{
    (void)c, (void)line, (void)r, (void)extra, (void)p, (void)type_idx;
    assert_int_equal(code, ERR_BAD_REQUEST);
    snprintf(refused, sizeof(refused), "%s", why);
    nrefused++;
}

void answer_end(msg *m, const answer *a)
{
    if (m->idem)
        idem_end(m, a);
    if (quiet) {
        msg_free(&server.msgs, m);
        return;
    }
    int k = fake_nanswers();
    snprintf(bodies[k], sizeof(bodies[k]), "%.*s", a->body ? (int)a->len : 0, a->body ? a->body : "");
    fake_record_answer(m, a, 0);
    msg_free(&server.msgs, m);
}

/* ---- helpers ---------------------------------------------------------- */

/* Each test calls setup() first and teardown() last itself, so cmocka's
 * leak check (after the test function) sees everything freed. */

#define TTL 60000

static int setup(void **state)
{
    (void)state;
    fake_server_setup(2, 1, 0, 16);
    fake_cfg.idempotency_ttl = TTL;
    fake_cfg.idempotency_cache_bytes = 1 << 20;
    fake_pool.idem = idem_new();
    out = evbuffer_new();
    checks = nrefused = quiet = 0;
    refused[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    idem_free(fake_pool.idem);
    fake_pool.idem = NULL;
    evbuffer_free(out);
    fake_server_teardown();
    return 0;
}

/* A request line with its id, type, data and key, scanned into *r. */
static const char *request(scan_result *r, int id, const char *type, const char *data, const char *key)
{
    static char lines[8][512];
    static unsigned next;
    char *line = lines[next++ % 8];
    snprintf(line, 512, "{\"id\":%d,\"type\":\"%s\",\"data\":%s,\"idempotencyKey\":\"%s\"}", id, type, data, key);
    assert_int_equal(scan_request(line, strlen(line), 128, r), SCAN_OK);
    return line;
}

/* The message client.c would make of it. */
static msg *message(const char *line, const scan_result *r)
{
    msg *m = msg_new(&server.msgs, line, strlen(line), r->type_len);
    m->pool = &fake_pool;
    memcpy(m->type, r->type, r->type_len + 1);
    m->type_len = (uint16_t)r->type_len;
    m->id_off = (uint32_t)r->id.off;
    m->id_len = (uint32_t)r->id.len;
    m->data_off = (uint32_t)r->data.off;
    m->data_len = (uint32_t)r->data.len;
    m->client = FAKE_CLIENT;
    return m;
}

/* Admits line as client_line does: the verdict, and the message when
 * one is made (NULL when answered). */
static idem_verdict admit(int id, const char *type, const char *data, const char *key, msg **made)
{
    scan_result r;
    const char *line = request(&r, id, type, data, key);
    struct idem_entry *e = NULL;
    idem_verdict v = idem_admit(&fake_pool, FAKE_CLIENT, line, &r, ap_now_ms(), &e);
    *made = NULL;
    if (v == IDEM_ANSWERED)
        return v;
    assert_true((v == IDEM_ATTACH) == (e != NULL));
    *made = message(line, &r);
    idem_bind(&fake_pool, *made, &r, e);
    return v;
}

static idem_stats stats(void)
{
    idem_stats s;
    idem_stats_get(fake_pool.idem, &s);
    return s;
}

static void output_is(const char *want)
{
    size_t n = evbuffer_get_length(out);
    char got[1024];
    assert_true(n < sizeof(got));
    evbuffer_remove(out, got, n);
    got[n] = '\0';
    assert_string_equal(got, want);
}

/* ---- tests ------------------------------------------------------------ */

/* A copy of a running request is attached; when the first ends ok, the
 * copy gets the same body, and the answer is kept: a later copy is
 * replayed byte for byte with "replayed": true, without running. */
static void test_attach_then_replay(void **state)
{
    msg *first, *copy, *late;
    (void)state;
    setup(NULL);
    assert_int_equal(admit(1, "job", "{\"a\":1}", "k", &first), IDEM_RUN);
    assert_int_equal(admit(2, "job", "{\"a\":1}", "k", &copy), IDEM_ATTACH);
    assert_true(idem_keeps_running(first));
    assert_false(idem_keeps_running(copy));
    assert_int_equal(stats().attached, 1);
    assert_int_equal(stats().entries, 1);

    answer_ok(first, "{\"r\":7}", 7);
    assert_int_equal(fake_nanswers(), 2);
    assert_string_equal(fake_answer_nth(0)->id, "2"); /* the copy first, then the first */
    assert_int_equal(fake_answer_nth(0)->kind, ANSWER_OK);
    assert_string_equal(bodies[0], "{\"r\":7}");
    assert_string_equal(fake_answer_nth(1)->id, "1");

    assert_int_equal(admit(3, "job", "{\"a\":1}", "k", &late), IDEM_ANSWERED);
    assert_null(late);
    output_is("{\"id\":3,\"ok\":true,\"result\":{\"r\":7},\"replayed\":true}\n");
    assert_int_equal(checks, 1);
    assert_int_equal(fake_pool.stats.answered_ok, 1);
    assert_int_equal(stats().replayed, 1);
    assert_int_equal(stats().entries, 1);
    assert_int_equal(server.msgs.live, 0);
    teardown(NULL);
}

/* An agent_error is kept and replayed as an error; an empty ok result is
 * kept as null. */
static void test_agent_error_kept(void **state)
{
    msg *m;
    (void)state;
    setup(NULL);
    static const char err[] = "{\"code\":\"agent_error\",\"message\":\"boom\"}";
    assert_int_equal(admit(1, "job", "null", "e", &m), IDEM_RUN);
    answer_worker_error(m, ERR_AGENT_ERROR, err, sizeof(err) - 1);
    assert_int_equal(admit(2, "job", "null", "e", &m), IDEM_ANSWERED);
    output_is("{\"id\":2,\"ok\":false,\"error\":{\"code\":\"agent_error\",\"message\":\"boom\"},\"replayed\":true}\n");
    assert_int_equal(fake_pool.stats.errors[ERR_AGENT_ERROR], 1);

    assert_int_equal(admit(3, "job", "null", "n", &m), IDEM_RUN);
    answer_ok(m, "", 0);
    assert_int_equal(admit(4, "job", "null", "n", &m), IDEM_ANSWERED);
    output_is("{\"id\":4,\"ok\":true,\"result\":null,\"replayed\":true}\n");
    teardown(NULL);
}

/* The same key with another type or other data bytes is refused, running
 * or finished; the entry is not affected. */
static void test_mismatch(void **state)
{
    msg *m, *x;
    (void)state;
    setup(NULL);
    assert_int_equal(admit(1, "job", "{\"a\":1}", "k", &m), IDEM_RUN);
    assert_int_equal(admit(2, "job", "{\"a\":2}", "k", &x), IDEM_ANSWERED);
    assert_string_equal(refused, "idempotency key reused with a different request");
    assert_int_equal(admit(3, "jab", "{\"a\":1}", "k", &x), IDEM_ANSWERED);
    assert_int_equal(admit(4, "job", "{\"a\": 1}", "k", &x), IDEM_ANSWERED); /* same value, other bytes */
    /* type and data cannot trade bytes */
    assert_int_equal(admit(5, "jo", "{\"a\":1}", "k", &x), IDEM_ANSWERED);
    answer_ok(m, "1", 1);
    assert_int_equal(admit(6, "job", "{\"a\":3}", "k", &x), IDEM_ANSWERED);
    assert_int_equal(nrefused, 5);
    assert_int_equal(stats().mismatched, 5);
    assert_int_equal(admit(7, "job", "{\"a\":1}", "k", &x), IDEM_ANSWERED);
    assert_int_equal(stats().replayed, 1);
    teardown(NULL);
}

/* A transient end (timeout) answers the copies with it and forgets the
 * key: the next request runs.  A first request dropped without an answer
 * (its client left while it was queued) answers its copies cancelled. */
static void test_transient_end_forgets(void **state)
{
    msg *first, *copy, *again;
    (void)state;
    setup(NULL);
    assert_int_equal(admit(1, "job", "0", "t", &first), IDEM_RUN);
    assert_int_equal(admit(2, "job", "0", "t", &copy), IDEM_ATTACH);
    answer_error(first, ERR_TIMEOUT, "took too long", NULL);
    assert_int_equal(fake_answer_for(2)->code, ERR_TIMEOUT);
    assert_string_equal(fake_answer_for(2)->message, "took too long");
    assert_int_equal(stats().entries, 0);
    assert_int_equal(stats().bytes, 0);
    assert_int_equal(admit(3, "job", "0", "t", &again), IDEM_RUN);
    assert_int_equal(admit(4, "job", "0", "t", &copy), IDEM_ATTACH);
    answer_drop(again);
    assert_int_equal(fake_answer_for(4)->code, ERR_CANCELLED);
    assert_int_equal(stats().entries, 0);
    assert_int_equal(server.msgs.live, 0);
    teardown(NULL);
}

/* A copy that ends on its own (its client left, pool.cancel) leaves the
 * entry; the first then answers nobody else. */
static void test_copy_ends_alone(void **state)
{
    msg *first, *copy;
    (void)state;
    setup(NULL);
    assert_int_equal(admit(1, "job", "0", "c", &first), IDEM_RUN);
    assert_int_equal(admit(2, "job", "0", "c", &copy), IDEM_ATTACH);
    answer_error(copy, ERR_CANCELLED, "cancelled by pool.cancel", NULL);
    assert_null(copy = fake_msg_by_id(2));
    answer_ok(first, "1", 1);
    assert_int_equal(fake_nanswers(), 2);
    assert_int_equal(stats().entries, 1);
    teardown(NULL);
}

/* n taking m's place (client_take_over) takes its entry too. */
static void test_moved(void **state)
{
    msg *first, *copy;
    (void)state;
    setup(NULL);
    assert_int_equal(admit(1, "job", "0", "m", &first), IDEM_RUN);
    assert_int_equal(admit(2, "job", "0", "m", &copy), IDEM_ATTACH);
    msg *n = message(first->line, &(scan_result){0});
    idem_moved(first, n);
    assert_null(first->idem);
    assert_false(idem_keeps_running(first));
    answer_drop(first); /* the old one ends alone */
    assert_int_equal(fake_nanswers(), 1);
    answer_ok(n, "2", 1);
    assert_string_equal(fake_answer_for(2)->id, "2");
    assert_string_equal(bodies[1], "2");
    teardown(NULL);
}

/* Finished entries expire TTL after they finished: a lookup sees it at
 * once, idem_tick frees them; running entries never expire. */
static void test_expiry(void **state)
{
    msg *a, *b, *x;
    (void)state;
    setup(NULL);
    assert_int_equal(admit(1, "job", "0", "a", &a), IDEM_RUN);
    assert_int_equal(admit(2, "job", "0", "b", &b), IDEM_RUN);
    answer_ok(a, "1", 1);
    fake_now += TTL - 1;
    idem_tick(&fake_pool, ap_now_ms());
    assert_int_equal(stats().entries, 2);
    assert_int_equal(admit(3, "job", "0", "a", &x), IDEM_ANSWERED);
    fake_now += 1;
    assert_int_equal(admit(4, "job", "0", "a", &x), IDEM_RUN); /* expired at lookup: runs again */
    assert_int_equal(stats().expired, 1);
    answer_ok(x, "1", 1);
    fake_now += 10 * TTL;
    idem_tick(&fake_pool, ap_now_ms());
    assert_int_equal(stats().expired, 2);
    assert_int_equal(stats().entries, 1); /* b still runs */
    assert_int_equal(admit(5, "job", "0", "b", &x), IDEM_ATTACH);
    answer_ok(b, "1", 1);
    teardown(NULL);
}

/* Past idempotencyCacheBytes the oldest finished entries go first,
 * counted; a running entry is never evicted. */
static void test_eviction(void **state)
{
    msg *m[4], *x;
    char body[201];
    (void)state;
    setup(NULL);
    memset(body, 'x', 200);
    body[0] = body[199] = '"';
    body[200] = '\0';
    assert_int_equal(admit(0, "job", "0", "run", &m[0]), IDEM_RUN);
    size_t running = stats().bytes;
    assert_int_equal(admit(1, "job", "0", "k1", &m[1]), IDEM_RUN);
    answer_ok(m[1], body, 200);
    size_t one = stats().bytes - running;
    fake_cfg.idempotency_cache_bytes = (int64_t)(running + 2 * one);
    assert_int_equal(admit(2, "job", "0", "k2", &m[2]), IDEM_RUN);
    answer_ok(m[2], body, 200);
    assert_int_equal(stats().evicted, 0);
    assert_int_equal(admit(3, "job", "0", "k3", &m[3]), IDEM_RUN);
    answer_ok(m[3], body, 200);
    assert_int_equal(stats().evicted, 1);
    assert_int_equal(stats().entries, 3);
    assert_true(stats().bytes <= (uint64_t)fake_cfg.idempotency_cache_bytes);
    assert_int_equal(admit(4, "job", "0", "k1", &x), IDEM_RUN); /* evicted: runs again */
    answer_drop(x);
    assert_int_equal(admit(5, "job", "0", "k3", &x), IDEM_ANSWERED);
    /* a cap of 0 keeps nothing finished, but the running entry stays */
    fake_cfg.idempotency_cache_bytes = 0;
    idem_tick(&fake_pool, ap_now_ms());
    assert_int_equal(stats().entries, 1);
    assert_int_equal(admit(6, "job", "0", "run", &x), IDEM_ATTACH);
    uint64_t evicted = stats().evicted;
    answer_ok(m[0], "1", 1); /* too large to keep: evicted at once, the copy still answered */
    assert_string_equal(fake_answer_for(6)->id, "6");
    assert_int_equal(stats().evicted, evicted + 1);
    assert_int_equal(stats().entries, 0);
    assert_int_equal(stats().bytes, 0);
    teardown(NULL);
}

/* A stream request with a key is refused. */
static void test_stream_refused(void **state)
{
    scan_result r;
    struct idem_entry *e = NULL;
    (void)state;
    setup(NULL);
    const char *line = "{\"id\":1,\"type\":\"job\",\"stream\":true,\"idempotencyKey\":\"s\"}";
    assert_int_equal(scan_request(line, strlen(line), 128, &r), SCAN_OK);
    assert_int_equal(idem_admit(&fake_pool, FAKE_CLIENT, line, &r, ap_now_ms(), &e), IDEM_ANSWERED);
    assert_string_equal(refused, "idempotencyKey cannot be used with \"stream\": true (a stream is not replayed)");
    assert_int_equal(stats().entries, 0);
    teardown(NULL);
}

/* Many keys: the table grows and every key is still found. */
static void test_many_keys(void **state)
{
    char key[16];
    msg *m;
    (void)state;
    setup(NULL);
    quiet = 1;
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(admit(i, "job", "0", key, &m), IDEM_RUN);
        answer_ok(m, "1", 1);
        evbuffer_drain(out, evbuffer_get_length(out));
    }
    assert_int_equal(stats().entries, 1000);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(admit(i, "job", "0", key, &m), IDEM_ANSWERED);
    }
    assert_int_equal(stats().replayed, 1000);
    /* idem_tick's work is bounded: 1000 expired entries take 4 ticks */
    fake_now += TTL;
    idem_tick(&fake_pool, ap_now_ms());
    assert_int_equal(stats().entries, 1000 - 256);
    for (int i = 0; i < 3; i++)
        idem_tick(&fake_pool, ap_now_ms());
    assert_int_equal(stats().entries, 0);
    assert_int_equal(stats().expired, 1000);
    teardown(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_then_replay),
        cmocka_unit_test(test_agent_error_kept),
        cmocka_unit_test(test_mismatch),
        cmocka_unit_test(test_transient_end_forgets),
        cmocka_unit_test(test_copy_ends_alone),
        cmocka_unit_test(test_moved),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_stream_refused),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
