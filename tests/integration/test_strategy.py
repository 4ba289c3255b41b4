"""test_strategy.py - one-for-all restarts and retryOnTimeout, through the
real agentpoold.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, main, wait_for  # noqa: E402

AGENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agents")


class RestartStrategy(unittest.TestCase):
    def test_one_for_one_replaces_only_the_worker_that_died(self):
        with Server(agent="life:LifeAgent", workers=3, args=["--python-path", AGENTS]) as s, s.client() as c:
            before = set(s.worker_pids())
            r = c.request("crash", {}, retry=False)
            self.assertEqual(r["error"]["code"], "worker_crashed")
            wait_for(lambda: len(set(s.worker_pids())) == 3 and c.stats()["healthy"] == 3, what="respawn")
            self.assertEqual(len(before & set(s.worker_pids())), 2)

    def test_one_for_all_replaces_every_worker_after_a_crash_rolling(self):
        with Server(agent="life:LifeAgent", workers=3,
                    args=["--python-path", AGENTS, "--restart-strategy", "one-for-all"]) as s, s.client() as c:
            before = set(s.worker_pids())
            r = c.request("crash", {}, retry=False)
            self.assertEqual(r["error"]["code"], "worker_crashed")

            def all_new():
                pids = set(s.worker_pids())
                return len(pids) == 3 and before.isdisjoint(pids) and c.stats()["healthy"] == 3
            wait_for(all_new, what="every worker replaced")
            reasons = sorted(h["reason"] for h in c.call("pool.history")["history"])
            self.assertEqual(reasons, ["crashed", "recycled", "recycled"])
            self.assertIn("one-for-all", s.log())
            self.assertEqual(c.call("echo", {"x": 1}), {"x": 1})


class RetryOnTimeout(unittest.TestCase):
    def test_without_it_a_timed_out_message_is_not_retried(self):
        with Server(agent="pyagents.examples.sleep:AsyncSleepAgent", workers=1,
                    args=["--timeout", "300", "--retry-delay", "10"]) as s, s.client() as c:
            r = c.request("sleep", {"ms": 60000})
            self.assertEqual(r["error"]["code"], "timeout")
            self.assertEqual(c.stats()["messages"]["retried"], 0)

    def test_with_it_each_attempt_gets_the_timeout_then_the_client_gets_timeout(self):
        with Server(agent="pyagents.examples.sleep:AsyncSleepAgent", workers=1,
                    args=["--timeout", "300", "--retry-on-timeout", "--max-retries", "2",
                          "--retry-delay", "10"]) as s, s.client() as c:
            r = c.request("sleep", {"ms": 60000})
            self.assertEqual(r["error"]["code"], "timeout")
            self.assertIn("after 3 attempts", r["error"]["message"])
            st = wait_for(lambda: (lambda st: st["inFlight"] == 0 and st)(c.stats()), what="cancels done")
            self.assertEqual(st["messages"]["retried"], 2)
            self.assertEqual(st["errors"]["timeout"], 1)
            self.assertEqual(st["messages"]["pendingBytes"], 0)
            # a request may still opt out
            r = c.request("sleep", {"ms": 60000}, retry=False)
            self.assertIn("after 1 attempt", r["error"]["message"])


if __name__ == "__main__":
    main()
