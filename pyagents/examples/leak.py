# SPDX-License-Identifier: BSD-2-Clause
"""LeakAgent: leaks data.get("kb", 1024) KiB per message, on purpose.

The memory is touched (not just reserved), so the worker's resident size
really grows: recycling-by-memory tests use it.  Answer:
{"leaked_kb": total KiB held, "chunks": messages so far}.
"""

from pyagents import Agent

# Module level, so it outlives the agent instance: only a new worker
# process gives it back.
_HOARD = []


class LeakAgent(Agent):
    def handle_message(self, type, data):
        kb = data.get("kb", 1024) if isinstance(data, dict) else 1024
        if isinstance(kb, bool) or not isinstance(kb, int) or kb < 0:
            raise ValueError("leak needs data {\"kb\": N} with N >= 0")
        _HOARD.append(b"\x5a" * (kb * 1024))
        return {"leaked_kb": sum(len(c) for c in _HOARD) // 1024, "chunks": len(_HOARD)}
