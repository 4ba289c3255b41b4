# SPDX-License-Identifier: BSD-2-Clause
"""streamer.py - streaming handlers for test_streams.py, in the three models.

Served with --python-path tests/integration/agents.  SyncStreamer is a
generator agent (workerModel sync), GeventStreamer the same code for
workerModel gevent, AsyncStreamer async generators (workerModel async).
By message type (data is an object):
  crash_after  -> yields data["k"] chunks, waits until data["file"] exists
                  (the test has read them), then the process exits 7
  crash_before -> on attempt 1 the process exits 7 before any chunk; on a
                  retry yields "a", "b" and returns "retried"
  forever      -> yields "c<i>" every data["ms"] ms, for at most 60 s; the
                  chunk after the first waits until data["file"] exists
                  when given; its finally block writes data["marker"] with
                  the class of the exception that ended it ("done" if none)
  quiet        -> waits until data["file"] exists, yields "late", returns "done"
"""
import asyncio
import os
import time

import pyagents

LIMIT_S = 60.0


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def _wait_file(path):
    end = time.monotonic() + LIMIT_S
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.01)


async def _await_file(path):
    end = time.monotonic() + LIMIT_S
    while not os.path.exists(path) and time.monotonic() < end:
        await asyncio.sleep(0.01)


class SyncStreamer:
    def handle_message(self, type, data):
        return getattr(self, type)(data)

    def crash_after(self, data):
        for i in range(data["k"]):
            yield "k%d" % i
        _wait_file(data["file"])
        os._exit(7)

    def crash_before(self, data):
        if pyagents.context().attempt == 1:
            os._exit(7)
        yield "a"
        yield "b"
        return "retried"

    def forever(self, data):
        how = "done"
        try:
            end = time.monotonic() + LIMIT_S
            i = 0
            while time.monotonic() < end:
                yield "c%d" % i
                if i == 0 and data.get("file"):
                    _wait_file(data["file"])
                i += 1
                time.sleep(data.get("ms", 10) / 1000.0)
        except BaseException as e:
            how = e.__class__.__name__
            raise
        finally:
            if data.get("marker"):
                write_atomically(data["marker"], how)

    def quiet(self, data):
        _wait_file(data["file"])
        yield "late"
        return "done"


class GeventStreamer(SyncStreamer):
    """The same generators on greenlets (time.sleep is gevent's)."""


class AsyncStreamer:
    async def handle_message(self, type, data):
        raise NotImplementedError  # replaced below: an async generator per type


async def _async_handle(self, type, data):
    if type == "crash_after":
        for i in range(data["k"]):
            yield "k%d" % i
        await _await_file(data["file"])
        os._exit(7)
    elif type == "crash_before":
        if pyagents.context().attempt == 1:
            os._exit(7)
        yield "a"
        yield "b"
    elif type == "forever":
        how = "done"
        try:
            end = time.monotonic() + LIMIT_S
            i = 0
            while time.monotonic() < end:
                yield "c%d" % i
                if i == 0 and data.get("file"):
                    await _await_file(data["file"])
                i += 1
                await asyncio.sleep(data.get("ms", 10) / 1000.0)
        except BaseException as e:
            how = e.__class__.__name__
            raise
        finally:
            if data.get("marker"):
                write_atomically(data["marker"], how)
    elif type == "quiet":
        await _await_file(data["file"])
        yield "late"


AsyncStreamer.handle_message = _async_handle
