# SPDX-License-Identifier: BSD-2-Clause
"""test_client_wire.py - the pure parts of pyagents.client.

Request lines carry what send() was given under the protocol's member
names; Pending routes lines by id (chunks keep the request open,
heartbeats are marked, a final line closes it, a line nobody waits for
is dropped) and gives a null-id too_large to the largest unanswered
request; refusal() recognises connection-level refusals; every error
code maps to its class with its extra members, an unknown code to
AgentpoolError; retry_delay retries what is safe to retry and nothing
else.  The broker transport's pure part (pyagents.client.broker): the
pool's key names, the add script's arguments, a queue_full refusal as
QueueFull (and the C programs' copy of the add script, include/ap_broker.h, the
same text),
reply entries routed by id with each request's entry id
kept until its final line, a chunk written twice (its seq seen) dropped;
and pyagents.client imports without the
Redis library (it is loaded only for a redis:// target).
"""
import json
import os
import subprocess
import sys
import unittest

SRCDIR = os.environ.get("AP_SRCDIR") or os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, SRCDIR)
from pyagents.client import broker, errors, retry, wire  # noqa: E402


def err(code, **extra):
    e = {"code": code, "message": "m " + code}
    e.update(extra)
    return {"id": 1, "ok": False, "error": e}


class Waiter:
    def __init__(self, name):
        self.name = name


class EncodeRequest(unittest.TestCase):
    def test_members(self):
        line = wire.encode_request(7, "t", {"a": 1}, timeout=1.5, pool="p", session="s",
                                   retry=False, idempotency_key="k", stream=True)
        self.assertTrue(line.endswith(b"\n"))
        self.assertEqual(json.loads(line), {"id": 7, "type": "t", "data": {"a": 1}, "timeoutMs": 1500,
                                            "retry": False, "stream": True, "pool": "p", "session": "s",
                                            "idempotencyKey": "k"})

    def test_minimal_and_tiny_timeout(self):
        self.assertEqual(json.loads(wire.encode_request(1, "t")), {"id": 1, "type": "t"})
        self.assertEqual(json.loads(wire.encode_request(1, "t", timeout=0.0001))["timeoutMs"], 1)

    def test_not_json_is_refused_before_sending(self):
        with self.assertRaises(ValueError):
            wire.encode_request(1, "t", float("nan"))
        with self.assertRaises(TypeError):
            wire.encode_request(1, 5)


class Routing(unittest.TestCase):
    def test_chunks_heartbeats_final(self):
        p = wire.Pending()
        a = Waiter("a")
        p.add(1, a, 10)
        self.assertEqual(p.route({"id": 1, "chunk": "x", "seq": 0}), [(a, wire.CHUNK, {"id": 1, "chunk": "x", "seq": 0})])
        self.assertEqual(p.route({"id": 1, "heartbeat": True})[0][1], wire.HEARTBEAT)
        self.assertEqual(len(p), 1)
        self.assertEqual(p.route({"id": 1, "ok": True, "result": 3})[0][1], wire.FINAL)
        self.assertEqual(len(p), 0)
        self.assertEqual(p.route({"id": 1, "ok": True, "result": 3}), [])  # nobody waits now

    def test_null_id_too_large_goes_to_the_largest(self):
        p = wire.Pending()
        small, big, mid = Waiter("s"), Waiter("b"), Waiter("m")
        p.add(1, small, 100)
        p.add(2, big, 9000)
        p.add(3, mid, 5000)
        tl = {"id": None, "ok": False, "error": {"code": "too_large", "message": "x"}}
        self.assertIs(p.route(tl)[0][0], big)
        self.assertIs(p.route(tl)[0][0], mid)
        self.assertEqual(sorted(p.by_id), [1])
        self.assertEqual(p.route({"id": None, "ok": False, "error": {"code": "bad_request"}}), [])

    def test_refusal(self):
        r = wire.refusal({"id": None, "ok": False, "error": {"code": "too_many_connections", "message": "full"}})
        self.assertIsInstance(r, errors.TooManyConnections)
        self.assertIsInstance(wire.refusal({"id": None, "ok": False, "error": {"code": "forbidden"}}),
                              errors.Forbidden)
        self.assertIsNone(wire.refusal({"id": 3, "ok": False, "error": {"code": "forbidden"}}))
        self.assertIsNone(wire.refusal({"id": None, "ok": False, "error": {"code": "too_large"}}))

    def test_take_all_and_decode(self):
        p = wire.Pending()
        p.add(1, "a", 1)
        p.add(2, "b", 1)
        self.assertEqual(sorted(p.take_all()), ["a", "b"])
        self.assertEqual(len(p), 0)
        self.assertIsNone(wire.decode_line(b"  \r"))
        self.assertIsNone(wire.decode_line(b"{nope"))
        self.assertEqual(wire.decode_line(b'{"id":1}\r'), {"id": 1})


