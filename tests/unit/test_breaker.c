/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_breaker.c - cmocka tests for the per-type circuit breakers
 * (pool/ops/breaker.c, linked alone, built with AP_ALLOC_TEST so its blocks
 * go through cmocka's allocator and a leak fails the test).
 *
 * Time is passed in, so every test runs on a made-up clock.  Covers the
 * rules in breaker.h one by one: closed -> open exactly at the threshold
 * within the window, and not when the failures are spread over the
 * window or more (the boundary is exclusive); successes not resetting
 * the count; retry_after while open and while a probe is out; one probe
 * after the reset period; probe success closing with an empty history;
 * probe failure re-opening for a new period; abandoned probes; late
 * outcomes changing nothing; threshold 0; independent types; counters
 * and the change reports.  A randomized run then checks every decision,
 * retry_after, state and counter against a naive model that keeps every
 * failure time and counts them, instead of the ring.
 */
#include "breaker.h"
#include "ap_common.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Change reports, collected by on_change(). */
typedef struct {
    unsigned n;
    unsigned idx[64];
    breaker_change c[64];
} change_log;

static void on_change(void *arg, unsigned idx, const breaker_change *c)
{
    change_log *log = arg;
    assert_true(log->n < AP_ARRAY_LEN(log->c));
    log->idx[log->n] = idx;
    log->c[log->n] = *c;
    log->n++;
}

static const breaker_config cfg3 = {.threshold = 3, .window_ms = 1000, .reset_ms = 5000};

static void fail_at(breaker_set *b, unsigned idx, uint64_t t)
{
    assert_int_equal(breaker_admit(b, idx, t, NULL), BREAKER_ALLOW);
    breaker_record(b, idx, t, 1, 0);
}

static void check_change(const change_log *log, unsigned i, unsigned idx, breaker_state from,
                         breaker_state to)
{
    assert_true(i < log->n);
    assert_int_equal(log->idx[i], idx);
    assert_int_equal(log->c[i].from, from);
    assert_int_equal(log->c[i].to, to);
}

/* Opens idx at time t with three failures at t-200, t-100, t. */
static void open_at(breaker_set *b, unsigned idx, uint64_t t)
{
    fail_at(b, idx, t - 200);
    fail_at(b, idx, t - 100);
    fail_at(b, idx, t);
    assert_int_equal(breaker_state_of(b, idx), BREAKER_OPEN);
}

static void test_bad_config(void **state)
{
    (void)state;
    breaker_config c = {.threshold = BREAKER_MAX_THRESHOLD + 1, .window_ms = 1000};
    assert_null(breaker_new(4, &c, NULL, NULL));
    c = (breaker_config){.threshold = 1, .window_ms = 0};
    assert_null(breaker_new(4, &c, NULL, NULL));
    c = (breaker_config){.threshold = BREAKER_MAX_THRESHOLD, .window_ms = 1, .reset_ms = 0};
    breaker_set *b = breaker_new(65, &c, NULL, NULL);
    assert_non_null(b);
    assert_true(breaker_enabled(b));
    breaker_free(b);
    c = (breaker_config){0}; /* off needs no window */
    b = breaker_new(1, &c, NULL, NULL);
    assert_non_null(b);
    assert_false(breaker_enabled(b));
    breaker_free(b);
    breaker_free(NULL);
    assert_string_equal(breaker_state_name(BREAKER_CLOSED), "closed");
    assert_string_equal(breaker_state_name(BREAKER_OPEN), "open");
    assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
    assert_string_equal(breaker_state_name((breaker_state)7), "unknown");
}

static void test_opens_at_threshold(void **state)
{
    (void)state;
    change_log log = {0};
    breaker_set *b = breaker_new(2, &cfg3, on_change, &log);
    assert_int_equal(breaker_count_in(b, BREAKER_CLOSED), 2);
    fail_at(b, 1, 1000);
    fail_at(b, 1, 1100);
    assert_int_equal(breaker_state_of(b, 1), BREAKER_CLOSED);
    assert_int_equal(log.n, 0);
    assert_int_equal(breaker_admit(b, 1, 1150, NULL), BREAKER_ALLOW);
    breaker_record(b, 1, 1200, 1, 0); /* the third, 200 ms after the first */
    assert_int_equal(breaker_state_of(b, 1), BREAKER_OPEN);
    assert_int_equal(log.n, 1);
    check_change(&log, 0, 1, BREAKER_CLOSED, BREAKER_OPEN);
    assert_int_equal(log.c[0].failures, 3);
    assert_int_equal(log.c[0].span_ms, 200);
    assert_int_equal(log.c[0].open_ms, 5000);
    assert_int_equal(breaker_count_in(b, BREAKER_OPEN), 1);
    assert_int_equal(breaker_count_in(b, BREAKER_CLOSED), 1);
    breaker_info in;
    breaker_info_of(b, 1, 1200, &in);
    assert_int_equal(in.state, BREAKER_OPEN);
    assert_int_equal(in.opened, 1);
    assert_int_equal(in.failures, 3);
    assert_int_equal(in.failures_in_window, 3);
    assert_int_equal(in.retry_after_ms, 5000);
    assert_int_equal(in.rejected, 0);
    assert_int_equal(breaker_admit(b, 1, 1200, NULL), BREAKER_REJECT);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    breaker_free(b);
}

/* "Within the window" is exclusive: failures exactly window_ms apart are
 * not within it; 1 ms less is. */
static void test_window_boundary(void **state)
{
    (void)state;
    breaker_set *b = breaker_new(3, &cfg3, NULL, NULL);
    fail_at(b, 0, 0);
    fail_at(b, 0, 500);
    fail_at(b, 0, 1000);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    fail_at(b, 0, 1100); /* last three: 500, 1000, 1100 */
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);

    fail_at(b, 1, 0);
    fail_at(b, 1, 500);
    fail_at(b, 1, 999);
    assert_int_equal(breaker_state_of(b, 1), BREAKER_OPEN);

    /* Spread wider than the window: never opens however many there are. */
    for (uint64_t t = 0; t < 100000; t += 501)
        fail_at(b, 2, t);
    assert_int_equal(breaker_state_of(b, 2), BREAKER_CLOSED);
    breaker_info in;
    breaker_info_of(b, 2, 99699, &in);
    assert_int_equal(in.failures, 200);
    assert_int_equal(in.failures_in_window, 2); /* 99198 and 99699 */
    assert_int_equal(in.opened, 0);
    breaker_free(b);
}

