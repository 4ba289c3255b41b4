# SPDX-License-Identifier: BSD-2-Clause
"""life.py - agents for the lifecycle tests (retries, timeouts, supervision).

Served with --python-path tests/integration/agents.  Plain classes (no
pyagents base), so what is tested is the bridge and the master only.
Every message's data is an object; these members work for every type:

  "pidfile": PATH  the worker writes its pid there first (atomically), so a
                   test knows which process ran (and maybe died with) it
  "log": PATH      the worker appends "<seq>\n" when the message runs to
                   its end (a side-effect log: what ran, in what order)
  "seq": any       echoed back, and what "log" records

LifeAgent (sync), by message type:
  whoami      -> {"pid": ..., "worker": "worker-N"}
  heap        -> {"frozen": gc.get_freeze_count()}: objects the worker froze
                 out of the garbage collector's full passes
  crash       -> os._exit(data.get("code", 1)), every time (a poison message)
  crash_once  -> if data["marker"] does not exist: creates it (holding the
                 pid) and os._exit(data.get("code", 3)); else runs normally.
                 The second attempt, in a new process, succeeds.
  raise       -> raises ValueError (agent_error, not a crash)
  gate        -> waits until data["file"] exists (bounded), then runs
  hang        -> time.sleep(data.get("s", 60)): a stuck sync handler
  ticker      -> starts a thread that appends a line to data["file"] every
                 5 ms (for WAIT_MAX at most) and returns at once
  echo        -> sleeps data.get("ms", 0) ms, answers data
  anything else runs normally: {"seq": ..., "pid": ...}

Start and stop hooks, driven by the environment so a test can change them
while the pool runs:
  AP_TEST_FAIL_START=PATH  on_start() raises while PATH exists
  AP_TEST_HOLD_START=PATH  on_start() waits while PATH exists
  AP_TEST_HOLD_STOP_DIR=D  on_stop() waits while D/<worker id>.hold exists
All waits give up after WAIT_MAX seconds, so nothing outlives a failed test.

AsyncLifeAgent (async), by message type:
  whoami      -> as above
  heap        -> as above
  sleep       -> awaits data["ms"] ms; its finally block writes
                 data["marker"] (if given) with "cancelled" when the task
                 got CancelledError, else "done"; data["started"] (if
                 given) is created when the handler begins
  loop        -> {"selector": the running loop's selector class, "min_wait":
                 the shortest of ten asyncio.sleep(0.02), measured,
                 "timerslack_ns": the process's timer slack (/proc)}
  block       -> time.sleep(data.get("s", 60)) inside the coroutine: the
                 event loop is blocked and cannot take a cancel
"""
import asyncio
import gc
import os
import threading
import time

WAIT_MAX = 120.0


def _whoami():
    return {"pid": os.getpid(), "worker": os.environ.get("AGENTPOOL_WORKER_ID")}


def _write_atomic(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def _wait_while(cond):
    deadline = time.monotonic() + WAIT_MAX
    while cond() and time.monotonic() < deadline:
        time.sleep(0.005)


def _heap():
    return {"frozen": gc.get_freeze_count()}


def _timerslack_ns():
    with open("/proc/self/timerslack_ns") as f:
        return int(f.read())


def _begin(data):
    if data.get("pidfile"):
        _write_atomic(data["pidfile"], str(os.getpid()))


def _finish(data):
    if data.get("log"):
        with open(data["log"], "a") as f:
            f.write("%s\n" % data.get("seq"))
    out = _whoami()
    out["seq"] = data.get("seq")
    return out


def _start_ticker(path):
    def run():
        deadline = time.monotonic() + WAIT_MAX
        while time.monotonic() < deadline:
            with open(path, "a") as f:
                f.write("tick\n")
            time.sleep(0.005)
    threading.Thread(target=run, daemon=True).start()


class LifeAgent:
    def on_start(self):
        fail = os.environ.get("AP_TEST_FAIL_START")
        if fail and os.path.exists(fail):
            raise RuntimeError("start refused while %s exists" % fail)
        hold = os.environ.get("AP_TEST_HOLD_START")
        if hold:
            _wait_while(lambda: os.path.exists(hold))

    def on_stop(self):
        d = os.environ.get("AP_TEST_HOLD_STOP_DIR")
        if d:
            hold = os.path.join(d, "%s.hold" % os.environ.get("AGENTPOOL_WORKER_ID"))
            _wait_while(lambda: os.path.exists(hold))

    def handle_message(self, type, data):
        data = data if isinstance(data, dict) else {}
        _begin(data)
        if type == "whoami":
            return _whoami()
        if type == "heap":
            return _heap()
        if type == "crash":
            os._exit(int(data.get("code", 1)))
        if type == "crash_once":
            if not os.path.exists(data["marker"]):
                _write_atomic(data["marker"], str(os.getpid()))
                os._exit(int(data.get("code", 3)))
        elif type == "raise":
            raise ValueError(data.get("message", "boom"))
        elif type == "gate":
            _wait_while(lambda: not os.path.exists(data["file"]))
        elif type == "ticker":
            _start_ticker(data["file"])
        elif type == "hang":
            time.sleep(float(data.get("s", 60)))
        elif type == "echo":
            time.sleep(float(data.get("ms", 0)) / 1000.0)
            return data
        return _finish(data)


class AsyncLifeAgent:
    async def handle_message(self, type, data):
        data = data if isinstance(data, dict) else {}
        _begin(data)
        if type == "whoami":
            return _whoami()
        if type == "heap":
            return _heap()
        if type == "loop":
            loop = asyncio.get_running_loop()
            waits = []
            for _ in range(10):
                t = time.monotonic()
                await asyncio.sleep(0.02)
                waits.append(time.monotonic() - t)
            return {"selector": loop._selector.__class__.__name__, "min_wait": min(waits),
                    "timerslack_ns": _timerslack_ns()}
        if type == "block":
            time.sleep(float(data.get("s", 60)))
            return _finish(data)
        if type == "sleep":
            if data.get("started"):
                _write_atomic(data["started"], str(os.getpid()))
            outcome = "done"
            try:
                await asyncio.sleep(float(data.get("ms", 0)) / 1000.0)
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            finally:
                if data.get("marker"):
                    _write_atomic(data["marker"], outcome)
            return _finish(data)
        return _finish(data)
