# SPDX-License-Identifier: BSD-2-Clause
"""EventSink: an agent that subscribes to agents' events (docs/events.md,
Agents that subscribe).

``subscribes = ["agent.task.*"]``: every event another handler publishes
under ``task.<something>`` (``ctx.publish("task.done", {...})``, topic
``agent.task.done``) comes to one worker of this agent's pool as a message
of type ``event`` whose data is the event object ({"event", "time", "seq",
"priority", "data": {"worker", "data"}}).  handle_event appends it as one
JSON line to the file named by $EVENTSINK_FILE (when set) and, when the
agent's data is an object with ``"again": true``, publishes
``task.again`` itself: an event published while handling an event is
recorded but not delivered to agents again, so this never loops.

Message ``publish`` ({"topic": T, "data": D}) publishes T with D, so a
client can make events through it.
"""
import json
import os

import pyagents
from pyagents import Agent


class EventSink(Agent):
    subscribes = ["agent.task.*"]

    def handle_event(self, event):
        path = os.environ.get("EVENTSINK_FILE")
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(event, sort_keys=True) + "\n")
        inner = event["data"]["data"]
        if isinstance(inner, dict) and inner.get("again"):
            pyagents.context().publish("task.again", {"from": event["seq"]})
        return {"seq": event["seq"]}

    def handle_publish(self, data):
        pyagents.context().publish(data["topic"], data.get("data"))
        return {"published": data["topic"]}
