# SPDX-License-Identifier: BSD-2-Clause
"""test_agent_procs.py - processes agent code starts end with their worker.

docs/lifecycle.md ("What agents start"): a worker's process group is
killed when the worker ends, however it ends (crash, recycle, reload,
shutdown), and a process that left the group (setsid) is re-parented to
agentpoold (a child subreaper) when its parent dies and killed there.
Through the real server with a real Python agent (agents/spawner.py)
that os.fork()s children which sleep for 600 s, some ignoring SIGTERM,
some in a session of their own: after the worker is SIGKILLed, after a
rolling reload replaced it, and after a clean shutdown, none of them is
left (polled in /proc, identified by pid and start time); a child the
replacement worker starts afterwards is not killed by accident.
"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, main, wait_for  # noqa: E402

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")
SPAWNER = "spawner:SpawnerAgent"
PYARGS = ["--python-path", AGENTS]


def start_time(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def alive(child):
    """The process the agent started is still there (same pid, same start
    time, not a zombie)."""
    return start_time(child["pid"]) == child["start"]


class AgentProcsTest(unittest.TestCase):
    def setUp(self):
        self.children = []

    def tearDown(self):
        for c in self.children:  # a failed test leaves nothing behind
            if alive(c):
                os.kill(c["pid"], signal.SIGKILL)

    def spawn(self, client, **data):
        child = client.call("spawn", data)
        self.children.append(child)
        self.assertTrue(alive(child))
        return child

    def assert_gone(self, children, what):
        wait_for(lambda: not any(alive(c) for c in children),
                 what="the agent's children to be gone after " + what)

    def test_killed_worker_takes_its_children(self):
        with Server(agent=SPAWNER, workers=1, args=PYARGS) as srv:
            with srv.client() as c:
                kids = [self.spawn(c), self.spawn(c, ignore_term=True),
                        self.spawn(c, setsid=True, ignore_term=True)]
                worker = kids[0]["worker"]
                os.kill(worker, signal.SIGKILL)
                self.assert_gone(kids, "its worker was killed")

                # The replacement's own children are not killed by accident.
                wait_for(lambda: c.call("whoami")["worker"] != worker, what="a new worker")
                fresh = self.spawn(c, ignore_term=True)
                self.assertNotEqual(fresh["worker"], worker)
                for _ in range(20):
                    c.call("whoami")
                self.assertTrue(alive(fresh), "a new worker's child was killed")
            self.assertEqual(srv.stop(), 0)
            self.assert_gone([fresh], "a clean shutdown")

    def test_reload_and_shutdown_end_the_children(self):
        with Server(agent=SPAWNER, workers=1, args=PYARGS) as srv:
            with srv.client() as c:
                old = [self.spawn(c, ignore_term=True), self.spawn(c, setsid=True)]
                srv.signal(signal.SIGHUP)  # rolling reload: the worker is replaced, gracefully
                self.assert_gone(old, "a reload replaced their worker")
                wait_for(lambda: c.call("whoami")["worker"] != old[0]["worker"], what="the new worker")
                new = [self.spawn(c, ignore_term=True), self.spawn(c, setsid=True, ignore_term=True)]
            self.assertEqual(srv.stop(), 0)
            self.assert_gone(new, "a clean shutdown")
            self.assertNotIn("still alive at exit", srv.log())


if __name__ == "__main__":
    main()