static void test_successes_do_not_reset(void **state)
{
    (void)state;
    breaker_set *b = breaker_new(1, &cfg3, NULL, NULL);
    fail_at(b, 0, 100);
    for (int i = 0; i < 50; i++)
        breaker_record(b, 0, 200, 0, 0);
    fail_at(b, 0, 300);
    breaker_record(b, 0, 400, 0, 0);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    fail_at(b, 0, 1099);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);
    breaker_free(b);
}

static void test_threshold_one(void **state)
{
    (void)state;
    change_log log = {0};
    breaker_config c = {.threshold = 1, .window_ms = 1, .reset_ms = 10};
    breaker_set *b = breaker_new(1, &c, on_change, &log);
    breaker_record(b, 0, 50, 0, 0);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    fail_at(b, 0, 50);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);
    assert_int_equal(log.c[0].failures, 1);
    assert_int_equal(log.c[0].span_ms, 0);
    breaker_free(b);
}

static void test_reject_retry_after(void **state)
{
    (void)state;
    breaker_set *b = breaker_new(1, &cfg3, NULL, NULL);
    open_at(b, 0, 1200); /* open until 6200 */
    uint64_t ra = 0;
    assert_int_equal(breaker_admit(b, 0, 1200, &ra), BREAKER_REJECT);
    assert_int_equal(ra, 5000);
    assert_int_equal(breaker_admit(b, 0, 2200, &ra), BREAKER_REJECT);
    assert_int_equal(ra, 4000);
    assert_int_equal(breaker_admit(b, 0, 6199, &ra), BREAKER_REJECT);
    assert_int_equal(ra, 1);
    assert_int_equal(breaker_admit(b, 0, 6000, NULL), BREAKER_REJECT); /* NULL is fine */
    /* A clock reading before the opening is treated as "just opened". */
    assert_int_equal(breaker_admit(b, 0, 1000, &ra), BREAKER_REJECT);
    assert_int_equal(ra, 5000);
    breaker_info in;
    breaker_info_of(b, 0, 3200, &in);
    assert_int_equal(in.rejected, 5);
    assert_int_equal(in.retry_after_ms, 3000);
    assert_int_equal(in.probes, 0);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);
    breaker_free(b);
}

