# SPDX-License-Identifier: BSD-2-Clause
"""cancelagent.py - handlers that wait and record how they ended (test_cancel.py).

Served with --python-path tests/integration/agents.  CancelAgent is a
plain def agent (the sync and gevent models), AsyncCancelAgent an async
def one.  By message type (data is an object):
  echo  -> data, at once
  crash -> os._exit(1), every time
  wait  -> creates data["started"] (if given), then waits until
           data["file"] exists (bounded by WAIT_MAX); as it ends it
           writes data["marker"] (if given): "done", or the class name of
           the exception that ended it (CancelledError, GreenletExit).
           With data["swallow"] true it catches that exception and
           returns anyway.  Answer: {"done": true, "seq": data["seq"]}
Every wait polls a file (time.sleep, which gevent makes a greenlet wait,
or asyncio.sleep), so nothing here depends on a duration.
"""
import asyncio
import os
import time

WAIT_MAX = 60.0
POLL = 0.005


def write_atomically(path, text):
    """The file appears whole (a test polls for it)."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _started(data):
    if data.get("started"):
        write_atomically(data["started"], str(os.getpid()))


def _ended(data, outcome):
    if data.get("marker"):
        write_atomically(data["marker"], outcome)


class CancelAgent:
    def handle_message(self, type, data):
        if type == "echo":
            return data
        if type == "crash":
            os._exit(1)
        _started(data)
        try:
            end = time.monotonic() + WAIT_MAX
            while not os.path.exists(data["file"]) and time.monotonic() < end:
                time.sleep(POLL)
        except BaseException as e:  # GreenletExit under gevent
            _ended(data, type_name(e))
            if data.get("swallow"):
                return {"swallowed": True, "seq": data.get("seq")}
            raise
        _ended(data, "done")
        return {"done": True, "seq": data.get("seq")}


class AsyncCancelAgent:
    async def handle_message(self, type, data):
        if type == "echo":
            return data
        if type == "crash":
            os._exit(1)
        _started(data)
        try:
            end = time.monotonic() + WAIT_MAX
            while not os.path.exists(data["file"]) and time.monotonic() < end:
                await asyncio.sleep(POLL)
        except BaseException as e:  # CancelledError
            _ended(data, type_name(e))
            if data.get("swallow"):
                return {"swallowed": True, "seq": data.get("seq")}
            raise
        _ended(data, "done")
        return {"done": True, "seq": data.get("seq")}


def type_name(e):
    return type(e).__name__
