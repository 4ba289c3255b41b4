# SPDX-License-Identifier: BSD-2-Clause
"""RaiseAgent: every message fails with ValueError(data.get("message", "boom")).

(The module cannot be called ``raise``: that is a keyword.)  The master
answers the client with code agent_error, exception "ValueError".
"""

from pyagents import Agent


class RaiseAgent(Agent):
    def handle_message(self, type, data):
        message = data.get("message", "boom") if isinstance(data, dict) else "boom"
        raise ValueError(message)
