/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sched.h - admission: where an accepted message goes next.
 *
 * A message is sent to a worker the strategy picks when one has a free
 * slot and nothing older is waiting; otherwise it joins the bounded FIFO.
 * When the queue or maxPendingBytes is full the caller applies the
 * overflow rule.  sched_pump() runs whenever capacity appears (a result,
 * a worker ready): the oldest queued message always takes the freed slot,
 * then connections waiting for queue room are let in.
 */
#ifndef AP_SCHED_H
#define AP_SCHED_H

#include "msg.h"

struct event_base;
struct pool;

typedef enum { SCHED_SENT = 0, SCHED_QUEUED, SCHED_FULL } sched_result;

/* Admits m (state NEW or HELD).  SCHED_FULL changes nothing except the
 * queue's rejected count when count_reject is set. */
sched_result sched_admit(msg *m, int count_reject);
/* Whether connections paused for room (overflow block) may resume: a
 * quarter of the queue and of maxPendingBytes free. */
int sched_room_to_resume(const struct pool *p);
/* Sends p's queued messages while its workers have room, then admits
 * messages held for it. */
void sched_pump(struct pool *p);
/* The same, once, at the end of this loop turn: safe from any caller
 * (answer_end asks for it whenever a message ends). */
void sched_pump_soon(struct pool *p);
/* sched_pump_soon for every pool (a connection that held messages for
 * any of them may be read again). */
void sched_pump_all_soon(void);
/* The deferred pump's event.  AP_ERR (logged) when it cannot be made. */
int sched_init(struct event_base *base);
void sched_free(void);
/* Accounts for a message leaving the pool (answered or dropped). */
void sched_release(msg *m);

#endif
