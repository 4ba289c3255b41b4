/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_msg.c - cmocka tests for messages and the internal-id table
 * (pool/path/msg.c, with queue.h for the links).
 *
 * Built with AP_ALLOC_TEST: every message and the table's arrays go
 * through cmocka's test_malloc/test_realloc, so a message not freed, or a
 * write past the room a message was given for its line and type, fails
 * the test.  Checked: a new message's fields, ids unique and never 0
 * across table growth and slot reuse, a stale id never finds the
 * message now in its slot, ids out of the table's range, per-state
 * counts through every transition and free, state names.
 */
#include "msg.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_counts(const msg_table *t, uint64_t n_new, uint64_t held, uint64_t queued, uint64_t running)
{
    assert_int_equal(t->by_state[MSG_NEW], n_new);
    assert_int_equal(t->by_state[MSG_HELD], held);
    assert_int_equal(t->by_state[MSG_QUEUED], queued);
    assert_int_equal(t->by_state[MSG_RUNNING], running);
    assert_int_equal(t->live, n_new + held + queued + running);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_new_message_fields(void **state)
{
    (void)state;
    static const char line[] = "{\"id\":7,\"type\":\"echo\",\"data\":{\"a\":1}}";
    msg_table t;
    msg_table_init(&t);
    assert_null(msg_lookup(&t, 1)); /* empty table: nothing, and no crash */

    msg *m = msg_new(&t, line, sizeof(line) - 1, 4);
    assert_non_null(m);
    assert_true(m->id != 0);
    assert_int_equal(m->state, MSG_NEW);
    assert_int_equal(m->line_len, sizeof(line) - 1);
    assert_memory_equal(m->line, line, sizeof(line) - 1);
    assert_int_equal(m->line[m->line_len], '\0');
    assert_ptr_equal(m->type, m->line + m->line_len + 1);
    assert_string_equal(m->type, "");
    assert_int_equal(m->retry, -1);
    assert_int_equal(m->timeout_ms, -1);
    assert_null(m->client);
    assert_null(m->worker);
    assert_int_equal(m->control, 0);
    assert_int_equal(m->id_len, 0);
    assert_int_equal(m->data_len, 0);
    /* The type has room for type_cap bytes and its NUL: fill it all
     * (test_free checks the guard bytes after the allocation). */
    memcpy(m->type, "echo", 5);
    assert_ptr_equal(msg_lookup(&t, m->id), m);
    check_counts(&t, 1, 0, 0, 0);
    msg_free(&t, m);
    check_counts(&t, 0, 0, 0, 0);

    /* A line with NUL bytes and an empty line are copied exactly. */
    static const char bin[] = {'a', '\0', 'b', '\n', 'c'};
    m = msg_new(&t, bin, sizeof(bin), 0);
    assert_memory_equal(m->line, bin, sizeof(bin));
    assert_int_equal(m->type[0], '\0');
    msg *e = msg_new(&t, "", 0, 256);
    assert_int_equal(e->line_len, 0);
    assert_int_equal(e->line[0], '\0');
    memset(e->type, 'x', 256);
    e->type[256] = '\0';
    assert_int_equal(strlen(e->type), 256);
    msg_free(&t, e);
    msg_free(&t, m);
    msg_table_free(&t);
}

static void test_ids_unique_across_growth(void **state)
{
    (void)state;
    enum { N = 5000 };
    msg **ms = malloc(N * sizeof(msg *));
    assert_non_null(ms);
    msg_table t;
    msg_table_init(&t);
    for (int i = 0; i < N; i++) {
        char line[32];
        int len = snprintf(line, sizeof(line), "line %d", i);
        ms[i] = msg_new(&t, line, (size_t)len, 8);
        assert_true(ms[i]->id != 0);
    }
    assert_true(t.cap >= N);
    assert_int_equal(t.live, N);
    /* After the table grew several times every message is still found,
     * under its own id, with its own line. */
    for (int i = 0; i < N; i++) {
        char line[32];
        int len = snprintf(line, sizeof(line), "line %d", i);
        assert_ptr_equal(msg_lookup(&t, ms[i]->id), ms[i]);
        assert_int_equal(ms[i]->line_len, len);
        assert_memory_equal(ms[i]->line, line, (size_t)len);
        for (int j = i + 1; j < i + 4 && j < N; j++)
            assert_true(ms[i]->id != ms[j]->id);
    }
    /* All ids distinct: sort and compare neighbours. */
    uint64_t *ids = malloc(N * sizeof(uint64_t));
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        ids[i] = ms[i]->id;
    qsort(ids, N, sizeof(ids[0]), cmp_u64);
    for (int i = 1; i < N; i++)
        assert_true(ids[i] != ids[i - 1]);
    free(ids);
    check_counts(&t, N, 0, 0, 0);
    for (int i = 0; i < N; i++)
        msg_free(&t, ms[i]);
    check_counts(&t, 0, 0, 0, 0);
    msg_table_free(&t);
    free(ms);
}

static void test_stale_id_after_reuse(void **state)
{
    (void)state;
    msg_table t;
    msg_table_init(&t);
    msg *a = msg_new(&t, "a", 1, 0);
    msg *b = msg_new(&t, "b", 1, 0);
    uint64_t ida = a->id, idb = b->id;
    assert_true(ida != idb);
    msg_free(&t, a);
    assert_null(msg_lookup(&t, ida)); /* freed: gone at once */
    assert_ptr_equal(msg_lookup(&t, idb), b);

    /* The freed slot is handed out again; the old id must not find the
     * new occupant, and every reuse gets a fresh id.  (Messages that land
     * in other slots on the way are kept aside and freed at the end.) */
    enum { ROUNDS = 100, SPARE = 4096 };
    static msg *spare[SPARE];
    uint32_t nspare = 0;
    uint64_t seen[ROUNDS];
    seen[0] = ida;
    for (int round = 1; round < ROUNDS; round++) {
        msg *c = msg_new(&t, "c", 1, 0);
        while ((c->id & 0xffffffffu) != (ida & 0xffffffffu)) {
            assert_true(nspare < SPARE);
            spare[nspare++] = c;
            c = msg_new(&t, "c", 1, 0);
        }
        for (int k = 0; k < round; k++) {
            assert_true(c->id != seen[k]);
            assert_null(msg_lookup(&t, seen[k]));
        }
        assert_ptr_equal(msg_lookup(&t, c->id), c);
        assert_true(c->id != idb);
        seen[round] = c->id;
        msg_free(&t, c);
        assert_null(msg_lookup(&t, seen[round]));
    }
    while (nspare > 0)
        msg_free(&t, spare[--nspare]);
    assert_ptr_equal(msg_lookup(&t, idb), b);

    /* Ids that were never issued, or point past the table, find nothing. */
    assert_null(msg_lookup(&t, 0));
    assert_null(msg_lookup(&t, idb ^ (1ull << 40)));
    assert_null(msg_lookup(&t, (idb & ~0xffffffffull) | 0xfffffffeu));
    assert_null(msg_lookup(&t, (idb & ~0xffffffffull) | t.cap));
    assert_null(msg_lookup(&t, UINT64_MAX));
    msg_free(&t, b);
    assert_null(msg_lookup(&t, idb));
    msg_table_free(&t);
}

static void test_state_counts(void **state)
{
    (void)state;
    msg_table t;
    msg_table_init(&t);
    msg *m[5];
    for (int i = 0; i < 5; i++)
        m[i] = msg_new(&t, "x", 1, 0);
    check_counts(&t, 5, 0, 0, 0);
    msg_set_state(&t, m[0], MSG_QUEUED);
    msg_set_state(&t, m[1], MSG_QUEUED);
    msg_set_state(&t, m[2], MSG_HELD);
    check_counts(&t, 2, 1, 2, 0);
    msg_set_state(&t, m[0], MSG_RUNNING);
    msg_set_state(&t, m[2], MSG_QUEUED);
    msg_set_state(&t, m[2], MSG_RUNNING);
    check_counts(&t, 2, 0, 1, 2);
    assert_int_equal(m[2]->state, MSG_RUNNING);
    /* setting the state it already has changes no count */
    msg_set_state(&t, m[1], MSG_QUEUED);
    check_counts(&t, 2, 0, 1, 2);
    /* freeing takes the message out of its state's count */
    msg_free(&t, m[0]);
    check_counts(&t, 2, 0, 1, 1);
    msg_free(&t, m[1]);
    check_counts(&t, 2, 0, 0, 1);
    msg_free(&t, m[3]);
    check_counts(&t, 1, 0, 0, 1);
    msg_free(&t, m[2]);
    msg_free(&t, m[4]);
    check_counts(&t, 0, 0, 0, 0);
    msg_table_free(&t);
    assert_null(t.slots);
    assert_int_equal(t.cap, 0);
}

static void test_links_and_names(void **state)
{
    (void)state;
    msg_table t;
    queue q;
    msg_table_init(&t);
    queue_init(&q, 4);
    msg *a = msg_new(&t, "a", 1, 0), *b = msg_new(&t, "b", 1, 0);
    assert_int_equal(queue_push(&q, &a->qlink, 1), AP_OK);
    assert_int_equal(queue_push(&q, &b->qlink, 1), AP_OK);
    assert_ptr_equal(msg_from_qlink(queue_pop(&q)), a);
    assert_ptr_equal(msg_from_qlink(queue_pop(&q)), b);
    assert_int_equal(queue_push(&q, &b->clink, 1), AP_OK);
    assert_ptr_equal(msg_from_clink(queue_pop(&q)), b);
    msg_free(&t, a);
    msg_free(&t, b);
    msg_table_free(&t);

    assert_string_equal(msg_state_name(MSG_NEW), "new");
    assert_string_equal(msg_state_name(MSG_HELD), "held");
    assert_string_equal(msg_state_name(MSG_QUEUED), "queued");
    assert_string_equal(msg_state_name(MSG_RUNNING), "running");
    assert_string_equal(msg_state_name(MSG_STATE_COUNT), "?");
    assert_string_equal(msg_state_name((msg_state)99), "?");
}

/* Random news and frees over a long run; ids never repeat and lookups of
 * every id ever issued agree with the set of live messages. */
static void test_randomized_lifetimes(void **state)
{
    (void)state;
    enum { LIVE = 3000, OPS = 40000 };
    static msg *live[LIVE];
    static uint64_t issued[OPS];
    static int alive[OPS];
    uint32_t nlive = 0, nissued = 0;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    msg_table t;
    msg_table_init(&t);
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (nlive < LIVE && (nlive == 0 || x % 3 != 0)) {
            msg *m = msg_new(&t, (const char *)&nissued, sizeof(nissued), 2);
            live[nlive++] = m;
            issued[nissued] = m->id;
            alive[nissued] = 1;
            nissued++;
        } else {
            uint32_t k = (uint32_t)((x >> 20) % nlive);
            uint32_t which;
            memcpy(&which, live[k]->line, sizeof(which));
            assert_int_equal(issued[which], live[k]->id);
            alive[which] = 0;
            msg_free(&t, live[k]);
            live[k] = live[--nlive];
        }
        assert_int_equal(t.live, nlive);
        assert_int_equal(t.by_state[MSG_NEW], nlive);
    }
    for (uint32_t i = 0; i < nissued; i++) {
        msg *m = msg_lookup(&t, issued[i]);
        if (alive[i]) {
            assert_non_null(m);
            assert_int_equal(m->id, issued[i]);
        } else {
            assert_null(m);
        }
    }
    /* every id ever issued is distinct */
    qsort(issued, nissued, sizeof(issued[0]), cmp_u64);
    for (uint32_t i = 1; i < nissued; i++)
        assert_true(issued[i] != issued[i - 1]);
    while (nlive > 0)
        msg_free(&t, live[--nlive]);
    msg_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_message_fields),
        cmocka_unit_test(test_ids_unique_across_growth),
        cmocka_unit_test(test_stale_id_after_reuse),
        cmocka_unit_test(test_state_counts),
        cmocka_unit_test(test_links_and_names),
        cmocka_unit_test(test_randomized_lifetimes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
