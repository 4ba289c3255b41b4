# SPDX-License-Identifier: BSD-2-Clause
"""The wire protocol of the real agentpoold (docs/protocol.md), end to end.

Each test starts from a real server with real Python workers (harness.py)
and checks one documented behaviour: JSON values survive the round trip
through master and bridge, ids come back byte for byte, unknown members
are ignored, duplicate ids in flight are refused, every error code is
produced where the protocol says, pool.* answers even when the pool is
saturated, 10,000 pipelined requests over 8 connections are each answered
exactly once, and agent.metrics reaches the pool or one named worker.
Nothing here asserts a duration: conditions are polled with generous
deadlines (harness.wait_for / wait_stats).
"""
import json
import os
import signal
import threading
import unittest

from harness import (SRCDIR, Client, Gate, Server, children_of, raw_member, server_stats, wait_for,
                     wait_stats)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
GATE = "pyagents.examples.gate:GateAgent"
MAX_BYTES = 4096


def same(a, b):
    """Deep equality that also tells int from float from bool (a big int
    must not come back as a float, true must not come back as 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int) or isinstance(b, int):
        return type(a) is type(b) and a == b
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def deep_list(n):
    v = []
    for _ in range(n - 1):
        v = [v]
    return v


JSON_VALUES = [
    None, True, False,
    0, 1, -1, 2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 2 ** 64 + 1, -2 ** 63 - 1,
    2 ** 100, -(2 ** 200), 10 ** 40 + 7,
    0.5, -2.25, 1e300, -1e-300, 1.7976931348623157e308, 5e-324, 3.141592653589793, 0.1, 1e-07, 123456.789e3,
    "", "plain", "h\u00e9llo w\u00f6rld", "\u65e5\u672c\u8a9e", "\U0001F600 astral \U00010348 \U0010FFFF",
    "escapes \" \\ / \b \f \n \r \t \x00 \x01 \x1f \x7f", "\u2028\u2029", "\ufeff not a bom here",
    [], {}, [1, "two", 3.5, None, True, False, [], {}],
    {"nested": {"deeper": {"deepest": [1, [2, [3, {"k": "v"}]]]}}, "": "empty key",
     "\u00e9\U0001F600": "unicode key", "big": 2 ** 70},
    deep_list(100),
    {"list": list(range(500)), "text": "x" * 1000},
]


def request_line(rid, type_, data=None, ascii_only=True, **extra):
    req = {"id": rid, "type": type_}
    if data is not None:
        req["data"] = data
    req.update(extra)
    return json.dumps(req, ensure_ascii=ascii_only).encode("utf-8") + b"\n"


def recv_strict(client):
    """One response line, which must be valid UTF-8 JSON; (line, obj)."""
    line = client.recv_line()
    return line, json.loads(line.decode("utf-8"))


class EchoProtocolTest(unittest.TestCase):
    """Against one echo server with two workers."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(workers=2, args=["--max-message-bytes", str(MAX_BYTES)]).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.c = self.server.client()

    def tearDown(self):
        self.c.close()

    def test_echo_round_trips_every_json_kind(self):
        requests = []
        for i, v in enumerate(JSON_VALUES):
            requests.append(("a%d" % i, request_line("a%d" % i, "echo", v, ascii_only=True), v))
            requests.append(("u%d" % i, request_line("u%d" % i, "echo", v, ascii_only=False), v))
        self.c.send_raw(b"".join(r[1] for r in requests))
        got = {}
        for _ in requests:
            _, resp = recv_strict(self.c)
            self.assertNotIn(resp["id"], got, "answered twice")
            got[resp["id"]] = resp
        for rid, _, v in requests:
            with self.subTest(id=rid, value=repr(v)[:60]):
                self.assertTrue(got[rid]["ok"], got[rid])
                self.assertTrue(same(got[rid]["result"], v), "sent %r, got %r" % (v, got[rid]["result"]))

    def test_surrogate_pair_escapes_and_raw_astral_chars_are_the_same_string(self):
        self.c.send_raw(b'{"id":"sp","type":"echo","data":"\\ud83d\\ude00\\u00e9"}\n')
        _, resp = recv_strict(self.c)
        self.assertEqual(resp["result"], "\U0001F600\u00e9")
        self.c.send_raw('{"id":"raw","type":"echo","data":"\U0001F600\u00e9"}\n'.encode("utf-8"))
        _, resp = recv_strict(self.c)
        self.assertEqual(resp["result"], "\U0001F600\u00e9")

    def test_absent_data_gives_null_result(self):
        self.c.send_raw(b'{"id":"nodata","type":"echo"}\n')
        line, resp = recv_strict(self.c)
        self.assertEqual(resp, {"id": "nodata", "ok": True, "result": None})
        self.assertIn("result", resp)

    def test_explicit_null_data_gives_null_result(self):
        self.c.send_raw(b'{"id":"nulldata","type":"echo","data":null}\n')
        _, resp = recv_strict(self.c)
        self.assertEqual(resp, {"id": "nulldata", "ok": True, "result": None})

    def test_id_echoed_byte_for_byte(self):
        raw_ids = [
            b'"a\\u0062c"',
            b'123456789012345678901234567890',
            b'-123456789012345678901234567890',
            b'-7',
            b'0',
            b'"\\ud83d\\ude00"',
            '"\u00e9\U0001F600"'.encode("utf-8"),
            b'"quote \\" backslash \\\\ slash \\/ tab \\t"',
            b'""',
            b'"\\u00E9 upper-case hex"',
        ]
        for kind, tmpl in (("agent", b'{"id":%s,"type":"echo","data":1}\n'),
                           ("pool", b'{"id":%s,"type":"pool.ping"}\n'),
                           ("spaced", b'{ "type" : "echo" , "id" :  %s  }\n')):
            self.c.send_raw(b"".join(tmpl.replace(b"%s", r) for r in raw_ids))
            got = []
            for _ in raw_ids:
                line, resp = recv_strict(self.c)
                self.assertTrue(resp["ok"], line)
                got.append(raw_member(line, "id"))
            with self.subTest(kind=kind):
                self.assertEqual(sorted(got), sorted(raw_ids))

    def test_id_of_a_bad_request_echoed_byte_for_byte(self):
        for raw in (b'"a\\u0062c"', b'123456789012345678901234567890', b'-5'):
            with self.subTest(id=raw):
                self.c.send_raw(b'{"id":' + raw + b',"type":17}\n')
                line, resp = recv_strict(self.c)
                self.assertEqual(resp["error"]["code"], "bad_request")
                self.assertEqual(raw_member(line, "id"), raw)

    def test_unknown_request_fields_ignored(self):
        self.c.send_raw(b'{"zzz":null,"id":"unk","future":{"x":[1,2,{"y":"\\u00e9"}]},"type":"echo",'
                        b'"data":{"v":1},"retryPolicy":"later","timeoutMs":5,"retry":true}\n')
        _, resp = recv_strict(self.c)
        self.assertEqual(resp, {"id": "unk", "ok": True, "result": {"v": 1}})

    def test_duplicate_member_last_one_counts(self):
        self.c.send_raw(b'{"id":"first","type":"nonexistent.type","data":1,"id":"last","type":"echo","data":2}\n')
        _, resp = recv_strict(self.c)
        self.assertEqual(resp, {"id": "last", "ok": True, "result": 2})

    def test_crlf_line_end_tolerated_and_blank_lines_get_no_answer(self):
        self.c.send_raw(b'\n   \n\r\n\t\n{"id":"crlf","type":"echo","data":"x"}\r\n\n{"id":"after","type":"pool.ping"}\n')
        got = {}
        for _ in range(2):  # answers may come in any order: match by id
            _, resp = recv_strict(self.c)
            got[resp["id"]] = resp
        self.assertEqual(got["crlf"], {"id": "crlf", "ok": True, "result": "x"})
        self.assertTrue(got["after"]["ok"])
        # nothing else was answered (the blank lines got nothing)
        self.assertEqual(self.c.request("pool.ping", id="end")["id"], "end")

    def assert_bad_request(self, line, raw_id=None):
        self.c.send_raw(line + b"\n")
        got, resp = recv_strict(self.c)
        self.assertFalse(resp["ok"], got)
        self.assertEqual(resp["error"]["code"], "bad_request", got)
        self.assertIsInstance(resp["error"]["message"], str)
        self.assertTrue(resp["error"]["message"])
        if raw_id is not None:
            self.assertEqual(raw_member(got, "id"), raw_id)

    def test_bad_request_for_each_malformed_line(self):
        before = server_stats(self.server)["errors"]["bad_request"]
        cases = [
            (b'not json', None),
            (b'{"id":"t0","type":"echo"', None),
            (b'[1,2,3]', None),
            (b'"just a string"', None),
            (b'42', None),
            (b'null', None),
            (b'true', None),
            (b"{'id':'q','type':'echo'}", None),
            (b'{"id":"q","type":"echo",}', None),
            (b'{"id":"q","type":"echo"} x', None),
            (b'{"id":"q","type":"echo"}{"id":"r","type":"echo"}', None),
            (b'\xef\xbb\xbf{"id":"q","type":"echo"}', None),
            (b'{"id":"q","type":"echo","data":NaN}', None),
            (b'{"id":"q","type":"echo","data":01}', None),
            (b'{"id":"q","type":"echo","data":"a\x01b"}', None),
            (b'{"id":"q","type":"echo","data":"bad \\x escape"}', None),
            (b'{"id":"q","type":"echo","data":' + json.dumps(deep_list(200)).encode() + b'}', None),
            (b'{"id":"t1"}', b'"t1"'),
            (b'{"id":"t2","data":{"type":"echo"}}', b'"t2"'),
            (b'{"id":"t3","type":5}', b'"t3"'),
            (b'{"id":"t4","type":null}', b'"t4"'),
            (b'{"id":"t5","type":["echo"]}', b'"t5"'),
            (b'{"id":"t6","type":{"name":"echo"}}', b'"t6"'),
            (b'{"id":"t7","type":"' + b"t" * 300 + b'"}', b'"t7"'),
            (b'{"id":"t8","type":"ec\\u0000ho"}', b'"t8"'),
            (b'{"id":1.5,"type":"echo"}', None),
            (b'{"id":2.0,"type":"echo"}', None),
            (b'{"id":1e3,"type":"echo"}', None),
            (b'{"id":true,"type":"echo"}', None),
            (b'{"id":false,"type":"echo"}', None),
            (b'{"id":null,"type":"echo"}', None),
            (b'{"id":{"a":1},"type":"echo"}', None),
            (b'{"id":["a"],"type":"echo"}', None),
            (b'{"id":"r1","type":"echo","retry":"yes"}', None),
            (b'{"id":"r2","type":"echo","timeoutMs":-1}', None),
            (b'{"id":"r3","type":"echo","timeoutMs":1.5}', None),
            (b'{"id":"r4","type":"echo","timeoutMs":"10"}', None),
        ]
        for line, raw_id in cases:
            with self.subTest(line=line[:60]):
                self.assert_bad_request(line, raw_id)
        # the same connection still works, and every refusal was counted
        self.assertEqual(self.c.call("echo", {"still": "fine"}), {"still": "fine"})
        after = server_stats(self.server)["errors"]["bad_request"]
        self.assertEqual(after - before, len(cases))

    def test_type_of_256_bytes_is_accepted(self):
        t = "t" * 256
        self.assertEqual(self.c.call(t, 7), 7)

    def test_unknown_pool_type_is_bad_request(self):
        for t in ("pool.nope", "pool.", "pool.PING", "pool.stats.extra"):
            with self.subTest(type=t):
                resp = self.c.request(t)
                self.assertFalse(resp["ok"])
                self.assertEqual(resp["error"]["code"], "bad_request")
        self.assertTrue(self.c.call("pool.ping")["pong"])

    def test_pool_ping_answers_pong_ready(self):
        self.assertEqual(self.c.call("pool.ping"), {"pong": True, "state": "ready"})

    def test_pool_stats_has_every_documented_field(self):
        s = self.c.stats(detailed=True)
        for key in ("state", "total", "available", "busy", "healthy", "totalMessagesProcessed",
                    "averageWorkerAge", "oldestWorker", "slots", "inFlight", "queue", "connections", "uptime",
                    "errors", "messages", "connectionsTotal", "workerEvents", "strategy", "overflow", "pid",
                    "workers"):
            self.assertIn(key, s)
        for key in ("depth", "capacity", "highWatermark", "rejected"):
            self.assertIn(key, s["queue"])
        for code in ("bad_request", "too_large", "queue_full", "agent_error", "shutting_down", "worker_crashed",
                     "timeout", "too_many_connections", "cancelled"):
            self.assertIn(code, s["errors"])
        for key in ("accepted", "answeredOk", "held", "cancelled", "droppedResults", "pendingBytes"):
            self.assertIn(key, s["messages"])
        for key in ("accepted", "rejected"):
            self.assertIn(key, s["connectionsTotal"])
        for key in ("spawned", "crashed"):
            self.assertIn(key, s["workerEvents"])
        self.assertEqual(s["state"], "ready")
        self.assertEqual(s["pid"], self.server.proc.pid)
        self.assertEqual((s["strategy"], s["overflow"]), ("round-robin", "block"))
        self.assertEqual((s["total"], s["healthy"]), (2, 2))
        self.assertEqual([w["id"] for w in s["workers"]], ["worker-0", "worker-1"])
        for w in s["workers"]:
            for key in ("id", "healthy", "messagesProcessed", "age", "pid", "state", "inFlight", "slots", "async",
                        "generation", "errors"):
                self.assertIn(key, w)
            self.assertIn(w["pid"], children_of(self.server.proc.pid))
            self.assertEqual((w["async"], w["slots"], w["generation"]), (False, 1, 1))

    def test_too_large_line_then_connection_still_works(self):
        stats0 = server_stats(self.server)
        head = b'{"id":"big","type":"echo","data":"'
        tail = b'"}'
        fits = head + b"x" * (MAX_BYTES - len(head) - len(tail)) + tail
        self.assertEqual(len(fits), MAX_BYTES)
        over = head + b"x" * (MAX_BYTES + 1 - len(head) - len(tail)) + tail
        much = head + b"x" * (20 * MAX_BYTES) + tail

        self.c.send_raw(over + b"\n")
        line, resp = recv_strict(self.c)
        self.assertEqual(resp["error"]["code"], "too_large", line)
        self.assertIsNone(resp["id"])
        self.assertEqual(raw_member(line, "id"), b"null")

        self.c.send_raw(much + b"\n" + b'{"id":"next","type":"echo","data":1}\n')
        _, resp = recv_strict(self.c)
        self.assertEqual(resp["error"]["code"], "too_large")
        _, resp = recv_strict(self.c)
        self.assertEqual(resp, {"id": "next", "ok": True, "result": 1})

        # exactly maxMessageBytes is allowed
        self.c.send_raw(fits + b"\n")
        _, resp = recv_strict(self.c)
        self.assertEqual(resp["id"], "big")
        self.assertTrue(resp["ok"], resp)
        stats1 = server_stats(self.server)
        self.assertEqual(stats1["errors"]["too_large"] - stats0["errors"]["too_large"], 2)

    def test_ten_thousand_pipelined_requests_over_eight_connections(self):
        nconn, per = 8, 1250
        errors = []

        def run(k):
            try:
                with self.server.client() as c:
                    reqs = [{"id": "c%d-%d" % (k, i), "type": "echo", "data": {"k": k, "i": i}}
                            for i in range(per)]
                    got = c.pipeline(reqs)
                    want = {json.dumps(r["id"]): r for r in reqs}
                    if set(got) != set(want):
                        errors.append("connection %d: wrong ids answered" % k)
                        return
                    for key, resp in got.items():
                        if not resp.get("ok") or resp.get("result") != want[key]["data"]:
                            errors.append("connection %d: bad answer %r" % (k, resp))
                            return
                    # nothing more is pending on this connection
                    c.send({"id": "last", "type": "pool.ping"})
                    if c.recv()["id"] != "last":
                        errors.append("connection %d: an extra answer arrived" % k)
            except Exception as e:  # reported below
                errors.append("connection %d: %r" % (k, e))

        threads = [threading.Thread(target=run, args=(k,)) for k in range(nconn)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_agent_metrics_through_the_pool(self):
        m = self.c.call("agent.metrics")
        for key in ("messages_received", "messages_sent", "errors", "uptime", "queue_size", "pid", "worker",
                    "async", "concurrency", "allocated_blocks", "rss_bytes"):
            self.assertIn(key, m)
        pids = {w["id"]: w["pid"] for w in server_stats(self.server, detailed=True)["workers"]}
        self.assertEqual(pids[m["worker"]], m["pid"])

    def test_agent_metrics_for_a_named_worker(self):
        pids = {w["id"]: w["pid"] for w in server_stats(self.server, detailed=True)["workers"]}
        for name in ("worker-1", "worker-0", "worker-1"):
            with self.subTest(worker=name):
                m = self.c.call("agent.metrics", {"worker": name})
                self.assertEqual(m["worker"], name)
                self.assertEqual(m["pid"], pids[name])

    def test_agent_metrics_for_unknown_worker_is_bad_request(self):
        for name in ("worker-99", "worker-2", "nobody", ""):
            with self.subTest(worker=name):
                resp = self.c.request("agent.metrics", {"worker": name})
                self.assertFalse(resp["ok"], resp)
                self.assertEqual(resp["error"]["code"], "bad_request")


class GateProtocolTest(unittest.TestCase):
    """Against one gate server: 2 sync workers, queue of 2, overflow block.
    Every test releases its own gate and leaves the pool idle."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(agent=GATE, workers=2, args=["--message-queue-size", "2"]).start()
        cls.ngates = 0

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def new_gate(self):
        GateProtocolTest.ngates += 1
        gate = Gate(self.server.tmp.name, "gate-%d" % self.ngates)
        self.gates.append(gate)
        return gate

    def setUp(self):
        self.gates = []

    def tearDown(self):
        for gate in self.gates:  # a failed test must not leave messages held
            gate.release()
        wait_stats(self.server, lambda s: s["inFlight"] == 0 and s["queue"]["depth"] == 0
                   and s["messages"]["held"] == 0 and s["healthy"] == 2, what="an idle pool")

    def test_duplicate_id_in_flight_is_bad_request_and_first_completes(self):
        gate = self.new_gate()
        with self.server.client() as a, self.server.client() as b:
            a.send({"id": "dup", "type": "hold", "data": gate.data(1)})
            wait_stats(self.server, lambda s: s["inFlight"] == 1, what="the first message running")
            a.send({"id": "dup", "type": "hold", "data": gate.data(2)})
            resp = a.recv()
            self.assertEqual(resp["id"], "dup")
            self.assertFalse(resp["ok"])
            self.assertEqual(resp["error"]["code"], "bad_request")
            # the same id on another connection is fine
            b.send({"id": "dup", "type": "hold", "data": gate.data(3)})
            wait_stats(self.server, lambda s: s["inFlight"] == 2, what="the other connection's message running")
            gate.release()
            ra, rb = a.recv(), b.recv()
            self.assertEqual((ra["id"], ra["ok"]), ("dup", True))
            self.assertEqual((rb["id"], rb["ok"]), ("dup", True))
            # once answered, the id may be reused
            resp = a.request("hold", gate.data(4), id="dup")
            self.assertTrue(resp["ok"], resp)

    def test_duplicate_raw_id_detected_for_integer_ids(self):
        gate = self.new_gate()
        with self.server.client() as a:
            a.send_raw(b'{"id":123456789012345678901234567890,"type":"hold","data":' +
                       json.dumps(gate.data(1)).encode() + b'}\n')
            wait_stats(self.server, lambda s: s["inFlight"] == 1, what="the first message running")
            a.send_raw(b'{"id":123456789012345678901234567890,"type":"hold"}\n')
            line = a.recv_line()
            self.assertEqual(json.loads(line)["error"]["code"], "bad_request")
            self.assertEqual(raw_member(line, "id"), b"123456789012345678901234567890")
            gate.release()
            line = a.recv_line()
            self.assertTrue(json.loads(line)["ok"])
            self.assertEqual(raw_member(line, "id"), b"123456789012345678901234567890")

    def test_pool_ping_answered_while_pool_saturated(self):
        gate = self.new_gate()
        with self.server.client() as a, self.server.client() as b:
            # 2 running, 2 queued, 1 held (a paused), 1 unread
            for i in range(6):
                a.send({"id": i, "type": "hold", "data": gate.data(i)})
            s = wait_stats(self.server, lambda s: s["messages"]["held"] == 1 and s["inFlight"] == 2
                           and s["queue"]["depth"] == 2, what="a saturated pool")
            self.assertEqual(s["available"], 0)
            self.assertEqual(b.call("pool.ping"), {"pong": True, "state": "ready"})
            self.assertEqual(b.stats()["messages"]["held"], 1)
            gate.release()
            got = sorted(a.recv()["id"] for _ in range(6))
            self.assertEqual(got, list(range(6)))

    def test_worker_killed_by_signal_answers_worker_crashed_with_signal(self):
        gate = self.new_gate()
        with self.server.client() as a:
            a.send({"id": "victim", "type": "hold", "data": gate.data(1), "retry": False})
            s = wait_stats(self.server, lambda s: s["inFlight"] == 1, what="the message sent")
            crashed0 = s["workerEvents"]["crashed"]
            busy = wait_for(lambda: [w for w in server_stats(self.server, detailed=True)["workers"] if w.get("running")],
                            what="its handler to run")
            self.assertEqual(len(busy), 1, busy)
            os.kill(busy[0]["pid"], signal.SIGKILL)
            resp = a.recv()
            self.assertEqual(resp["id"], "victim")
            self.assertEqual(resp["error"]["code"], "worker_crashed")
            self.assertEqual(resp["error"]["signal"], signal.SIGKILL)
            self.assertEqual(resp["error"]["attempts"], 1)
            self.assertNotIn("exitStatus", resp["error"])
            wait_stats(self.server, lambda s: s["workerEvents"]["crashed"] == crashed0 + 1 and s["healthy"] == 2,
                       what="the killed worker respawned")
            gate.release()
            self.assertTrue(a.request("hold", gate.data(2))["ok"])


class OwnServerProtocolTest(unittest.TestCase):
    """Behaviours that need a server configured (or ended) just for them."""

    def test_queue_full_when_overflow_reject(self):
        with Server(agent=GATE, workers=1, args=["--message-queue-size", "2", "--overflow", "reject"]) as srv, \
                Gate(srv.tmp.name) as gate:
            with srv.client() as a:
                for i in range(3):
                    a.send({"id": i, "type": "hold", "data": gate.data(i)})
                wait_stats(srv, lambda s: s["inFlight"] == 1 and s["queue"]["depth"] == 2,
                           what="1 running and 2 queued")
                a.send({"id": "over", "type": "hold", "data": gate.data(3)})
                resp = a.recv()
                self.assertEqual(resp["id"], "over")
                self.assertEqual(resp["error"]["code"], "queue_full")
                s = server_stats(srv)
                self.assertEqual(s["queue"]["rejected"], 1)
                self.assertEqual(s["errors"]["queue_full"], 1)
                gate.release()
                self.assertEqual(sorted(a.recv()["id"] for _ in range(3)), [0, 1, 2])
                # room again: accepted
                self.assertTrue(a.request("hold", gate.data(9))["ok"])

    def test_agent_error_names_the_exception_and_worker_keeps_serving(self):
        with Server(agent="pyagents.examples.raising:RaiseAgent", workers=1) as srv:
            with srv.client() as c:
                pid = c.call("agent.metrics")["pid"]
                resp = c.request("anything", {"message": "bad thing happened"})
                self.assertFalse(resp["ok"])
                err = resp["error"]
                self.assertEqual(err["code"], "agent_error")
                self.assertEqual(err["exception"], "ValueError")
                self.assertIn("bad thing happened", err["message"])
                resp = c.request("anything")
                self.assertEqual(resp["error"]["code"], "agent_error")
                self.assertEqual(resp["error"]["exception"], "ValueError")
                self.assertIn("boom", resp["error"]["message"])
                self.assertEqual(c.call("agent.metrics")["pid"], pid)
                s = c.stats(detailed=True)
                self.assertEqual(s["workerEvents"]["crashed"], 0)
                self.assertEqual(s["workers"][0]["pid"], pid)
                self.assertEqual(s["workers"][0]["generation"], 1)
                self.assertEqual(s["errors"]["agent_error"], 2)

    def test_non_json_results_are_agent_error(self):
        with Server(agent="aptest_agents:NotJsonAgent", workers=1, args=["--python-path", AGENTS_DIR]) as srv:
            with srv.client() as c:
                pid = c.call("agent.metrics")["pid"]
                for t in ("set", "object", "nan", "inf", "-inf", "nested-nan", "int-key", "tuple-key", "deep"):
                    with self.subTest(type=t):
                        c.send({"id": t, "type": t})
                        line, resp = recv_strict(c)
                        self.assertEqual(resp["id"], t)
                        self.assertFalse(resp["ok"], line)
                        self.assertEqual(resp["error"]["code"], "agent_error")
                        self.assertIsInstance(resp["error"]["exception"], str)
                        self.assertTrue(resp["error"]["exception"])
                    self.assertEqual(c.call("ok"), {"fine": True})
                self.assertEqual(c.call("agent.metrics")["pid"], pid)

    def test_shutting_down_for_new_requests_while_draining(self):
        srv = Server(agent=GATE, workers=1)
        srv.start()
        gate = Gate(srv.tmp.name)
        try:
            a, b = srv.client(), srv.client()
            a.send({"id": "held", "type": "hold", "data": gate.data(1)})
            wait_stats(srv, lambda s: s["inFlight"] == 1, what="the held message running")
            srv.signal(signal.SIGTERM)
            wait_for(lambda: b.call("pool.ping")["state"] == "draining", what="state draining")
            a.send({"id": "late", "type": "hold", "data": gate.data(2)})
            resp = a.recv()
            self.assertEqual(resp["id"], "late")
            self.assertEqual(resp["error"]["code"], "shutting_down")
            # pool.* still answered; no new connections
            self.assertEqual(b.stats()["state"], "draining")
            wait_for(lambda: not os.path.exists(srv.path), what="the socket file removed")
            with self.assertRaises(OSError):
                Client(srv.path, timeout=5)
            gate.release()
            resp = a.recv()
            self.assertEqual((resp["id"], resp["ok"]), ("held", True))
            self.assertEqual(srv.wait_exit(), 0)
            a.close()
            b.close()
        finally:
            gate.release()
            srv.close()

    def test_worker_crashed_carries_exit_status_then_pool_respawns(self):
        with Server(agent="pyagents.examples.crash:CrashAgent", workers=1) as srv:
            with srv.client() as c:
                pid1 = c.call("agent.metrics")["pid"]
                resp = c.request("die", {"code": 3}, retry=False)
                self.assertFalse(resp["ok"])
                self.assertEqual(resp["error"]["code"], "worker_crashed")
                self.assertEqual(resp["error"]["exitStatus"], 3)
                self.assertNotIn("signal", resp["error"])
                s = wait_stats(srv, lambda s: s["workerEvents"]["crashed"] == 1 and s["healthy"] == 1,
                               what="the worker respawned")
                self.assertEqual(s["errors"]["worker_crashed"], 1)
                pid2 = c.call("agent.metrics")["pid"]
                self.assertNotEqual(pid1, pid2)
                self.assertEqual(c.stats(detailed=True)["workers"][0]["generation"], 2)
                # the new process serves (and crashes again, as told)
                resp = c.request("die", {"code": 5}, retry=False)
                self.assertEqual(resp["error"]["code"], "worker_crashed")
                self.assertEqual(resp["error"]["exitStatus"], 5)
                wait_stats(srv, lambda s: s["workerEvents"]["crashed"] == 2 and s["healthy"] == 1,
                           what="the worker respawned again")
                self.assertTrue(c.call("pool.ping")["pong"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
