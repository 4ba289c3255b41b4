/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * msg.h - one request in, one answer frame out: the part of the message
 * path both drivers share.
 *
 * A REQUEST payload is unpacked into (type, data) Python objects; the
 * agent's return value or exception is turned into a RESULT or ERROR
 * frame appended to bridge.out (a RESULT marked streamed when the
 * handler sent chunks: stream.c); agent.metrics and PING are answered here
 * without the agent's handle_message.  Every function that answers a
 * request bumps bridge.sent (and bridge.errors for ERROR frames).  None
 * of them fails: a result that cannot be sent becomes an ERROR frame.
 */
#ifndef BRIDGE_MSG_H
#define BRIDGE_MSG_H

#include "ap_frame.h"

#include <stddef.h>
#include <stdint.h>

#include "hctx.h"

/* A REQUEST unpacked, ready for its handler (msg_prepare). */
typedef struct {
    hctx_meta meta;  /* its session and resume: new references (or NULL) msg_invoke consumes */
    PyObject *type; /* str */
    PyObject *data; /* the request's data as Python objects */
} msg_call;

/* The start every driver shares for a REQUEST: counts it, then answers it
 * at once and returns AP_ERR when the worker is stopping, when it is
 * agent.metrics (queue_size() tells the other messages held; it is called
 * only then, so it may be slow) or when the frame cannot be unpacked
 * (malformed, type not UTF-8, data, session state or resume not JSON).
 * Otherwise fills c (new references: msg_invoke consumes data and the
 * meta's session and resume, the caller releases type) and returns AP_OK. */
int msg_prepare(const ap_frame_hdr *h, const unsigned char *payload, size_t (*queue_size)(void), msg_call *c);

/* Runs the handler for c with its context set (hctx_enter) and releases
 * c->data.  Returns what the handler returned (new reference), or NULL
 * with its exception set; a generator is run to its end here, its chunks
 * sent, and an async generator comes back as the coroutine that streams
 * it (stream_wrap); *token is the context's token (hctx_leave it
 * in the same context once the handler's work has started: at once for a
 * plain def, after create_task for a coroutine), NULL when none was set. */
PyObject *msg_invoke(msg_call *c, PyObject **token);

/* msg_prepare and msg_invoke in one, for drivers that call the handler
 * right away: returns NULL when the message was answered already
 * (msg_prepare's cases, or the handler raised).  Otherwise returns what
 * the handler returned (a new reference) for the driver to finish, the
 * message's type in *type (a new reference, for msg_reply and
 * msg_reply_exception) and the context's token in *token (for
 * hctx_leave); both are NULL when it returns NULL. */
PyObject *msg_call_handler(const ap_frame_hdr *h, const unsigned char *payload, size_t (*queue_size)(void),
                           PyObject **type, PyObject **token);

/* Answers message id with `result` (borrowed) as a RESULT frame, or with
 * an agent_error ERROR frame when it is not JSON (logged like an
 * exception under type, a borrowed str or NULL when unknown) or when its
 * JSON is longer than bridge.max_result_bytes ("result too large (N
 * bytes, limit M)").  A message with a session has its STATE frame sent
 * first when the state changed (sstate_end), and is answered agent_error
 * instead, with no STATE, when the state cannot be sent ("session state
 * too large (N bytes, limit M)", or not JSON) or the result cannot. */
void msg_reply(uint64_t id, PyObject *result, PyObject *type);

/* msg_reply for what a plain def handler returned: a coroutine (an
 * async handler the bridge took for sync) is closed and answered with an
 * agent_error saying so. */
void msg_reply_plain(uint64_t id, PyObject *result, PyObject *type);

/* Answers message id with the current Python exception (cleared) as an
 * agent_error ERROR frame, and logs it at error level with its traceback
 * (pyerr_log_agent: limited per message type and exception class); type
 * is the message's type (borrowed; NULL when unknown). */
void msg_reply_exception(uint64_t id, PyObject *type);

/* Answers message id with an ERROR frame made of the given texts. */
void msg_reply_error(uint64_t id, const char *code, const char *message, const char *exception);

/* Answers an agent.metrics request; queue_size = other messages held. */
void msg_reply_metrics(uint64_t id, size_t queue_size);

/* Answers PING id with a PONG carrying health() as JSON (false when it
 * raises or is not JSON; empty when the agent has no health). */
void msg_pong(uint64_t id);

#endif
