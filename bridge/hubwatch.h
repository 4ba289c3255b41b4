/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hubwatch.h - noticing an event loop that something holds: a handler
 * that never yields in a gevent worker (a busy loop, a C call gevent
 * could not patch), or a coroutine step that blocks an asyncio worker
 * (time.sleep or requests.get inside async def).  See hubwatch.c.
 */
#ifndef BRIDGE_HUBWATCH_H
#define BRIDGE_HUBWATCH_H

#include <Python.h>

typedef enum {
    HUBWATCH_GEVENT,  /* loop: gevent's hub loop; logged once per hubBlockedWarnMs while held */
    HUBWATCH_ASYNCIO  /* loop: an asyncio loop; logged once per site (file:line), counted each time */
} hubwatch_kind;

/* Starts watching `loop` (borrowed; kept) when bridge.hub_blocked_warn_ms
 * is above 0.  Failures are logged: the worker then serves without the
 * watch.  Call from the main thread, once the loop exists. */
void hubwatch_start(hubwatch_kind kind, PyObject *loop);

/* Stops the watch (joins its thread) and drops its references. */
void hubwatch_stop(void);

#endif