class Errors(unittest.TestCase):
    def test_every_code_has_its_class(self):
        expect = {"bad_request": errors.BadRequest, "too_large": errors.TooLarge,
                  "queue_full": errors.QueueFull, "agent_error": errors.AgentError,
                  "shutting_down": errors.ShuttingDown, "worker_crashed": errors.WorkerCrashed,
                  "timeout": errors.Timeout, "too_many_connections": errors.TooManyConnections,
                  "forbidden": errors.Forbidden, "cancelled": errors.Cancelled,
                  "circuit_open": errors.CircuitOpen}
        for code, cls in expect.items():
            resp = err(code)
            e = errors.error_from_response(resp)
            self.assertIs(type(e), cls, code)
            self.assertIsInstance(e, errors.AgentpoolError)
            self.assertEqual((e.code, e.message, e.response), (code, "m " + code, resp))

    def test_protocol_table_has_no_code_without_a_class(self):
        doc = os.path.join(SRCDIR, "docs", "protocol.md")
        with open(doc) as f:
            text = f.read()
        table = text[text.index("## Error codes"):text.index("## Streams")]
        codes = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
        self.assertTrue(codes)
        for code in codes:
            self.assertIn(code, errors.BY_CODE)

    def test_unknown_code_is_the_base_class(self):
        e = errors.error_from_response(err("brand_new"))
        self.assertIs(type(e), errors.AgentpoolError)
        self.assertEqual(e.code, "brand_new")
        self.assertIs(type(errors.error_from_response({"id": 1, "ok": False})), errors.AgentpoolError)

    def test_extra_members(self):
        e = errors.error_from_response(err("worker_crashed", attempts=3, signal=9, partial=True, chunks=4))
        self.assertEqual((e.attempts, e.signal, e.exit_status, e.partial, e.chunks), (3, 9, None, True, 4))
        e = errors.error_from_response(err("worker_crashed", attempts=1, exitStatus=7))
        self.assertEqual((e.exit_status, e.partial, e.chunks), (7, False, 0))
        e = errors.error_from_response(err("circuit_open", retryAfterMs=1500))
        self.assertEqual((e.retry_after_ms, e.retry_after), (1500, 1.5))
        e = errors.error_from_response(err("agent_error", exception="KeyError"))
        self.assertEqual(e.exception, "KeyError")
        self.assertEqual(wire.outcome({"id": 1, "ok": True, "result": [1]}), ([1], None))


class Retry(unittest.TestCase):
    def delay(self, exc, attempt=1, idempotent=False):
        return retry.retry_delay(exc, attempt, max_retries=3, base=0.1, cap=1.0, idempotent=idempotent,
                                 rand=lambda: 1.0)

    def test_retried_codes_back_off_exponentially_up_to_the_cap(self):
        q = errors.QueueFull("x")
        self.assertEqual([self.delay(q, n) for n in (1, 2, 3)], [0.1, 0.2, 0.4])
        self.assertIsNone(self.delay(q, 4))
        self.assertEqual(retry.backoff(10, 0.1, 1.0, rand=lambda: 1.0), 1.0)
        self.assertEqual(retry.backoff(2, 0.1, 1.0, rand=lambda: 0.5), 0.1)
        self.assertEqual(self.delay(errors.ShuttingDown("x")), 0.1)

    def test_circuit_open_waits_retry_after(self):
        e = errors.error_from_response(err("circuit_open", retryAfterMs=700))
        self.assertEqual(self.delay(e), 0.7)

    def test_not_retried(self):
        for code in ("agent_error", "timeout", "worker_crashed", "bad_request", "cancelled", "too_large"):
            self.assertIsNone(self.delay(errors.error_from_response(err(code))), code)
        self.assertIsNone(self.delay(ValueError()))

    def test_lost_connection_resent_only_when_safe(self):
        self.assertEqual(self.delay(errors.ConnectionLost("x", sent=False)), 0.1)
        self.assertIsNone(self.delay(errors.ConnectionLost("x", sent=True)))
        self.assertEqual(self.delay(errors.ConnectionLost("x", sent=True), idempotent=True), 0.1)


class Got:
    """A waiter recording what it was given."""

    def __init__(self):
        self.lines, self.failed = [], None

    def deliver(self, kind, msg):
        self.lines.append((kind, msg))

    def fail(self, exc):
        self.failed = exc


def xread(*entries):
    """An XREAD answer on one reply stream, as redis-py returns it."""
    return [[b"agentpool:reply:x", [(eid, {b"line": json.dumps(m).encode()} if m is not None else {b"wake": b"1"})
                                    for eid, m in entries]]]


