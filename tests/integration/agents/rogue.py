# SPDX-License-Identifier: BSD-2-Clause
"""rogue.py - a sync agent that misbehaves towards its master on purpose.

Served with --python-path tests/integration/agents.  What it does, any
agent code could do: it runs in the worker process, so it can reach what
the bridge shares with the master (the progress page, fd 3).  The tests
of issue 10 use it to check that the master decides from what it knows
itself, never from what a worker says alone.

RogueAgent (sync), by message type:
  whoami           -> {"pid": ..., "worker": "worker-N"}
  finish_then_die  -> stores the running message as finished in the
                      progress page (what the bridge does once a handler
                      returned), then os._exit(data.get("code", 7)) before
                      any answer is written: the window between a
                      handler's return and its answer leaving, made
                      deterministic
  zero_then_die    -> resets the progress page to "nothing started yet",
                      then os._exit(7): every death says the message
                      never ran
  bogus_then_die   -> writes a message id the master never sent into the
                      progress page as running, then os._exit(7)
  ready_again      -> writes a READY frame saying {"async": true,
                      "concurrency": 64} on fd 3, the master link, as if
                      the worker were starting, then answers normally
  credit_frame     -> writes a CREDIT frame (master -> worker only) on
                      fd 3, then answers normally
  chunk_frame      -> writes a CHUNK frame of data["bytes"] bytes (0: an
                      empty one) on fd 3, then answers normally
  event_frame      -> writes an EVENT frame of data["topic"] and the raw
                      text data["json"] on fd 3 (what ctx.publish would
                      never send: a bad topic, data that is not JSON),
                      then answers normally
  usage_frame      -> writes a USAGE frame for the running message with
                      the raw text data["json"] (what ctx.usage would
                      never send: not numbers, over its bound), then
                      answers normally
  echo_text        -> prints data["text"] on stdout and on stderr (an agent
                      that prints its input), answers {"printed": true}
  anything else    -> {"pid": ..., "type": type}
"""
import ctypes
import json
import os
import struct
import sys

PAGE_NAME = "agentpool-progress"
MASTER_FD = 3
FRAME_READY = 1
FRAME_CHUNK = 10
FRAME_CREDIT = 11
FRAME_EVENT = 12
FRAME_USAGE = 15


def _progress_page():
    """The address of this process's progress page (two u64: started,
    finished), found in /proc/self/maps; None when there is none."""
    with open("/proc/self/maps") as f:
        for line in f:
            if PAGE_NAME in line:
                return int(line.split("-", 1)[0], 16)
    return None


def _page_words():
    addr = _progress_page()
    if addr is None:
        raise RuntimeError("no progress page mapped")
    return ctypes.c_uint64.from_address(addr), ctypes.c_uint64.from_address(addr + 8)


def _frame(kind, frame_id, payload, aux=0):
    """One master-worker frame (include/ap_frame.h): len u32, kind u8,
    flags u8, aux u16, id u64, little endian, then the payload."""
    return struct.pack("<IBBHQ", len(payload), kind, 0, aux, frame_id) + payload


def _whoami():
    return {"pid": os.getpid(), "worker": os.environ.get("AGENTPOOL_WORKER_ID")}


class RogueAgent:
    def handle_message(self, type, data):
        data = data or {}
        if type == "whoami":
            return _whoami()
        if type == "finish_then_die":
            started, finished = _page_words()
            finished.value = started.value
            os._exit(data.get("code", 7))
        if type == "zero_then_die":
            started, finished = _page_words()
            started.value = 0
            finished.value = 0
            os._exit(7)
        if type == "ready_again":
            payload = json.dumps({"pid": os.getpid(), "async": True, "concurrency": 64}).encode()
            os.write(MASTER_FD, _frame(FRAME_READY, 0, payload))
            return _whoami()
        if type == "credit_frame":
            os.write(MASTER_FD, _frame(FRAME_CREDIT, 0, struct.pack("<I", 1 << 20)))
            return _whoami()
        if type == "chunk_frame":
            os.write(MASTER_FD, _frame(FRAME_CHUNK, 0, b'"' + b"x" * max(data["bytes"] - 2, 0) + b'"'
                                       if data["bytes"] else b""))
            return _whoami()
        if type == "event_frame":
            topic = data["topic"].encode()
            os.write(MASTER_FD, _frame(FRAME_EVENT, 0, topic + data["json"].encode(), aux=len(topic)))
            return _whoami()
        if type == "usage_frame":
            import pyagents
            os.write(MASTER_FD, _frame(FRAME_USAGE, pyagents.context()._mid, data["json"].encode()))
            return _whoami()
        if type == "echo_text":
            print(data["text"], flush=True)
            print(data["text"], file=sys.stderr, flush=True)
            return {"printed": True}
        if type == "bogus_then_die":
            started, finished = _page_words()
            started.value = 0x7FFF0000DEADBEEF
            finished.value = 0
            os._exit(7)
        out = _whoami()
        out["type"] = type
        return out
