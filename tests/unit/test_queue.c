/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_queue.c - cmocka tests for the pool's bounded intrusive FIFO
 * (pool/path/queue.c, linked alone: it needs nothing else).
 *
 * Covers the contract in queue.h: FIFO order, the bound (capacity 0
 * included), what a refused push changes (only `rejected`, and only when
 * asked), the high watermark, O(1) removal from the head, middle and
 * tail, pop/peek on an empty queue, and a long randomized run checked
 * link by link against an array model.
 */
#include "queue.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int value;
    queue_link link;
} item;

static int value_of(queue_link *l)
{
    return queue_entry(l, item, link)->value;
}

/* Walks the ring both ways and checks it against expect[0..n). */
static void check_contents(const queue *q, item *const *expect, size_t n)
{
    size_t i = 0;
    assert_int_equal(q->depth, n);
    for (const queue_link *l = q->head.next; l != &q->head; l = l->next) {
        assert_true(i < n);
        assert_ptr_equal(l, &expect[i]->link);
        assert_ptr_equal(l->next->prev, l);
        i++;
    }
    assert_int_equal(i, n);
    for (const queue_link *l = q->head.prev; l != &q->head; l = l->prev) {
        assert_true(i > 0);
        i--;
        assert_ptr_equal(l, &expect[i]->link);
    }
    assert_int_equal(i, 0);
}

static void test_init_empty(void **state)
{
    (void)state;
    queue q;
    memset(&q, 0x5a, sizeof(q));
    queue_init(&q, 4);
    assert_int_equal(q.depth, 0);
    assert_int_equal(q.capacity, 4);
    assert_int_equal(q.high_watermark, 0);
    assert_int_equal(q.rejected, 0);
    assert_int_equal(q.pushed, 0);
    assert_false(queue_full(&q));
    assert_null(queue_peek(&q));
    assert_null(queue_pop(&q));
    assert_null(queue_pop(&q));
    /* Popping an empty queue changes nothing. */
    assert_int_equal(q.depth, 0);
    assert_ptr_equal(q.head.next, &q.head);
    assert_ptr_equal(q.head.prev, &q.head);
}

static void test_fifo_order(void **state)
{
    (void)state;
    enum { N = 100 };
    item it[N];
    queue q;
    queue_init(&q, N);
    for (int i = 0; i < N; i++) {
        it[i].value = i;
        assert_int_equal(queue_push(&q, &it[i].link, 1), AP_OK);
        assert_int_equal(q.depth, (size_t)i + 1);
        /* peek always shows the oldest, never the one just pushed */
        assert_int_equal(value_of(queue_peek(&q)), 0);
    }
    assert_true(queue_full(&q));
    assert_int_equal(q.pushed, N);
    for (int i = 0; i < N; i++) {
        queue_link *p = queue_peek(&q);
        queue_link *l = queue_pop(&q);
        assert_non_null(l);
        assert_ptr_equal(p, l);
        assert_int_equal(value_of(l), i);
        assert_null(l->next);
        assert_null(l->prev);
        assert_int_equal(q.depth, (size_t)(N - 1 - i));
    }
    assert_null(queue_pop(&q));
    assert_int_equal(q.high_watermark, N);
    assert_int_equal(q.rejected, 0);
}

static void test_bound_and_rejected(void **state)
{
    (void)state;
    item it[5];
    queue q;
    queue_init(&q, 3);
    for (int i = 0; i < 5; i++)
        it[i].value = i;
    for (int i = 0; i < 3; i++)
        assert_int_equal(queue_push(&q, &it[i].link, 1), AP_OK);
    assert_true(queue_full(&q));

    /* Refused with count_reject: only `rejected` moves, the link is untouched. */
    it[3].link.next = it[3].link.prev = (queue_link *)(uintptr_t)0x1234;
    assert_int_equal(queue_push(&q, &it[3].link, 1), AP_ERR);
    assert_int_equal(q.rejected, 1);
    assert_int_equal(queue_push(&q, &it[4].link, 1), AP_ERR);
    assert_int_equal(q.rejected, 2);
    assert_ptr_equal(it[3].link.next, (queue_link *)(uintptr_t)0x1234);
    assert_ptr_equal(it[3].link.prev, (queue_link *)(uintptr_t)0x1234);

    /* Refused without count_reject (a blocked connection retrying): nothing changes. */
    assert_int_equal(queue_push(&q, &it[3].link, 0), AP_ERR);
    assert_int_equal(queue_push(&q, &it[3].link, 0), AP_ERR);
    assert_int_equal(q.rejected, 2);
    assert_int_equal(q.pushed, 3);
    assert_int_equal(q.depth, 3);
    assert_int_equal(q.high_watermark, 3);
    item *expect[] = {&it[0], &it[1], &it[2]};
    check_contents(&q, expect, 3);

    /* Room again after one pop; the bound still holds. */
    assert_int_equal(value_of(queue_pop(&q)), 0);
    assert_false(queue_full(&q));
    assert_int_equal(queue_push(&q, &it[3].link, 1), AP_OK);
    assert_int_equal(queue_push(&q, &it[4].link, 1), AP_ERR);
    assert_int_equal(q.rejected, 3);
    assert_int_equal(q.pushed, 4);
    item *expect2[] = {&it[1], &it[2], &it[3]};
    check_contents(&q, expect2, 3);
}

