# SPDX-License-Identifier: BSD-2-Clause
"""test_recycle.py - workers are replaced on purpose, make before break.

Each test starts the real agentpoold and proves one recycling policy
(docs/lifecycle.md, "Recycling"): by message count, by age, by soft and
hard memory limits, and the gracefulTimeout kill of a worker that does
not stop.  Nothing here asserts how long anything took.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, children_of, main, wait_for  # noqa: E402
import unittest  # noqa: E402


def zombies_of(pid):
    out = []
    for child in children_of(pid):
        try:
            with open("/proc/%d/stat" % child) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    out.append(child)
        except OSError:
            pass
    return out


class Recycle(unittest.TestCase):
    def test_recycling_by_count_changes_pids_fails_nothing_and_reaps_everything(self):
        with Server(workers=2, args=["--max-messages-per-worker", "100", "--recycle-jitter", "0"]) as s:
            with s.client() as c:
                first = set(s.worker_pids())
                out = c.pipeline([{"id": i, "type": "echo", "data": i} for i in range(5000)])
                self.assertEqual(len(out), 5000)
                self.assertEqual([r for r in out.values() if not r["ok"]], [])
                self.assertTrue(all(out[str(i)]["result"] == i for i in range(5000)))
                st = wait_for(lambda: (lambda st: st["restarts"]["recycled"] >= 2 and st)(c.stats(detailed=True)),
                              what="two recycles finished")
                self.assertGreaterEqual(st["workerEvents"]["recycled"], 2)
                self.assertEqual(st["workerEvents"]["crashed"], 0)
                self.assertEqual(st["errors"]["worker_crashed"], 0)
                history = c.call("pool.history")["history"]
                self.assertTrue(history and {h["reason"] for h in history} == {"recycled"}, history)
                self.assertTrue(all(h["exitStatus"] == 0 for h in history), history)
                # the recycled processes are gone and reaped
                wait_for(lambda: not (first & set(children_of(s.proc.pid))), what="old workers reaped")
                self.assertEqual(zombies_of(s.proc.pid), [])
                gens = [w["generation"] for w in c.stats(detailed=True)["workers"]]
                self.assertGreater(max(gens), 1)

    def test_recycling_by_age_replaces_a_worker_while_it_serves(self):
        with Server(workers=1, args=["--worker-recycle-interval", "1500", "--recycle-jitter", "0"]) as s:
            with s.client() as c:
                pid0 = c.call("agent.metrics")["pid"]
                # keep it busy while its age runs out: nothing may fail
                def replaced():
                    self.assertEqual(c.call("echo", {"x": 1}), {"x": 1})
                    return c.call("agent.metrics")["pid"] != pid0
                wait_for(replaced, what="the worker recycled by age")
                hist = wait_for(lambda: c.call("pool.history")["history"], what="the old worker's end")
                self.assertEqual(hist[0]["reason"], "recycled")
                self.assertEqual(hist[0]["pid"], pid0)

    def test_soft_memory_limit_recycles_gracefully(self):
        with Server(agent="pyagents.examples.leak:LeakAgent", workers=1,
                    args=["--max-worker-rss", str(80 << 20), "--recycle-jitter", "0"]) as s:
            with s.client() as c:
                pid0 = c.call("agent.metrics")["pid"]
                for _ in range(10):
                    r = c.request("leak", {"kb": 10 * 1024})
                    self.assertTrue(r["ok"], r)
                wait_for(lambda: c.call("agent.metrics")["pid"] != pid0, what="recycled for memory")
                hist = wait_for(lambda: c.call("pool.history")["history"], what="the old worker's end")
                self.assertEqual(hist[0]["reason"], "recycled")
                self.assertEqual(c.stats()["workerEvents"]["crashed"], 0)

    def test_hard_memory_limit_kills_at_once_and_the_message_is_retried(self):
        with Server(agent="pyagents.examples.leak:LeakAgent", workers=1,
                    args=["--max-worker-rss-hard", str(60 << 20), "--retry-delay", "10"]) as s:
            with s.client() as c:
                pid0 = c.call("agent.metrics")["pid"]
                for _ in range(8):
                    r = c.request("leak", {"kb": 10 * 1024})
                    self.assertTrue(r["ok"], r)  # each message runs once on a fresh worker at worst
                    if c.call("agent.metrics")["pid"] != pid0:
                        break
                wait_for(lambda: any(h["reason"] == "killed_memory" for h in c.call("pool.history")["history"]),
                         what="a worker killed for maxWorkerRssHard")
                self.assertIn("over maxWorkerRssHard", s.log())

    def test_a_worker_that_does_not_stop_is_killed_after_graceful_timeout(self):
        gate_dir = self.enterContext(__import__("tempfile").TemporaryDirectory())
        gate = os.path.join(gate_dir, "never")
        with Server(agent="pyagents.examples.gate:GateAgent", workers=1,
                    args=["--worker-recycle-interval", "500", "--recycle-jitter", "0",
                          "--graceful-timeout", "300", "--timeout", "0"]) as s:
            with s.client() as c:
                c.send({"id": "held", "type": "wait", "data": {"file": gate}, "retry": False})
                # the replacement takes over; the old one drains forever, so
                # gracefulTimeout kills it and its message is answered
                r = c.recv()
                self.assertEqual(r["id"], "held")
                self.assertEqual(r["error"]["code"], "worker_crashed")
                self.assertIn("did not exit within gracefulTimeout", s.log())
                self.assertTrue(c.call("pool.ping")["pong"])


if __name__ == "__main__":
    main()