static void test_probe_success_closes(void **state)
{
    (void)state;
    change_log log = {0};
    breaker_set *b = breaker_new(1, &cfg3, on_change, &log);
    open_at(b, 0, 1200);
    uint64_t ra = 0;
    assert_int_equal(breaker_admit(b, 0, 6200, &ra), BREAKER_PROBE);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_HALF_OPEN);
    assert_int_equal(log.n, 2);
    check_change(&log, 1, 0, BREAKER_OPEN, BREAKER_HALF_OPEN);
    /* While the probe is out everything else is rejected. */
    for (uint64_t t = 6200; t < 20000; t += 1000) {
        ra = 0;
        assert_int_equal(breaker_admit(b, 0, t, &ra), BREAKER_REJECT);
        assert_int_equal(ra, 5000);
    }
    breaker_info in;
    breaker_info_of(b, 0, 20000, &in);
    assert_int_equal(in.state, BREAKER_HALF_OPEN);
    assert_true(in.probe_out);
    assert_int_equal(in.probes, 1);
    assert_int_equal(in.rejected, 14);
    assert_int_equal(in.retry_after_ms, 0);
    assert_int_equal(breaker_count_in(b, BREAKER_HALF_OPEN), 1);

    breaker_record(b, 0, 20000, 0, 1);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    assert_int_equal(log.n, 3);
    check_change(&log, 2, 0, BREAKER_HALF_OPEN, BREAKER_CLOSED);
    assert_int_equal(breaker_count_in(b, BREAKER_CLOSED), 1);
    assert_int_equal(breaker_count_in(b, BREAKER_HALF_OPEN), 0);
    assert_int_equal(breaker_admit(b, 0, 20001, NULL), BREAKER_ALLOW);
    /* The history starts empty: two fresh failures do not reopen it. */
    breaker_info_of(b, 0, 20001, &in);
    assert_int_equal(in.failures_in_window, 0);
    assert_false(in.probe_out);
    fail_at(b, 0, 20010);
    fail_at(b, 0, 20020);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    fail_at(b, 0, 20030);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);
    breaker_info_of(b, 0, 20030, &in);
    assert_int_equal(in.opened, 2);
    breaker_free(b);
}

/* Closing forgets the failures that opened it even when they are still
 * inside the window (window much longer than the reset period). */
static void test_close_forgets_history(void **state)
{
    (void)state;
    breaker_config c = {.threshold = 3, .window_ms = 10000, .reset_ms = 100};
    breaker_set *b = breaker_new(1, &c, NULL, NULL);
    fail_at(b, 0, 0);
    fail_at(b, 0, 10);
    fail_at(b, 0, 20);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);
    breaker_info in;
    breaker_info_of(b, 0, 120, &in);
    assert_int_equal(in.failures_in_window, 3);
    assert_int_equal(breaker_admit(b, 0, 120, NULL), BREAKER_PROBE);
    breaker_record(b, 0, 130, 0, 1);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    breaker_info_of(b, 0, 130, &in);
    assert_int_equal(in.failures_in_window, 0);
    fail_at(b, 0, 140);
    fail_at(b, 0, 150);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    fail_at(b, 0, 160);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);
    breaker_free(b);
}

static void test_probe_failure_reopens(void **state)
{
    (void)state;
    change_log log = {0};
    breaker_set *b = breaker_new(1, &cfg3, on_change, &log);
    open_at(b, 0, 1200);
    assert_int_equal(breaker_admit(b, 0, 7000, NULL), BREAKER_PROBE);
    breaker_record(b, 0, 9000, 1, 1); /* fails 2 s later */
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);
    assert_int_equal(log.n, 3);
    check_change(&log, 2, 0, BREAKER_HALF_OPEN, BREAKER_OPEN);
    assert_int_equal(log.c[2].open_ms, 5000);
    /* A new reset period, from the probe's failure. */
    uint64_t ra = 0;
    assert_int_equal(breaker_admit(b, 0, 9000, &ra), BREAKER_REJECT);
    assert_int_equal(ra, 5000);
    assert_int_equal(breaker_admit(b, 0, 13999, &ra), BREAKER_REJECT);
    assert_int_equal(ra, 1);
    assert_int_equal(breaker_admit(b, 0, 14000, &ra), BREAKER_PROBE);
    breaker_info in;
    breaker_info_of(b, 0, 14000, &in);
    assert_int_equal(in.opened, 2);
    assert_int_equal(in.probes, 2);
    assert_int_equal(in.failures, 4);
    breaker_record(b, 0, 14100, 0, 1);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    breaker_free(b);
}

