# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client - talk to agentpoold from Python (stdlib only).

Client (blocking, thread-safe, gevent-friendly) and AsyncClient
(asyncio) send requests over one pipelined connection each and raise one
exception class per error code.  docs/client.md describes them.

    from pyagents.client import Client
    with Client() as c:
        print(c.send("echo", {"hello": 1}))
"""
from .aio import AsyncClient
from .errors import (AgentError, AgentpoolError, BadRequest, Cancelled, CircuitOpen,
                     ConnectionLost, Forbidden, QueueFull, RateLimited, SessionBusy, ShuttingDown, Timeout,
                     TooLarge, TooManyConnections, TooManySessions, StoreUnavailable, Unauthorized,
                     WorkerCrashed, error_from_response)
from .sync import Client

__all__ = ["Client", "AsyncClient", "AgentpoolError", "AgentError", "BadRequest", "Cancelled",
           "CircuitOpen", "ConnectionLost", "Forbidden", "QueueFull", "SessionBusy", "ShuttingDown",
           "Timeout", "TooLarge", "TooManyConnections", "TooManySessions", "StoreUnavailable", "WorkerCrashed",
           "error_from_response", "Unauthorized", "RateLimited"]