/* Entries held elsewhere (a session's FIFO) count against the bound:
 * a hold refused when full changes only `rejected` (when asked), and a
 * push past depth + held is refused. */
static void test_hold_counts_against_the_bound(void **state)
{
    queue q;
    item a = {1, {NULL, NULL}};
    (void)state;
    queue_init(&q, 2);
    assert_int_equal(queue_hold(&q, 1), AP_OK);
    assert_int_equal(q.held, 1);
    assert_int_equal(q.depth, 0);
    assert_int_equal(queue_push(&q, &a.link, 1), AP_OK);
    assert_true(queue_full(&q));
    assert_int_equal(queue_hold(&q, 0), AP_ERR);
    assert_int_equal(q.rejected, 0);
    assert_int_equal(queue_hold(&q, 1), AP_ERR);
    assert_int_equal(q.rejected, 1);
    assert_int_equal(q.held, 1);
    queue_unhold(&q);
    assert_int_equal(q.held, 0);
    assert_false(queue_full(&q));
    queue_unhold(&q); /* never below zero */
    assert_int_equal(q.held, 0);
    assert_ptr_equal(queue_pop(&q), &a.link);
}

static void test_capacity_zero(void **state)
{
    (void)state;
    item a = {1, {NULL, NULL}};
    queue q;
    queue_init(&q, 0);
    assert_true(queue_full(&q));
    assert_int_equal(queue_push(&q, &a.link, 1), AP_ERR);
    assert_int_equal(queue_push(&q, &a.link, 0), AP_ERR);
    assert_int_equal(q.rejected, 1);
    assert_int_equal(q.depth, 0);
    assert_int_equal(q.pushed, 0);
    assert_int_equal(q.high_watermark, 0);
    assert_null(queue_peek(&q));
    assert_null(queue_pop(&q));
}

static void test_high_watermark(void **state)
{
    (void)state;
    item it[6];
    queue q;
    queue_init(&q, 10);
    for (int i = 0; i < 3; i++)
        assert_int_equal(queue_push(&q, &it[i].link, 1), AP_OK);
    assert_int_equal(q.high_watermark, 3);
    queue_pop(&q);
    queue_pop(&q);
    assert_int_equal(q.high_watermark, 3); /* draining never lowers it */
    assert_int_equal(queue_push(&q, &it[3].link, 1), AP_OK);
    assert_int_equal(q.depth, 2);
    assert_int_equal(q.high_watermark, 3);
    assert_int_equal(queue_push(&q, &it[4].link, 1), AP_OK);
    assert_int_equal(q.high_watermark, 3);
    assert_int_equal(queue_push(&q, &it[5].link, 1), AP_OK);
    assert_int_equal(q.depth, 4);
    assert_int_equal(q.high_watermark, 4);
    queue_remove(&q, &it[4].link);
    assert_int_equal(q.high_watermark, 4);
    assert_int_equal(q.pushed, 6);
}