static void test_probe_abandoned(void **state)
{
    (void)state;
    breaker_set *b = breaker_new(1, &cfg3, NULL, NULL);
    breaker_probe_abandoned(b, 0); /* closed: nothing to release */
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    open_at(b, 0, 1200);
    breaker_probe_abandoned(b, 0); /* open: nothing to release either */
    assert_int_equal(breaker_admit(b, 0, 1300, NULL), BREAKER_REJECT);
    assert_int_equal(breaker_admit(b, 0, 6200, NULL), BREAKER_PROBE);
    assert_int_equal(breaker_admit(b, 0, 6300, NULL), BREAKER_REJECT);
    breaker_probe_abandoned(b, 0);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_HALF_OPEN);
    breaker_info in;
    breaker_info_of(b, 0, 6400, &in);
    assert_false(in.probe_out);
    breaker_probe_abandoned(b, 0); /* twice is harmless */
    /* An outcome marked as the probe with no probe out changes nothing. */
    breaker_record(b, 0, 6400, 0, 1);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_admit(b, 0, 6500, NULL), BREAKER_PROBE);
    assert_int_equal(breaker_admit(b, 0, 6600, NULL), BREAKER_REJECT);
    breaker_info_of(b, 0, 6600, &in);
    assert_int_equal(in.probes, 2);
    assert_true(in.probe_out);
    breaker_record(b, 0, 6700, 1, 1);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_OPEN);
    breaker_free(b);
}

/* Outcomes of messages admitted before the breaker opened count in stats
 * but change nothing: not the open period, not the half-open state. */
static void test_late_outcomes(void **state)
{
    (void)state;
    change_log log = {0};
    breaker_set *b = breaker_new(1, &cfg3, on_change, &log);
    open_at(b, 0, 1200);
    breaker_record(b, 0, 3000, 1, 0);
    breaker_record(b, 0, 3100, 0, 0);
    uint64_t ra = 0;
    assert_int_equal(breaker_admit(b, 0, 3200, &ra), BREAKER_REJECT);
    assert_int_equal(ra, 3000); /* still counted from 1200 */
    assert_int_equal(breaker_admit(b, 0, 6200, NULL), BREAKER_PROBE);
    breaker_record(b, 0, 6300, 1, 0); /* late failure */
    breaker_record(b, 0, 6400, 0, 0); /* late success */
    assert_int_equal(breaker_state_of(b, 0), BREAKER_HALF_OPEN);
    assert_int_equal(breaker_admit(b, 0, 6500, NULL), BREAKER_REJECT);
    assert_int_equal(log.n, 2);
    breaker_info in;
    breaker_info_of(b, 0, 6500, &in);
    assert_int_equal(in.failures, 5);
    assert_int_equal(in.opened, 1);
    breaker_free(b);
}

static void test_threshold_zero_never_opens(void **state)
{
    (void)state;
    change_log log = {0};
    breaker_config c = {.threshold = 0, .window_ms = 1000, .reset_ms = 10};
    breaker_set *b = breaker_new(2, &c, on_change, &log);
    for (uint64_t t = 0; t < 10000; t++) {
        assert_int_equal(breaker_admit(b, t & 1, t, NULL), BREAKER_ALLOW);
        breaker_record(b, t & 1, t, 1, 0);
    }
    breaker_record(b, 0, 10000, 1, 1);
    breaker_probe_abandoned(b, 0);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    assert_int_equal(breaker_state_of(b, 1), BREAKER_CLOSED);
    assert_int_equal(breaker_count_in(b, BREAKER_CLOSED), 2);
    assert_int_equal(log.n, 0);
    breaker_info in;
    breaker_info_of(b, 0, 10000, &in);
    assert_int_equal(in.failures, 0);
    assert_int_equal(in.failures_in_window, 0);
    assert_int_equal(in.opened, 0);
    assert_int_equal(in.rejected, 0);
    breaker_free(b);
}

