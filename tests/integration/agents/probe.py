# SPDX-License-Identifier: BSD-2-Clause
"""probe.py - a test agent that reports on its own process.

Served by the integration tests with --python-path tests/integration/agents.
It is a plain class (no pyagents base) on purpose: the bridge accepts any
class with handle_message, and this keeps the tests independent of the
pyagents package.  Message types:

  whoami        -> {"pid": <worker pid>, "worker": "worker-N"}
  gate          -> waits until data["file"] exists, then answers whoami
                   (gives up with TimeoutError after data.get("max_s", 120) s)
  anything else -> data, unchanged (echo)

on_stop() writes "<AP_TEST_STOP_DIR>/<worker>.stopped" (containing the pid)
when that environment variable is set, so a test can see it ran.
FlakyStartAgent and SlowStartAgent (below) add an on_start() that can be
made to fail, or to wait.
"""
import os
import time


def _whoami():
    return {"pid": os.getpid(), "worker": os.environ.get("AGENTPOOL_WORKER_ID")}


class ProbeAgent:
    def handle_message(self, type, data):
        if type == "whoami":
            return _whoami()
        if type == "gate":
            deadline = time.monotonic() + float(data.get("max_s", 120))
            while not os.path.exists(data["file"]):
                if time.monotonic() > deadline:
                    raise TimeoutError("gate file %s never appeared" % data["file"])
                time.sleep(0.005)
            return _whoami()
        return data

    def on_stop(self):
        d = os.environ.get("AP_TEST_STOP_DIR")
        if d:
            name = os.environ.get("AGENTPOOL_WORKER_ID", "unknown")
            tmp = os.path.join(d, name + ".tmp")
            with open(tmp, "w") as f:
                f.write(str(os.getpid()))
            os.rename(tmp, os.path.join(d, name + ".stopped"))


class FlakyStartAgent(ProbeAgent):
    """A ProbeAgent whose on_start() raises while the file named by
    $AP_TEST_FAIL_START exists: a worker that starts fine at first and
    then cannot be restarted until the file goes away."""

    def on_start(self):
        flag = os.environ.get("AP_TEST_FAIL_START")
        if flag and os.path.exists(flag):
            raise RuntimeError("start refused while %s exists" % flag)


class SlowStartAgent(ProbeAgent):
    """A ProbeAgent whose on_start() waits until the file named by
    $AP_TEST_START_GATE exists: keeps the pool "starting" for as long as a
    test likes."""

    def on_start(self):
        gate = os.environ.get("AP_TEST_START_GATE")
        deadline = time.monotonic() + 120
        while gate and not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.005)