class Broker(unittest.TestCase):
    def test_targets_and_keys(self):
        self.assertTrue(broker.is_url("redis://127.0.0.1:6379/0"))
        self.assertFalse(broker.is_url("/tmp/agentpool.sock"))
        self.assertFalse(broker.is_url(None))
        keys, args = broker.add_args(None, b'{"id":1,"type":"echo"}\n', "agentpool:reply:r")
        self.assertEqual(keys, ["agentpool:default:requests", "agentpool:default:maxlen"])
        self.assertEqual(args, [b'{"id":1,"type":"echo"}', "agentpool:reply:r"])
        keys, _ = broker.add_args("p2", b"x\n", "r")
        self.assertEqual(keys, ["agentpool:p2:requests", "agentpool:p2:maxlen"])
        a, b = broker.new_reply_stream(), broker.new_reply_stream()
        self.assertNotEqual(a, b)
        self.assertRegex(a, r"^agentpool:reply:[0-9a-f]{32}$")

    def test_several_lines_go_in_one_add_call_and_come_back_one_result_each(self):
        args = [broker.add_args(None, b"l%d\n" % i, "agentpool:reply:r")[1] for i in range(3)]
        self.assertEqual(broker.add_many_args(args[:1]), [b"l0", "agentpool:reply:r"])
        self.assertEqual(broker.add_many_args(args), [b"l0", "agentpool:reply:r", b"l1", b"l2"])
        self.assertEqual(broker.add_results(1, b"1-0"), [b"1-0"])
        refused = Exception("queue_full")
        self.assertEqual(broker.add_results(2, [b"1-0", refused]), [b"1-0", refused])
        lost = OSError("gone")
        self.assertEqual(broker.add_results(3, lost), [lost] * 3)
        odd = broker.add_results(2, [b"1-0"])
        self.assertEqual(len(odd), 2)
        self.assertIsInstance(odd[0], errors.AgentpoolError)

    def test_the_reply_stream_is_trimmed_once_per_trim_every_entries_read(self):
        core = broker.Core("redis://127.0.0.1:1/0")

        def read(n, start):
            return [(core.reply, [(b"%d-0" % (start + i), {b"line": b'{"id":99,"ok":true}'}) for i in range(n)])]
        core.routes(read(broker.TRIM_EVERY - 1, 1))
        self.assertIsNone(core.trim_point())
        core.routes(read(2, broker.TRIM_EVERY))
        self.assertEqual(core.trim_point(), b"%d-0" % (broker.TRIM_EVERY + 1))
        self.assertIsNone(core.trim_point())  # counted again from there

    def test_queue_full_refusal_is_queue_full(self):
        e = broker.add_refusal(Exception("queue_full the pool stream s holds 5 entries"), 3)
        self.assertIsInstance(e, errors.QueueFull)
        self.assertEqual(e.error["code"], "queue_full")
        self.assertEqual(e.response["id"], 3)
        other = broker.add_refusal(Exception("WRONGTYPE Operation"), 3)
        self.assertIs(type(other), errors.AgentpoolError)

    def test_reply_entries_routed_by_id_and_entry_ids_dropped_at_the_final_line(self):
        core = broker.Core("redis://x")
        w1, w2 = Got(), Got()
        r1, line = core.register(w1, lambda rid: wire.encode_request(rid, "echo", stream=True))
        self.assertEqual(json.loads(line)["id"], r1)
        r2, _ = core.register(w2, lambda rid: wire.encode_request(rid, "echo"))
        core.added(r1, b"1-1", None)
        core.added(r2, b"1-2", "p")
        self.assertEqual(core.cancel_entry(r2), ("agentpool:p:control", {"cancel": b"1-2", "replyTo": core.reply}))
        routes = core.routes(xread((b"5-1", {"id": r1, "chunk": "a", "seq": 0}), (b"5-2", None),
                                   (b"5-2", {"id": r1, "chunk": "a", "seq": 0}),  # written twice: dropped
                                   (b"5-3", {"id": r1, "ok": True, "result": 1}), (b"5-4", {"id": 99, "ok": True})))
        self.assertEqual([(w, k) for w, k, _ in routes], [(w1, wire.CHUNK), (w1, wire.FINAL)])
        self.assertEqual(core.last, b"5-4")
        self.assertIsNone(core.cancel_entry(r1))
        core.added(r1, b"1-1", None)  # an answer before the add returned: not kept
        self.assertIsNone(core.cancel_entry(r1))
        self.assertEqual(core.die("gone"), [w2])
        self.assertEqual(core.die("again"), [])
        self.assertIsNone(core.cancel_entry(r2))
        with self.assertRaises(errors.ConnectionLost) as cm:
            core.register(Got(), lambda rid: b"x\n")
        self.assertFalse(cm.exception.sent)

    def test_agentpool_bench_adds_with_the_same_script(self):
        with open(os.path.join(SRCDIR, "include", "ap_broker.h")) as f:
            c = f.read()
        start = c.index("#define AP_BROKER_ADD_SCRIPT")
        text = "".join(json.loads(part) for part in
                       __import__("re").findall(r'^\s*("(?:[^"\\]|\\.)*")', c[start:c.index("\n\n", start)], flags=8))
        self.assertEqual(text, broker.ADD_SCRIPT)

    def test_the_socket_client_does_not_import_redis(self):
        code = "import sys; import pyagents.client; print('redis' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], cwd=SRCDIR, capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "False")


if __name__ == "__main__":
    unittest.main(verbosity=2)
