# SPDX-License-Identifier: BSD-2-Clause
"""test_drift.py - agent code changed on disk without a reload is seen,
and with pinCode refused.

Each worker reports a hash of the Python files it loaded; the first
worker of a generation (the start, then each reload) sets the identity.
Here the agent's file is rewritten while the pool runs and one worker is
killed: its respawn imports the new file.  Without pinCode it serves, and
the drift is logged ("CODE DRIFT"), counted (pool.stats code.drift,
agentpool_code_drift_total), marked on the worker (codeDrift in detailed
stats), and shown by pool.health and `agentpoolctl health`; a reload then
makes the new code the generation's and the mark goes.  With pinCode the
respawn is refused as a failed start: the slot is in restart backoff (the
pool degraded, the other worker serving) until the old file is back.
"""
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLCTL, DEADLINE, Server, main, server_stats, wait_for  # noqa: E402
from test_metrics import Endpoint, parse_metrics, sample  # noqa: E402

V1 = '''import os


class DriftAgent:
    def handle_message(self, type, data):
        return {"v": 1, "pid": os.getpid()}
'''
V2 = V1.replace('"v": 1', '"v": 2, "deployed": "half"')


class Drift(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="aptest-drift-")
        self.path = os.path.join(self.dir.name, "driftagent.py")
        self.write(V1)

    def tearDown(self):
        self.dir.cleanup()

    def write(self, text):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.path)

    def server(self, *args):
        srv = Server(agent="driftagent:DriftAgent", workers=2,
                     args=["--python-path", self.dir.name, "--max-restarts", "1000"] + list(args))
        self.spec = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
        srv.args += ["--metrics-listen", self.spec]
        return srv

    def worker(self, srv, name):
        return [w for w in server_stats(srv, detailed=True)["workers"] if w["id"] == name and w["state"] != "dead"]

    def test_drift_is_logged_counted_and_shown_then_a_reload_adopts_it(self):
        with self.server() as srv:
            st = server_stats(srv, detailed=True)
            ident = st["code"]["identity"]
            self.assertRegex(ident, r"^[0-9a-f]{16}:\d+$")
            self.assertEqual({w["code"] for w in st["workers"]}, {ident})
            self.assertEqual(st["code"]["drift"], 0)
            self.assertIn("agent code identity %s" % ident, srv.log())

            self.write(V2)
            old = self.worker(srv, "worker-1")[0]["pid"]
            os.kill(old, signal.SIGKILL)
            w1 = wait_for(lambda: (lambda w: w and w[0]["pid"] != old and w[0]["state"] == "ready" and w[0])(
                self.worker(srv, "worker-1")), what="worker-1 respawned")
            self.assertTrue(w1["codeDrift"], w1)
            self.assertNotEqual(w1["code"], ident)
            self.assertIn("CODE DRIFT: worker-1 (pid %d) started with agent code %s, but its generation runs %s"
                          % (w1["pid"], w1["code"], ident), srv.log())
            st = server_stats(srv)
            self.assertEqual((st["code"]["drift"], st["code"]["driftedWorkers"], st["code"]["identity"]),
                             (1, 1, ident))
            with srv.client() as c:
                h = c.call("pool.health")
            self.assertEqual((h["status"], h["codeDrift"]), ("ready", 1))
            r = subprocess.run([AGENTPOOLCTL, "-s", srv.path, "health"], capture_output=True, text=True,
                               timeout=DEADLINE)
            self.assertEqual((r.returncode, r.stdout),
                             (0, "ready: 2/2 workers healthy; restarts in window: 1; code drift: 1 worker\n"))
            samples, _ = parse_metrics(Endpoint(self.spec).get("/metrics")[2])
            self.assertEqual(sample(samples, "agentpool_code_drift_total"), 1)
            self.assertEqual(sample(samples, "agentpool_workers_code_drift"), 1)

            # A reload: the new code is the generation's; nobody has drifted.
            with srv.client() as c:
                self.assertTrue(c.request("pool.reload")["ok"])
            st = server_stats(srv, detailed=True)
            self.assertEqual(st["code"]["identity"], w1["code"])
            self.assertEqual(st["code"]["driftedWorkers"], 0)
            self.assertEqual(st["code"]["drift"], 1)
            self.assertEqual({w["codeDrift"] for w in st["workers"] if w["state"] != "dead"}, {False})

    def test_pin_code_refuses_a_drifted_worker_until_the_old_code_is_back(self):
        with self.server("--pin-code") as srv:
            ident = server_stats(srv)["code"]["identity"]
            self.write(V2)
            old = self.worker(srv, "worker-1")[0]["pid"]
            os.kill(old, signal.SIGKILL)

            def refused():
                with srv.client() as c:
                    h = c.call("pool.health")
                return h["status"] == "degraded" and [e["worker"] for e in h["backoffSlots"]] == ["worker-1"] and h
            wait_for(refused, what="worker-1 refused and in restart backoff")
            self.assertIn("pinCode: refused, the slot keeps its old process until a reload", srv.log())
            with srv.client() as c:
                pids = {c.call("drift")["pid"] for _ in range(6)}
            self.assertEqual(len(pids), 1, "only worker-0 serves")
            self.assertGreaterEqual(server_stats(srv)["code"]["drift"], 1)
            # The old file back: the next attempt has the generation's code.
            self.write(V1)
            w1 = wait_for(lambda: (lambda w: w and w[0]["state"] == "ready" and w[0])(self.worker(srv, "worker-1")),
                          what="worker-1 serving again")
            self.assertEqual((w1["code"], w1["codeDrift"]), (ident, False))
            wait_for(lambda: server_stats(srv)["state"] == "ready", what="ready again")


if __name__ == "__main__":
    main()
