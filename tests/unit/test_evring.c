/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_evring.c - cmocka tests for the event stream's pure parts
 * (pool/ops/evring.c, linked alone, with cmocka's allocator).
 *
 * The ring: sequence numbers from 1, consecutive and never reused across
 * evictions; eviction by count (full) and by bytes (never of the only
 * event); evring_at finds exactly the events held; every text freed.
 * Replay boundaries: the first event at or after since (equal times
 * included), nothing when since is past the newest, everything held
 * when since is 0 or before the oldest, an evicted event never returned.
 * Topic patterns: exact names, "*" as exactly one segment, a last "#" as
 * one segment or more, "#" alone as everything, and the malformed
 * patterns refused (empty segments, "#" not last, stray characters).
 */
#include "evring.h"
#include "ap_alloc.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Pushes an event of len bytes at time t, evicting as the ring says. */
static uint64_t push(evring *r, uint64_t t, size_t len, uint64_t max_bytes)
{
    while (evring_must_evict(r, len, max_bytes))
        evring_evict(r);
    evring_entry e;
    memset(&e, 0, sizeof(e));
    e.text = ap_malloc(len + 1);
    memset(e.text, 'x', len);
    e.text[len] = '\0';
    e.len = (uint32_t)len;
    e.time_ms = t;
    return evring_push(r, &e);
}

static void test_seq_and_count_eviction(void **state)
{
    (void)state;
    evring r;
    evring_init(&r, 3);
    assert_int_equal(evring_oldest_seq(&r), 1);
    assert_null(evring_at(&r, 1));
    for (uint64_t i = 1; i <= 10; i++)
        assert_int_equal(push(&r, 100 + i, 10, 1 << 20), i);
    assert_int_equal(r.n, 3);
    assert_int_equal(evring_oldest_seq(&r), 8);
    assert_null(evring_at(&r, 7));
    assert_null(evring_at(&r, 11));
    for (uint64_t s = 8; s <= 10; s++) {
        assert_non_null(evring_at(&r, s));
        assert_int_equal(evring_at(&r, s)->seq, s);
        assert_int_equal(evring_at(&r, s)->time_ms, 100 + s);
    }
    assert_int_equal(r.bytes, 30);
    evring_free(&r);
}

static void test_byte_eviction(void **state)
{
    (void)state;
    evring r;
    evring_init(&r, 100);
    push(&r, 1, 40, 100);
    push(&r, 2, 40, 100);
    assert_int_equal(r.n, 2);
    push(&r, 3, 40, 100); /* 120 > 100: the oldest goes */
    assert_int_equal(r.n, 2);
    assert_int_equal(evring_oldest_seq(&r), 2);
    assert_int_equal(r.bytes, 80);
    push(&r, 4, 500, 100); /* bigger than the bound: alone, never refused */
    assert_int_equal(r.n, 1);
    assert_int_equal(evring_oldest_seq(&r), 4);
    assert_false(evring_must_evict(&(evring){.n = 0, .cap = 1}, 1000, 10));
    evring_free(&r);
}

static void test_replay_boundaries(void **state)
{
    (void)state;
    evring r;
    evring_init(&r, 4);
    assert_int_equal(evring_first_since(&r, 0), 1); /* empty: the end */
    push(&r, 10, 5, 1 << 20); /* seq 1 */
    push(&r, 20, 5, 1 << 20); /* 2 */
    push(&r, 20, 5, 1 << 20); /* 3 */
    push(&r, 30, 5, 1 << 20); /* 4 */
    assert_int_equal(evring_first_since(&r, 0), 1);
    assert_int_equal(evring_first_since(&r, 10), 1);
    assert_int_equal(evring_first_since(&r, 11), 2);
    assert_int_equal(evring_first_since(&r, 20), 2); /* equal times are included, in order */
    assert_int_equal(evring_first_since(&r, 21), 4);
    assert_int_equal(evring_first_since(&r, 31), 5); /* past the newest: live only */
    push(&r, 40, 5, 1 << 20);                        /* 5; seq 1 evicted */
    assert_int_equal(evring_first_since(&r, 0), 2);  /* what is held, never what was evicted */
    assert_int_equal(evring_first_since(&r, 40), 5);
    evring_free(&r);
}

static int match(const char *pat, const char *topic)
{
    assert_true(evring_pattern_valid(pat, strlen(pat)));
    return evring_topic_match(pat, strlen(pat), topic, strlen(topic));
}

static void test_topic_match(void **state)
{
    (void)state;
    assert_true(match("worker.exited", "worker.exited"));
    assert_false(match("worker.exited", "worker.exite"));
    assert_false(match("worker.exited", "worker.exited.x"));
    assert_false(match("worker", "worker.exited"));
    assert_true(match("worker.*", "worker.exited"));
    assert_false(match("worker.*", "worker"));
    assert_false(match("worker.*", "worker.a.b")); /* one segment exactly */
    assert_true(match("*.exited", "worker.exited"));
    assert_false(match("*.exited", "message.timeout"));
    assert_true(match("worker.#", "worker.exited"));
    assert_true(match("agent.#", "agent.task.done"));
    assert_false(match("worker.#", "worker")); /* one segment or more */
    assert_false(match("worker.#", "workers.exited"));
    assert_true(match("#", "alert.raised"));
    assert_true(match("agent.*.done", "agent.task.done"));
    assert_false(match("agent.*.done", "agent.task.started"));
    assert_true(match("*.*", "pool.backoff_entered"));
}

static void test_pattern_valid(void **state)
{
    (void)state;
    const char *bad[] = {"", ".", "worker.", ".worker", "worker..exited", "#.worker", "worker.#.x", "wor*ker",
                         "worker.ex#", "worker exited", "worker/exited", "w\"x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(evring_pattern_valid(bad[i], strlen(bad[i])));
    char longp[EVRING_PATTERN_MAX + 2];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_false(evring_pattern_valid(longp, strlen(longp)));
    assert_true(evring_pattern_valid(longp, EVRING_PATTERN_MAX));
    const char *good[] = {"#", "*", "worker.exited", "worker.*", "worker.#", "a-b_c.D9", "*.*.#"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(evring_pattern_valid(good[i], strlen(good[i])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_and_count_eviction), cmocka_unit_test(test_byte_eviction),
        cmocka_unit_test(test_replay_boundaries),      cmocka_unit_test(test_topic_match),
        cmocka_unit_test(test_pattern_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
