# SPDX-License-Identifier: BSD-2-Clause
"""BadStartAgent: on_start() raises RuntimeError("bad start").

The worker then sends START_FAILED with the traceback and exits with
status 3 (AP_EXIT_START_FAILED); the master must not respawn it in a loop.
"""

from pyagents import Agent


class BadStartAgent(Agent):
    def on_start(self):
        raise RuntimeError("bad start")

    def handle_message(self, type, data):
        return data
