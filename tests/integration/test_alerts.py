# SPDX-License-Identifier: BSD-2-Clause
"""test_alerts.py - the alert thresholds, through the real server.

What docs/operations.md ("Alerts") promises, against a real agentpoold
with real Python workers: each of the four alerts fires when its
condition holds (every worker busy; the queue past alertQueueAbove; more
than alertErrorRateAbove percent of the last minute's answers errors, but
only from ALERT_ERROR_RATE_MIN_ANSWERS answers on; no healthy worker, at
crit level), is logged once and not again within alertInterval however
many ticks it lasts, is listed in pool.stats `alerts` with its value and
threshold and exported as agentpool_alert_active 1; when the condition
ends, one "alert NAME cleared" line follows and the alert leaves both.
A threshold of 0 turns its alert off; a short alertInterval repeats the
warning; an alert that comes back within the interval is not logged
again.  Waits are on conditions (stats, log lines, the server's own
uptime), never on durations.
"""
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DEADLINE, AGENTPOOLD, Gate, Server, main, server_stats, wait_for, wait_stats  # noqa: E402
from test_metrics import Endpoint, check_with_promtool, parse_metrics, sample  # noqa: E402

AGENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agents")
OBSERVE = "observe:ObserveAgent"
ALERTS = ("low_available_workers", "queue_nearly_full", "high_error_rate", "no_healthy_worker")
LONG = "3600000"  # alertInterval: nothing repeats within a test


def alert_server(workers=1, args=(), env=None, **kw):
    srv = Server(agent=OBSERVE, workers=workers, env=env,
                 args=["--python-path", AGENTS] + list(args), **kw)
    spec = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
    srv.args += ["--metrics-listen", spec]
    return srv, Endpoint(spec)


def active(srv):
    """{name: alert} of pool.stats' `alerts`."""
    return {a["name"]: a for a in server_stats(srv)["alerts"]}


def count(srv, text):
    return sum(1 for line in srv.log().splitlines() if text in line)


def warned(name):
    return "alert %s:" % name


def cleared(name):
    return "alert %s cleared" % name


def prom_alerts(ep, testcase):
    text = ep.get("/metrics")[2]
    check_with_promtool(testcase, text)
    samples, families = parse_metrics(text)
    testcase.assertEqual(families["agentpool_alert_active"][0], "gauge")
    return {a: sample(samples, "agentpool_alert_active", alert=a) for a in ALERTS}


def wait_uptime_past(srv, ms):
    """Waits until the server's own uptime passes ms: ticks (every 100 ms)
    have run in between."""
    wait_stats(srv, lambda st: st["uptime"] >= ms, what="uptime past %d ms" % ms)


