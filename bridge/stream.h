/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stream.h - a streaming handler's chunks, on the worker's side.
 *
 * A handler streams when it is a generator (sync and gevent models), an
 * async generator (async model), or calls ctx.emit(value).  Each chunk is
 * encoded like a result (JSON, at most bridge.max_result_bytes) into a
 * CHUNK frame for the message, and counted in the message's bytes in
 * flight; the master's CREDIT frames give bytes back as the client takes
 * them.  A chunk is sent while the bytes in flight are below the window
 * (bridge.stream_window); the next chunk of a stream whose window is
 * full waits, which suspends only its own handler: the sync model's
 * worker waits for credit reading its socket (bridge.stream_wait), a
 * gevent greenlet waits on an Event, an asyncio task awaits a future.
 * (So a handler's last chunk never holds its answer back.)  The final RESULT of a message that streamed
 * carries AP_FRAME_RESULT_STREAMED.  Include Python.h first.
 */
#ifndef BRIDGE_STREAM_H
#define BRIDGE_STREAM_H

#include <stdint.h>
#include <stddef.h>

/* Adds the stream helpers to the _agentpool module (made by hctx_init):
 * the chunk and wait functions, the drivers of generators, and
 * Context.emit.  Returns AP_OK, or AP_ERR with a Python error set. */
int stream_init(void);
void stream_fini(void);

/* What a handler returned, made ready for its driver (res consumed):
 * a generator is run to its end here, its chunks sent (the return value
 * comes back); an async generator becomes a coroutine that runs it (for
 * the async driver to make a task of).  Anything else comes back as it
 * is.  NULL with an error set when the stream failed. */
PyObject *stream_wrap(uint64_t id, PyObject *res);

/* Message id is answered: forgets its stream.  Returns 1 when it had one
 * (its RESULT is marked streamed), else 0. */
int stream_end(uint64_t id);

/* A CREDIT frame for id (payload of len bytes): gives bytes back to its
 * window and wakes its handler if it waits and the window has room. */
void stream_credit(uint64_t id, const unsigned char *payload, size_t len);

/* Whether message id's stream has its window full (0 when it has none). */
int stream_full(uint64_t id);

/* Whether the pending Python exception is the master's cancellation of
 * a stream (raised in a sync worker at a chunk). */
int stream_cancel_pending(void);

/* Raises the cancellation of a stream (for the sync driver's hook). */
void stream_raise_cancelled(uint64_t id);

#endif