static void test_independent_types(void **state)
{
    (void)state;
    change_log log = {0};
    breaker_set *b = breaker_new(4, &cfg3, on_change, &log);
    /* Interleaved failures of 1 and 2: only 1 reaches three. */
    fail_at(b, 1, 100);
    fail_at(b, 2, 110);
    fail_at(b, 1, 120);
    fail_at(b, 2, 130);
    fail_at(b, 0, 135);
    fail_at(b, 1, 140);
    assert_int_equal(breaker_state_of(b, 1), BREAKER_OPEN);
    assert_int_equal(breaker_state_of(b, 2), BREAKER_CLOSED);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED);
    assert_int_equal(breaker_count_in(b, BREAKER_OPEN), 1);
    assert_int_equal(breaker_count_in(b, BREAKER_CLOSED), 3);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.idx[0], 1);
    for (unsigned i = 0; i < 4; i++)
        if (i != 1)
            assert_int_equal(breaker_admit(b, i, 200, NULL), BREAKER_ALLOW);
    assert_int_equal(breaker_admit(b, 1, 200, NULL), BREAKER_REJECT);
    fail_at(b, 2, 150);
    assert_int_equal(breaker_state_of(b, 2), BREAKER_OPEN);
    assert_int_equal(breaker_count_in(b, BREAKER_OPEN), 2);
    /* Probing 1 does not release 2 or let 2 probe early. */
    assert_int_equal(breaker_admit(b, 1, 5140, NULL), BREAKER_PROBE);
    assert_int_equal(breaker_admit(b, 2, 5140, NULL), BREAKER_REJECT);
    assert_int_equal(breaker_admit(b, 2, 5150, NULL), BREAKER_PROBE);
    breaker_record(b, 1, 5200, 0, 1);
    assert_int_equal(breaker_state_of(b, 1), BREAKER_CLOSED);
    assert_int_equal(breaker_state_of(b, 2), BREAKER_HALF_OPEN);
    breaker_info in;
    breaker_info_of(b, 3, 5200, &in);
    assert_int_equal(in.failures, 0);
    assert_int_equal(in.rejected, 0);
    breaker_info_of(b, 2, 5200, &in);
    assert_int_equal(in.rejected, 1);
    assert_int_equal(in.failures, 3);
    breaker_free(b);
}

/* failures_in_window ages out one failure at a time. */
static void test_window_ages(void **state)
{
    (void)state;
    breaker_set *b = breaker_new(1, &cfg3, NULL, NULL);
    fail_at(b, 0, 0);
    fail_at(b, 0, 100);
    breaker_info in;
    breaker_info_of(b, 0, 500, &in);
    assert_int_equal(in.failures_in_window, 2);
    breaker_info_of(b, 0, 999, &in);
    assert_int_equal(in.failures_in_window, 2);
    breaker_info_of(b, 0, 1000, &in);
    assert_int_equal(in.failures_in_window, 1);
    breaker_info_of(b, 0, 1100, &in);
    assert_int_equal(in.failures_in_window, 0);
    fail_at(b, 0, 1100);
    assert_int_equal(breaker_state_of(b, 0), BREAKER_CLOSED); /* 0 and 100 aged out */
    breaker_free(b);
}

/* ---- randomized run against a naive model ---- */

typedef struct {
    breaker_state state;
    int probe_out;
    uint64_t opened_at;
    uint64_t times[64]; /* failures since the last close, younger than the window */
    unsigned ntimes;
    uint64_t opened, rejected, probes, failures;
} model;

static breaker_decision model_admit(model *m, const breaker_config *c, uint64_t now,
                                    uint64_t *ra)
{
    if (m->state == BREAKER_CLOSED)
        return BREAKER_ALLOW;
    if (m->state == BREAKER_OPEN) {
        if (now - m->opened_at < c->reset_ms) {
            m->rejected++;
            *ra = c->reset_ms - (now - m->opened_at);
            return BREAKER_REJECT;
        }
        m->state = BREAKER_HALF_OPEN;
        m->probe_out = 0;
    }
    if (m->probe_out) {
        m->rejected++;
        *ra = c->reset_ms ? c->reset_ms : 1;
        return BREAKER_REJECT;
    }
    m->probe_out = 1;
    m->probes++;
    return BREAKER_PROBE;
}

static void model_open(model *m, uint64_t now)
{
    m->state = BREAKER_OPEN;
    m->probe_out = 0;
    m->opened_at = now;
    m->opened++;
}

static void model_record(model *m, const breaker_config *c, uint64_t now, int failed,
                         int was_probe)
{
    if (failed)
        m->failures++;
    if (m->state == BREAKER_HALF_OPEN) {
        if (!was_probe || !m->probe_out)
            return;
        if (failed) {
            model_open(m, now);
        } else {
            m->state = BREAKER_CLOSED;
            m->probe_out = 0;
            m->ntimes = 0;
        }
        return;
    }
    if (m->state != BREAKER_CLOSED || !failed)
        return;
    /* Time only goes forward here, so a failure out of the window now
     * never counts again: keep the young ones and count them. */
    unsigned young = 0;
    for (unsigned i = 0; i < m->ntimes; i++)
        if (now - m->times[i] < c->window_ms)
            m->times[young++] = m->times[i];
    assert_true(young < AP_ARRAY_LEN(m->times));
    m->times[young++] = now;
    m->ntimes = young;
    if (young >= c->threshold)
        model_open(m, now);
}

