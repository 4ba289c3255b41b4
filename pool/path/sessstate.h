/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sessstate.h - session state in the master (docs/sessions.md, State):
 * reading a session's state from its pool's store before its message is
 * sent, carrying it to the worker, committing what the worker's STATE
 * frames say, and holding the message's answer until that is durable.
 *
 * A session message goes to a worker only when its session's state is
 * READY in the master (session.h) and no commit of it is in flight
 * (sessstate_ready); otherwise it waits as MSG_STORE_WAIT, the state is
 * read (once, for every message that waits on it), and the store's
 * answer sends it on, or answers it store_unavailable.  The worker's
 * STATE frames are committed in order as they come (sstore_put); its
 * RESULT or ERROR is held (MSG_COMMITTING) until every commit is done,
 * then written, or replaced by store_unavailable when one failed (the
 * session keeps the state of its last successful commit).  A message
 * that sent no state only touches the store, now and then, so its
 * session's TTL counts from its last message.  Idle sessions' cached
 * states are bounded by sessionCacheBytes (least recently used dropped).
 *
 * Pools with sessionStore "none" carry no state: every call here is a
 * no-op for them.
 */
#ifndef AP_SESSSTATE_H
#define AP_SESSSTATE_H

#include "ap_frame.h"

#include <stdint.h>

struct evbuffer;
struct msg;
struct pool;
struct session;
struct worker;

/* Opens p's store at start-up (wait_ready: fails when it cannot be
 * reached) or when sessions are turned on by a reload.  AP_OK when p
 * has sessions off (nothing opened), else AP_ERR (logged). */
int sessstate_open(struct pool *p, int wait_ready);
/* Closes p's store (writes handed over are finished first). */
void sessstate_close(struct pool *p);

/* Whether m (a session's running message) may be sent now: its
 * session's state is in the master and no commit of it is in flight. */
int sessstate_ready(const struct msg *m);
/* m (its session's running message, not ready) waits for the store: it
 * is sent on (queued at the head of its pool) or answered when the
 * store answers.  The caller says whether it holds a place of the
 * queue's bound (m->store_hold: an accepted message does; a retried one,
 * accepted long ago, does not), given back when it moves on or ends. */
void sessstate_wait(struct msg *m);

/* The state m's REQUEST carries (AP_FRAME_REQ_SESSION): 1 with *text and
 * *len, or 0 when m carries none (no session, or store "none"). */
int sessstate_text(const struct msg *m, const char **text, uint32_t *len);

/* A STATE frame h (payload, h->len bytes) from w. */
void sessstate_frame(struct worker *w, const ap_frame_hdr *h, const char *payload);

/* w answered m (a RESULT or ERROR, worker released, m RUNNING): 0 when
 * the answer may be written now; 1 when sessstate took it (held until
 * the commits are done, or answered store_unavailable / agent_error at
 * once).  src as for answer_ok_moved. */
int sessstate_answer(struct msg *m, const ap_frame_hdr *h, const char *payload, struct evbuffer *src);

/* s (of p) was idle and a request names it again: a cached state older
 * than sessionTtl is dropped (the store has expired it too), so the
 * message reads what the store has. */
void sessstate_fresh(struct pool *p, struct session *s);

/* A session message of p ended: drops idle states past sessionCacheBytes. */
void sessstate_trim(struct pool *p);

#endif
