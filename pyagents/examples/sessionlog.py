# SPDX-License-Identifier: BSD-2-Clause
"""SessionLogAgent / AsyncSessionLogAgent: record the order a session's
messages run in, to see sessions' order guarantee (docs/sessions.md).

A message with data {"dir": DIR, "session": KEY, "seq": N} (optionally
"ms": a sleep in the middle, "gate": a file to wait for, "log": false to
skip the record) appends the line "start N <pid>" to DIR/KEY.log, sleeps,
waits for the gate file if given, then appends "end N <pid>" and answers
{"seq": N, "pid": <pid>, "worker": <agent_id>}.  If a session's messages
ran one at a time the file reads start/end pairs in order with nothing
between; any overlap (two messages of the session at once, on one worker
or two) shows as a start inside another's pair.  The async one awaits,
so without sessions one worker would run many of a session's messages at
once.  KEY must be a plain file name (letters, digits, "-", "_", ".").
"""

import asyncio
import json
import os
import re
import time

from pyagents import Agent

_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def _args(data):
    if not isinstance(data, dict):
        raise ValueError("sessionlog needs data {\"dir\", \"session\", \"seq\"}")
    key = data.get("session")
    if not isinstance(key, str) or not _KEY.match(key) or key.startswith("."):
        raise ValueError("sessionlog: session must be a plain file name")
    return os.path.join(data["dir"], key + ".log"), data.get("seq"), data.get("ms", 0) / 1000.0, data.get("gate")


def _record(path, what, seq):
    with open(path, "a") as f:
        f.write("%s %s %d\n" % (what, json.dumps(seq, separators=(",", ":")), os.getpid()))


class SessionLogAgent(Agent):
    capabilities = ("sessionlog",)

    def handle_message(self, type, data):
        path, seq, pause, gate = _args(data)
        _record(path, "start", seq)
        time.sleep(pause)
        while gate and not os.path.exists(gate):
            time.sleep(0.005)
        _record(path, "end", seq)
        return {"seq": seq, "pid": os.getpid(), "worker": self.agent_id}


class AsyncSessionLogAgent(Agent):
    capabilities = ("sessionlog",)

    async def handle_message(self, type, data):
        path, seq, pause, gate = _args(data)
        _record(path, "start", seq)
        await asyncio.sleep(pause)
        while gate and not os.path.exists(gate):
            await asyncio.sleep(0.005)
        _record(path, "end", seq)
        return {"seq": seq, "pid": os.getpid(), "worker": self.agent_id}
