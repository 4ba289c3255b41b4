# SPDX-License-Identifier: BSD-2-Clause
"""WhoamiAgent: answers {"pid": the worker's pid, "worker": its agent_id}.

agent_id defaults to $AGENTPOOL_WORKER_ID ("worker-3"), so tests can see
which worker served a message (dispatch strategies, affinity, recycling).
"""

import os

from pyagents import Agent


class WhoamiAgent(Agent):
    def handle_message(self, type, data):
        return {"pid": os.getpid(), "worker": self.agent_id}
