/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * breaker.c - per-type circuit breakers (see breaker.h for the rules).
 *
 * Every state change goes through set_state(), which asserts that the
 * move is one of the four legal ones (closed -> open, open -> half_open,
 * half_open -> open, half_open -> closed), keeps the per-state counts and
 * reports the change to the caller.  Failure history: br->ring is this
 * breaker's `threshold` slots in the set's one times[] block; head is the
 * slot the next failure overwrites, nfail how many slots hold a failure.
 * When the ring is full, ring[head] is the oldest of the last `threshold`
 * failures, so "threshold failures within window" is one comparison.
 * The ring is only written in CLOSED and is emptied when a probe closes
 * the breaker.
 */
#include "breaker.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <assert.h>
#include <stddef.h>

typedef struct {
    breaker_state state;
    int probe_out;
    unsigned head, nfail;
    uint64_t opened_at;     /* when it last moved to OPEN */
    uint64_t *ring;         /* threshold slots, NULL when breakers are off */
    uint64_t opened, rejected, probes, failures;
} breaker;

struct breaker_set {
    breaker *br;
    uint64_t *times;
    unsigned n;
    breaker_config cfg;
    unsigned in_state[BREAKER_NSTATES];
    breaker_change_fn *on_change;
    void *arg;
};

static const char *const state_names[BREAKER_NSTATES] = {
    [BREAKER_CLOSED] = "closed",
    [BREAKER_OPEN] = "open",
    [BREAKER_HALF_OPEN] = "half_open",
};

const char *breaker_state_name(breaker_state s)
{
    return (unsigned)s < BREAKER_NSTATES ? state_names[s] : "unknown";
}

/* Milliseconds from `then` to `now`, 0 if the clock seems to go back. */
static uint64_t elapsed(uint64_t then, uint64_t now)
{
    return now > then ? now - then : 0;
}

static int legal_move(breaker_state from, breaker_state to)
{
    switch (from) {
    case BREAKER_CLOSED:
        return to == BREAKER_OPEN;
    case BREAKER_OPEN:
        return to == BREAKER_HALF_OPEN;
    case BREAKER_HALF_OPEN:
        return to == BREAKER_OPEN || to == BREAKER_CLOSED;
    }
    return 0;
}

/* The one place a breaker changes state.  c carries the details; its
 * from/to are filled in here. */
static void set_state(breaker_set *b, unsigned idx, breaker_state to, uint64_t now_ms,
                      breaker_change *c)
{
    breaker *br = &b->br[idx];
    assert(legal_move(br->state, to));
    c->from = br->state;
    c->to = to;
    b->in_state[br->state]--;
    b->in_state[to]++;
    br->state = to;
    br->probe_out = 0;
    if (to == BREAKER_OPEN) {
        br->opened_at = now_ms;
        br->opened++;
        c->open_ms = b->cfg.reset_ms;
    } else if (to == BREAKER_CLOSED) {
        br->head = br->nfail = 0;
    }
    if (b->on_change)
        b->on_change(b->arg, idx, c);
}

breaker_set *breaker_new(unsigned n, const breaker_config *cfg, breaker_change_fn *on_change,
                         void *arg)
{
    if (cfg->threshold > BREAKER_MAX_THRESHOLD || (cfg->threshold > 0 && cfg->window_ms == 0))
        return NULL;
    breaker_set *b = ap_calloc(1, sizeof(*b));
    b->n = n;
    b->cfg = *cfg;
    b->on_change = on_change;
    b->arg = arg;
    b->br = ap_calloc(n ? n : 1, sizeof(breaker));
    if (cfg->threshold > 0)
        b->times = ap_calloc((size_t)(n ? n : 1) * cfg->threshold, sizeof(uint64_t));
    for (unsigned i = 0; i < n; i++) {
        b->br[i].state = BREAKER_CLOSED;
        b->br[i].ring = b->times ? b->times + (size_t)i * cfg->threshold : NULL;
    }
    b->in_state[BREAKER_CLOSED] = n;
    return b;
}

