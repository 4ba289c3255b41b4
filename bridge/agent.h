/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agent.h - finding, starting and stopping the Python agent.
 *
 * "--agent module:attr" names the agent.  attr (dotted names allowed) may
 * be a class, instantiated with no arguments; an object that already has
 * handle_message (a module-level instance); or a plain function
 * handle_message(type, data), served without hooks, health or metrics.
 * The agent is async when its handle_message is a coroutine function
 * (inspect.iscoroutinefunction).  Optional hooks on_start() / on_stop()
 * may be coroutines; they are awaited on the agent's event loop (async
 * agents) or run by asyncio.run (sync agents).
 * Every function here needs the GIL and fills the agent members of
 * `bridge` (bridge.h).
 */
#ifndef BRIDGE_AGENT_H
#define BRIDGE_AGENT_H

/* Imports and instantiates the agent named by spec and decides sync or
 * async.  Returns AP_OK, or AP_ERR with a Python exception set (import
 * error, missing attribute, constructor raising, not an agent). */
int agent_load(const char *spec);

/* Calls the optional hook `name` ("on_start", "on_stop") and awaits it if
 * it returns an awaitable.  Returns AP_OK (also when there is no such
 * hook), or AP_ERR with the hook's exception set. */
int agent_hook(const char *name);

/* Drops every reference the agent state holds. */
void agent_release(void);

#endif