static void test_remove_middle_head_tail(void **state)
{
    (void)state;
    item it[5];
    queue q;
    queue_init(&q, 5);
    for (int i = 0; i < 5; i++) {
        it[i].value = i;
        assert_int_equal(queue_push(&q, &it[i].link, 1), AP_OK);
    }
    queue_remove(&q, &it[2].link); /* middle */
    assert_null(it[2].link.next);
    assert_null(it[2].link.prev);
    item *e1[] = {&it[0], &it[1], &it[3], &it[4]};
    check_contents(&q, e1, 4);

    queue_remove(&q, &it[4].link); /* tail */
    item *e2[] = {&it[0], &it[1], &it[3]};
    check_contents(&q, e2, 3);

    queue_remove(&q, &it[0].link); /* head */
    item *e3[] = {&it[1], &it[3]};
    check_contents(&q, e3, 2);
    assert_int_equal(value_of(queue_peek(&q)), 1);

    /* A removed link can be queued again, at the tail. */
    assert_int_equal(queue_push(&q, &it[2].link, 1), AP_OK);
    assert_int_equal(queue_push(&q, &it[0].link, 1), AP_OK);
    item *e4[] = {&it[1], &it[3], &it[2], &it[0]};
    check_contents(&q, e4, 4);

    /* Removing the only element leaves a well-formed empty queue. */
    queue_remove(&q, &it[1].link);
    queue_remove(&q, &it[3].link);
    queue_remove(&q, &it[2].link);
    queue_remove(&q, &it[0].link);
    check_contents(&q, NULL, 0);
    assert_null(queue_peek(&q));
    assert_ptr_equal(q.head.next, &q.head);
    assert_ptr_equal(q.head.prev, &q.head);
    assert_int_equal(q.high_watermark, 5);
}

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random pushes, pops and removals against an array model. */
static void test_randomized_against_model(void **state)
{
    (void)state;
    enum { POOL = 64, CAP = 40, OPS = 20000 };
    item it[POOL];
    int on_queue[POOL];
    item *model[POOL];
    size_t n = 0, hwm = 0;
    uint64_t rejected = 0, pushed = 0;
    queue q;

    queue_init(&q, CAP);
    for (int i = 0; i < POOL; i++) {
        it[i].value = i;
        on_queue[i] = 0;
    }
    for (int op = 0; op < OPS; op++) {
        /* phases of 2000 operations: mostly pushes (to reach the bound
         * and be refused), then mostly pops and removals */
        unsigned r = (unsigned)(rnd() % 10);
        unsigned push_share = (op / 2000) % 2 == 0 ? 8 : 3;
        if (r < push_share) { /* push a random link that is not queued */
            int i = (int)(rnd() % POOL);
            if (on_queue[i])
                continue;
            int count = (int)(rnd() & 1);
            int rc = queue_push(&q, &it[i].link, count);
            if (n == CAP) {
                assert_int_equal(rc, AP_ERR);
                if (count)
                    rejected++;
            } else {
                assert_int_equal(rc, AP_OK);
                model[n++] = &it[i];
                on_queue[i] = 1;
                pushed++;
                if (n > hwm)
                    hwm = n;
            }
        } else if (r < push_share + (10 - push_share) / 2) { /* pop */
            queue_link *l = queue_pop(&q);
            if (n == 0) {
                assert_null(l);
            } else {
                assert_ptr_equal(l, &model[0]->link);
                on_queue[model[0]->value] = 0;
                memmove(model, model + 1, (n - 1) * sizeof(model[0]));
                n--;
            }
        } else if (n > 0) { /* remove anywhere */
            size_t k = (size_t)(rnd() % n);
            queue_remove(&q, &model[k]->link);
            on_queue[model[k]->value] = 0;
            memmove(model + k, model + k + 1, (n - k - 1) * sizeof(model[0]));
            n--;
        }
        assert_int_equal(q.rejected, rejected);
        assert_int_equal(q.pushed, pushed);
        assert_int_equal(q.high_watermark, hwm);
        assert_int_equal(queue_full(&q), n == CAP);
        if (op % 64 == 0)
            check_contents(&q, model, n);
    }
    check_contents(&q, model, n);
    assert_int_equal(hwm, CAP); /* the run did reach the bound */
    assert_true(rejected > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_empty),
        cmocka_unit_test(test_fifo_order),
        cmocka_unit_test(test_bound_and_rejected),
        cmocka_unit_test(test_capacity_zero),
        cmocka_unit_test(test_hold_counts_against_the_bound),
        cmocka_unit_test(test_high_watermark),
        cmocka_unit_test(test_remove_middle_head_tail),
        cmocka_unit_test(test_randomized_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
