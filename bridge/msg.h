/*
 * msg.h - one request in, one answer frame out: the part of the message
 * path both drivers share.
 *
 * A REQUEST payload is unpacked into (type, data) Python objects; the
 * agent's return value or exception is turned into a RESULT or ERROR
 * frame appended to bridge.out; agent.metrics and PING are answered here
 * without the agent's handle_message.  Every function that answers a
 * request bumps bridge.sent (and bridge.errors for ERROR frames).  None
 * of them fails: a result that cannot be sent becomes an ERROR frame.
 */
#ifndef BRIDGE_MSG_H
#define BRIDGE_MSG_H

#include "ap_frame.h"

#include <stddef.h>
#include <stdint.h>

/* True when the request's type is "agent.metrics" (answered by the
 * bridge). */
int msg_is_metrics(const ap_frame_hdr *h, const unsigned char *payload);

/* Builds the handler's arguments from a REQUEST frame.  Returns AP_OK with
 * two new references, or AP_ERR after appending an ERROR frame (malformed
 * frame, type not UTF-8, data not JSON). */
int msg_unpack(const ap_frame_hdr *h, const unsigned char *payload, PyObject **type, PyObject **data);

/* The start every driver shares for a REQUEST: counts it, then answers it
 * at once and returns NULL when the worker is stopping, when it is
 * agent.metrics (queue_size() tells the other messages held; it is called
 * only then, so it may be slow), when the frame cannot
 * be unpacked, or when the handler raised.  Otherwise returns what the
 * handler returned (a new reference) for the driver to finish, and the
 * message's type in *type (a new reference, for msg_reply and
 * msg_reply_exception); *type is NULL when it returns NULL. */
PyObject *msg_call_handler(const ap_frame_hdr *h, const unsigned char *payload, size_t (*queue_size)(void),
                           PyObject **type);

/* Answers message id with `result` (borrowed) as a RESULT frame, or with
 * an agent_error ERROR frame when it is not JSON (logged like an
 * exception under type, a borrowed str or NULL when unknown) or when its
 * JSON is longer than bridge.max_result_bytes ("result too large (N
 * bytes, limit M)"). */
void msg_reply(uint64_t id, PyObject *result, PyObject *type);

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
