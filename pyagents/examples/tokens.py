# SPDX-License-Identifier: BSD-2-Clause
"""TokensAgent / GeventTokensAgent / AsyncTokensAgent: a model's token stream.

Message ``tokens`` with data ``{"n": N, "size": S, "ms": M}`` streams N
chunks (default 10), each a string of S bytes (default 8) ``"t<seq>..."``
padded with ``x``, M milliseconds apart (default 0), and returns
``{"chunks": N}``.  Sent with ``"stream": true`` the client gets one chunk
line per token as it is made; without it, one answer
``{"chunks": [...], "return": {"chunks": N}}``.

* TokensAgent: a generator on the sync model (its worker streams one
  message at a time, and waits while its client does not read).
* GeventTokensAgent: the same generator, for ``workerModel`` ``gevent``
  (``time.sleep`` is patched: the other greenlets run meanwhile).
* AsyncTokensAgent: an async generator on the async model.

Message ``emit`` (all three) streams the same chunks through
``pyagents.context().emit(value)`` from a plain loop, as code that streams
from callbacks does.

TokensAgent also answers A2A messages (docs/a2a.md) through
``handle_a2a_message(message, ctx)``: the first part's data (the same
``{"n", "size", "ms"}``), or a text part holding N, streams as ``tokens``
does (bench/a2a's streamed tokens per second).
"""

import asyncio
import time

from pyagents import Agent, context


def _args(data):
    data = data if isinstance(data, dict) else {}
    n, size, ms = data.get("n", 10), data.get("size", 8), data.get("ms", 0)
    for name, v in (("n", n), ("size", size), ("ms", ms)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ValueError('tokens needs data {"n": N, "size": S, "ms": M} with numbers >= 0, not %s=%r' % (name, v))
    return int(n), int(size), ms / 1000.0


def token(i, size):
    """Chunk i: "t<i>" padded with "x" to size characters (at least the prefix)."""
    t = "t%d" % i
    return t + "x" * (size - len(t)) if size > len(t) else t


class TokensAgent(Agent):
    capabilities = ("tokens", "emit")

    def handle_tokens(self, data):
        n, size, pause = _args(data)
        for i in range(n):
            if pause and i:
                time.sleep(pause)
            yield token(i, size)
        return {"chunks": n}

    def handle_emit(self, data):
        n, size, pause = _args(data)
        ctx = context()
        for i in range(n):
            if pause and i:
                time.sleep(pause)
            ctx.emit(token(i, size))
        return {"chunks": n}

    def handle_a2a_message(self, message, ctx):
        part = (message.get("parts") or [{}])[0]
        data = part.get("data")
        if data is None:
            data = {"n": int(part.get("text") or 10)}
        return self.handle_tokens(data)


class GeventTokensAgent(TokensAgent):
    """The same code: on gevent's hub, time.sleep and the window's wait
    yield to the other greenlets."""


class AsyncTokensAgent(Agent):
    capabilities = ("tokens", "emit")

    async def handle_tokens(self, data):
        n, size, pause = _args(data)
        for i in range(n):
            if pause and i:
                await asyncio.sleep(pause)
            yield token(i, size)

    async def handle_emit(self, data):
        n, size, pause = _args(data)
        ctx = context()
        for i in range(n):
            if pause and i:
                await asyncio.sleep(pause)
            await ctx.emit(token(i, size))
        return {"chunks": n}
