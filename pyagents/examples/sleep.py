# SPDX-License-Identifier: BSD-2-Clause
"""SleepAgent / AsyncSleepAgent: wait data["ms"] milliseconds, then answer.

The sync one blocks its worker (one message at a time); the async one
awaits, so one worker holds up to --concurrency of them at once.
Answer: {"slept_ms": ms}.
"""

import asyncio
import time

from pyagents import Agent


def _ms(data):
    if isinstance(data, dict):
        data = data.get("ms", 0)
    if data is None:
        return 0
    if isinstance(data, bool) or not isinstance(data, (int, float)) or data < 0:
        raise ValueError("sleep needs data {\"ms\": N} with N >= 0")
    return data


class SleepAgent(Agent):
    capabilities = ("sleep",)

    def handle_message(self, type, data):
        ms = _ms(data)
        time.sleep(ms / 1000.0)
        return {"slept_ms": ms}


class AsyncSleepAgent(Agent):
    capabilities = ("sleep",)

    async def handle_message(self, type, data):
        ms = _ms(data)
        await asyncio.sleep(ms / 1000.0)
        return {"slept_ms": ms}
