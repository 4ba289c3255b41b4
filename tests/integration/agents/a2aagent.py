# SPDX-License-Identifier: BSD-2-Clause
"""a2aagent.py - the agent of test_a2a.py: it handles "a2a.message"
requests (data: the A2A message) by the text of its first part:
  echo     -> returns {"parts": the message's parts, "contextId": ...}
  hello    -> returns the string "hello back" (a text artifact)
  fail     -> raises (agent_error)
  crash    -> the process exits 3 (worker_crashed)
  wait:F   -> waits until the file F exists (at most 60 s), returns "done"
  tokens:N -> a streaming handler: yields "t0" .. "t<N-1>", returns {"tokens": N}
  ask:Q    -> ctx.require_input(Q): the task waits for input, Q its prompt
  askstream:Q -> a streaming handler: yields "s0", then ctx.require_input(Q)
  slowtokens:N:F -> yields "t0" .. "t<N-1>", waiting for file F before the last
  big:N    -> yields N chunks of 65536 characters ("a", "b", ...), returns N
and declares an A2A card (card = {...}) for the Agent Card.  A2AMessageAgent
and AsyncA2AMessageAgent answer through handle_a2a_message(message, ctx)
(sync, and async def) instead: "who" tells which handler ran.
"""
import asyncio
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

    def handle_message(self, type, data, ctx):
        if type != "a2a.message":
            raise ValueError("unexpected type %r" % type)
        text = data["parts"][0].get("text", "")
        if text.startswith("ask:"):
            ctx.require_input(text[4:])
            return "not shown: the prompt is the answer"
        if text.startswith("askstream:"):
            return self.ask_stream(ctx, text[10:])
        if text.startswith("big:"):
            return self.big(int(text[4:]))
        if text.startswith("slowtokens:"):
            n, gate = text[11:].split(":", 1)
            return self.slow_tokens(int(n), gate)
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

    def big(self, n):
        for i in range(n):
            yield chr(ord("a") + i) * 65536
        return n

    def ask_stream(self, ctx, prompt):
        yield "s0"
        ctx.require_input(prompt)

    def slow_tokens(self, n, gate):
        for i in range(n):
            if i == n - 1:
                end = time.monotonic() + 60
                while not os.path.exists(gate) and time.monotonic() < end:
                    time.sleep(0.01)
            yield "t%d" % i
        return {"tokens": n}


def a2a_answer(message, ctx):
    """What A2AMessageAgent and AsyncA2AMessageAgent answer (not a stream)."""
    text = message["parts"][0].get("text", "")
    if text.startswith("ask:"):
        ctx.require_input({"question": text[4:]})
        return None
    return {"handler": "handle_a2a_message", "taskId": message["taskId"], "attempt": ctx.attempt, "text": text}


class A2AMessageAgent:
    def handle_message(self, type, data):
        return {"handler": "handle_message", "type": type}

    def handle_a2a_message(self, message, ctx):
        if message["parts"][0].get("text", "") == "gen":
            return self.gen()
        return a2a_answer(message, ctx)

    def gen(self):
        yield "g0"
        return "gen done"


class AsyncA2AMessageAgent:
    async def handle_message(self, type, data):
        return {"handler": "handle_message", "type": type}

    async def handle_a2a_message(self, message, ctx):
        await asyncio.sleep(0)
        return a2a_answer(message, ctx)


class A2AOnlyAgent:
    def handle_a2a_message(self, message, ctx):
        return a2a_answer(message, ctx)


class BadCardAgent(A2AAgent):
    card = {"name": 7}
