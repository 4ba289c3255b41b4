# SPDX-License-Identifier: BSD-2-Clause
"""EchoAgent: answers every message with its data, unchanged.

The cheapest possible agent: the benchmark's baseline for the cost of the
worker itself (frame in, JSON to Python, call, Python to JSON, frame out).
"""

from pyagents import Agent


class EchoAgent(Agent):
    capabilities = ("echo",)

    def handle_message(self, type, data):
        return data
