/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_dispatch.c - cmocka tests for the worker-choosing strategies
 * (pool/path/dispatch.c, linked alone: it needs nothing else).
 *
 * The loads live inside a larger fake worker struct and are reached
 * through base + stride, as the master's worker table does.  Checked:
 * round-robin rotates exactly and skips workers that are full or not
 * accepting; least-busy takes the fewest in flight, then the fewest
 * processed, then the lowest index; random reaches every worker with
 * room and never one without; -1 when nobody has room; the picks/none
 * counters kept by dispatch_pick.  Random runs use fixed seeds, so they
 * are deterministic.
 */
#include "dispatch.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

/* Strategy numbers as config.h's lb_strategy (round-robin, least-busy, random). */
enum { RR = 0, LB = 1, RND = 2 };

typedef struct {
    char name[13];        /* padding before and after, so the stride matters */
    dispatch_load load;
    int other;
} fake_worker;

#define MAXW 16
static fake_worker W[MAXW];

static const void *BASE(void)
{
    return &W[0].load;
}
#define STRIDE sizeof(fake_worker)

/* n workers, all accepting with `slots` slots and nothing in flight. */
static void setup_workers(int n, int slots)
{
    memset(W, 0, sizeof(W));
    for (int i = 0; i < n; i++) {
        W[i].load.accepting = 1;
        W[i].load.slots = slots;
        W[i].load.in_flight = 0;
        W[i].load.processed = 0;
        W[i].other = -1;
    }
}

static int has_room(int i)
{
    return W[i].load.accepting && W[i].load.in_flight < W[i].load.slots;
}

static void test_init(void **state)
{
    (void)state;
    dispatch_state st;
    memset(&st, 0xff, sizeof(st));
    dispatch_init(&st, 42);
    assert_int_equal(st.next, 0);
    assert_int_equal(st.rng, 42);
    for (int i = 0; i < 3; i++)
        assert_int_equal(st.picks[i], 0);
    assert_int_equal(st.none, 0);
    /* xorshift must never start from 0: it would stay 0 for ever. */
    dispatch_init(&st, 0);
    assert_true(st.rng != 0);
}

static void test_round_robin_exact_rotation(void **state)
{
    (void)state;
    dispatch_state st;
    dispatch_init(&st, 1);
    setup_workers(5, 1000);
    for (int k = 0; k < 1000; k++) {
        int i = dispatch_pick(&st, RR, BASE(), STRIDE, 5);
        assert_int_equal(i, k % 5);
        W[i].load.in_flight++; /* still room: 1000 slots */
    }
    assert_int_equal(st.picks[RR], 1000);
    assert_int_equal(st.picks[LB], 0);
    assert_int_equal(st.picks[RND], 0);
    assert_int_equal(st.none, 0);
}

static void test_round_robin_skips_full_and_not_accepting(void **state)
{
    (void)state;
    static const int expect[] = {0, 2, 4, 5};
    dispatch_state st;
    dispatch_init(&st, 1);
    setup_workers(6, 2);
    W[1].load.in_flight = 2;    /* full */
    W[3].load.accepting = 0;    /* draining, with free slots */
    W[5].load.slots = 1000;
    for (int k = 0; k < 400; k++) {
        /* 0, 2 and 4 fill up after two rounds; afterwards only 5 has room */
        int i = dispatch_round_robin(&st, BASE(), STRIDE, 6);
        int want = k < 8 ? expect[k % 4] : 5;
        assert_int_equal(i, want);
        assert_true(has_room(i));
        W[i].load.in_flight++;
    }
    /* Workers that regain room rejoin the rotation where it stands. */
    W[5].load.in_flight = W[5].load.slots; /* now nobody has room */
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 6), -1);
    W[1].load.in_flight = 0;
    W[3].load.accepting = 1;
    W[4].load.in_flight = 0;
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 6), 1);
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 6), 3);
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 6), 4);
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 6), 1);
}

/* A suspect worker (suspect.c) is skipped by every strategy, prefetch
 * room included, and rejoins when the flag clears. */
static void test_suspect_workers_are_never_chosen(void **state)
{
    (void)state;
    dispatch_state st;
    dispatch_init(&st, 7);
    setup_workers(2, 1);
    W[0].load.suspect = 1;
    W[0].load.ahead = 8;
    for (int s = 0; s < 3; s++) {
        for (int k = 0; k < 20; k++)
            assert_int_equal(dispatch_pick(&st, s, BASE(), STRIDE, 2), 1);
    }
    W[1].load.in_flight = 1; /* the other is full: nobody, not the suspect */
    for (int s = 0; s < 3; s++)
        assert_int_equal(dispatch_pick(&st, s, BASE(), STRIDE, 2), -1);
    W[0].load.suspect = 0;
    for (int s = 0; s < 3; s++)
        assert_int_equal(dispatch_pick(&st, s, BASE(), STRIDE, 2), 0);
}

