# SPDX-License-Identifier: BSD-2-Clause
"""a2aagent.py - the agent of test_a2a.py: it handles "a2a.message"
requests (data: the A2A message) by the text of its first part:
  echo     -> returns {"parts": the message's parts, "contextId": ...}
  hello    -> returns the string "hello back" (a text artifact)
  fail     -> raises (agent_error)
  crash    -> the process exits 3 (worker_crashed)
  wait:F   -> waits until the file F exists (at most 60 s), returns "done"
  tokens:N -> a streaming handler: yields "t0" .. "t<N-1>", returns {"tokens": N}
and declares an A2A card (card = {...}) for the Agent Card.
"""
import os
import time


class A2AAgent:
    card = {
        "name": "Test A2A agent",
        "description": "answers test messages",
        "skills": [{"id": "echo", "name": "Echo", "description": "echoes the parts", "tags": ["test", "echo"]}],
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["application/json"],
    }

    def handle_message(self, type, data):
        if type != "a2a.message":
            raise ValueError("unexpected type %r" % type)
        text = data["parts"][0].get("text", "")
        if text == "echo":
            return {"parts": data["parts"], "contextId": data["contextId"], "taskId": data["taskId"]}
        if text == "hello":
            return "hello back"
        if text == "fail":
            raise ValueError("asked to fail")
        if text == "crash":
            os._exit(3)
        if text.startswith("tokens:"):
            return self.tokens(int(text[7:]))
        if text.startswith("wait:"):
            end = time.monotonic() + 60
            while not os.path.exists(text[5:]) and time.monotonic() < end:
                time.sleep(0.01)
            return "done"
        raise ValueError("unknown text %r" % text)

    def tokens(self, n):
        for i in range(n):
            yield "t%d" % i
        return {"tokens": n}


class BadCardAgent(A2AAgent):
    card = {"name": 7}
