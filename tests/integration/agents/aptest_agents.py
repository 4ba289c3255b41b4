# SPDX-License-Identifier: BSD-2-Clause
"""aptest_agents.py - small agents only the integration tests use.

Put this directory on the workers' path with --python-path.

NotJsonAgent returns, by message type, a value that is not JSON (a set,
an arbitrary object, NaN, infinity, a non-string key, nesting deeper than
the protocol allows), or {"fine": true} for type "ok": the bridge must
answer each bad one agent_error and keep serving.

GateLogAgent is a gate with a side effect: a message whose data is
{"file": PATH, "seq": N, "log": LOG} waits until PATH exists, then appends
"N\n" to LOG and returns {"seq": N}.  The log shows which messages ran and
in what order.
"""
import os
import time


def _deep(n):
    v = []
    for _ in range(n):
        v = [v]
    return v


class NotJsonAgent:
    VALUES = {
        "set": lambda: {1, 2, 3},
        "object": object,
        "nan": lambda: float("nan"),
        "inf": lambda: float("inf"),
        "-inf": lambda: float("-inf"),
        "nested-nan": lambda: {"a": [1, {"b": float("nan")}]},
        "int-key": lambda: {1: "one"},
        "tuple-key": lambda: {(1, 2): "pair"},
        "deep": lambda: _deep(300),
        "ok": lambda: {"fine": True},
    }

    def handle_message(self, type, data):
        return self.VALUES[type]()


class GateLogAgent:
    def handle_message(self, type, data):
        data = data or {}
        gate = data.get("file")
        while gate and not os.path.exists(gate):
            time.sleep(0.002)
        log = data.get("log")
        if log:
            with open(log, "a") as f:
                f.write("%s\n" % data.get("seq"))
        return {"seq": data.get("seq")}
