# SPDX-License-Identifier: BSD-2-Clause
"""Agents bench/compare adds to the pool's own examples.

AsyncEchoAgent answers with its data, like pyagents.examples.echo's
EchoAgent, but as a coroutine: the worker then has --concurrency slots
instead of one, so the master may send it many messages before the first
answer. Comparing the two at the same load shows what one message at a
time per worker costs (a wake-up and a round trip per message).
"""

from pyagents import Agent


class AsyncEchoAgent(Agent):
    capabilities = ("echo",)

    async def handle_message(self, type, data):
        return data
