# SPDX-License-Identifier: BSD-2-Clause
"""test_counters.py - pool.stats, /metrics and `agentpoolctl top --once`
tell the same numbers after the same traffic.

One pool of two LifeAgent workers (no restart on failure, no retries)
gets: ok messages, agent errors, pool.* control requests, a pool.reload
whose new code fails to start (the old workers keep serving), and a
message that crashes its worker, which stays dead.  Then:

- pool.stats' messages.answeredOk counts the messages' ok answers only
  (pool.* answers are `control.ok`): it equals the sum of
  agentpool_messages_total{outcome="ok"}, and control requests do not
  move it;
- each error code in pool.stats' `errors` is the sum over types of
  agentpool_messages_total for that code plus
  agentpool_control_requests_total for it: the failed reload is a control
  agent_error in both (it was once in pool.stats only);
- control.ok in pool.stats and agentpool_control_requests_total{ok}
  agree (the stats request's own answer is counted after its snapshot);
- `top --once` says "workers 1/2 ready" above the dead worker's row (it
  once said 1/1, counting live processes against themselves), and its
  error total is pool.stats' errors summed.
"""
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLCTL, DEADLINE, SRCDIR, Server, main, server_stats, wait_for  # noqa: E402
from test_metrics import Endpoint, parse_metrics, sample  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")


def by_outcome(samples, name):
    """{outcome: sum over the other labels} of one counter family."""
    out = {}
    for (n, labels), v in samples.items():
        if n == name:
            o = dict(labels)["outcome"]
            out[o] = out.get(o, 0) + v
    return out


class Agree(unittest.TestCase):
    def test_stats_metrics_and_top_agree_after_the_same_traffic(self):
        srv = Server(agent="life:LifeAgent", workers=2,
                     args=["--python-path", AGENTS_DIR, "--max-retries", "0", "--no-restart-on-failure"])
        flag = os.path.join(srv.tmp.name, "fail-start")
        srv.env = {"AP_TEST_FAIL_START": flag}
        spec = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
        srv.args += ["--metrics-listen", spec]
        ep = Endpoint(spec)
        with srv:
            with srv.client() as c:
                for i in range(5):
                    self.assertTrue(c.request("echo", {"seq": i})["ok"])
                for i in range(2):
                    self.assertEqual(c.request("raise", {"seq": i})["error"]["code"], "agent_error")
                before = c.call("pool.stats")["messages"]["answeredOk"]
                for _ in range(10):
                    c.call("pool.ping")
                self.assertEqual(c.call("pool.stats")["messages"]["answeredOk"], before,
                                 "pool.* answers counted as answered messages")
                # A reload whose new code fails to start: refused as agent_error.
                with open(flag, "w"):
                    pass
                r = c.request("pool.reload")
                self.assertEqual(r["error"]["code"], "agent_error", r)
                os.unlink(flag)
                # A crash: the worker stays dead (no restart, no retry).
                self.assertEqual(c.request("crash", {"seq": 99})["error"]["code"], "worker_crashed")
            wait_for(lambda: [w for w in server_stats(srv, detailed=True)["workers"] if w["state"] == "dead"],
                     what="the crashed worker's dead row")

            st = server_stats(srv, detailed=True)
            samples, _ = parse_metrics(ep.get("/metrics")[2])
            msgs = by_outcome(samples, "agentpool_messages_total")
            ctl = by_outcome(samples, "agentpool_control_requests_total")

            self.assertEqual(st["messages"]["answeredOk"], 5)
            self.assertEqual(msgs.get("ok"), 5)
            for code, n in st["errors"].items():
                self.assertEqual(n, msgs.get(code, 0) + ctl.get(code, 0),
                                 "errors.%s: pool.stats %d, /metrics messages %s + control %s"
                                 % (code, n, msgs.get(code), ctl.get(code)))
            self.assertEqual(st["errors"]["agent_error"], 3)
            self.assertEqual(st["control"]["errors"], {"agent_error": 1})
            self.assertEqual(ctl.get("agent_error"), 1)
            self.assertEqual(st["errors"]["worker_crashed"], 1)
            # The detailed stats request above was answered after its snapshot.
            self.assertEqual(ctl["ok"], st["control"]["ok"] + 1)
            self.assertEqual(sample(samples, "agentpool_workers", state="ready"), 1)

            r = subprocess.run([AGENTPOOLCTL, "-s", srv.path, "top", "--once"], capture_output=True, text=True,
                               timeout=DEADLINE, env=dict(os.environ, COLUMNS="200"))
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = r.stdout.splitlines()
            self.assertRegex(lines[0], r"workers 1/2 ready")
            rows = [l.split() for l in lines if l.startswith("worker-")]
            self.assertEqual(sorted(row[2] for row in rows), ["dead", "ready"], r.stdout)
            total = int(re.search(r"\((\d+) total\)", lines[1]).group(1))
            self.assertEqual(total, sum(st["errors"].values()))


if __name__ == "__main__":
    main()
