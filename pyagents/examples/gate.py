# SPDX-License-Identifier: BSD-2-Clause
"""GateAgent / AsyncGateAgent: hold messages until a file exists.

A message with data {"file": PATH, "seq": N} is answered with
{"released": true, "seq": N} once PATH exists.  Tests use them to keep
messages in flight for as long as they like, with no timing guesses.

GateAgent is sync: it polls the file every few milliseconds and blocks its
worker meanwhile.  AsyncGateAgent holds any number of messages at once
(one poller task checks all files); message type "gate.release" releases
everything it holds at once, without a file, and answers
{"released": N}.  A message without "file" waits for a gate.release.
Its health() reports how many messages it holds.
"""

import asyncio
import os
import time

from pyagents import Agent

POLL_SECONDS = 0.005


def _args(data):
    if not isinstance(data, dict):
        data = {}
    return data.get("file"), data.get("seq")


class GateAgent(Agent):
    capabilities = ("gate",)

    def handle_message(self, type, data):
        path, seq = _args(data)
        if not isinstance(path, str):
            raise ValueError("gate needs data {\"file\": PATH}")
        while not os.path.exists(path):
            time.sleep(POLL_SECONDS)
        return {"released": True, "seq": seq}


class AsyncGateAgent(Agent):
    capabilities = ("gate",)

    def __init__(self):
        super().__init__()
        self._waiting = {}  # path (or None: release only) -> [futures]
        self._poller = None

    def _held(self):
        return sum(len(f) for f in self._waiting.values())

    def health(self):
        return {"held": self._held()}

    def metrics(self):
        m = super().metrics()
        m["held"] = self._held()
        return m

    async def handle_message(self, type, data):
        if type == "gate.release":
            n = 0
            for futures in self._waiting.values():
                for fut in futures:
                    if not fut.done():
                        fut.set_result(True)
                        n += 1
            self._waiting.clear()
            return {"released": n}
        path, seq = _args(data)
        if path is not None and not isinstance(path, str):
            raise ValueError("gate needs data {\"file\": PATH}")
        if path is not None and os.path.exists(path):
            return {"released": True, "seq": seq}
        fut = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(path, []).append(fut)
        if path is not None and self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        try:
            await fut
        finally:
            futures = self._waiting.get(path)
            if futures and fut in futures:
                futures.remove(fut)
                if not futures:
                    del self._waiting[path]
        return {"released": True, "seq": seq}

    async def _poll(self):
        try:
            while any(p is not None for p in self._waiting):
                for path in [p for p in self._waiting if p is not None]:
                    if os.path.exists(path):
                        for fut in self._waiting.pop(path):
                            if not fut.done():
                                fut.set_result(True)
                await asyncio.sleep(POLL_SECONDS)
        finally:
            self._poller = None
