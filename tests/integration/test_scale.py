# SPDX-License-Identifier: BSD-2-Clause
"""test_scale.py - the pool grows and shrinks between minWorkers and maxWorkers.

Through the real agentpoold: SIGTTIN/SIGTTOU, pool.scale (clamped), the
automatic scale-up when queued messages wait longer than scaleUpAfter,
and the idle scale-down after idleTimeout.  Conditions are waited for
with generous deadlines; no duration is asserted.
"""
import os
import signal
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, main, wait_for  # noqa: E402


def live_workers(c):
    return sorted(w["id"] for w in c.stats(detailed=True)["workers"] if w["state"] in ("ready", "busy"))


class Scale(unittest.TestCase):
    def test_sigttin_adds_a_worker_and_sigttou_removes_one(self):
        with Server(workers=1, args=["--max-workers", "3", "--idle-timeout", "100000000"]) as s, s.client() as c:
            s.signal(signal.SIGTTIN)
            wait_for(lambda: live_workers(c) == ["worker-0", "worker-1"], what="worker-1 added")
            s.signal(signal.SIGTTOU)
            wait_for(lambda: live_workers(c) == ["worker-0"], what="worker-1 removed")
            # never below minWorkers
            s.signal(signal.SIGTTOU)
            self.assertEqual(c.call("pool.scale", {"workers": 1})["workers"], 1)
            self.assertEqual(live_workers(c), ["worker-0"])

    def test_pool_scale_sets_the_count_clamped_to_the_limits(self):
        with Server(workers=1, args=["--max-workers", "3", "--idle-timeout", "100000000"]) as s, s.client() as c:
            r = c.call("pool.scale", {"workers": 10})
            self.assertEqual((r["requested"], r["before"], r["workers"], r["clamped"]), (10, 1, 3, True))
            wait_for(lambda: len(live_workers(c)) == 3, what="three workers ready")
            r = c.call("pool.scale", {"workers": 2})
            self.assertEqual((r["workers"], r["clamped"]), (2, False))
            wait_for(lambda: live_workers(c) == ["worker-0", "worker-1"], what="back to two")
            resp = c.request("pool.scale", {"nope": 1})
            self.assertEqual(resp["error"]["code"], "bad_request")

    def test_a_removed_worker_finishes_what_it_holds(self):
        with tempfile.TemporaryDirectory() as d, \
                Server(agent="pyagents.examples.gate:GateAgent", workers=1,
                       args=["--max-workers", "2", "--idle-timeout", "100000000",
                             "--load-balancing-strategy", "round-robin"]) as s, s.client() as c:
            c.call("pool.scale", {"workers": 2})
            wait_for(lambda: len(live_workers(c)) == 2, what="two workers")
            gate = os.path.join(d, "go")
            c.send({"id": "a", "type": "wait", "data": {"file": gate, "seq": 1}})
            c.send({"id": "b", "type": "wait", "data": {"file": gate, "seq": 2}})
            wait_for(lambda: c.stats()["inFlight"] == 2, what="both held")
            with s.client() as c2:
                c2.call("pool.scale", {"workers": 1})
            open(gate, "w").close()
            got = {c.recv()["id"]: True for _ in range(2)}
            self.assertEqual(sorted(got), ["a", "b"])
            wait_for(lambda: live_workers(c) == ["worker-0"], what="worker-1 gone")

    def test_messages_waiting_longer_than_scale_up_after_add_a_worker(self):
        with tempfile.TemporaryDirectory() as d, \
                Server(agent="pyagents.examples.gate:GateAgent", workers=1,
                       args=["--max-workers", "2", "--scale-up-after", "200", "--idle-timeout", "100000000"]) as s, \
                s.client() as c:
            gate, open_gate = os.path.join(d, "go"), os.path.join(d, "open")
            open(open_gate, "w").close()
            c.send({"id": "held", "type": "wait", "data": {"file": gate}})
            c.send({"id": "queued", "type": "wait", "data": {"file": open_gate}})
            # the queued echo waits behind the held message until a second worker exists
            r = c.recv()
            self.assertEqual((r["id"], r["ok"]), ("queued", True))
            self.assertEqual(len(live_workers(c)), 2)
            self.assertIn("scaleUpAfter", s.log())
            open(gate, "w").close()
            self.assertEqual(c.recv()["id"], "held")

    def test_an_idle_worker_is_retired_but_never_below_min_workers(self):
        with Server(workers=1, args=["--max-workers", "3", "--idle-timeout", "300"]) as s, s.client() as c:
            c.call("pool.scale", {"workers": 3})
            # The two added workers each become ready, stay idle and are
            # retired, highest first.  Whether all three are ever ready at
            # once depends on how fast the machine starts them, so what is
            # waited for is the two retirements, not a moment in between.
            wait_for(lambda: s.log().count("idle longer than idleTimeout") == 2, what="two idle workers retired")
            wait_for(lambda: live_workers(c) == ["worker-0"], what="worker-0 alone")
            self.assertEqual(c.call("pool.health")["workers"], 1)
            self.assertEqual(c.call("echo", {"still": "serving"}), {"still": "serving"})
            self.assertEqual(s.log().count("idle longer than idleTimeout"), 2, "retired below minWorkers")


if __name__ == "__main__":
    main()
