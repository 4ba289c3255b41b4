# SPDX-License-Identifier: BSD-2-Clause
"""test_idempotency.py - "idempotencyKey": a request sent again runs once.

A real server with real workers running GateLogAgent
(agents/aptest_agents.py: waits for a gate file, then appends its "seq"
to the log file its data names): the log's lines are the runs, so "ran
once" and "ran again" are counted, never timed.  Proved: a copy sent
while the first runs is attached to it (both answered, one run), also
after the first's connection is gone; a copy sent after it finished is
answered from the kept answer with "replayed": true, byte for byte the
first line but for the id; the same key with a different type or data is
bad_request; a stream request with a key is refused; an expired key
(idempotencyTtl) and an evicted one (idempotencyCacheBytes) run again;
the issue's case, a connection killed after the server accepted the
request, then a resend on a new connection: one run, the answer
delivered; keys are per pool; the Python client's send_with_retry resends
after a lost connection only with a key; pool.stats and Prometheus
count it all.
"""

import json
import os
import socket
import sys
import tempfile
import threading
import unittest

from harness import DEADLINE, SRCDIR, Gate, Server, main, wait_for, wait_stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_metrics import Endpoint, check_with_promtool, parse_metrics, sample  # noqa: E402

sys.path.insert(0, SRCDIR)
from pyagents.client import Client as PyClient, ConnectionLost  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
GATELOG = "aptest_agents:GateLogAgent"
MISMATCH = "idempotency key reused with a different request"


def runs(log):
    """The seqs the agent ran, in order (one line per run)."""
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [line.strip() for line in f]


def idem(stats, pool=None):
    return (stats["pools"][pool] if pool else stats)["idempotency"]


