# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.common - what the sync and asyncio clients share.

default_path() is the socket the server uses by default; PoolCalls gives
both clients the pool.* requests as methods, written once: each calls
self.send(), so the sync client returns the result and the asyncio one
an awaitable.
"""
import os

DEFAULT_SOCKET = "/tmp/agentpool.sock"
CONNECT_TIMEOUT = 5.0
# How long past its own timeout a request waits for the server's answer
# (the server answers `timeout` itself; this only covers a server that
# stopped answering while the connection stays up).
ANSWER_GRACE = 5.0
SEND_OPTIONS = ("timeout", "pool", "session", "retry", "idempotency_key")


def default_path(path=None):
    """path, else $AGENTPOOL_SOCKET, else /tmp/agentpool.sock."""
    return path or os.environ.get("AGENTPOOL_SOCKET") or DEFAULT_SOCKET


def local_deadline(timeout):
    """Seconds to wait for an answer (None: as long as it takes)."""
    return None if timeout is None else timeout + ANSWER_GRACE


class PoolCalls:
    """The master's requests (docs/protocol.md, Master requests)."""

    def ping(self):
        return self.send("pool.ping")

    def health(self):
        return self.send("pool.health")

    def stats(self, detailed=False):
        return self.send("pool.stats", {"detailed": True} if detailed else None)

    def history(self):
        return self.send("pool.history")

    def scale(self, n):
        return self.send("pool.scale", {"workers": n})

    def reload(self):
        return self.send("pool.reload")
