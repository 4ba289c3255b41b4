# SPDX-License-Identifier: BSD-2-Clause
"""ctxagent.py - agents that report their handler context (test_context.py).

Served with --python-path tests/integration/agents.  Each answers a
message with what its context says: the client's id, the type, the
deadline's remaining seconds, the attempt, the worker, pid and pool, and
whether pyagents.context() returned the same object as the parameter.
data members:
  "log": TEXT      logged through context.log at warning level
  "marker": PATH   crash (os._exit(3)) on the first attempt if PATH does not
                   exist yet (it is created), so the retry shows attempt 2
  "sleep": S       time.sleep(S) before answering (gevent: a greenlet wait)
"""
import asyncio
import os
import time

import pyagents


def describe(ctx, data):
    if data.get("log"):
        ctx.log.warning("%s", data["log"])
    return {
        "id": ctx.id,
        "type": ctx.type,
        "remaining": ctx.remaining(),
        "deadline_ahead": None if ctx.deadline is None else ctx.deadline - time.monotonic(),
        "attempt": ctx.attempt,
        "worker": ctx.worker,
        "pid": ctx.pid,
        "pool": ctx.pool,
        "same": pyagents.context() is ctx,
        "real_pid": os.getpid(),
    }


def crash_first(data):
    marker = data.get("marker")
    if marker and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        os._exit(3)


class ThreeParams:
    """A plain def handler taking the context as its third parameter."""

    def handle_message(self, type, data, context):
        crash_first(data)
        if data.get("sleep"):
            time.sleep(data["sleep"])
        return describe(context, data)


class TwoParams:
    """The old signature: the context only through pyagents.context()."""

    def handle_message(self, type, data):
        crash_first(data)
        if data.get("sleep"):
            time.sleep(data["sleep"])
        return describe(pyagents.context(), data)


class AsyncTwoParams:
    """async def, two parameters: each task sees its own context after
    awaiting, even with other messages in flight."""

    async def handle_message(self, type, data):
        await asyncio.sleep(data.get("sleep", 0))
        return describe(pyagents.context(), data)


class AsyncThreeParams:
    async def handle_message(self, type, data, ctx):
        await asyncio.sleep(data.get("sleep", 0))
        return describe(ctx, data)
