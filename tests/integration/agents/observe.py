# SPDX-License-Identifier: BSD-2-Clause
"""observe.py - agents for the alert and detailed-statistics tests.

Served with --python-path tests/integration/agents.  Plain classes (no
pyagents base), so what is tested is the bridge and the master only.

ObserveAgent (sync) counts the messages its handler ran (`calls`) and
reports the count from metrics() (which the master caches per worker for
detailed stats) and from health().  By message type:
  raise -> raises ValueError (agent_error; still counted in calls)
  crash -> os._exit(3): the worker dies (a new process starts at 0 calls)
  gate  -> waits until data["file"] exists (at most WAIT_MAX s), then
           answers like any other type
  pad   -> from now on metrics() adds "pad": "x" * data["bytes"]
  anything else -> {"calls": N, "pid": PID, "worker": "worker-N"}
health() answers False while the file named by $AP_TEST_SICK exists,
else {"ok": true, "calls": N}.

AsyncObserveAgent is the same with an async handle_message (its gate
awaits, so the worker holds many messages at once).
"""
import asyncio
import os
import time

WAIT_MAX = 120.0


class ObserveAgent:
    def __init__(self):
        self.calls = 0
        self.pad = 0

    def _answer(self, type, data):
        self.calls += 1
        if type == "raise":
            raise ValueError("raised on purpose (%d)" % self.calls)
        if type == "crash":
            os._exit(3)
        if type == "pad":
            self.pad = int(data["bytes"])
        return {"calls": self.calls, "pid": os.getpid(), "worker": os.environ.get("AGENTPOOL_WORKER_ID")}

    def handle_message(self, type, data):
        if type == "gate":
            deadline = time.monotonic() + WAIT_MAX
            while not os.path.exists(data["file"]) and time.monotonic() < deadline:
                time.sleep(0.005)
        return self._answer(type, data)

    def metrics(self):
        m = {"calls": self.calls}
        if self.pad:
            m["pad"] = "x" * self.pad
        return m

    def health(self):
        sick = os.environ.get("AP_TEST_SICK")
        if sick and os.path.exists(sick):
            return False
        return {"ok": True, "calls": self.calls}


class AsyncObserveAgent(ObserveAgent):
    async def handle_message(self, type, data):
        if type == "gate":
            deadline = time.monotonic() + WAIT_MAX
            while not os.path.exists(data["file"]) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        return self._answer(type, data)


class CountingAgent:
    """Counts its health() and metrics() calls (and messages), and writes
    the counts to the file a "track" message names after each call, so a
    test can watch heartbeats without reading detailed stats.  Types:
      track -> data["file"]: where to write {"beats", "metrics", "calls"}
      anything else -> {"calls": N}"""

    def __init__(self):
        self.calls = self.beats = self.metrics_calls = 0
        self.track = None

    def _write(self):
        if self.track:
            tmp = self.track + ".tmp"
            with open(tmp, "w") as f:
                f.write('{"beats": %d, "metrics": %d, "calls": %d}' % (self.beats, self.metrics_calls, self.calls))
            os.replace(tmp, self.track)

    def handle_message(self, type, data):
        if type == "track":
            self.track = data["file"]
            self._write()
            return {"tracking": self.track}
        self.calls += 1
        self._write()
        return {"calls": self.calls}

    def health(self):
        self.beats += 1
        self._write()
        return {"ok": True}

    def metrics(self):
        self.metrics_calls += 1
        self._write()
        return {"calls": self.calls, "metricsCalls": self.metrics_calls, "beats": self.beats}
