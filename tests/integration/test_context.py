# SPDX-License-Identifier: BSD-2-Clause
"""test_context.py - every handler can know the message it runs.

Through the real agentpoold with real Python workers
(agents/ctxagent.py): a handler taking a third parameter gets the
message's context, and pyagents.context() returns it from anywhere in the
handler, in sync and async agents; the client's id, the type, the
deadline the master set (from timeoutMs), the attempt (2 after a crash
retry), the worker, pid and pool are the real ones; context.log lines
reach agentpoold's log tagged with the message id; concurrent async
messages each see their own; and a two-parameter handler keeps working.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, main, wait_for  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")


def ctx_server(cls, workers=1, args=()):
    return Server(agent="ctxagent:" + cls, workers=workers,
                  args=["--python-path", AGENTS_DIR, "--retry-delay", "10"] + list(args))


class Context(unittest.TestCase):
    def check_fields(self, cls):
        with ctx_server(cls, args=["--timeout", "0"]) as s, s.client() as c:
            pids = s.worker_pids()
            r = c.request("ctx.show", {}, id="abc-1", timeoutMs=30000)
            self.assertTrue(r["ok"], r)
            res = r["result"]
            self.assertEqual(res["id"], "abc-1")
            self.assertEqual(res["type"], "ctx.show")
            self.assertEqual(res["attempt"], 1)
            self.assertEqual(res["worker"], "worker-0")
            self.assertEqual(res["pid"], res["real_pid"])
            self.assertIn(res["pid"], pids)
            self.assertEqual(res["pool"], s.path)
            self.assertTrue(res["same"], "pyagents.context() is not the handler's context")
            # the deadline is the master's: acceptance + timeoutMs, in time.monotonic()
            self.assertGreater(res["remaining"], 0)
            self.assertLessEqual(res["remaining"], 30.0)
            self.assertLessEqual(res["deadline_ahead"], 30.0)
            r = c.request("ctx.show", {}, id=7)
            self.assertEqual(r["result"]["id"], 7)
            self.assertIsNone(r["result"]["remaining"], "no timeout configured, yet a deadline")

    def test_third_parameter_sync(self):
        self.check_fields("ThreeParams")

    def test_two_parameter_handler_uses_pyagents_context(self):
        self.check_fields("TwoParams")

    def test_async_handlers(self):
        self.check_fields("AsyncTwoParams")
        self.check_fields("AsyncThreeParams")

    def test_attempt_counts_crash_retries(self):
        with ctx_server("ThreeParams", workers=2) as s, s.client() as c:
            marker = os.path.join(s.tmp.name, "crashed")
            r = c.request("ctx.show", {"marker": marker}, id="r1")
            self.assertTrue(r["ok"], r)
            self.assertTrue(os.path.exists(marker))
            self.assertEqual(r["result"]["attempt"], 2)
            self.assertNotEqual(r["result"]["pid"], int(open(marker).read()))

    def test_log_reaches_agentpoold_log_tagged_with_message_id(self):
        with ctx_server("TwoParams") as s, s.client() as c:
            r = c.request("ctx.show", {"log": "hello from the handler"}, id="log-42")
            self.assertTrue(r["ok"], r)
            wait_for(lambda: 'message "log-42": hello from the handler' in s.log(), what="the context log line")
            line = [l for l in s.log().splitlines() if "hello from the handler" in l][0]
            self.assertIn("worker-0", line)
            self.assertIn("WARN", line.upper())

    def test_concurrent_async_messages_each_see_their_own(self):
        with ctx_server("AsyncTwoParams", args=["--concurrency", "20"]) as s, s.client() as c:
            reqs = [{"id": "m%d" % i, "type": "t%d" % i, "data": {"sleep": 0.05}} for i in range(20)]
            answers = c.pipeline(reqs)
            for a in answers.values():
                n = a["id"][1:]
                self.assertTrue(a["ok"], a)
                self.assertEqual(a["result"]["id"], "m" + n)
                self.assertEqual(a["result"]["type"], "t" + n)


if __name__ == "__main__":
    main()
