# SPDX-License-Identifier: BSD-2-Clause
"""brokeragent.py - the async agent test_broker.py runs behind the broker.

Served with --python-path tests/integration/agents.  By message type:
  echo   -> returns {"data": data, "pid": the worker's pid}
  sleep  -> awaits data["ms"] ms, returns {"slept_ms": ms, "pid": pid}
  wait   -> awaits until data["file"] exists (at most 60 s), returns "done"
  stream -> (BrokerStreamer) yields "c0" .. "c<n-1>" (data["n"]); with
            data["size"], chunk i is its number in 6 digits and size x's
  crash  -> the worker process exits 7 at once (every attempt)
"""
import asyncio
import os
import time


class BrokerAgent:
    async def handle_message(self, type, data):
        if type == "crash":
            os._exit(7)
        if type == "sleep":
            await asyncio.sleep(data["ms"] / 1000.0)
            return {"slept_ms": data["ms"], "pid": os.getpid()}
        if type == "wait":
            end = time.monotonic() + 60.0
            while not os.path.exists(data["file"]) and time.monotonic() < end:
                await asyncio.sleep(0.01)
            return "done"
        return {"data": data, "pid": os.getpid()}


class BrokerStreamer:
    async def handle_message(self, type, data):
        if type == "crash":
            os._exit(7)
        size = data.get("size", 0)
        gate = data.get("gate")  # a file: after the first chunk, the rest waits until it exists
        for i in range(data["n"]):
            yield ("c%d" % i) if not size else ("%06d" % i) + "x" * size
            while i == 0 and gate and not os.path.exists(gate):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)
