# SPDX-License-Identifier: BSD-2-Clause
"""CrashAgent: the message kills its worker with os._exit(data.get("code", 1)).

No answer is ever sent: this is how tests make a worker die mid-message
(retries, dead letters, respawn and backoff).
"""

import os

from pyagents import Agent


class CrashAgent(Agent):
    def handle_message(self, type, data):
        code = data.get("code", 1) if isinstance(data, dict) else 1
        os._exit(int(code))
