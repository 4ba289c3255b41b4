/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * breaker.h - per-message-type circuit breakers.
 *
 * One breaker per typetab index ("other" included), all in one set made
 * up front for typetab_capacity() indexes.  Each is a small state machine:
 *
 *   CLOSED    admits everything.  Each failure outcome (the caller counts
 *             agent_error and timeout answers) is remembered; when
 *             `threshold` failures have happened within `window_ms` -- the
 *             newest of the last `threshold` failures is less than
 *             window_ms after the oldest of them -- the breaker opens.
 *             Successes neither reset nor offset the count: only age
 *             does, a failure stops counting window_ms after it happened.
 *   OPEN      rejects everything, with retry_after = time left until
 *             reset_ms have passed since it opened.  The first message
 *             admitted after that moves it to HALF_OPEN as the probe.
 *   HALF_OPEN exactly one probe in flight: every other message is
 *             rejected (retry_after = reset_ms, the longest it can take
 *             to know).  The probe's success closes the breaker (with an
 *             empty failure history); its failure re-opens it for a new
 *             reset_ms.  A probe that never gets an outcome (client gone,
 *             cancelled) must be released with breaker_probe_abandoned(),
 *             and then the next message becomes the probe.
 *
 * Outcomes of messages admitted before a breaker opened, arriving while
 * it is OPEN or HALF_OPEN, are counted in stats but do not change state:
 * only the probe decides.  threshold 0 turns breakers off: everything is
 * admitted, nothing is recorded, states stay CLOSED.
 *
 * The failure history is exact: a ring of the last `threshold` failure
 * times per breaker, all in one block of capacity * threshold * 8 bytes
 * allocated by breaker_new(), hence the bound BREAKER_MAX_THRESHOLD.
 * Time is always passed in (milliseconds from one monotonic clock), so
 * the module never reads a clock; it never logs either: each state change
 * is reported to the caller's callback, which logs it.
 */
#ifndef AP_BREAKER_H
#define AP_BREAKER_H

#include <stdint.h>

#define BREAKER_MAX_THRESHOLD 1000u

typedef enum { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN } breaker_state;
#define BREAKER_NSTATES 3

typedef enum { BREAKER_ALLOW, BREAKER_PROBE, BREAKER_REJECT } breaker_decision;

typedef struct {
    unsigned threshold;     /* failures within window_ms that open; 0 = off */
    uint64_t window_ms;     /* must be > 0 when threshold > 0 */
    uint64_t reset_ms;      /* time open before a probe is let through */
} breaker_config;

/* What a state change reports.  `failures` and `span_ms` are set for
 * CLOSED -> OPEN (the `threshold` failures that opened it and the ms from
 * the oldest to the newest); open_ms for every move to OPEN. */
typedef struct {
    breaker_state from, to;
    unsigned failures;
    uint64_t span_ms;
    uint64_t open_ms;
} breaker_change;

typedef void breaker_change_fn(void *arg, unsigned idx, const breaker_change *c);

/* One breaker's state and counters, for pool.stats. */
typedef struct {
    breaker_state state;
    int probe_out;              /* HALF_OPEN with its probe in flight */
    unsigned failures_in_window;/* remembered failures younger than window_ms */
    uint64_t retry_after_ms;    /* OPEN: ms until a probe may go, else 0 */
    uint64_t opened;            /* moves to OPEN, re-opens included */
    uint64_t rejected;          /* messages answered circuit_open */
    uint64_t probes;            /* probes let through */
    uint64_t failures;          /* failure outcomes recorded, any state */
} breaker_info;

typedef struct breaker_set breaker_set;

/* A set of n breakers, all CLOSED.  on_change (may be NULL) is called
 * with arg after every state change.  NULL when cfg is invalid:
 * threshold > BREAKER_MAX_THRESHOLD, or threshold > 0 with window_ms 0. */
breaker_set *breaker_new(unsigned n, const breaker_config *cfg, breaker_change_fn *on_change,
                         void *arg);
/* NULL is harmless. */
void breaker_free(breaker_set *b);
/* 0 when the set was made with threshold 0. */
int breaker_enabled(const breaker_set *b);

/* Whether a message of type idx (< n) may go to a worker now.
 * BREAKER_ALLOW: yes.  BREAKER_PROBE: yes, and it is this breaker's
 * half-open probe: the caller must later pass its outcome with
 * was_probe set, or call breaker_probe_abandoned().  BREAKER_REJECT:
 * answer circuit_open; *retry_after_ms (if not NULL) is set to the
 * retryAfterMs to report, always >= 1.  May move OPEN -> HALF_OPEN. */
breaker_decision breaker_admit(breaker_set *b, unsigned idx, uint64_t now_ms,
                               uint64_t *retry_after_ms);
/* The outcome of an admitted message of type idx: failed is non-zero for
 * agent_error and timeout answers; was_probe is non-zero when admit gave
 * it BREAKER_PROBE.  Outcomes that say nothing about the type (the
 * message was cancelled, its worker died) are best not recorded; for a
 * probe, call breaker_probe_abandoned() instead. */
void breaker_record(breaker_set *b, unsigned idx, uint64_t now_ms, int failed, int was_probe);
/* Releases idx's probe without an outcome: the breaker stays HALF_OPEN
 * and the next admitted message becomes the probe.  Does nothing when no
 * probe is in flight. */
void breaker_probe_abandoned(breaker_set *b, unsigned idx);

breaker_state breaker_state_of(const breaker_set *b, unsigned idx);
/* Fills *out with idx's state and counters as of now_ms. */
void breaker_info_of(const breaker_set *b, unsigned idx, uint64_t now_ms, breaker_info *out);
/* How many breakers of the set are in state s. */
unsigned breaker_count_in(const breaker_set *b, breaker_state s);
/* "closed", "open", "half_open". */
const char *breaker_state_name(breaker_state s);

#endif