void breaker_free(breaker_set *b)
{
    if (b == NULL)
        return;
    ap_free(b->times);
    ap_free(b->br);
    ap_free(b);
}

int breaker_enabled(const breaker_set *b)
{
    return b->cfg.threshold > 0;
}

breaker_decision breaker_admit(breaker_set *b, unsigned idx, uint64_t now_ms,
                               uint64_t *retry_after_ms)
{
    assert(idx < b->n);
    breaker *br = &b->br[idx];
    uint64_t wait;
    if (br->state == BREAKER_CLOSED)
        return BREAKER_ALLOW;
    if (br->state == BREAKER_OPEN) {
        uint64_t open_for = elapsed(br->opened_at, now_ms);
        if (open_for < b->cfg.reset_ms) {
            wait = b->cfg.reset_ms - open_for;
            goto reject;
        }
        breaker_change c = {0};
        set_state(b, idx, BREAKER_HALF_OPEN, now_ms, &c);
    }
    /* HALF_OPEN: this message is the probe unless one is out already. */
    if (!br->probe_out) {
        br->probe_out = 1;
        br->probes++;
        return BREAKER_PROBE;
    }
    wait = b->cfg.reset_ms;
reject:
    br->rejected++;
    if (retry_after_ms)
        *retry_after_ms = wait ? wait : 1;
    return BREAKER_REJECT;
}

void breaker_record(breaker_set *b, unsigned idx, uint64_t now_ms, int failed, int was_probe)
{
    assert(idx < b->n);
    if (b->cfg.threshold == 0)
        return;
    breaker *br = &b->br[idx];
    if (failed)
        br->failures++;
    if (br->state == BREAKER_HALF_OPEN) {
        if (!was_probe || !br->probe_out)
            return; /* a late outcome: only the probe decides */
        breaker_change c = {0};
        set_state(b, idx, failed ? BREAKER_OPEN : BREAKER_CLOSED, now_ms, &c);
        return;
    }
    if (br->state != BREAKER_CLOSED || !failed)
        return;
    unsigned threshold = b->cfg.threshold;
    br->ring[br->head] = now_ms;
    br->head = br->head + 1 == threshold ? 0 : br->head + 1;
    if (br->nfail < threshold)
        br->nfail++;
    if (br->nfail < threshold)
        return;
    uint64_t span = elapsed(br->ring[br->head], now_ms); /* ring[head]: the oldest */
    if (span >= b->cfg.window_ms)
        return;
    breaker_change c = {.failures = threshold, .span_ms = span};
    set_state(b, idx, BREAKER_OPEN, now_ms, &c);
}

void breaker_probe_abandoned(breaker_set *b, unsigned idx)
{
    assert(idx < b->n);
    breaker *br = &b->br[idx];
    if (br->state == BREAKER_HALF_OPEN)
        br->probe_out = 0;
}

breaker_state breaker_state_of(const breaker_set *b, unsigned idx)
{
    assert(idx < b->n);
    return b->br[idx].state;
}

void breaker_info_of(const breaker_set *b, unsigned idx, uint64_t now_ms, breaker_info *out)
{
    assert(idx < b->n);
    const breaker *br = &b->br[idx];
    *out = (breaker_info){
        .state = br->state,
        .probe_out = br->probe_out,
        .opened = br->opened,
        .rejected = br->rejected,
        .probes = br->probes,
        .failures = br->failures,
    };
    for (unsigned i = 0; i < br->nfail; i++)
        if (elapsed(br->ring[i], now_ms) < b->cfg.window_ms)
            out->failures_in_window++;
    if (br->state == BREAKER_OPEN) {
        uint64_t open_for = elapsed(br->opened_at, now_ms);
        out->retry_after_ms = open_for < b->cfg.reset_ms ? b->cfg.reset_ms - open_for : 0;
    }
}

unsigned breaker_count_in(const breaker_set *b, breaker_state s)
{
    return (unsigned)s < BREAKER_NSTATES ? b->in_state[s] : 0;
}
