# SPDX-License-Identifier: BSD-2-Clause
"""pyagents - write agents for agentpool in Python.

An agent is a class whose ``handle_message(type, data)`` receives one
message (``type`` is a str such as ``"chat.reply"``, ``data`` the request's
JSON value as Python objects) and returns a JSON-serialisable answer, or
raises to report an error.  agentpool's worker (``agentpool-worker``)
imports the class named by ``--agent MODULE:ATTR``, instantiates it with
no arguments and serves it; ``async def`` handlers are run as tasks on one
event loop, many at a time.

Subclass :class:`Agent` to get per-type dispatch (``handle_chat_reply``
for type ``"chat.reply"``), ``agent_id`` / ``capabilities`` /
``max_queue_size`` attributes and extra fields for ``agent.metrics``.
A handler may take a third parameter, the message's context, or call
:func:`context` from anywhere while it runs: the client's ``id``, the
``type``, the ``deadline`` (``time.monotonic()`` seconds) and
``remaining()``, the ``attempt`` (1, then 2 after a crash retry...), the
``worker``, its ``pid``, the ``pool``, ``session`` (the session's state,
a dict, or None), ``resume`` (the last checkpoint of an earlier attempt,
or None), ``checkpoint(value)``, ``require_input(prompt)`` (the turn ends
asking for input: an A2A task's INPUT_REQUIRED) and ``log``, a
``logging.Logger`` whose lines go to agentpoold's log tagged with the
message id.  An agent may also define ``handle_a2a_message(message,
ctx)`` for A2A messages (docs/a2a.md).

Ready-made agents for tests and demos live in :mod:`pyagents.examples`.
"""

import sys

from .agent import Agent, UnknownMessageType, handler_name

__all__ = ["Agent", "UnknownMessageType", "handler_name", "context"]


def context():
    """The context of the message the calling handler is running (see the
    module's docstring); works in sync, async and gevent agents alike.
    Raises LookupError outside a handler run by agentpool-worker."""
    bridge = sys.modules.get("_agentpool")
    if bridge is None:
        raise LookupError("pyagents.context() is only available inside agentpool-worker")
    return bridge.context()
__version__ = "0.1.0"