static void test_round_robin_resumes_after_last_choice(void **state)
{
    (void)state;
    dispatch_state st;
    dispatch_init(&st, 1);
    setup_workers(4, 10);
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 4), 0);
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 4), 1);
    /* 2 and 3 become unavailable: the rotation wraps to 0 */
    W[2].load.accepting = 0;
    W[3].load.in_flight = 10;
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 4), 0);
    /* 2 is back: the next after 0 with room is 1, then 2 */
    W[2].load.accepting = 1;
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 4), 1);
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 4), 2);
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 4), 0);
    /* The table shrinks below the resume point: still an index in range. */
    for (int k = 0; k < 20; k++) {
        int i = dispatch_round_robin(&st, BASE(), STRIDE, 2);
        assert_true(i == 0 || i == 1);
    }
}

static void test_least_busy(void **state)
{
    (void)state;
    dispatch_state st;
    dispatch_init(&st, 1);
    setup_workers(5, 8);
    int inf[5] = {3, 1, 2, 1, 4};
    uint64_t proc[5] = {0, 50, 0, 20, 0};
    for (int i = 0; i < 5; i++) {
        W[i].load.in_flight = inf[i];
        W[i].load.processed = proc[i];
    }
    /* 1 and 3 tie on in-flight; 3 has processed fewer */
    assert_int_equal(dispatch_least_busy(&st, BASE(), STRIDE, 5), 3);
    /* a full tie goes to the lowest index */
    W[3].load.processed = 50;
    assert_int_equal(dispatch_least_busy(&st, BASE(), STRIDE, 5), 1);
    /* fewer in flight beats fewer processed */
    W[2].load.in_flight = 0;
    W[2].load.processed = 1000000;
    assert_int_equal(dispatch_least_busy(&st, BASE(), STRIDE, 5), 2);
    /* the least loaded is skipped when not accepting or when it has no slot */
    W[2].load.accepting = 0;
    assert_int_equal(dispatch_least_busy(&st, BASE(), STRIDE, 5), 1);
    W[2].load.accepting = 1;
    W[2].load.slots = 0; /* no free slot although nothing in flight */
    assert_int_equal(dispatch_least_busy(&st, BASE(), STRIDE, 5), 1);
    W[1].load.slots = 1; /* in_flight 1 of 1: full */
    W[3].load.slots = 1;
    assert_int_equal(dispatch_least_busy(&st, BASE(), STRIDE, 5), 0);
    /* only the busiest has room */
    W[0].load.accepting = 0;
    assert_int_equal(dispatch_least_busy(&st, BASE(), STRIDE, 5), 4);
    /* not even it */
    W[4].load.in_flight = 8;
    assert_int_equal(dispatch_least_busy(&st, BASE(), STRIDE, 5), -1);
}

static void test_least_busy_spreads_load(void **state)
{
    (void)state;
    /* Picking and charging one message at a time fills workers evenly and in
     * index order when nobody finishes: 0,1,2,3,0,1,2,3,... */
    dispatch_state st;
    dispatch_init(&st, 1);
    setup_workers(4, 3);
    for (int k = 0; k < 12; k++) {
        int i = dispatch_pick(&st, LB, BASE(), STRIDE, 4);
        assert_int_equal(i, k % 4);
        W[i].load.in_flight++;
    }
    assert_int_equal(dispatch_pick(&st, LB, BASE(), STRIDE, 4), -1);
    assert_int_equal(st.picks[LB], 12);
    assert_int_equal(st.none, 1);
    /* Worker 2 finishes one: it is the only one with room. */
    W[2].load.in_flight--;
    W[2].load.processed++;
    assert_int_equal(dispatch_pick(&st, LB, BASE(), STRIDE, 4), 2);
    for (int i = 0; i < 4; i++) {
        W[i].load.in_flight = 0;
        W[i].load.processed = (uint64_t)(10 - i);
    }
    assert_int_equal(dispatch_pick(&st, LB, BASE(), STRIDE, 4), 3);
}

