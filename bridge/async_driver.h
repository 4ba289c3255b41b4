/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * async_driver.h - serving an async agent on one asyncio event loop.
 */
#ifndef BRIDGE_ASYNC_DRIVER_H
#define BRIDGE_ASYNC_DRIVER_H

#include "bridge.h"

/* Creates the event loop (set as the current one, so on_start() and the
 * agent's constructor-time code see it) and looks up the loop methods
 * used per message.  Sets bridge.run_until_complete.  Returns AP_OK, or
 * AP_ERR with a Python exception set. */
int async_driver_init(void);

/* Serves until STOP (once every message in flight has been answered) or
 * until the master goes away. */
bridge_end async_driver_run(void);

/* Shuts the loop down (async generators, then close) and drops the
 * driver's references.  Call after on_stop(). */
void async_driver_fini(void);

#endif
