/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_session.c - cmocka tests for a pool's session table
 * (pool/path/session.c, linked with queue.c and the allocator only,
 * built with AP_ALLOC_TEST so a leaked session fails).
 *
 * Covers session.h's contract: a key finds the same session (escaped
 * bytes, lengths, collisions through many keys and bucket growth), a
 * session is idle-listed exactly when no message names it, the bound
 * forgets the least recently used idle session and refuses (counted,
 * nothing changed) when none is idle, a lowered bound trims idle ones
 * only, the state machine (IDLE -> RUNNING -> IDLE) with its FIFO in
 * order (a waiting message taken out of the middle), a running message
 * replaced by its copy, and affinity counting (hit: same entry and
 * slot; move: another; nothing for a first send).
 */
#include "session.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    int seq;
    queue_link link;
} item;

static session *ref(session_table *t, const char *key)
{
    return session_ref(t, key, strlen(key));
}

static void test_same_key_same_session_and_refs(void **state)
{
    AP_UNUSED(state);
    session_table *t = session_table_new(10);
    session *a = ref(t, "alice");
    assert_non_null(a);
    assert_int_equal(a->refs, 1);
    assert_int_equal(a->state, SESSION_IDLE);
    assert_int_equal(session_worker(a), -1);
    assert_string_equal(a->key, "alice");
    assert_ptr_equal(ref(t, "alice"), a);
    assert_int_equal(a->refs, 2);
    assert_ptr_equal(session_find(t, "alice", 5), a);
    assert_null(session_find(t, "alic", 4));
    assert_null(session_find(t, "alice\0", 6)); /* the length is part of the key */
    session *b = session_ref(t, "a\0b", 3);
    assert_ptr_not_equal(b, a);
    assert_ptr_equal(session_find(t, "a\0b", 3), b);
    assert_int_equal(t->count, 2);
    assert_int_equal(t->by_state[SESSION_IDLE], 2);
    session_unref(t, a);
    assert_true(link_empty(&t->idle)); /* still named by one message */
    session_unref(t, a);
    assert_ptr_equal(t->idle.next, &a->lru);
    session_unref(t, b);
    assert_ptr_equal(t->idle.prev, &b->lru);
    /* named again: off the idle list */
    assert_ptr_equal(ref(t, "alice"), a);
    assert_ptr_equal(t->idle.next, &b->lru);
    assert_ptr_equal(t->idle.prev, &b->lru);
    session_unref(t, a);
    session_table_free(t);
}

static void test_many_keys_grow_the_table(void **state)
{
    AP_UNUSED(state);
    enum { N = 5000 };
    char key[32];
    session_table *t = session_table_new(N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        session *s = ref(t, key);
        assert_non_null(s);
        assert_int_equal(s->refs, 1);
    }
    assert_int_equal(t->count, N);
    assert_true(t->keys.nbuckets >= N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        session *s = session_find(t, key, strlen(key));
        assert_non_null(s);
        assert_string_equal(s->key, key);
        session_unref(t, s);
    }
    assert_int_equal(t->by_state[SESSION_IDLE], N);
    session_table_free(t);
}

