/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_bgjob.h - one function run on a thread of its own, for the master's
 * rare blocking work (reading a file at a reload) that the event loop
 * must not wait for (see common/bgjob.c).
 *
 * The loop starts a job, looks at ap_bgjob_done() from its tick and,
 * once it is done, calls ap_bgjob_join() (which then returns at once) and
 * reads what the function left in its argument.  The function must touch
 * nothing but its argument: no log, no server state.  Here, not in
 * pool/, because the master's include path has a sched.h of its own,
 * which <pthread.h> would pick up.
 */
#ifndef AP_BGJOB_H
#define AP_BGJOB_H

#include <stddef.h>

typedef struct ap_bgjob ap_bgjob;

/* Runs fn(arg) on a new thread with every signal blocked.  Returns the
 * job, or NULL with err filled ("pthread_create: <reason>") and fn not
 * run. */
ap_bgjob *ap_bgjob_start(void (*fn)(void *), void *arg, char *err, size_t errlen);
/* 1 once fn has returned, else 0.  Never blocks. */
int ap_bgjob_done(const ap_bgjob *j);
/* Waits for fn to return (at once when ap_bgjob_done) and frees j. */
void ap_bgjob_join(ap_bgjob *j);

#endif
