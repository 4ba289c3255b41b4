/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sessrun.h - how the messages of a session move: one at a time, in
 * acceptance order, on the worker of the session's previous message
 * when it can (docs/sessions.md).
 *
 * At reception (client.c) a request naming a session takes a reference
 * on it (session.c) or is refused: sessions off (bad_request), maxSessions
 * tracked and none idle (too_many_sessions), or, with sessionBusy
 * "reject", its session has a message in the master (session_busy).  At
 * acceptance (sched_admit) a message whose session runs another waits in
 * the session's FIFO (MSG_SESSION_WAIT), counted against the pool's
 * queue bound; with "interrupt" the session's running message and those
 * waiting before it are cancelled as pool.cancel does (cancel.c) and it
 * runs next.  When a session's message ends (answer_end, the one end of
 * a message) the session's next one goes to the head of the pool queue.
 * A retried message stays its session's running one.  The worker is
 * chosen by sched.c, which asks sessrun_preferred first.
 */
#ifndef AP_SESSRUN_H
#define AP_SESSRUN_H

#include "reply.h"
#include "scan.h"

struct client;
struct msg;
struct pool;
struct session;

/* The session request r (on c, for pool p, of type type_idx) names:
 * AP_OK with *out (a reference taken, NULL when r names none), or
 * AP_ERR when the request was refused and answered, as above. */
int sessrun_take(struct client *c, const char *line, const scan_result *r, struct pool *p, unsigned type_idx,
                 struct session **out);
/* Whether m, being accepted, must wait for its session. */
int sessrun_must_wait(const struct msg *m);
/* m (accepted, counted against the queue bound) waits in its session's
 * FIFO; with sessionBusy "interrupt" what runs or waits before it is
 * cancelled first. */
void sessrun_wait(struct msg *m);
/* m (accepted, its session idle) is its session's running message. */
void sessrun_begin(struct msg *m);
/* m ends (answer_end): out of its session's FIFO, or, when it was the
 * running one, the next waiting message goes to the head of the pool
 * queue; its reference is dropped. */
void sessrun_end(struct msg *m);
/* n takes m's place (retryOnTimeout's copy): n is the session's
 * running message, m no longer names the session. */
void sessrun_take_over(struct msg *m, struct msg *n);
/* The worker entry m should go to: its session's last, when that worker
 * is accepting and has a free slot; else -1 (the strategy picks). */
int sessrun_preferred(const struct msg *m);
/* m goes to worker entry i: counts an affinity hit or a move. */
void sessrun_sent(struct msg *m, int i);
/* Answers with code every message of p waiting for its session. */
unsigned sessrun_fail_waiting(struct pool *p, reply_code code, const char *why);

#endif
