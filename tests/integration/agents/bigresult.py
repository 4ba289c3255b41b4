# SPDX-License-Identifier: BSD-2-Clause
"""bigresult.py - agents whose results have the size the test asks for.

Served with --python-path tests/integration/agents (plain classes, no
pyagents base).  By message type:
  size  -> a JSON string of exactly data["bytes"] bytes: "xxx...x"
  anything else -> {"pid": PID, "data": data}
BigResultAgent is sync; AsyncBigResultAgent awaits before it answers, so
its worker holds several messages at once.
"""
import asyncio
import os


def answer(type, data):
    if type == "size":
        return "x" * (int(data["bytes"]) - 2)
    return {"pid": os.getpid(), "data": data}


class BigResultAgent:
    def handle_message(self, type, data):
        return answer(type, data)


class AsyncBigResultAgent:
    async def handle_message(self, type, data):
        await asyncio.sleep(0)
        return answer(type, data)
