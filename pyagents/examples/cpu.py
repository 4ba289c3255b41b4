# SPDX-License-Identifier: BSD-2-Clause
"""CpuAgent: keeps the CPU busy for data["ms"] milliseconds of CPU time.

Answer: {"burned_ms": ms, "iterations": N}.  Used to load workers for
real (recycling, queueing and fairness tests, benchmarks).
"""

import time

from pyagents import Agent


class CpuAgent(Agent):
    capabilities = ("cpu",)

    def handle_message(self, type, data):
        ms = data.get("ms", 10) if isinstance(data, dict) else (data or 10)
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms < 0:
            raise ValueError("cpu needs data {\"ms\": N} with N >= 0")
        deadline = time.process_time() + ms / 1000.0
        n = 0
        x = 0
        while time.process_time() < deadline:
            for i in range(1000):
                x = (x * 31 + i) & 0xFFFFFFFF
            n += 1
        return {"burned_ms": ms, "iterations": n}
