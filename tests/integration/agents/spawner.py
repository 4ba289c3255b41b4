# SPDX-License-Identifier: BSD-2-Clause
"""spawner.py - a test agent that starts processes of its own.

Served by test_agent_procs.py with --python-path tests/integration/agents.
Plain class (no pyagents base).  By message type:

  spawn  -> os.fork()s a child that sleeps for data.get("s", 600)
            seconds, keeping every descriptor the worker had (the master
            link, the log pipes), as agent code that forks does.  With
            data["ignore_term"] the child ignores SIGTERM; with
            data["setsid"] it leaves the worker's process group (a new
            session).  Answers {"pid": child, "start": its start time
            (field 22 of /proc/PID/stat, to tell it from a reused pid),
            "worker": the worker's pid}.
  whoami -> {"worker": the worker's pid}
"""
import os
import signal
import time


def start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


class SpawnerAgent:
    def handle_message(self, type, data):
        if type != "spawn":
            return {"worker": os.getpid()}
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                if data.get("ignore_term"):
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                if data.get("setsid"):
                    os.setsid()
                os.write(w, b"x")
                os.close(w)
                time.sleep(data.get("s", 600))
            finally:
                os._exit(0)
        os.close(w)
        os.read(r, 1)  # the child is set up (signals, session) before we answer
        os.close(r)
        return {"pid": pid, "start": start_time(pid), "worker": os.getpid()}
