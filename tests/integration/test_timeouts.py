# SPDX-License-Identifier: BSD-2-Clause
"""test_timeouts.py - deadlines: queued, running sync, running async, blocked loops.

Through the real agentpoold with real Python workers (agents/life.py),
what docs/lifecycle.md promises at a message's deadline: a queued message
is answered timeout and never runs; a stuck sync handler is answered
timeout, its Python stack goes to the log, and its worker is replaced
(pool.history: killed_stuck); an async task past its deadline is
cancelled (its finally block runs) while its siblings finish on the same
process; an async handler that blocks its loop gets its worker replaced;
a client that leaves cancels its running async messages; a timed-out
message is retried only with retryOnTimeout, each attempt getting the
whole timeout.  Conditions are polled until generous deadlines; no
duration is asserted.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Gate, Server, main, server_stats, wait_for, wait_stats  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")


def life_server(agent="life:LifeAgent", workers=1, args=()):
    return Server(agent=agent if ":" in agent else "life:" + agent, workers=workers,
                  args=["--python-path", AGENTS_DIR, "--retry-delay", "10"] + list(args))


def read(path):
    with open(path) as f:
        return f.read()


def worker0(s):
    with s.client() as c:
        return c.stats(detailed=True)["workers"][0]


def wait_replaced(s, old_pid):
    """Waits until worker-0 is a new, ready process; returns its pid."""
    def replaced():
        w = worker0(s)
        return w["state"] == "ready" and w["pid"] not in (0, old_pid) and w["pid"]
    return wait_for(replaced, what="worker-0 (pid %d) to be replaced" % old_pid)


def wait_log(s, text):
    wait_for(lambda: text in s.log(), what="%r in the log" % text)


class Timeouts(unittest.TestCase):
    def test_queued_message_past_its_deadline_is_answered_timeout_without_running(self):
        with life_server(workers=1) as s, Gate(s.tmp.name) as gate, s.client() as c:
            log = os.path.join(s.tmp.name, "ran.log")
            pid = c.call("whoami")["pid"]
            c.send({"id": "g", "type": "gate", "data": {"file": gate.path, "seq": "g", "log": log}})
            wait_stats(s, lambda st: st["busy"] == 1, what="the gated message to hold the worker")
            c.send({"id": "q", "type": "run", "data": {"seq": "q", "log": log}, "timeoutMs": 200})
            r = c.recv()  # the worker is still held: only q can be answered
            self.assertEqual(r["id"], "q")
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "timeout", r)
            self.assertIn("waiting in the queue", r["error"]["message"])
            gate.release()
            r = c.recv()
            self.assertEqual((r["id"], r["ok"]), ("g", True), r)
            self.assertEqual(c.request("run", {"seq": "z", "log": log}, id="z")["result"]["pid"], pid)
            self.assertEqual(read(log).split(), ["g", "z"])
            st = server_stats(s)
            self.assertEqual(st["errors"]["timeout"], 1)
            self.assertEqual(st["workerEvents"]["killedStuck"], 0)
            self.assertEqual(st["messages"]["retried"], 0)

    def test_hung_sync_handler_is_answered_timeout_its_stack_logged_and_its_worker_replaced(self):
        with life_server(workers=1, args=["--timeout", "500"]) as s, s.client() as c:
            pidfile = os.path.join(s.tmp.name, "hang.pid")
            old = c.call("whoami")["pid"]
            r = c.request("hang", {"s": 60, "pidfile": pidfile}, id="hung-1")
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "timeout", r)
            self.assertEqual(int(read(pidfile)), old)
            new = wait_replaced(s, old)
            self.assertEqual(c.call("whoami")["pid"], new)
            log = s.log()
            self.assertRegex(log, r"worker-0 \(pid %d\) is stuck: message \"hung-1\"" % old)
            # faulthandler's dump of the stuck handler (SIGUSR1 from the master)
            self.assertRegex(log, r'File "[^"]*life\.py", line \d+ in handle_message')
            hist = c.call("pool.history")["history"]
            self.assertEqual([(h["pid"], h["reason"]) for h in hist], [(old, "killed_stuck")], hist)
            self.assertTrue("signal" in hist[0] or "exitStatus" in hist[0], hist)
            st = server_stats(s)
            self.assertEqual(st["workerEvents"]["killedStuck"], 1)
            self.assertEqual(st["errors"]["timeout"], 1)
            # a timed-out message is not retried: nothing ran it again
            self.assertEqual(st["messages"]["retried"], 0)
            self.assertEqual(int(read(pidfile)), old)

    def test_async_task_past_its_deadline_is_cancelled_while_its_siblings_complete(self):
        with life_server("AsyncLifeAgent", workers=1, args=["--concurrency", "4"]) as s, s.client() as c:
            pid = c.call("whoami")["pid"]
            marker = {k: os.path.join(s.tmp.name, k + ".end") for k in ("long", "s1", "s2", "s3")}
            reqs = [{"id": "long", "type": "sleep", "data": {"ms": 60000, "marker": marker["long"]},
                     "timeoutMs": 300}]
            reqs += [{"id": k, "type": "sleep", "data": {"ms": 200, "marker": marker[k], "seq": k}}
                     for k in ("s1", "s2", "s3")]
            got = c.pipeline(reqs)
            for k in ("s1", "s2", "s3"):
                r = got['"%s"' % k]
                self.assertTrue(r["ok"], r)
                self.assertEqual(r["result"]["pid"], pid)
                self.assertEqual(read(marker[k]), "done")
            r = got['"long"']
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "timeout", r)
            wait_for(lambda: os.path.exists(marker["long"]), what="the long task's finally block")
            self.assertEqual(read(marker["long"]), "cancelled")
            self.assertEqual(c.call("whoami")["pid"], pid)
            w = worker0(s)
            self.assertEqual((w["pid"], w["generation"]), (pid, 1))
            st = server_stats(s)
            self.assertEqual(st["workerEvents"]["killedStuck"], 0)
            self.assertEqual(st["workerEvents"]["spawned"], 1)
            self.assertNotIn("is stuck", s.log())

    def test_async_handler_blocking_its_loop_gets_its_worker_replaced(self):
        with life_server("AsyncLifeAgent", workers=1, args=["--concurrency", "4"]) as s, s.client() as c:
            old = c.call("whoami")["pid"]
            r = c.request("block", {"s": 60}, id="blocker", timeoutMs=300)
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "timeout", r)
            new = wait_replaced(s, old)
            self.assertEqual(c.call("whoami")["pid"], new)
            log = s.log()
            self.assertRegex(log, r"worker-0 \(pid %d\) is stuck: its event loop did not let go of "
                             r"cancelled message \"blocker\"" % old)
            hist = c.call("pool.history")["history"]
            self.assertEqual([(h["pid"], h["reason"]) for h in hist], [(old, "killed_stuck")], hist)
            self.assertEqual(server_stats(s)["workerEvents"]["killedStuck"], 1)

    def test_client_disconnect_cancels_its_running_async_message(self):
        with life_server("AsyncLifeAgent", workers=1, args=["--concurrency", "4"]) as s:
            started = os.path.join(s.tmp.name, "started")
            marker = os.path.join(s.tmp.name, "end")
            with s.client() as c:
                pid = c.call("whoami")["pid"]
                c.send({"id": "abandoned", "type": "sleep",
                        "data": {"ms": 60000, "marker": marker, "started": started}})
                wait_for(lambda: os.path.exists(started), what="the handler to start")
            # the client is gone: the task must be cancelled, not left to
            # sleep its minute out ("cancelled", not "done", in the marker)
            wait_for(lambda: os.path.exists(marker), what="the abandoned task's finally block")
            self.assertEqual(read(marker), "cancelled")
            with s.client() as c:
                self.assertEqual(c.call("whoami")["pid"], pid)
            st = wait_stats(s, lambda st: st["inFlight"] == 0, what="the worker to let go of the message")
            self.assertEqual(st["workerEvents"]["killedStuck"], 0)


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
