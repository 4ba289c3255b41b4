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
Ready-made agents for tests and demos live in :mod:`pyagents.examples`.
"""

from .agent import Agent, UnknownMessageType, handler_name

__all__ = ["Agent", "UnknownMessageType", "handler_name"]
__version__ = "0.1.0"