class Alerts(unittest.TestCase):
    def check_lasting(self, srv, name, ms=1000):
        """The alert has been active for ms (10 ticks at least): still one
        warning in the log."""
        since = active(srv)[name]["since"]
        wait_for(lambda: name in active(srv) and time.time() * 1000 - since >= ms,
                 what="%s active for %d ms" % (name, ms))
        self.assertEqual(count(srv, warned(name)), 1, srv.log())

    def test_available_workers_fire_once_clear_once_and_do_not_flap_in_the_log(self):
        srv, ep = alert_server(workers=2, args=["--alert-interval", LONG])
        with srv, Gate(srv.tmp.name) as gate, srv.client() as c:
            self.assertEqual(server_stats(srv)["alerts"], [])
            self.assertEqual(prom_alerts(ep, self), {a: 0 for a in ALERTS})
            c.send({"id": 1, "type": "gate", "data": gate.data(1)})
            wait_stats(srv, lambda st: st["inFlight"] == 1, what="one worker busy")
            wait_uptime_past(srv, server_stats(srv)["uptime"] + 500)
            self.assertNotIn("low_available_workers", active(srv))  # 1 of 2 is 50%
            c.send({"id": 2, "type": "gate", "data": gate.data(2)})
            wait_for(lambda: "low_available_workers" in active(srv), what="the alert")
            a = active(srv)["low_available_workers"]
            self.assertEqual((a["value"], a["threshold"], a["level"]), (0, 20, "warning"), a)
            self.assertEqual(set(active(srv)), {"low_available_workers"})
            self.assertEqual(prom_alerts(ep, self)["low_available_workers"], 1)
            self.check_lasting(srv, "low_available_workers")
            line = [l for l in srv.log().splitlines() if warned("low_available_workers") in l][0]
            self.assertIn("WARN", line)
            self.assertIn("0 of 2 workers have a free slot (0.0%, below alertAvailableBelow 20%)", line)
            self.assertEqual(count(srv, cleared("low_available_workers")), 0)

            gate.release()
            self.assertEqual(sorted(c.recv()["id"] for _ in range(2)), [1, 2])
            wait_for(lambda: count(srv, cleared("low_available_workers")) == 1, what="the cleared line")
            self.assertEqual(server_stats(srv)["alerts"], [])
            self.assertEqual(prom_alerts(ep, self), {a: 0 for a in ALERTS})

            # back within alertInterval: active again, but not logged again
            os.unlink(gate.path)
            c.send({"id": 3, "type": "gate", "data": gate.data(3)})
            c.send({"id": 4, "type": "gate", "data": gate.data(4)})
            wait_for(lambda: "low_available_workers" in active(srv), what="the alert again")
            gate.release()
            self.assertEqual(sorted(c.recv()["id"] for _ in range(2)), [3, 4])
            wait_for(lambda: "low_available_workers" not in active(srv), what="the alert to clear again")
            self.assertEqual(count(srv, warned("low_available_workers")), 1, srv.log())
            self.assertEqual(count(srv, cleared("low_available_workers")), 1, srv.log())

    def test_queue_nearly_full(self):
        srv, ep = alert_server(workers=1, args=["--message-queue-size", "5", "--alert-interval", LONG])
        with srv, Gate(srv.tmp.name) as gate, srv.client() as c:
            c.send({"id": 0, "type": "gate", "data": gate.data(0)})
            wait_stats(srv, lambda st: st["inFlight"] == 1, what="the worker busy")
            for i in range(1, 5):
                c.send({"id": i, "type": "gate", "data": gate.data(i)})
            st = wait_stats(srv, lambda st: st["queue"]["depth"] == 4, what="4 queued")
            wait_uptime_past(srv, st["uptime"] + 500)
            self.assertNotIn("queue_nearly_full", active(srv))  # 4 of 5 is 80%: not above
            c.send({"id": 5, "type": "gate", "data": gate.data(5)})
            wait_for(lambda: "queue_nearly_full" in active(srv), what="the queue alert")
            a = active(srv)["queue_nearly_full"]
            self.assertEqual((a["value"], a["threshold"], a["level"]), (100, 80, "warning"), a)
            self.assertEqual(prom_alerts(ep, self)["queue_nearly_full"], 1)
            self.check_lasting(srv, "queue_nearly_full")
            self.assertIn("5 messages queued of messageQueueSize 5 (100.0%, above alertQueueAbove 80%)", srv.log())
            gate.release()
            self.assertEqual(sorted(c.recv()["id"] for _ in range(6)), list(range(6)))
            wait_for(lambda: count(srv, cleared("queue_nearly_full")) == 1, what="the cleared line")
            wait_for(lambda: server_stats(srv)["alerts"] == [], what="no alert")
            self.assertEqual(prom_alerts(ep, self)["queue_nearly_full"], 0)
            self.assertEqual(count(srv, warned("queue_nearly_full")), 1)

    def test_error_rate_needs_enough_answers_and_clears_when_diluted(self):
        srv, ep = alert_server(workers=1, args=["--alert-interval", LONG])
        with srv, srv.client() as c:
            for i in range(19):
                self.assertEqual(c.request("raise", {"i": i})["error"]["code"], "agent_error")
            wait_uptime_past(srv, server_stats(srv)["uptime"] + 500)
            self.assertNotIn("high_error_rate", active(srv))  # 19 answers: too few to judge
            self.assertEqual(c.request("raise", {"i": 19})["error"]["code"], "agent_error")
            wait_for(lambda: "high_error_rate" in active(srv), what="the error-rate alert")
            a = active(srv)["high_error_rate"]
            self.assertEqual((a["value"], a["threshold"], a["level"]), (100, 10, "warning"), a)
            self.assertEqual(prom_alerts(ep, self)["high_error_rate"], 1)
            self.check_lasting(srv, "high_error_rate")
            self.assertIn("20 of the 20 answers of the last minute were errors (100.0%, above alertErrorRateAbove 10%)",
                          srv.log())
            # 179 good answers: 20 of 199 is still above 10%; the 180th makes it 10% exactly, not above
            got = c.pipeline([{"id": i, "type": "echo", "data": i} for i in range(179)])
            self.assertTrue(all(r["ok"] for r in got.values()))
            wait_uptime_past(srv, server_stats(srv)["uptime"] + 500)
            st = server_stats(srv)
            if round(st["throughput"]["60s"] * 60) == 199:
                # every answer is still inside the minute (on a very slow
                # machine the first errors may have left it already)
                self.assertIn("high_error_rate", {a["name"] for a in st["alerts"]}, st)
            self.assertTrue(c.request("echo", 179)["ok"])
            wait_for(lambda: count(srv, cleared("high_error_rate")) == 1, what="the cleared line")
            self.assertEqual(server_stats(srv)["alerts"], [])
            self.assertEqual(prom_alerts(ep, self)["high_error_rate"], 0)
            self.assertEqual(count(srv, warned("high_error_rate")), 1)

    def test_no_healthy_worker_is_critical(self):
        srv, ep = alert_server(workers=2, args=["--health-check-interval", "100", "--max-missed-beats", "1000",
                                                "--alert-interval", LONG])
        sick = os.path.join(srv.tmp.name, "sick")
        srv.env = {"AP_TEST_SICK": sick}
        with srv:
            wait_uptime_past(srv, server_stats(srv)["uptime"] + 300)
            self.assertEqual(server_stats(srv)["alerts"], [])
            open(sick, "w").close()
            wait_for(lambda: "no_healthy_worker" in active(srv), what="the critical alert")
            a = active(srv)["no_healthy_worker"]
            self.assertEqual((a["value"], a["threshold"], a["level"]), (0, 1, "critical"), a)
            self.assertEqual(prom_alerts(ep, self)["no_healthy_worker"], 1)
            self.check_lasting(srv, "no_healthy_worker")
            line = [l for l in srv.log().splitlines() if warned("no_healthy_worker") in l][0]
            self.assertIn("CRIT", line)
            self.assertIn("none of the 2 live workers takes messages and answers its heartbeats", line)
            os.unlink(sick)
            wait_for(lambda: count(srv, cleared("no_healthy_worker")) == 1, what="the cleared line")
            self.assertEqual(server_stats(srv)["alerts"], [])
            self.assertEqual(prom_alerts(ep, self)["no_healthy_worker"], 0)
            self.assertEqual(count(srv, warned("no_healthy_worker")), 1)
            # the alert clears with the first healthy answer; the other
            # worker's may come a beat later on a loaded machine
            wait_for(lambda: [w["missedBeats"] for w in server_stats(srv, detailed=True)["workers"]] == [0, 0],
                     what="both workers answering their heartbeats again")

    def test_zero_turns_an_alert_off(self):
        srv, ep = alert_server(workers=1, args=["--message-queue-size", "2", "--alert-available-below", "0",
                                                "--alert-queue-above", "0", "--alert-error-rate-above", "0"])
        with srv, Gate(srv.tmp.name) as gate, srv.client() as c:
            for i in range(20):
                self.assertEqual(c.request("raise", {"i": i})["error"]["code"], "agent_error")
            # One slow message first: a sync worker whose handler has been
            # fast may be sent messages ahead (prefetch) instead of them
            # waiting in the queue.
            slow = Gate(srv.tmp.name, "slow")
            c.send({"id": "slow", "type": "gate", "data": slow.data(0)})
            st = wait_stats(srv, lambda st: st["inFlight"] == 1, what="the slow message to run")
            wait_uptime_past(srv, st["uptime"] + 100)
            slow.release()
            self.assertEqual(c.recv()["id"], "slow")
            c.send({"id": 0, "type": "gate", "data": gate.data(0)})
            wait_stats(srv, lambda st: st["inFlight"] == 1, what="the worker busy")
            c.send({"id": 1, "type": "gate", "data": gate.data(1)})
            c.send({"id": 2, "type": "gate", "data": gate.data(2)})
            # every condition holds, for at least a second of ticks
            st = wait_stats(srv, lambda st: st["queue"]["depth"] == 2 and st["oldestQueuedAge"] >= 1000,
                            what="a full queue for a second")
            self.assertEqual(st["alerts"], [])
            self.assertEqual(prom_alerts(ep, self), {a: 0 for a in ALERTS})
            self.assertNotIn("alert ", srv.log())
            gate.release()
            self.assertEqual(sorted(c.recv()["id"] for _ in range(3)), [0, 1, 2])

    def test_a_lasting_alert_is_logged_again_each_interval(self):
        srv, _ = alert_server(workers=1, args=["--alert-interval", "300"])
        with srv, Gate(srv.tmp.name) as gate, srv.client() as c:
            c.send({"id": 1, "type": "gate", "data": gate.data(1)})
            wait_for(lambda: count(srv, warned("low_available_workers")) >= 3, what="three warnings")
            again = [l for l in srv.log().splitlines() if warned("low_available_workers") in l]
            self.assertNotIn("active for", again[0])
            self.assertIn("active for", again[1])
            self.assertEqual(count(srv, cleared("low_available_workers")), 0)
            gate.release()
            self.assertEqual(c.recv()["id"], 1)
            wait_for(lambda: count(srv, cleared("low_available_workers")) == 1, what="the cleared line")

    def test_bad_settings_are_refused(self):
        for flag, value in (("--alert-queue-above", "101"), ("--alert-available-below", "-1"),
                            ("--alert-error-rate-above", "1000"), ("--alert-interval", "0")):
            r = subprocess.run([AGENTPOOLD, flag, value, "--check-config"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=DEADLINE)
            self.assertEqual(r.returncode, 2, (flag, value, r.stderr))
            key = "alert" + "".join(p.title() for p in flag[2:].split("-")[1:])
            self.assertIn(key, r.stderr.decode())
            self.assertIn("out of range", r.stderr.decode())


if __name__ == "__main__":
    main()