static void random_run(uint64_t seed, int n, int picks)
{
    dispatch_state st;
    uint64_t count[MAXW] = {0};
    int eligible = 0;
    dispatch_init(&st, seed);
    for (int i = 0; i < n; i++)
        eligible += has_room(i);
    for (int k = 0; k < picks; k++) {
        int i = dispatch_pick(&st, RND, BASE(), STRIDE, n);
        assert_true(i >= 0 && i < n);
        assert_true(has_room(i));
        count[i]++;
    }
    assert_int_equal(st.picks[RND], picks);
    assert_int_equal(st.none, 0);
    for (int i = 0; i < n; i++) {
        if (!has_room(i)) {
            assert_int_equal(count[i], 0);
            continue;
        }
        /* every worker with room is reached, roughly uniformly (seeded, so
         * this is deterministic; the bounds are many standard deviations wide) */
        assert_true(count[i] > (uint64_t)picks / eligible / 2);
        assert_true(count[i] < (uint64_t)picks / eligible * 3 / 2);
    }
}

static void test_random_reaches_all_with_room(void **state)
{
    (void)state;
    setup_workers(10, 2);
    W[0].load.accepting = 0;
    W[3].load.in_flight = 2;
    W[4].load.slots = 0;
    W[7].load.accepting = 0;
    W[7].load.in_flight = 2;
    W[9].load.in_flight = 1; /* one slot free: eligible */
    for (uint64_t seed = 0; seed < 20; seed++)
        random_run(seed * 0x9E3779B97F4A7C15ull + seed, 10, 5000);
    /* the first and last index with room are reachable too */
    setup_workers(MAXW, 1);
    random_run(7, MAXW, 20000);
}

static void test_random_single_and_none(void **state)
{
    (void)state;
    dispatch_state st;
    dispatch_init(&st, 99);
    setup_workers(6, 1);
    for (int i = 0; i < 6; i++)
        if (i != 4)
            W[i].load.in_flight = 1;
    for (int k = 0; k < 200; k++)
        assert_int_equal(dispatch_random(&st, BASE(), STRIDE, 6), 4);
    W[4].load.accepting = 0;
    for (int k = 0; k < 200; k++)
        assert_int_equal(dispatch_random(&st, BASE(), STRIDE, 6), -1);
}

static void test_none_and_counters(void **state)
{
    (void)state;
    dispatch_state st;
    dispatch_init(&st, 5);
    setup_workers(3, 1);
    for (int i = 0; i < 3; i++)
        W[i].load.in_flight = 1;
    for (int s = 0; s < 3; s++)
        assert_int_equal(dispatch_pick(&st, s, BASE(), STRIDE, 3), -1);
    /* an empty worker table */
    for (int s = 0; s < 3; s++)
        assert_int_equal(dispatch_pick(&st, s, BASE(), STRIDE, 0), -1);
    assert_int_equal(st.none, 6);
    for (int s = 0; s < 3; s++)
        assert_int_equal(st.picks[s], 0);

    W[1].load.in_flight = 0;
    assert_int_equal(dispatch_pick(&st, RR, BASE(), STRIDE, 3), 1);
    assert_int_equal(dispatch_pick(&st, LB, BASE(), STRIDE, 3), 1);
    assert_int_equal(dispatch_pick(&st, LB, BASE(), STRIDE, 3), 1);
    assert_int_equal(dispatch_pick(&st, RND, BASE(), STRIDE, 3), 1);
    assert_int_equal(dispatch_pick(&st, RND, BASE(), STRIDE, 3), 1);
    assert_int_equal(dispatch_pick(&st, RND, BASE(), STRIDE, 3), 1);
    assert_int_equal(st.picks[RR], 1);
    assert_int_equal(st.picks[LB], 2);
    assert_int_equal(st.picks[RND], 3);
    assert_int_equal(st.none, 6);
    /* an unknown strategy number falls back to round-robin and counts as it */
    assert_int_equal(dispatch_pick(&st, 7, BASE(), STRIDE, 3), 1);
    assert_int_equal(dispatch_pick(&st, -1, BASE(), STRIDE, 3), 1);
    assert_int_equal(st.picks[RR], 3);
    /* the direct strategy functions do not count */
    assert_int_equal(dispatch_round_robin(&st, BASE(), STRIDE, 3), 1);
    assert_int_equal(st.picks[RR], 3);
    /* nothing in the fake workers was written by dispatch */
    for (int i = 0; i < 3; i++)
        assert_int_equal(W[i].other, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_round_robin_exact_rotation),
        cmocka_unit_test(test_round_robin_skips_full_and_not_accepting),
        cmocka_unit_test(test_suspect_workers_are_never_chosen),
        cmocka_unit_test(test_round_robin_resumes_after_last_choice),
        cmocka_unit_test(test_least_busy),
        cmocka_unit_test(test_least_busy_spreads_load),
        cmocka_unit_test(test_random_reaches_all_with_room),
        cmocka_unit_test(test_random_single_and_none),
        cmocka_unit_test(test_none_and_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