class Idempotency(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="aptest-idem-")
        self.addCleanup(self.tmp.cleanup)
        self.log = os.path.join(self.tmp.name, "runs.log")

    def start(self, config=None, workers=2, **kw):
        srv = Server(agent=GATELOG, workers=workers, config=config,
                     args=["--python-path", AGENTS_DIR], **kw)
        srv.start()
        self.addCleanup(srv.close)
        return srv

    def data(self, seq, gate=None):
        d = {"seq": seq, "log": self.log}
        if gate is not None:
            d["file"] = gate.path
        return d

    def in_flight(self, srv, n):
        wait_stats(srv, lambda s: s["inFlight"] >= n, "%d message(s) running" % n)

    def test_a_copy_sent_while_it_runs_is_attached_and_both_get_the_one_answer(self):
        srv = self.start()
        with Gate(self.tmp.name) as gate, srv.client() as a, srv.client() as b:
            req = {"type": "job", "data": self.data("one", gate), "idempotencyKey": "k-run"}
            a.send(dict(req, id="first"))
            self.in_flight(srv, 1)
            b.send(dict(req, id="copy"))
            wait_stats(srv, lambda s: idem(s)["attached"] == 1, "the copy attached")
            gate.release()
            ra, rb = a.recv(), b.recv()
            self.assertEqual(ra, {"id": "first", "ok": True, "result": {"seq": "one"}})
            self.assertEqual(rb, {"id": "copy", "ok": True, "result": {"seq": "one"}})
        self.assertEqual(runs(self.log), ["one"])

    def test_an_attached_copy_is_answered_after_the_first_connection_left(self):
        srv = self.start()
        with Gate(self.tmp.name) as gate:
            req = {"type": "job", "data": self.data("left", gate), "idempotencyKey": "k-left"}
            a = srv.client()
            a.send(dict(req, id=1))
            self.in_flight(srv, 1)
            with srv.client() as b:
                b.send(dict(req, id=2))
                wait_stats(srv, lambda s: idem(s)["attached"] == 1, "the copy attached")
                a.close()
                wait_stats(srv, lambda s: s["connections"] == 2, "the first connection gone")
                gate.release()
                self.assertEqual(b.recv(), {"id": 2, "ok": True, "result": {"seq": "left"}})
        self.assertEqual(runs(self.log), ["left"])

    def test_a_copy_sent_after_it_finished_is_replayed_byte_for_byte(self):
        srv = self.start()
        with srv.client() as c:
            c.send({"id": "a", "type": "job", "data": self.data("done"), "idempotencyKey": "k-done"})
            first = c.recv_line()
            c.send({"id": "b", "type": "job", "data": self.data("done"), "idempotencyKey": "k-done"})
            again = c.recv_line()
            self.assertEqual(json.loads(first), {"id": "a", "ok": True, "result": {"seq": "done"}})
            self.assertEqual(again, first.replace(b'"id":"a"', b'"id":"b"')[:-1] + b',"replayed":true}')
            # an agent_error is kept too: running again would raise again
            bad = {"type": "job", "data": [1], "idempotencyKey": "k-raise"}
            c.send(dict(bad, id=7))
            err = c.recv_line()
            self.assertEqual(json.loads(err)["error"]["code"], "agent_error")
            c.send(dict(bad, id=8))
            self.assertEqual(c.recv_line(), err.replace(b'"id":7', b'"id":8')[:-1] + b',"replayed":true}')
            st = c.stats()
        self.assertEqual(runs(self.log), ["done"])
        self.assertEqual(idem(st)["replayed"], 2)
        self.assertEqual(idem(st)["entries"], 2)
        self.assertGreater(idem(st)["bytes"], 0)

    def test_the_same_key_for_a_different_request_is_bad_request(self):
        srv = self.start()
        with Gate(self.tmp.name) as gate, srv.client() as c:
            c.send({"id": 1, "type": "job", "data": self.data("x", gate), "idempotencyKey": "k-mis"})
            self.in_flight(srv, 1)
            # different data, different type, data the same value but other bytes: all different
            for i, req in enumerate([{"type": "job", "data": self.data("y", gate)},
                                     {"type": "other", "data": self.data("x", gate)},
                                     {"type": "job"}], start=2):
                resp = c.request(req["type"], req.get("data"), id=i, idempotencyKey="k-mis")
                self.assertEqual(resp["error"], {"code": "bad_request", "message": MISMATCH})
            gate.release()
            self.assertTrue(c.recv()["ok"])
            # still refused once finished
            resp = c.request("job", self.data("z"), idempotencyKey="k-mis")
            self.assertEqual(resp["error"], {"code": "bad_request", "message": MISMATCH})
            st = c.stats()
        self.assertEqual(idem(st)["mismatched"], 4)
        self.assertEqual(runs(self.log), ["x"])

    def test_a_stream_request_with_a_key_is_refused(self):
        srv = self.start()
        with srv.client() as c:
            resp = c.request("job", self.data("s"), stream=True, idempotencyKey="k-s")
        self.assertEqual(resp["error"]["code"], "bad_request")
        self.assertIn("stream", resp["error"]["message"])
        self.assertEqual(runs(self.log), [])

    def test_a_bad_key_is_bad_request(self):
        srv = self.start()
        with srv.client() as c:
            for key, why in [("", "idempotencyKey must be a non-empty string"),
                             (5, "idempotencyKey must be a non-empty string"),
                             ("k" * 257, "idempotencyKey longer than 256 bytes")]:
                resp = c.request("job", self.data("b"), idempotencyKey=key)
                self.assertEqual(resp["error"], {"code": "bad_request", "message": why})
            self.assertTrue(c.request("job", self.data("b"), idempotencyKey="k" * 256)["ok"])
        self.assertEqual(runs(self.log), ["b"])

    def test_after_the_ttl_the_request_runs_again(self):
        srv = self.start(config={"idempotencyTtl": 50})
        with srv.client() as c:
            req = {"type": "job", "data": self.data("ttl"), "idempotencyKey": "k-ttl"}
            self.assertNotIn("replayed", c.request(req["type"], req["data"], idempotencyKey="k-ttl"))
            wait_stats(srv, lambda s: idem(s)["expired"] == 1 and idem(s)["entries"] == 0, "the key expired")
            resp = c.request(req["type"], req["data"], idempotencyKey="k-ttl")
            self.assertTrue(resp["ok"], resp)
            self.assertNotIn("replayed", resp)
        self.assertEqual(runs(self.log), ["ttl", "ttl"])

    def test_the_oldest_answers_are_evicted_past_the_cache_bytes(self):
        # each answer is about 600 bytes with its entry: two fit in 1500, not three
        srv = self.start(config={"idempotencyCacheBytes": 1500})
        big = "s" * 400
        with srv.client() as c:
            for k in ("k1", "k2", "k3"):
                self.assertTrue(c.request("job", self.data(big + k), idempotencyKey=k)["ok"])
            st = c.stats()
            self.assertEqual(idem(st)["evicted"], 1)
            self.assertEqual(idem(st)["entries"], 2)
            self.assertLessEqual(idem(st)["bytes"], 1500)
            self.assertTrue(c.request("job", self.data(big + "k3"), idempotencyKey="k3").get("replayed"))
            again = c.request("job", self.data(big + "k1"), idempotencyKey="k1")
            self.assertTrue(again["ok"], again)
            self.assertNotIn("replayed", again)
        self.assertEqual(runs(self.log), [big + "k1", big + "k2", big + "k3", big + "k1"])

    def test_a_resend_after_the_connection_was_killed_runs_once_and_gets_the_answer(self):
        srv = self.start()
        with Gate(self.tmp.name) as gate:
            # killed while it runs: the resend attaches to it
            req = {"id": 1, "type": "job", "data": self.data("killed", gate), "idempotencyKey": "k-kill"}
            a = srv.client()
            a.send(req)
            self.in_flight(srv, 1)
            a.sock.shutdown(socket.SHUT_RDWR)
            a.close()
            wait_stats(srv, lambda s: s["connections"] == 1, "the killed connection gone")
            with srv.client() as b:
                b.send(req)
                wait_stats(srv, lambda s: idem(s)["attached"] == 1, "the resend attached")
                gate.release()
                self.assertEqual(b.recv(), {"id": 1, "ok": True, "result": {"seq": "killed"}})
        # killed, and it finished before the resend came: replayed
        req = {"id": 1, "type": "job", "data": self.data("gone"), "idempotencyKey": "k-gone"}
        a = srv.client()
        a.send(req)
        wait_for(lambda: "gone" in runs(self.log), what="the first run")
        a.sock.shutdown(socket.SHUT_RDWR)
        a.close()
        wait_stats(srv, lambda s: idem(s)["entries"] == 2, "the answer kept")
        with srv.client() as b:
            b.send(req)
            self.assertEqual(b.recv(), {"id": 1, "ok": True, "result": {"seq": "gone"}, "replayed": True})
        self.assertEqual(runs(self.log), ["killed", "gone"])

    def test_a_keyed_request_on_an_async_worker_is_not_cancelled_when_its_connection_breaks(self):
        # Without a key an async worker's task is cancelled when its client
        # leaves; with one it runs on, so the resend gets its answer.
        srv = Server(agent="pyagents.examples.gate:AsyncGateAgent", workers=1)
        srv.start()
        self.addCleanup(srv.close)
        with Gate(self.tmp.name) as gate:
            req = {"id": "x", "type": "gate", "data": gate.data(5), "idempotencyKey": "k-async"}
            a = srv.client()
            a.send(req)
            self.in_flight(srv, 1)
            a.sock.shutdown(socket.SHUT_RDWR)
            a.close()
            wait_stats(srv, lambda s: s["connections"] == 1, "the broken connection gone")
            with srv.client() as b:
                b.send(req)
                wait_stats(srv, lambda s: idem(s)["attached"] == 1, "the resend attached")
                gate.release()
                self.assertEqual(b.recv(), {"id": "x", "ok": True, "result": {"released": True, "seq": 5}})
                self.assertEqual(b.stats()["messages"]["cancelled"], 0)

    def test_keys_are_per_pool(self):
        pool = {"agent": GATELOG, "pythonPath": [AGENTS_DIR], "minWorkers": 1, "maxWorkers": 1}
        spec = "unix:" + os.path.join(self.tmp.name, "m.sock")
        srv = self.start(config={"pools": {"a": dict(pool), "b": dict(pool)}, "metricsListen": spec})
        with srv.client() as c:
            d = self.data("p")
            ra = c.request("job", d, pool="a", idempotencyKey="same")
            rb = c.request("job", d, pool="b", idempotencyKey="same")
            self.assertNotIn("replayed", ra)
            self.assertNotIn("replayed", rb)
            self.assertTrue(c.request("job", d, pool="a", idempotencyKey="same")["replayed"])
            # a different request under the same key in the other pool is its own
            self.assertTrue(c.request("job", self.data("q"), pool="b", idempotencyKey="other")["ok"])
            st = c.stats()
        self.assertEqual(runs(self.log), ["p", "p", "q"])
        self.assertEqual(idem(st, "a")["replayed"], 1)
        self.assertEqual(idem(st, "b")["replayed"], 0)
        self.assertEqual(idem(st, "a")["entries"], 1)
        self.assertEqual(idem(st, "b")["entries"], 2)
        self.assertEqual(idem(st)["entries"], 3)
        text = Endpoint(spec).get("/metrics")[2]
        check_with_promtool(self, text)
        samples, _ = parse_metrics(text)
        self.assertEqual(sample(samples, "agentpool_idempotency_requests_total", pool="a", outcome="replayed"), 1)
        self.assertEqual(sample(samples, "agentpool_idempotency_requests_total", pool="b", outcome="replayed"), 0)
        self.assertEqual(sample(samples, "agentpool_idempotency_entries", pool="b"), 2)
        self.assertEqual(sample(samples, "agentpool_idempotency_dropped_total", pool="a", reason="evicted"), 0)
        self.assertGreater(sample(samples, "agentpool_idempotency_bytes", pool="a"), 0)

    def test_send_with_retry_resends_after_a_lost_connection_only_with_a_key(self):
        srv = self.start()
        for key, seq in (("k-py", "keyed"), (None, "unkeyed")):
            with Gate(self.tmp.name, name="gate-" + seq) as gate, PyClient(srv.path) as cl:
                out = {}

                def call():
                    try:
                        out["result"] = cl.send_with_retry("job", self.data(seq, gate), idempotency_key=key,
                                                           backoff=0.01, max_retries=3)
                    except Exception as e:  # noqa: BLE001 - the test looks at it
                        out["error"] = e

                t = threading.Thread(target=call, daemon=True)
                t.start()
                self.in_flight(srv, 1)
                cl._conn.sock.shutdown(socket.SHUT_RDWR)  # the connection breaks after the server took it
                if key:
                    wait_stats(srv, lambda s: idem(s)["attached"] >= 1, "the resend attached")
                else:
                    t.join(DEADLINE)
                gate.release()
                t.join(DEADLINE)
                self.assertFalse(t.is_alive())
                if key:
                    self.assertEqual(out.get("result"), {"seq": "keyed"}, out)
                else:
                    self.assertIsInstance(out.get("error"), ConnectionLost, out)
                    self.assertTrue(out["error"].sent)
            wait_for(lambda: seq in runs(self.log), what="the %s run" % seq)
        self.assertEqual(runs(self.log), ["keyed", "unkeyed"])


if __name__ == "__main__":
    main()
