# SPDX-License-Identifier: BSD-2-Clause
"""usageagent.py - agents that report usage with ctx.usage (test_apikeys.py).

Served with --python-path tests/integration/agents.  data members:
  "usage": {...}        ctx.usage(**usage) (a bad value raises, so the
                        answer is agent_error with the exception's class)
  "usage_twice": true   report "usage" twice (calls add up)
  "spin_ms": N          burn N ms of CPU before answering
  "gate": PATH          wait until PATH exists before answering
The answer is {"pid": the worker's pid}.
"""
import asyncio
import os
import time

import pyagents


def _work(data):
    ctx = pyagents.context()
    if "usage" in data:
        ctx.usage(**data["usage"])
        if data.get("usage_twice"):
            ctx.usage(**data["usage"])
    end = time.thread_time() + data.get("spin_ms", 0) / 1000.0
    while time.thread_time() < end:
        pass
    return {"pid": os.getpid()}


class UsageAgent(pyagents.Agent):
    def handle_message(self, type, data):
        data = data or {}
        gate = data.get("gate")
        while gate and not os.path.exists(gate):
            time.sleep(0.005)
        return _work(data)


class AsyncUsageAgent(pyagents.Agent):
    async def handle_message(self, type, data):
        data = data or {}
        gate = data.get("gate")
        while gate and not os.path.exists(gate):
            await asyncio.sleep(0.005)
        return _work(data)
