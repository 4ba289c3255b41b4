/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstate.h - ctx.session on the worker's side: the session state a
 * REQUEST carries (AP_FRAME_REQ_SESSION) and the STATE frames that give
 * it back to the master (docs/sessions.md, include/ap_frame.h).
 *
 * A message with a session gets a Session (a dict subclass with save())
 * made from the state's JSON text; the text last given to or sent to the
 * master is kept with it, so a STATE frame goes out only when the state
 * changed.  msg.c calls sstate_end before a message's RESULT (the STATE
 * frame precedes it) and sstate_forget on every other answer, so no
 * state leaves after an exception.  Include Python.h first.
 */
#ifndef BRIDGE_SSTATE_H
#define BRIDGE_SSTATE_H

#include <stddef.h>
#include <stdint.h>

/* sstate_end's refusal: the state's JSON is over --max-session-bytes. */
#define SSTATE_TOO_LARGE (-2)

/* Adds Session and _session_save to the _agentpool module (after
 * hctx_init).  AP_OK, or AP_ERR with a Python error set. */
int sstate_init(void);

/* The Session of message id made from text[0..len) (a JSON object) and
 * remembered with that text.  Returns a new reference, or NULL with a
 * Python error set (not JSON, not an object; nothing remembered). */
PyObject *sstate_open(uint64_t id, const char *text, size_t len);

/* At the end of message id's handler, before its RESULT: appends a
 * STATE frame to bridge.out when its state differs from the text last
 * given or sent (nothing when id has no session) and forgets the
 * message.  Returns AP_OK; SSTATE_TOO_LARGE with why set ("session
 * state too large (N bytes, limit M)"), or AP_ERR with a Python error set
 * (not JSON): then nothing is appended. */
int sstate_end(uint64_t id, char *why, size_t cap);

/* Forgets message id's session without sending anything (it failed). */
void sstate_forget(uint64_t id);

void sstate_fini(void);

#endif
