# SPDX-License-Identifier: BSD-2-Clause
"""publisher.py - agents that publish events with ctx.publish (test_events.py).

Served with --python-path tests/integration/agents.  PublishAgent is a
plain sync agent (also served with --worker-model gevent);
AsyncPublishAgent the same as coroutines; BadSubscriber a PublishAgent
whose subscribes the master refuses (a pattern outside agent.).  By message type (data is an
object):
  publish -> ctx.publish(data["topic"], data.get("data")) data.get("n", 1)
             times; answers {"n": n}
  bad     -> ctx.publish(data["topic"], <data["what"]: "set" a set (not
             JSON), "big" 70,000 bytes of string, else data["data"]>);
             answers {"raised": exception class name, "message": ...},
             or {"raised": None}
"""
import pyagents


def _publish(type, data):
    ctx = pyagents.context()
    if type == "publish":
        n = data.get("n", 1)
        for _ in range(n):
            ctx.publish(data["topic"], data.get("data"))
        return {"n": n}
    if type == "bad":
        what = data.get("what")
        value = {1, 2} if what == "set" else "x" * 70000 if what == "big" else data.get("data")
        try:
            ctx.publish(data["topic"], value)
        except Exception as e:  # the test wants to see which
            return {"raised": type_name(e), "message": str(e)}
        return {"raised": None}
    raise pyagents.UnknownMessageType(type)


def type_name(e):
    return e.__class__.__name__


class PublishAgent:
    def handle_message(self, type, data):
        return _publish(type, data or {})


class BadSubscriber(PublishAgent):
    """subscribes to every topic: refused (agent.* only)."""
    subscribes = ["#"]


class AsyncPublishAgent:
    async def handle_message(self, type, data):
        return _publish(type, data or {})
