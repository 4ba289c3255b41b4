# SPDX-License-Identifier: BSD-2-Clause
"""StateAgent / AsyncStateAgent: use a session's state (ctx.session,
docs/sessions.md) so its keeping can be seen from outside.

data {"op": OP, ...}:
  append  {"v": V}: appends V to the state's "log" list; answers its length
  get     answers the state as a dict (None without one)
  raise   {"v": V}: appends V, then raises: the append must not be kept
  pad     {"bytes": N}: the state becomes {"pad": N characters, "n": count
          of pad messages so far}: a state of about N bytes that changes
          every message (bench/sessions-state)
  save    {"v": V, "gate": FILE}: on a first attempt sets "saved" to V,
          calls ctx.session.save(), creates FILE + ".saved" and waits for
          FILE (the test kills the worker meanwhile); on a later attempt
          answers {"saved": the state's "saved", "attempt": N}
  noop    changes nothing
  assign  replaces ctx.session (not allowed: AttributeError)
  save_loop {"n": N}: sets "i" to 1..N, calling ctx.session.save() after
          each; answers N
  append_wait {"v": V, "gate": FILE}: appends V, creates FILE + ".running"
          and waits for FILE, then answers the log's length
Without a session (ctx.session None) every op answers None but noop/pad,
which answer {"n": 0}.
"""

import asyncio
import os
import time

from pyagents import Agent, context


def _run(data):
    ctx = context()
    s = ctx.session
    op = data.get("op") if isinstance(data, dict) else None
    if s is None:
        return {"n": 0} if op in ("noop", "pad") else None
    if op == "append":
        s.setdefault("log", []).append(data["v"])
        return len(s["log"])
    if op == "get":
        return dict(s)
    if op == "raise":
        s.setdefault("log", []).append(data["v"])
        raise RuntimeError("raised after changing the state")
    if op == "pad":
        s["pad"] = "x" * int(data["bytes"])
        s["n"] = s.get("n", 0) + 1
        return {"n": s["n"]}
    if op == "assign":
        ctx.session = {"replaced": True}
        return None
    if op == "noop":
        return {"n": len(s)}
    if op == "save_loop":
        for i in range(1, int(data["n"]) + 1):
            s["i"] = i
            s.save()
        return int(data["n"])
    if op == "append_wait":
        s.setdefault("log", []).append(data["v"])
        open(data["gate"] + ".running", "w").close()
        return len(s["log"])
    if op == "save":
        if ctx.attempt > 1:
            return {"saved": s.get("saved"), "attempt": ctx.attempt}
        s["saved"] = data["v"]
        s.save()
        open(data["gate"] + ".saved", "w").close()
        return None
    raise ValueError("unknown op %r" % (op,))


def _wait_gate(data):
    if not isinstance(data, dict):
        return False
    return data.get("op") == "append_wait" or (data.get("op") == "save" and context().attempt == 1)


class StateAgent(Agent):
    capabilities = ("sessstate",)

    def handle_message(self, type, data):
        out = _run(data)
        if _wait_gate(data):
            while not os.path.exists(data["gate"]):
                time.sleep(0.005)
        return out


class AsyncStateAgent(Agent):
    capabilities = ("sessstate",)

    async def handle_message(self, type, data):
        out = _run(data)
        if _wait_gate(data):
            while not os.path.exists(data["gate"]):
                await asyncio.sleep(0.005)
        return out
