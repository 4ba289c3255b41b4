# SPDX-License-Identifier: BSD-2-Clause
"""httpagent.py - handlers for test_http.py (served with --python-path
tests/integration/agents), one per way a message can end:
  echo  -> returns data
  fail  -> raises (agent_error)
  crash -> the process exits 3 (worker_crashed once retries are spent)
  wait  -> waits until data["file"] exists (at most 60 s), returns "done"
"""
import os
import time


class HttpAgent:
    def handle_message(self, type, data):
        if type == "echo":
            return data
        if type == "fail":
            raise ValueError("asked to fail")
        if type == "crash":
            os._exit(3)
        if type == "wait":
            end = time.monotonic() + 60
            while not os.path.exists(data["file"]) and time.monotonic() < end:
                time.sleep(0.01)
            return "done"
        raise ValueError("unknown type %r" % type)
