# SPDX-License-Identifier: BSD-2-Clause
"""test_breakers.py - per-type circuit breakers, through the real server.

RaiseAgent fails every message; echo-typed messages to an echo agent
succeed.  Breakers are off by default, open at the threshold, answer
circuit_open with retryAfterMs without touching a worker, let one probe
through after the reset timeout, and track at most maxTrackedTypes types.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, main, wait_for  # noqa: E402

RAISE = "pyagents.examples.raising:RaiseAgent"


class Breakers(unittest.TestCase):
    def test_breakers_are_off_by_default(self):
        with Server(agent=RAISE, workers=1) as s, s.client() as c:
            codes = {c.request("boom")["error"]["code"] for _ in range(20)}
            self.assertEqual(codes, {"agent_error"})
            self.assertNotIn("breakers", c.stats())

    def test_threshold_failures_open_the_breaker_and_it_answers_without_a_worker(self):
        with Server(agent=RAISE, workers=1,
                    args=["--breaker-failure-threshold", "3", "--breaker-reset-timeout", "600000"]) as s, \
                s.client() as c:
            for _ in range(3):
                self.assertEqual(c.request("boom")["error"]["code"], "agent_error")
            processed = c.stats()["totalMessagesProcessed"]
            r = c.request("boom")
            self.assertEqual(r["error"]["code"], "circuit_open")
            self.assertGreater(r["error"]["retryAfterMs"], 0)
            st = c.stats()
            self.assertEqual(st["totalMessagesProcessed"], processed)  # no worker touched
            self.assertEqual(st["breakers"]["boom"]["state"], "open")
            self.assertEqual(st["breakers"]["boom"]["rejected"], 1)
            self.assertEqual(st["errors"]["circuit_open"], 1)
            # other types are independent
            self.assertEqual(c.request("other-type")["error"]["code"], "agent_error")
            self.assertIn("breaker for type boom", s.log())

    def test_after_the_reset_timeout_one_probe_decides(self):
        with Server(agent=RAISE, workers=1,
                    args=["--breaker-failure-threshold", "2", "--breaker-reset-timeout", "300"]) as s, \
                s.client() as c:
            for _ in range(2):
                c.request("boom")
            self.assertEqual(c.request("boom")["error"]["code"], "circuit_open")
            # the probe runs (and fails: RaiseAgent), which opens it again
            r = wait_for(lambda: (lambda r: r["error"]["code"] == "agent_error" and r)(c.request("boom")),
                         what="the half-open probe to run")
            self.assertEqual(r["error"]["exception"], "ValueError")
            self.assertEqual(c.request("boom")["error"]["code"], "circuit_open")
            self.assertIn("the probe failed", s.log())

    def test_a_successful_probe_closes_the_breaker(self):
        with Server(agent="pyagents.examples.sleep:SleepAgent", workers=1,
                    args=["--breaker-failure-threshold", "2", "--breaker-reset-timeout", "300",
                          "--timeout", "0"]) as s, s.client() as c:
            # bad data makes SleepAgent raise; good data succeeds
            for _ in range(2):
                self.assertEqual(c.request("sleep", {"ms": "x"})["error"]["code"], "agent_error")
            self.assertEqual(c.request("sleep", {"ms": 1})["error"]["code"], "circuit_open")
            wait_for(lambda: c.request("sleep", {"ms": 1})["ok"], what="a successful probe")
            self.assertEqual(c.stats()["breakers"]["sleep"]["state"], "closed")
            self.assertTrue(c.request("sleep", {"ms": 1})["ok"])

    def test_types_beyond_max_tracked_types_share_other(self):
        with Server(agent=RAISE, workers=1,
                    args=["--breaker-failure-threshold", "1000", "--max-tracked-types", "4"]) as s, \
                s.client() as c:
            for i in range(50):
                c.request("type-%d" % i)
            tracked = c.stats()["breakers"]
            self.assertLessEqual(len(tracked), 5)
            self.assertIn("other", tracked)


if __name__ == "__main__":
    main()