typedef struct {
    unsigned idx;
    int probe;
} inflight;

static void compare(const breaker_set *b, const model *m, unsigned idx, uint64_t now,
                    const breaker_config *c)
{
    breaker_info in;
    breaker_info_of(b, idx, now, &in);
    assert_int_equal(in.state, m->state);
    assert_int_equal(!!in.probe_out, m->probe_out);
    assert_int_equal(in.opened, m->opened);
    assert_int_equal(in.rejected, m->rejected);
    assert_int_equal(in.probes, m->probes);
    assert_int_equal(in.failures, m->failures);
    unsigned recent = 0;
    for (unsigned i = 0; i < m->ntimes; i++)
        if (now - m->times[i] < c->window_ms)
            recent++;
    assert_true(recent <= c->threshold);
    assert_int_equal(in.failures_in_window, recent);
    if (m->state == BREAKER_OPEN)
        assert_int_equal(in.retry_after_ms,
                         now - m->opened_at < c->reset_ms ? c->reset_ms - (now - m->opened_at) : 0);
    else
        assert_int_equal(in.retry_after_ms, 0);
}

static void random_run(const breaker_config *c, unsigned seed)
{
    enum { N = 3, OPS = 100000, MAXIN = 32 };
    static model m[N];
    memset(m, 0, sizeof(m));
    inflight in[MAXIN];
    unsigned nin = 0;
    breaker_set *b = breaker_new(N, c, NULL, NULL);
    srand(seed);
    uint64_t now = 1000;
    for (int op = 0; op < OPS; op++) {
        now += (uint64_t)(rand() % 300);
        int what = rand() % 10;
        if (what < 5 && nin < MAXIN) {
            unsigned idx = (unsigned)rand() % N;
            uint64_t ra = 0, mra = 0;
            breaker_decision d = breaker_admit(b, idx, now, &ra);
            breaker_decision md = model_admit(&m[idx], c, now, &mra);
            assert_int_equal(d, md);
            if (d == BREAKER_REJECT)
                assert_int_equal(ra, mra);
            else
                in[nin++] = (inflight){idx, d == BREAKER_PROBE};
        } else if (nin > 0) {
            unsigned k = (unsigned)rand() % nin;
            inflight f = in[k];
            in[k] = in[--nin];
            if (f.probe && what == 9) {
                breaker_probe_abandoned(b, f.idx);
                m[f.idx].probe_out = 0;
            } else {
                int failed = rand() % 100 < 55;
                breaker_record(b, f.idx, now, failed, f.probe);
                model_record(&m[f.idx], c, now, failed, f.probe);
            }
        }
        for (unsigned i = 0; i < N; i++)
            compare(b, &m[i], i, now, c);
    }
    unsigned opened = 0;
    for (unsigned i = 0; i < N; i++)
        opened += (unsigned)m[i].opened;
    assert_true(opened > 10); /* the run exercised the state machine */
    breaker_free(b);
}

static void test_random_against_model(void **state)
{
    (void)state;
    breaker_config c1 = {.threshold = 3, .window_ms = 1000, .reset_ms = 2000};
    random_run(&c1, 1);
    breaker_config c2 = {.threshold = 5, .window_ms = 700, .reset_ms = 0};
    random_run(&c2, 2);
    breaker_config c3 = {.threshold = 1, .window_ms = 50, .reset_ms = 300};
    random_run(&c3, 3);
    breaker_config c4 = {.threshold = 4, .window_ms = 5000, .reset_ms = 200};
    random_run(&c4, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_opens_at_threshold),
        cmocka_unit_test(test_window_boundary),
        cmocka_unit_test(test_successes_do_not_reset),
        cmocka_unit_test(test_threshold_one),
        cmocka_unit_test(test_reject_retry_after),
        cmocka_unit_test(test_probe_success_closes),
        cmocka_unit_test(test_close_forgets_history),
        cmocka_unit_test(test_probe_failure_reopens),
        cmocka_unit_test(test_probe_abandoned),
        cmocka_unit_test(test_late_outcomes),
        cmocka_unit_test(test_threshold_zero_never_opens),
        cmocka_unit_test(test_independent_types),
        cmocka_unit_test(test_window_ages),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