static void test_bound_forgets_least_recently_used_idle_then_refuses(void **state)
{
    AP_UNUSED(state);
    session_table *t = session_table_new(3);
    session *a = ref(t, "a"), *b = ref(t, "b"), *c = ref(t, "c");
    /* all three named: a fourth is refused, nothing changes */
    assert_null(ref(t, "d"));
    assert_int_equal(t->n.refused, 1);
    assert_int_equal(t->count, 3);
    assert_null(session_find(t, "d", 1));
    /* b then a become idle: b is the least recently used */
    session_unref(t, b);
    session_unref(t, a);
    session *d = ref(t, "d");
    assert_non_null(d);
    assert_int_equal(t->n.forgotten, 1);
    assert_null(session_find(t, "b", 1));
    assert_ptr_equal(session_find(t, "a", 1), a);
    assert_int_equal(t->count, 3);
    /* an idle session named again keeps its place (and its worker) */
    session_sent_to(t, a, 2, 2);
    assert_ptr_equal(ref(t, "a"), a);
    assert_int_equal(session_worker(a), 2);
    /* a lower bound forgets idle sessions only */
    session_unref(t, a);
    session_table_set_max(t, 1);
    assert_int_equal(t->count, 2); /* c and d are named */
    assert_null(session_find(t, "a", 1));
    session_unref(t, c);
    session_unref(t, d);
    session_table_set_max(t, 1);
    assert_int_equal(t->count, 1);
    assert_ptr_equal(session_find(t, "d", 1), d);
    assert_int_equal(t->n.forgotten, 3);
    session_table_free(t);
}

static void test_state_machine_and_fifo_order(void **state)
{
    AP_UNUSED(state);
    session_table *t = session_table_new(4);
    session *s = ref(t, "conv");
    item cur = {0, {NULL, NULL}}, w[4];
    assert_false(session_busy(s));
    session_begin(t, s, &cur);
    assert_true(session_busy(s));
    assert_int_equal(t->by_state[SESSION_RUNNING], 1);
    for (int i = 0; i < 4; i++) {
        w[i].seq = i + 1;
        session_wait(t, s, &w[i].link);
    }
    assert_int_equal(s->nwaiting, 4);
    assert_int_equal(t->waiting, 4);
    /* the third ends while it waits (its deadline): out of the middle */
    session_unwait(t, s, &w[2].link);
    assert_int_equal(t->waiting, 3);
    int want[] = {1, 2, 4};
    void *running = &cur;
    for (int k = 0; k < 3; k++) {
        queue_link *l = session_end(t, s, running);
        assert_non_null(l);
        item *next = queue_entry(l, item, link);
        assert_int_equal(next->seq, want[k]);
        assert_int_equal(s->state, SESSION_RUNNING); /* never idle in between */
        session_begin_next(t, s, next);
        running = next;
    }
    assert_null(session_end(t, s, running));
    assert_int_equal(s->state, SESSION_IDLE);
    assert_null(s->current);
    assert_int_equal(t->by_state[SESSION_IDLE], 1);
    assert_int_equal(t->by_state[SESSION_RUNNING], 0);
    assert_int_equal(t->waiting, 0);
    /* a copy takes the running message's place (retryOnTimeout) */
    item copy = {9, {NULL, NULL}};
    session_begin(t, s, &cur);
    session_replace(s, &cur, &copy);
    assert_ptr_equal(s->current, &copy);
    assert_null(session_end(t, s, &copy));
    assert_string_equal(session_state_name(SESSION_RUNNING), "running");
    assert_string_equal(session_state_name(SESSION_STATE_COUNT), "?");
    session_unref(t, s);
    session_table_free(t);
}

static void test_affinity_counts(void **state)
{
    AP_UNUSED(state);
    session_table *t = session_table_new(4);
    session *s = ref(t, "x");
    session_sent_to(t, s, 1, 1); /* first: neither */
    assert_int_equal(t->n.hits + t->n.moves, 0);
    session_sent_to(t, s, 1, 1);
    assert_int_equal(t->n.hits, 1);
    session_sent_to(t, s, 3, 3);
    assert_int_equal(t->n.moves, 1);
    session_sent_to(t, s, 3, 0); /* the entry holds another slot now: a move */
    assert_int_equal(t->n.moves, 2);
    assert_int_equal(session_worker(s), 3);
    session_unref(t, s);
    session_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_same_session_and_refs),
        cmocka_unit_test(test_many_keys_grow_the_table),
        cmocka_unit_test(test_bound_forgets_least_recently_used_idle_then_refuses),
        cmocka_unit_test(test_state_machine_and_fifo_order),
        cmocka_unit_test(test_affinity_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
