# SPDX-License-Identifier: BSD-2-Clause
"""test_hubblocked.py - a handler that holds its worker's event loop is seen.

Through the real agentpoold with real Python workers
(agents/gevagent.py): in a gevent worker, a handler that never yields (a
busy loop) is logged with its stack, the worker id and pid, once per
hubBlockedWarnMs while it holds the hub, and counted as hubBlocked in
detailed stats, workerFaults and agentpool_hub_blocked_total; in an
asyncio worker, time.sleep inside async def is logged once per site and
counted every time; with hubBlockedWarnMs 0 nothing is; and a hub held
past a message's deadline gets the worker replaced like any stuck
worker (killed_stuck).  Holding times are far above the warning
threshold, and every wait is a condition polled until a deadline.
"""
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, main, pid_gone, skip_without_greenlet_support, wait_for  # noqa: E402
from test_metrics import metrics_server, parse_metrics, sample  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
SPIN_LINE = "while time.monotonic() < end:"
SLEEP_LINE = 'time.sleep(data["s"])'


def held_lines(log, what):
    return [l for l in log.splitlines() if "%s has been held for" % what in l]


def held_reports(log, what):
    """Each report: its warning line and the stack lines the same worker
    logged after it (ap_log_block: each a log line whose text starts with
    two spaces)."""
    reports, tags = [], []
    for l in log.splitlines():
        m = re.match(r"^\S+ \w+\s+\[([^\]]+)\] (.*)$", l)
        if m is None:
            continue
        if "%s has been held for" % what in l:
            reports.append([l])
            tags.append(m.group(1))
        elif reports and m.group(1) == tags[-1] and m.group(2).startswith("  "):
            reports[-1].append(l)
    return reports


class HubBlocked(unittest.TestCase):
    @skip_without_greenlet_support
    def test_a_gevent_handler_that_never_yields_is_logged_with_its_stack_and_counted(self):
        srv, ep = metrics_server(agent="gevagent:GeventAgent", workers=1,
                                 args=["--python-path", AGENTS_DIR, "--worker-model", "gevent",
                                       "--hub-blocked-warn-ms", "100"])
        with srv, srv.client() as c:
            pid = c.call("whoami")["pid"]
            r = c.request("spin", {"s": 2.0})
            self.assertTrue(r["ok"], r)
            lines = wait_for(lambda: held_lines(srv.log(), "the gevent hub"), what="the held-hub warning")
            self.assertRegex(lines[0], r"WARN .*\[worker-0 %d\] the gevent hub has been held for \d+ ms "
                             r"\(hubBlockedWarnMs 100\) in worker worker-0, pid %d" % (pid, pid))
            st = c.stats(detailed=True)
            n = st["workers"][0]["hubBlocked"]
            self.assertGreaterEqual(n, 1)
            # the worker's lines reach the log through the master: wait for all n
            wait_for(lambda: len(held_lines(srv.log(), "the gevent hub")) == n, what="one warning per report")
            # each report made while the handler spun shows it (at its loop's test or its
            # body); the last one may have read the stack just after the handler returned,
            # before the hub ran its beat (a preempted worker), and then shows the bridge
            wait_for(lambda: len(re.findall(r'gevagent\.py", line \d+, in handle_message', srv.log())) >= max(1, n - 1),
                     what="the spinning handler in each report's stack")
            self.assertLessEqual(len(re.findall(r'gevagent\.py", line \d+, in handle_message', srv.log())), n)
            self.assertTrue(SPIN_LINE in srv.log() or "n += 1" in srv.log())
            self.assertEqual(st["workerFaults"]["hubBlocked"], n)
            status, _, text = ep.get("/metrics")
            samples, families = parse_metrics(text)
            self.assertEqual(families["agentpool_hub_blocked_total"][0], "counter")
            self.assertEqual(sample(samples, "agentpool_hub_blocked_total"), n)
            # a handler that yields is not reported
            self.assertTrue(c.request("wait", {"file": "/"})["ok"])
            self.assertEqual(c.stats(detailed=True)["workers"][0]["hubBlocked"], n)

    def test_time_sleep_inside_async_def_is_logged_once_per_site_and_counted_each_time(self):
        with Server(agent="gevagent:AsyncBlocking", workers=1,
                    args=["--python-path", AGENTS_DIR, "--hub-blocked-warn-ms", "100"]) as s, s.client() as c:
            for _ in range(3):
                self.assertTrue(c.request("block", {"s": 1.0})["ok"])
            st = wait_for(lambda: (lambda st: st["workers"][0]["hubBlocked"] >= 3 and st)(c.stats(detailed=True)),
                          what="three reports")
            self.assertEqual(st["workers"][0]["model"], "async")
            wait_for(lambda: SLEEP_LINE in s.log(), what="the blocking line in the logged stack")
            # the sleep's site is logged once for its three holds.  (A watchdog that a loaded
            # machine keeps from the GIL until a sleep has returned finds the loop still held
            # at another line, a site of its own: logged too, and not the sleep's.)
            reports = held_reports(s.log(), "the asyncio event loop")
            at_sleep = [r for r in reports if any(SLEEP_LINE in l for l in r)]
            self.assertEqual(len(at_sleep), 1, reports)
            self.assertLessEqual(len(reports), 3, reports)
            self.assertIn("a blocking call inside async def? logged once per site", at_sleep[0][0])
            self.assertEqual(c.call("agent.metrics")["hub_blocked"], st["workers"][0]["hubBlocked"])

    def test_off_when_hub_blocked_warn_ms_is_0(self):
        with Server(agent="gevagent:AsyncBlocking", workers=1,
                    args=["--python-path", AGENTS_DIR, "--hub-blocked-warn-ms", "0"]) as s, s.client() as c:
            self.assertTrue(c.request("block", {"s": 0.5})["ok"])
            self.assertEqual(c.stats(detailed=True)["workers"][0]["hubBlocked"], 0)
            self.assertFalse(held_lines(s.log(), "the asyncio event loop"))

    @skip_without_greenlet_support
    def test_a_hub_held_past_the_deadline_gets_the_worker_replaced(self):
        with Server(agent="gevagent:GeventAgent", workers=1,
                    args=["--python-path", AGENTS_DIR, "--worker-model", "gevent", "--timeout", "0",
                          "--hub-blocked-warn-ms", "200"]) as s, s.client() as c:
            pid = c.call("whoami")["pid"]
            r = c.request("spin", {"s": 120}, timeoutMs=300)
            self.assertEqual(r["error"]["code"], "timeout", r)
            wait_for(lambda: pid_gone(pid), what="the held worker to be killed")
            hist = wait_for(lambda: c.call("pool.history")["history"], what="its end in the history")
            self.assertEqual(hist[0]["reason"], "killed_stuck", hist)
            wait_for(lambda: c.request("whoami")["ok"], what="a replacement to serve")
            self.assertNotEqual(c.call("whoami")["pid"], pid)
            self.assertTrue(held_lines(s.log(), "the gevent hub"))


if __name__ == "__main__":
    main()
