# SPDX-License-Identifier: BSD-2-Clause
"""test_suspect.py - a worker that does not take what it was sent is not chosen.

Through the real agentpoold with real Python workers (agents/rogue.py's
whoami says which worker answered): one of two idle workers is stopped
with SIGSTOP; messages sent meanwhile are all answered by the other one
(the one routed to the stopped worker is taken back once it is suspect,
after dispatchAckMs), none times out, and detailed stats show the
stopped worker suspect; after SIGCONT it is chosen again.  Conditions
are polled until generous deadlines; no duration is asserted.
"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, main, wait_for  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")


def worker_row(c, name):
    return [w for w in c.stats(detailed=True)["workers"] if w["id"] == name][0]


class Suspect(unittest.TestCase):
    def test_a_stopped_idle_worker_is_suspect_and_its_messages_go_to_the_other(self):
        with Server(agent="rogue:RogueAgent", workers=2,
                    args=["--python-path", AGENTS_DIR, "--dispatch-ack-ms", "300", "--timeout", "20000"]) as s, \
                s.client() as c:
            st = c.stats(detailed=True)
            pids = {w["id"]: w["pid"] for w in st["workers"]}
            self.assertFalse(any(w["suspect"] for w in st["workers"]), st["workers"])
            os.kill(pids["worker-0"], signal.SIGSTOP)
            try:
                out = c.pipeline([{"id": i, "type": "whoami"} for i in range(10)])
                for i in range(10):
                    r = out[str(i)]
                    self.assertTrue(r["ok"], r)  # none timed out
                    self.assertEqual(r["result"]["worker"], "worker-1", r)
                row = worker_row(c, "worker-0")
                self.assertTrue(row["suspect"], row)
                faults = c.stats()["workerFaults"]
                self.assertGreaterEqual(faults["suspected"], 1, faults)
                self.assertGreaterEqual(faults["rerouted"], 1, faults)
                self.assertEqual(faults["suspectNow"], 1, faults)
                self.assertIn("worker-0 (pid %d) has not read what was sent to it for" % pids["worker-0"], s.log())
            finally:
                os.kill(pids["worker-0"], signal.SIGCONT)
            wait_for(lambda: not worker_row(c, "worker-0")["suspect"], what="worker-0 no longer suspect")
            self.assertIn("worker-0 (pid %d) reads what is sent to it again: chosen again" % pids["worker-0"],
                          s.log())
            seen = set()
            for i in range(20):
                seen.add(c.request("whoami")["result"]["worker"])
                if "worker-0" in seen:
                    break
            self.assertIn("worker-0", seen)
            self.assertEqual(worker_row(c, "worker-0")["pid"], pids["worker-0"])  # the same process


if __name__ == "__main__":
    main()
