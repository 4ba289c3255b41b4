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
  anything else    -> {"pid": ..., "type": type}
"""
import ctypes
import os

PAGE_NAME = "agentpool-progress"


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
        if type == "bogus_then_die":
            started, finished = _page_words()
            started.value = 0x7FFF0000DEADBEEF
            finished.value = 0
            os._exit(7)
        out = _whoami()
        out["type"] = type
        return out
