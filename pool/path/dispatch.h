/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dispatch.h - choosing a worker for a message.
 *
 * Each strategy is one small named function over the workers' loads: it
 * returns the index of a worker that is accepting and has a free slot,
 * or -1 when none has.  dispatch_pick runs the strategy twice at most:
 * first over free slots only, then, when every slot is taken, over
 * prefetch room (a fast sync worker taking messages to hold behind the
 * one it runs), so a message never waits in a busy worker while another
 * worker is idle.  Never blocks, never touches clients, messages or
 * sockets; the caller queues the message when the answer is -1.  The
 * loads are read through a base pointer and a stride so the worker table
 * can embed dispatch_load directly (no copy per message).
 */
#ifndef AP_DISPATCH_H
#define AP_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int accepting;        /* takes new messages (ready, not draining) */
    int suspect;          /* left what it was sent unread for dispatchAckMs (suspect.c): not chosen */
    int slots;            /* 1 for a sync agent, concurrency for async */
    int ahead;            /* prefetch: messages it may hold beyond its slots */
    int in_flight;
    uint64_t processed;
} dispatch_load;

/* Messages worker l can be sent now without waiting, its prefetch room
 * included (what dispatch_pick's second pass would still give it): 0
 * when none.  The broker reads that many entries at most (broker.c). */
static inline int dispatch_room(const dispatch_load *l)
{
    int n = l->slots + l->ahead - l->in_flight;
    return l->accepting && !l->suspect && n > 0 ? n : 0;
}

typedef struct {
    int room;             /* 0: free slots only; 1: prefetch room counts too */
    unsigned next;        /* round-robin: where the rotation resumes */
    uint64_t rng;         /* random: xorshift64* state, never 0 */
    uint64_t picks[3];    /* how often each strategy chose a worker */
    uint64_t none;        /* how often no worker had a free slot */
    uint64_t ahead;       /* how often a message went to prefetch room */
} dispatch_state;

void dispatch_init(dispatch_state *st, uint64_t seed);

int dispatch_round_robin(dispatch_state *st, const void *base, size_t stride, int n);
int dispatch_least_busy(dispatch_state *st, const void *base, size_t stride, int n);
int dispatch_random(dispatch_state *st, const void *base, size_t stride, int n);

/* Runs the strategy numbered as lb_strategy in config.h. */
int dispatch_pick(dispatch_state *st, int strategy, const void *base, size_t stride, int n);

#endif
