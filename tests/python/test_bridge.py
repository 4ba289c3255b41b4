# SPDX-License-Identifier: BSD-2-Clause
"""Tests of agentpool-worker (bridge/), driven over its fd 3 like the master.

Each test starts the real built worker binary with a socketpair on fd 3
(see apframe.py) and speaks the frame protocol: READY / START_FAILED,
requests and answers for every JSON kind, agent errors, results that are
not JSON, async concurrency, PING, CANCEL, STOP, EOF, bad frames, the
Python environment options, agent.metrics, and a leak check over a few
hundred thousand messages.  No timing assertions: every wait is for a
condition, with a generous deadline.

Run by make check (AP_BUILDDIR names the build dir); by hand:
    AP_BUILDDIR=build-x /usr/bin/python3 tests/python/test_bridge.py
"""

import json
import math
import os
import struct
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import apframe as A  # noqa: E402

AGENTS_PY = textwrap.dedent('''
    """Odd agents for test_bridge.py (written to a temp dir, found through --python-path)."""
    import asyncio
    import collections
    import functools
    import enum
    import os
    import sys


    class Reports:
        """ctx.usage from a sync handler: data is usage's keywords."""
        def handle_message(self, type, data, ctx):
            if data:
                ctx.usage(**data)
            return "ok"


    class ReportsAsync:
        async def handle_message(self, type, data, ctx):
            if data:
                ctx.usage(**data)
            return "ok"


    class BadChunks:
        def handle_message(self, type, data):
            yield {1, 2} if type == "set" else "x" * 100


    class BadChunksAsync:
        async def handle_message(self, type, data):
            yield {1, 2} if type == "set" else "x" * 100


    class Color(enum.IntEnum):
        RED = 1
        HUGE = 2 ** 70


    class Odd:
        pass


    class MyStr(str):
        pass


    class MyFloat(float):
        pass


    class MyDict(dict):
        pass


    def nest(n):
        v = 0
        for _ in range(n):
            v = [v]
        return v


    def selfref():
        a = [1]
        a.append(a)
        return a


    class Custom(Exception):
        class Inner(Exception):
            pass


    class BadStr(Exception):
        def __str__(self):
            raise RuntimeError("no str for you")


    def raise_(exc):
        raise exc


    RESULTS = {
        "set": lambda: {"items": [1, 2, {1, 2}]},
        "object": lambda: {"a": {"b": Odd()}},
        "bytes": lambda: [b"x"],
        "nan": lambda: {"x": float("nan")},
        "inf": lambda: [float("inf")],
        "-inf": lambda: {"deep": [{"v": float("-inf")}]},
        "intkey": lambda: {"ok": {1: "one"}},
        "deep": lambda: nest(129),
        "deep-ok": lambda: nest(128),
        "selfref": selfref,
        "surrogate": lambda: {"s": "a\\ud800b"},
        "surrogate-key": lambda: {"\\udc00": 1},
        "weird-key": lambda: {"a b": {"c\\"d": {"e": set()}}},
        "tuple": lambda: (1, (2, "three")),
        "intenum": lambda: {"c": Color.RED, "huge": Color.HUGE},
        "bool": lambda: [True, False, 1, 0, None],
        "subclasses": lambda: MyDict(s=MyStr("x"), f=MyFloat(1.5), o=collections.OrderedDict([("z", 1), ("a", 2)])),
        "bigint": lambda: [2 ** 200, -(2 ** 64), 2 ** 63 - 1, -(2 ** 63)],
        "floats": lambda: [1e16, 1e-07, 0.1, 1.0, -0.0, 123456789.125, 5e-324, 1.7976931348623157e308, 1e22],
        "strings": lambda: ["", "\\u0000\\u001f\\"\\\\/\\b\\f\\n\\r\\t", "h\\u00e9", "\\u65e5\\u672c", "\\U0001F600", "\\u2028\\x7f"],
        "systemexit": lambda: raise_(SystemExit(3)),
        "keyerror": lambda: raise_(KeyError("k")),
        "nested-exc": lambda: raise_(Custom.Inner("inner trouble")),
        "badstr": lambda: raise_(BadStr()),
        "long-message": lambda: raise_(ValueError("x" * 20000)),
        "surrogate-message": lambda: raise_(ValueError("bad \\ud800 text")),
    }


    class ResultAgent:
        """Answers with RESULTS[type]()."""

        def handle_message(self, type, data):
            return RESULTS[type]()


    class AsyncResultAgent:
        async def handle_message(self, type, data):
            await asyncio.sleep(0)
            if type == "self-cancel":
                raise asyncio.CancelledError()
            return RESULTS[type]()


    class CoroFromSync:
        """handle_message is a plain def that returns a coroutine: served as sync."""

        def handle_message(self, type, data):
            async def inner():
                return 1
            return inner()


    class HealthAgent:
        mode = "ok"

        def handle_message(self, type, data):
            HealthAgent.mode = data
            return data

        def health(self):
            if self.mode == "raise":
                raise RuntimeError("unhealthy")
            if self.mode == "set":
                return {1, 2}
            return {"ok": True, "mode": self.mode}


    class MetricsAgent:
        fail = False

        def handle_message(self, type, data):
            MetricsAgent.fail = bool(data)
            return data

        def metrics(self):
            if self.fail:
                raise ValueError("metrics broke")
            return {"custom": 7, "pid": -1, "messages_received": -1}


    class StopHookAgent:
        def handle_message(self, type, data):
            return data

        def on_stop(self):
            with open(os.environ["STOP_MARKER"], "w") as f:
                f.write("stopped")


    class AsyncStopHookAgent:
        def __init__(self):
            self.started_in_loop = None

        async def on_start(self):
            self.started_in_loop = id(asyncio.get_running_loop())

        async def handle_message(self, type, data):
            if type == "same-loop":
                return self.started_in_loop == id(asyncio.get_running_loop())
            if type == "current-task":
                return asyncio.current_task() is not None
            if type == "wait":
                while not os.path.exists(data):
                    await asyncio.sleep(0.005)
                return "done"
            if type == "catch-cancel":
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    return "caught"
            return data

        async def on_stop(self):
            await asyncio.sleep(0)
            with open(os.environ["STOP_MARKER"], "w") as f:
                f.write("stopped")


    class FactoryAgent:
        made = 0

        def on_start(self):
            def factory(loop, coro):
                FactoryAgent.made += 1
                return asyncio.Task(coro, loop=loop)
            asyncio.get_event_loop().set_task_factory(factory)

        async def handle_message(self, type, data):
            return FactoryAgent.made


    class EnvAgent:
        def handle_message(self, type, data):
            return {"path": sys.path[:6], "executable": sys.executable, "prefix": sys.prefix,
                    "base_prefix": sys.base_prefix, "argv": sys.argv,
                    "env": os.environ.get("APTEST_MARK")}


    def plain_function(type, data):
        return {"fn": type, "data": data}


    async def async_function(type, data):
        await asyncio.sleep(0)
        return {"afn": type}


    async def _prefixed(prefix, type, data):
        await asyncio.sleep(0)
        return {"afn": prefix + type}
    async_partial = functools.partial(_prefixed, "p.")


    class BoundAsync:
        async def handle(self, type, data):
            return {"bound": type}
    async_bound_method = BoundAsync().handle


    instance = ResultAgent()
    NOT_AN_AGENT = 5


    class CtorRaises:
        def __init__(self):
            raise OSError("constructor failed")

        def handle_message(self, type, data):
            return data
''')

TMP = None


# An agent that imports nothing, asking which heavy modules the worker loaded
# for it: each costs every worker's start time and memory.
LEAN_AGENT_PY = textwrap.dedent('''
    import sys
    HEAVY = ("inspect", "ast", "dis", "logging", "json", "hashlib", "ssl", "asyncio")
    def handle_message(type, data):
        return sorted(m for m in HEAVY if m in sys.modules)
    async def async_handle_message(type, data):
        return sorted(m for m in HEAVY if m in sys.modules)
''')


def setUpModule():
    global TMP
    if not os.access(A.worker_binary(), os.X_OK):
        raise unittest.SkipTest("agentpool-worker not built at %s" % A.worker_binary())
    TMP = tempfile.mkdtemp(prefix="ap-bridge-test-")
    with open(os.path.join(TMP, "bridgeagents.py"), "w") as f:
        f.write(AGENTS_PY)
    with open(os.path.join(TMP, "leanagent.py"), "w") as f:
        f.write(LEAN_AGENT_PY)


def tearDownModule():
    if TMP:
        shutil.rmtree(TMP, ignore_errors=True)


def worker(agent, **kw):
    kw.setdefault("python_path", [TMP])
    return A.Worker(agent, **kw)


def started(agent, **kw):
    w = worker(agent, **kw).start()
    w.ready = w.wait_ready()
    return w


def assert_agent_error(tc, frame, message=None, exception=None, message_re=None):
    tc.assertEqual(frame.kind, A.ERROR, frame)
    e = frame.json()
    tc.assertEqual(e["code"], "agent_error", e)
    if message is not None:
        tc.assertEqual(e["message"], message)
    if message_re is not None:
        tc.assertRegex(e["message"], message_re)
    if exception is not None:
        tc.assertEqual(e.get("exception"), exception, e)
    return e


def canonical(value):
    """What the worker must send for value: compact, UTF-8, repr floats."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


# --------------------------------------------------------------- start-up


class StartupTest(unittest.TestCase):
    def test_ready_sync(self):
        with worker("pyagents.examples.echo:EchoAgent", worker_id="worker-7") as w:
            r = w.wait_ready()
            self.assertEqual(r["pid"], w.proc.pid)
            self.assertIs(r["async"], False)
            self.assertEqual(r["concurrency"], 1)
            self.assertEqual(r["agent"], "pyagents.examples.echo:EchoAgent")
            self.assertRegex(r["python"], r"^\d+\.\d+\.\d+")
            if os.path.realpath(sys.executable) == os.path.realpath(os.environ.get("AP_PYTHON3", "/usr/bin/python3")):
                self.assertEqual(r["python"], platform.python_version())
            self.assertEqual(set(r), {"pid", "async", "model", "concurrency", "python", "code", "agent"})
            self.assertEqual(r["model"], "sync")
            # The code identity: a hash over the non-stdlib modules loaded (pyagents at least).
            self.assertRegex(r["code"], r"^[0-9a-f]{16}:[1-9]\d*$")
            self.assertRegex(w.log(), r"INFO .*\[worker-7 %d\] ready: agent pyagents.examples.echo:EchoAgent \(sync"
                             % w.proc.pid)

    def test_ready_async_reports_concurrency(self):
        with worker("pyagents.examples.sleep:AsyncSleepAgent", concurrency=64) as w:
            r = w.wait_ready()
            self.assertIs(r["async"], True)
            self.assertEqual(r["model"], "async")
            self.assertEqual(r["concurrency"], 64)
            self.assertIn("ready: agent pyagents.examples.sleep:AsyncSleepAgent (async, concurrency 64", w.log())

    def test_ready_gevent_reports_concurrency_and_holds_many(self):
        with worker("pyagents.examples.sleep:SleepAgent", concurrency=50, args=["--model", "gevent"]) as w:
            r = w.wait_ready()
            self.assertEqual((r["async"], r["model"], r["concurrency"]), (True, "gevent", 50))
            self.assertIn("ready: agent pyagents.examples.sleep:SleepAgent (gevent, concurrency 50", w.log())

    def test_sync_model_refuses_an_async_def_agent(self):
        self.start_failed("pyagents.examples.sleep:AsyncSleepAgent",
                          "workerModel sync cannot run pyagents.examples.sleep:AsyncSleepAgent: its handle_message "
                          "is async def", args=["--model", "sync"])

    def test_bad_model(self):
        self.start_failed("pyagents.examples.echo:EchoAgent", '--model must be auto, sync, async or gevent, got "x"',
                          args=["--model", "x"])

    def test_sync_agent_reports_concurrency_one(self):
        with worker("pyagents.examples.echo:EchoAgent", concurrency=64) as w:
            self.assertEqual(w.wait_ready()["concurrency"], 1)

    def start_failed(self, agent, *texts, args=(), **kw):
        with worker(agent, args=args, **kw) as w:
            f = w.recv()
            self.assertEqual(f.kind, A.START_FAILED, f)
            self.assertEqual(f.id, 0)
            text = f.text()
            for t in texts:
                self.assertIn(t, text)
            self.assertEqual(w.wait_exit(), A.EXIT_START_FAILED, w.log())
            self.assertIn("failed to start", w.log())
            return text

    def test_import_error(self):
        text = self.start_failed("pyagents.examples.broken_import:Anything",
                                 "Traceback (most recent call last)", "ImportError",
                                 "fails to import on purpose", "broken_import.py")
        self.assertTrue(text.endswith("\n"))

    def test_on_start_raises(self):
        self.start_failed("pyagents.examples.badstart:BadStartAgent", "Traceback", "RuntimeError: bad start",
                          "in on_start")

    def test_missing_module(self):
        self.start_failed("no_such_module_xyz:Agent", "ModuleNotFoundError", "no_such_module_xyz")

    def test_missing_attribute(self):
        self.start_failed("pyagents.examples.echo:NoSuchAgent", "AttributeError", "NoSuchAgent")

    def test_not_an_agent(self):
        self.start_failed("bridgeagents:NOT_AN_AGENT", "TypeError", "is not an agent")

    def test_constructor_raises(self):
        self.start_failed("bridgeagents:CtorRaises", "OSError: constructor failed")

    def test_bad_spec(self):
        self.start_failed("pyagents.examples.echo", "MODULE:ATTR")

    def test_bad_arguments(self):
        self.start_failed("pyagents.examples.echo:EchoAgent", "--concurrency must be an integer from 1 to",
                          args=["--concurrency", "0"])
        self.start_failed("pyagents.examples.echo:EchoAgent", "unknown option --frobnicate",
                          args=["--frobnicate"])
        self.start_failed("pyagents.examples.echo:EchoAgent", "--log-level must be",
                          args=["--log-level", "loud"])
        self.start_failed(None, "--agent MODULE:ATTR is required")

    def test_fd3_missing(self):
        p = subprocess.run([A.worker_binary(), "--agent", "pyagents.examples.echo:EchoAgent"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, A.EXIT_START_FAILED)
        self.assertIn(b"fd 3 is not a socket", p.stderr)

    def test_help_and_version(self):
        p = subprocess.run([A.worker_binary(), "--help"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"--agent MODULE:ATTR", p.stdout)
        p = subprocess.run([A.worker_binary(), "--version"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith(b"agentpool-worker "))

    def test_plain_functions_and_instances(self):
        with started("bridgeagents:plain_function") as w:
            self.assertIs(w.ready["async"], False)
            self.assertEqual(w.call_json("t.x", [1]).json(), {"fn": "t.x", "data": [1]})
            self.assertEqual(set(w.metrics()) >= {"messages_received", "allocated_blocks"}, True)
        with started("bridgeagents:async_function", concurrency=4) as w:
            self.assertIs(w.ready["async"], True)
            self.assertEqual(w.call_json("t.y").json(), {"afn": "t.y"})
        with started("bridgeagents:instance") as w:
            self.assertEqual(w.call("bool").json(), [True, False, 1, 0, None])

    def test_a_plain_agent_costs_no_heavy_imports(self):
        # the bridge itself (model choice, code identity, handler context)
        # must not load inspect, json, logging or hashlib into every worker
        with started("leanagent:handle_message") as w:
            self.assertEqual(w.call("x").json(), [])
        with started("leanagent:async_handle_message", concurrency=2) as w:
            loaded = w.call("x").json()  # asyncio itself loads inspect, ast, dis, logging, ssl
            self.assertIn("asyncio", loaded)
            self.assertNotIn("json", loaded)
            self.assertNotIn("hashlib", loaded)

    def test_async_is_seen_through_partial_and_bound_methods(self):
        # the worker tells async def handlers apart by their code's flags
        # (not by importing inspect): through functools.partial and methods
        with started("bridgeagents:async_partial", concurrency=4) as w:
            self.assertIs(w.ready["async"], True)
            self.assertEqual(w.call_json("t.z").json(), {"afn": "p.t.z"})
        with started("bridgeagents:async_bound_method", concurrency=4) as w:
            self.assertIs(w.ready["async"], True)
            self.assertEqual(w.call_json("t.w").json(), {"bound": "t.w"})


# ------------------------------------------------------------ echo / JSON


ECHO_CASES = [
    b'{"nested":{"a":[1,{"b":null}],"c":true,"d":false,"e":{}},"f":[]}',
    b'"h\xc3\xa9llo w\xc3\xb6rld \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"',
    b'"\xf0\x9f\x98\x80 astral"',
    b'"\\ud83d\\ude00 escaped pair"',
    b'"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0001\\u001F\\u00e9\\u65E5"',
    b'["", " ", "a\\u0000b"]',
    b'123456789012345678901234567890',
    b'-123456789012345678901234567890',
    b'[9223372036854775807,-9223372036854775808,9223372036854775808,-9223372036854775809]',
    b'[999999999999999999,1000000000000000000,-999999999999999999,0,-0]',
    b'[0.1,-2.5e-10,1e300,1.0,3.141592653589793,-0.0,1E5,1e+2,2.5E-3,123.456e7]',
    b'[true,false,null]',
    b'{"k":"v","k":"last wins"}',
    b' \n\t {"spaced" : [ 1 , 2 ] } \r\n',
    b'{}',
    b'[]',
    b'""',
    b'0',
    b'{"\xc3\xa9":{"\\u00e9\\u00e9":1}}',
]


class EchoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = started("pyagents.examples.echo:EchoAgent")

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def test_every_json_kind_round_trips(self):
        for text in ECHO_CASES:
            with self.subTest(text=text):
                f = self.w.call("echo", text)
                self.assertEqual(f.kind, A.RESULT, f)
                self.assertEqual(f.payload, canonical(json.loads(text)))
                self.assertEqual(json.loads(f.payload), json.loads(text))

    def test_exact_bytes(self):
        self.assertEqual(self.w.call("echo", b'{"a": [1, 2.50, "x"], "b": -0.0}').payload,
                         b'{"a":[1,2.5,"x"],"b":-0.0}')
        self.assertEqual(self.w.call("echo", b'"\\u00e9\\ud83d\\ude00\\u0007"').payload,
                         '"\u00e9\U0001F600\\u0007"'.encode("utf-8"))
        # 1E400 parses to inf, as in the json module, and inf cannot be sent back
        assert_agent_error(self, self.w.call("echo", b"1E400"), "result is not JSON serializable: float inf at $",
                           "ValueError")

    def test_empty_data_is_null(self):
        for text in (b"", b"   ", b"\n"):
            f = self.w.call("echo", text)
            self.assertEqual((f.kind, f.payload), (A.RESULT, b"null"))

    def test_depth_limit(self):
        ok = b"[" * 128 + b"]" * 128
        self.assertEqual(self.w.call("echo", ok).payload, ok)
        deep = b"[" * 129 + b"]" * 129
        assert_agent_error(self, self.w.call("echo", deep), exception="ValueError",
                           message="request data: invalid JSON at byte 128: nesting deeper than 128 levels")
        obj = b'{"a":' * 129 + b"1" + b"}" * 129
        assert_agent_error(self, self.w.call("echo", obj), message_re="nesting deeper than 128")

    def test_large_payload(self):
        big = json.dumps({"s": "x\u00e9" * (3 << 20), "l": list(range(100000))}).encode()
        f = self.w.call("echo", big)
        self.assertEqual(f.kind, A.RESULT)
        self.assertEqual(json.loads(f.payload), json.loads(big))
        self.assertEqual(self.w.call("echo", b"1").payload, b"1")

    def test_malformed_data_is_an_error_not_a_crash(self):
        cases = {
            b"{bad": "invalid JSON at byte 1: expected a string key in an object",
            b"[1,]": "invalid JSON at byte 3: unexpected character",
            b"[1 2]": "invalid JSON at byte 3: expected ',' or ']' in an array",
            b'{"a" 1}': "invalid JSON at byte 5: expected ':' after an object key",
            b'"abc': "invalid JSON at byte 4: unterminated string",
            b'"a\x01"': "invalid JSON at byte 2: unescaped control character in a string",
            b'"\\x"': "invalid JSON at byte 1: invalid escape in a string",
            b'"\\u12"': "invalid JSON at byte 1: invalid \\u escape",
            b"01": "invalid JSON at byte 1: extra data after the value",
            b"1.": "invalid JSON at byte 2: invalid number: digit expected after '.'",
            b"1e": "invalid JSON at byte 2: invalid number: digit expected in the exponent",
            b"-": "invalid JSON at byte 0: invalid number",
            b"tru": "invalid JSON at byte 0: unexpected character",
            b"NaN": "invalid JSON at byte 0: unexpected character",
            b"1 2": "invalid JSON at byte 2: extra data after the value",
            b'"\xff"': "invalid JSON at byte 1: invalid UTF-8 in a string",
            b'"\xed\xa0\x80"': "invalid JSON at byte 1: invalid UTF-8 in a string",
            b"[" * 5: "invalid JSON at byte 5: unexpected end of data",
        }
        for text, message in cases.items():
            with self.subTest(text=text):
                assert_agent_error(self, self.w.call("echo", text), "request data: " + message, "ValueError")
        self.assertEqual(self.w.call("echo", b"[1]").payload, b"[1]")

    def test_lone_surrogate_escape_decodes_but_cannot_be_sent(self):
        e = assert_agent_error(self, self.w.call("echo", b'"a\\ud800"'), exception="ValueError")
        self.assertEqual(e["message"], "result is not JSON serializable: str with a lone surrogate U+D800 "
                                       "at index 1 at $")

    def test_huge_int_beyond_python_limit(self):
        e = assert_agent_error(self, self.w.call("echo", b"9" * 5000), exception="ValueError")
        self.assertIn("request data: invalid JSON at byte 0: number not convertible", e["message"])

    def test_malformed_frames(self):
        w = self.w
        # type longer than the payload
        w.send(A.encode(A.REQUEST, 77, b"abc", aux=10))
        assert_agent_error(self, w.recv_id(77), "malformed request frame: type length 10 exceeds payload length 3",
                           "ValueError")
        # type not UTF-8
        w.send(A.encode(A.REQUEST, 78, b"\xff\xfe1", aux=2))
        e = assert_agent_error(self, w.recv_id(78), exception="UnicodeDecodeError")
        self.assertTrue(e["message"].startswith("request type is not valid UTF-8: "), e)
        # empty type is fine
        w.send(A.encode(A.REQUEST, 79, b"[2]", aux=0))
        self.assertEqual(w.recv_id(79).payload, b"[2]")
        # meta flag (deadline, attempt, client id) with a payload too short for it
        w.send(A.encode(A.REQUEST, 80, b"abc", aux=0, flags=1))
        assert_agent_error(self, w.recv_id(80), "malformed request frame: meta (16 bytes), type length 0 and id "
                           "length 0 exceed payload length 3", "ValueError")
        # a client id longer than what is left
        meta = struct.pack("<QII", 0, 1, 50)
        w.send(A.encode(A.REQUEST, 81, meta + b"t" + b'"x"', aux=1, flags=1))
        assert_agent_error(self, w.recv_id(81), "malformed request frame: meta (16 bytes), type length 1 and id "
                           "length 50 exceed payload length 20", "ValueError")
        # a good one: meta, type, id, data
        meta = struct.pack("<QII", 0, 1, 3)
        w.send(A.encode(A.REQUEST, 82, meta + b"t" + b'"x"' + b"[5]", aux=1, flags=1))
        self.assertEqual(w.recv_id(82).payload, b"[5]")

    def test_pipelined_batch_answers_in_order(self):
        ids = list(range(5000, 5500))
        self.w.send(b"".join(A.request(i, "echo", b"%d" % i) for i in ids))
        frames = self.w.recv_n(len(ids))
        self.assertEqual([f.id for f in frames], ids)
        self.assertEqual([int(f.payload) for f in frames], ids)

    def test_unicode_type_reaches_agent(self):
        with started("bridgeagents:plain_function") as w:
            self.assertEqual(w.call("t\u00e9\U0001F600", b"").json(), {"fn": "t\u00e9\U0001F600", "data": None})


# ---------------------------------------------------- results and errors


BAD_RESULTS = [
    ("set", "TypeError", "result is not JSON serializable: set at $.items[2]"),
    ("object", "TypeError", "result is not JSON serializable: Odd at $.a.b"),
    ("bytes", "TypeError", "result is not JSON serializable: bytes at $[0]"),
    ("nan", "ValueError", "result is not JSON serializable: float nan at $.x"),
    ("inf", "ValueError", "result is not JSON serializable: float inf at $[0]"),
    ("-inf", "ValueError", "result is not JSON serializable: float -inf at $.deep[0].v"),
    ("intkey", "TypeError", "result is not JSON serializable: dict key of type int (keys must be str) at $.ok"),
    ("deep", "ValueError", "result is not JSON serializable: nesting deeper than 128 levels at $" + "[0]" * 128),
    ("selfref", "ValueError", "result is not JSON serializable: nesting deeper than 128 levels at $" + "[1]" * 128),
    ("surrogate", "ValueError", "result is not JSON serializable: str with a lone surrogate U+D800 at index 1 at $.s"),
    ("surrogate-key", "ValueError", "result is not JSON serializable: dict key with a lone surrogate U+DC00 at index 0 at $"),
    ("weird-key", "TypeError", 'result is not JSON serializable: set at $["a b"]["c\\"d"].e'),
]

GOOD_RESULTS = {
    "deep-ok": b"[" * 128 + b"0" + b"]" * 128,
    "tuple": b'[1,[2,"three"]]',
    "intenum": b'{"c":1,"huge":1180591620717411303424}',
    "bool": b"[true,false,1,0,null]",
    "subclasses": b'{"s":"x","f":1.5,"o":{"z":1,"a":2}}',
    "bigint": ("[%d,%d,%d,%d]" % (2 ** 200, -(2 ** 64), 2 ** 63 - 1, -(2 ** 63))).encode(),
    "floats": b"[1e+16,1e-07,0.1,1.0,-0.0,123456789.125,5e-324,1.7976931348623157e+308,1e+22]",
    "strings": '["","\\u0000\\u001f\\"\\\\/\\b\\f\\n\\r\\t","h\u00e9","\u65e5\u672c","\U0001F600","\u2028\x7f"]'.encode(),
}


class ResultConversionMixin:
    agent = None
    concurrency = None

    @classmethod
    def setUpClass(cls):
        cls.w = started(cls.agent, concurrency=cls.concurrency)

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def test_not_json_results_are_agent_errors_and_worker_lives(self):
        for type, exc, message in BAD_RESULTS:
            with self.subTest(type=type):
                assert_agent_error(self, self.w.call(type), message, exc)
                self.assertEqual(self.w.call("bool").payload, b"[true,false,1,0,null]")

    def test_good_results(self):
        for type, payload in GOOD_RESULTS.items():
            with self.subTest(type=type):
                f = self.w.call(type)
                self.assertEqual((f.kind, f.payload), (A.RESULT, payload))
                self.assertEqual(json.loads(f.payload), json.loads(payload))

    def test_exceptions(self):
        assert_agent_error(self, self.w.call("keyerror"), "'k'", "KeyError")
        assert_agent_error(self, self.w.call("nested-exc"), "inner trouble", "Custom.Inner")
        assert_agent_error(self, self.w.call("badstr"), "(str() of the exception failed)", "BadStr")
        assert_agent_error(self, self.w.call("no-such-result"), "'no-such-result'", "KeyError")
        e = assert_agent_error(self, self.w.call("long-message"), exception="ValueError")
        self.assertEqual(e["message"], "x" * 8192 + "... (11808 more characters)")
        assert_agent_error(self, self.w.call("surrogate-message"), "bad \ufffd text", "ValueError")

    def test_system_exit_does_not_kill_the_worker(self):
        assert_agent_error(self, self.w.call("systemexit"), "3", "SystemExit")
        self.assertEqual(self.w.call("bool").kind, A.RESULT)
        self.assertIsNone(self.w.proc.poll())

    def test_errors_counted(self):
        before = self.w.metrics()
        self.w.call("nan")
        self.w.call("bool")
        after = self.w.metrics()
        self.assertEqual(after["errors"] - before["errors"], 1)
        self.assertEqual(after["messages_received"] - before["messages_received"], 3)
        self.assertEqual(after["messages_sent"] - before["messages_sent"], 3)


class SyncResultsTest(ResultConversionMixin, unittest.TestCase):
    agent = "bridgeagents:ResultAgent"


class AsyncResultsTest(ResultConversionMixin, unittest.TestCase):
    agent = "bridgeagents:AsyncResultAgent"
    concurrency = 8

    def test_task_cancelled_by_the_agent_itself(self):
        assert_agent_error(self, self.w.call("self-cancel"),
                           "the message's task was cancelled (not by the master)", "CancelledError")


class AgentErrorLogMixin:
    """An agent's exception is logged at error level with its traceback,
    at most PYERR_BURST (5) times per (message type, exception class) in
    a window, the rest counted and the count logged at exit.  Counts, not
    durations: whatever the window does, every exception is either
    logged or counted once."""
    agent = None
    concurrency = None
    CALLS = 30
    HEAD = r"ERROR +\[worker-t \d+\] message \d+ of type %s failed: the agent raised %s"

    def test_agent_exceptions_are_logged_with_traceback_and_limited(self):
        w = started(self.agent, concurrency=self.concurrency)
        try:
            for _ in range(self.CALLS):
                # the client's answer is what it always was
                assert_agent_error(self, w.call("keyerror"), "'k'", "KeyError")
            assert_agent_error(self, w.call("no-such-result"), "'no-such-result'", "KeyError")
            assert_agent_error(self, w.call("a\nb"), "'a\\nb'", "KeyError")
            w.stop()
            self.assertEqual(w.wait_exit(), 0, w.log())
            lines = w.log().splitlines()
        finally:
            w.close()
        text = "\n".join(lines)
        heads = [i for i, l in enumerate(lines) if re.search(self.HEAD % ("keyerror", "KeyError"), l)]
        self.assertGreaterEqual(len(heads), 1, text)
        self.assertLess(len(heads), self.CALLS, "not limited:\n" + text)
        for i in heads:
            # the traceback follows its line, at error level
            self.assertRegex(lines[i + 1], r"ERROR +\[worker-t \d+\]   Traceback \(most recent call last\):")
            block = [l for l in lines[i + 1:i + 12] if "ERROR" in l]
            self.assertTrue(any(l.endswith("  KeyError: 'k'") for l in block), "\n".join(block))
        said = sum(int(n) for n in re.findall(r"\((\d+) more like it were not logged in the last \d+ s\)", text))
        said += sum(int(n) for n in re.findall(
            r"ERROR +\[worker-t \d+\] (\d+) more KeyError raised for messages of type keyerror were not "
            r"logged in the last \d+ s$", text, re.M))
        self.assertGreater(said, 0, text)
        self.assertEqual(len(heads) + said, self.CALLS, text)
        # another type is another pair; a newline in a type cannot forge a line
        self.assertEqual(len(re.findall(self.HEAD % ("no-such-result", "KeyError"), text)), 1, text)
        self.assertEqual(len(re.findall(self.HEAD % (r"a\?b", "KeyError"), text)), 1, text)
        self.assertNotIn("more KeyError raised for messages of type no-such-result", text)


class SyncAgentErrorLogTest(AgentErrorLogMixin, unittest.TestCase):
    agent = "bridgeagents:ResultAgent"


class AsyncAgentErrorLogTest(AgentErrorLogMixin, unittest.TestCase):
    agent = "bridgeagents:AsyncResultAgent"
    concurrency = 4


class RaiseAgentTest(unittest.TestCase):
    def test_raise_agent(self):
        with started("pyagents.examples.raising:RaiseAgent") as w:
            f = w.call("x", b"")
            self.assertEqual(f.json(), {"code": "agent_error", "message": "boom", "exception": "ValueError"})
            assert_agent_error(self, w.call_json("x", {"message": "custom \u00e9"}), "custom \u00e9", "ValueError")

    def test_sync_handler_returning_coroutine(self):
        with started("bridgeagents:CoroFromSync") as w:
            self.assertIs(w.ready["async"], False)
            e = assert_agent_error(self, w.call("x"), exception="TypeError")
            self.assertIn("declare handle_message with async def", e["message"])
            self.assertNotIn("never awaited", w.log())

    def test_unknown_type_with_dispatching_agent(self):
        with started("pyagents.examples.kv:KvAgent") as w:
            self.assertEqual(w.call_json("kv.set", {"key": "a", "value": 1}).json(), {"ok": True})
            self.assertEqual(w.call_json("kv.get", {"key": "a"}).json()["value"], 1)
            assert_agent_error(self, w.call_json("kv.nope", {}), exception="UnknownMessageType",
                               message="KvAgent does not handle message type 'kv.nope' "
                                       "(define handle_kv_nope(self, data))")


# ------------------------------------------------------------------ async


class AsyncTest(unittest.TestCase):
    def test_200_in_flight_then_release(self):
        with started("pyagents.examples.gate:AsyncGateAgent", concurrency=200) as w:
            self.assertEqual((w.ready["async"], w.ready["concurrency"]), (True, 200))
            w.send(b"".join(A.request(i, "gate", json.dumps({"seq": i})) for i in range(1, 201)))
            deadline = time.monotonic() + 60
            while True:  # PING is answered by the loop while all 200 await
                pong = w.ping()
                self.assertEqual(pong.kind, A.PONG)
                if pong.json()["held"] == 200:
                    break
                self.assertLess(time.monotonic(), deadline)
            self.assertEqual(w.pending, type(w.pending)(), "nothing answered while the gate is shut")
            m = w.metrics()
            self.assertEqual(m["queue_size"], 200)
            self.assertEqual(m["async"], True)
            self.assertEqual(m["concurrency"], 200)
            rid = w.send_request("gate.release", b"")
            frames = w.recv_n(201)
            answers = {f.id: f for f in frames}
            self.assertEqual(len(answers), 201)
            self.assertEqual(answers[rid].json(), {"released": 200})
            for i in range(1, 201):
                self.assertEqual(answers[i].kind, A.RESULT)
                self.assertEqual(answers[i].json(), {"released": True, "seq": i})
            self.assertEqual(w.metrics()["queue_size"], 0)

    def test_keeps_reading_while_messages_await(self):
        with started("pyagents.examples.gate:AsyncGateAgent", concurrency=10) as w:
            held = w.send_request("gate", b'{"seq":1}')
            # a message for a file that exists is answered while the first waits
            self.assertEqual(w.call_json("gate", {"file": TMP, "seq": 2}).json(), {"released": True, "seq": 2})
            self.assertEqual(w.call("gate.release", b"").json(), {"released": 1})
            self.assertEqual(w.recv_id(held).json(), {"released": True, "seq": 1})

    def test_file_gate(self):
        path = os.path.join(TMP, "gate-file-%d" % os.getpid())
        with started("pyagents.examples.gate:AsyncGateAgent", concurrency=20) as w:
            ids = [w.send_request("gate", json.dumps({"file": path, "seq": i})) for i in range(20)]
            while w.ping().json()["held"] < 20:
                pass
            open(path, "w").close()
            try:
                for i, id in enumerate(ids):
                    self.assertEqual(w.recv_id(id).json(), {"released": True, "seq": i})
            finally:
                os.unlink(path)

    def test_cancel(self):
        with started("pyagents.examples.gate:AsyncGateAgent", concurrency=10) as w:
            a = w.send_request("gate", b'{"seq":1}')
            b = w.send_request("gate", b'{"seq":2}')
            while w.ping().json()["held"] < 2:
                pass
            w.send_frame(A.CANCEL, a)
            f = w.recv_id(a)
            self.assertEqual(f.kind, A.ERROR)
            self.assertEqual(f.json(), {"code": "cancelled", "message": "cancelled by the master"})
            self.assertEqual(w.ping().json(), {"held": 1})
            w.send_frame(A.CANCEL, 123456)  # unknown id: ignored
            w.send_frame(A.CANCEL, a)       # already answered: ignored
            self.assertEqual(w.call("gate.release", b"").json(), {"released": 1})
            self.assertEqual(w.recv_id(b).json(), {"released": True, "seq": 2})
            self.assertFalse([f for f in w.pending if f.id == a])
            self.assertEqual(w.metrics()["queue_size"], 0)

    def test_cancel_right_after_request_in_same_write(self):
        with started("pyagents.examples.gate:AsyncGateAgent", concurrency=10) as w:
            w.send(A.request(5, "gate", b'{"seq":5}') + A.encode(A.CANCEL, 5))
            self.assertEqual(w.recv_id(5).json(), {"code": "cancelled", "message": "cancelled by the master"})

    def test_cancel_caught_by_agent_gives_its_result(self):
        marker = os.path.join(TMP, "unused-marker")
        with started("bridgeagents:AsyncStopHookAgent", concurrency=4, env={"STOP_MARKER": marker}) as w:
            a = w.send_request("catch-cancel", b"")
            self.assertEqual(w.call("echo", b"1").payload, b"1")  # a's task has started by now
            w.send_frame(A.CANCEL, a)
            self.assertEqual(w.recv_id(a).json(), "caught")

    def test_on_start_runs_in_the_serving_loop_and_tasks_are_tasks(self):
        marker = os.path.join(TMP, "unused-marker")
        with started("bridgeagents:AsyncStopHookAgent", concurrency=4, env={"STOP_MARKER": marker}) as w:
            self.assertIs(w.call("same-loop").json(), True)
            self.assertIs(w.call("current-task").json(), True)

    def test_task_factory_is_honoured(self):
        with started("bridgeagents:FactoryAgent", concurrency=4) as w:
            self.assertEqual(w.call("x").json(), 1)
            self.assertEqual(w.call("x").json(), 2)

    def test_sync_worker_ignores_cancel(self):
        with started("pyagents.examples.echo:EchoAgent") as w:
            w.send(A.encode(A.CANCEL, 1) + A.request(1, "echo", b"[1]"))
            self.assertEqual(w.recv_id(1).payload, b"[1]")


# ------------------------------------------------------------ ping/health


class PingTest(unittest.TestCase):
    def test_pong_without_health_is_empty(self):
        with started("pyagents.examples.echo:EchoAgent") as w:
            f = w.ping()
            self.assertEqual((f.kind, f.payload), (A.PONG, b""))

    def test_pong_carries_health(self):
        with started("bridgeagents:HealthAgent") as w:
            self.assertEqual(w.ping().json(), {"ok": True, "mode": "ok"})
            w.call_json("x", "raise")
            self.assertEqual(w.ping().payload, b"false")
            self.assertIn("health() raised", w.log())
            w.call_json("x", "set")
            self.assertEqual(w.ping().payload, b"false")
            w.call_json("x", "fine")
            self.assertEqual(w.ping().json(), {"ok": True, "mode": "fine"})

    def test_sync_worker_answers_ping_between_messages(self):
        path = os.path.join(TMP, "sync-gate-%d" % os.getpid())
        with started("pyagents.examples.gate:GateAgent") as w:
            g = w.send_request("gate", json.dumps({"file": path, "seq": 1}))
            pid = w.new_id()
            w.send_frame(A.PING, pid)
            open(path, "w").close()
            try:
                first, second = w.recv_n(2)
            finally:
                os.unlink(path)
            self.assertEqual((first.kind, first.id), (A.RESULT, g))
            self.assertEqual((second.kind, second.id), (A.PONG, pid))


# --------------------------------------------------------------- metrics


class MetricsTest(unittest.TestCase):
    def test_fields(self):
        with started("pyagents.examples.echo:EchoAgent", worker_id="worker-9") as w:
            for _ in range(3):
                w.call("echo", b"1")
            m = w.metrics()
            for key in ("messages_received", "messages_sent", "errors", "uptime", "queue_size", "pid", "worker",
                        "async", "concurrency", "allocated_blocks", "rss_bytes"):
                self.assertIn(key, m)
            self.assertEqual(m["messages_received"], 4)  # this one included
            self.assertEqual(m["messages_sent"], 3)
            self.assertEqual(m["errors"], 0)
            self.assertEqual(m["queue_size"], 0)
            self.assertEqual(m["pid"], w.proc.pid)
            self.assertEqual(m["worker"], "worker-9")
            self.assertEqual((m["async"], m["concurrency"]), (False, 1))
            self.assertIsInstance(m["uptime"], float)
            self.assertGreater(m["uptime"], 0)
            self.assertGreater(m["allocated_blocks"], 1000)
            self.assertGreater(m["rss_bytes"], 1 << 20)
            # from pyagents.Agent.metrics()
            self.assertEqual(m["agent_id"], "worker-9")
            self.assertEqual(m["capabilities"], ["echo"])
            self.assertEqual(m["max_queue_size"], 100)

    def test_sync_queue_size_counts_waiting_requests(self):
        with started("pyagents.examples.echo:EchoAgent") as w:
            # metrics first in a batch of 4: the 3 behind it are held
            w.send(A.request(1, "agent.metrics") + b"".join(A.request(i, "echo", b"1") for i in (2, 3, 4)))
            self.assertEqual(w.recv_id(1).json()["queue_size"], 3)

    def test_agent_metrics_merged_bridge_wins(self):
        with started("bridgeagents:MetricsAgent") as w:
            m = w.metrics()
            self.assertEqual(m["custom"], 7)
            self.assertEqual(m["pid"], w.proc.pid)
            self.assertEqual(m["messages_received"], 1)
            w.call_json("x", True)  # metrics() raises from now on
            m = w.metrics()
            self.assertEqual(m["metrics_error"], "metrics() raised ValueError: metrics broke")
            self.assertEqual(m["pid"], w.proc.pid)


# ------------------------------------------------------------- stop / eof


class StopTest(unittest.TestCase):
    def test_sync_stop_answers_everything_before_it(self):
        marker = os.path.join(TMP, "stop-marker-sync")
        with started("bridgeagents:StopHookAgent", env={"STOP_MARKER": marker}) as w:
            w.send(b"".join(A.request(i, "echo", b"%d" % i) for i in range(1, 51)) + A.encode(A.STOP)
                   + A.request(99, "late", b"1"))
            frames = w.recv_n(51)
            self.assertEqual([f.id for f in frames[:50]], list(range(1, 51)))
            self.assertEqual(frames[50].id, 99)
            self.assertEqual(frames[50].json(), {"code": "worker_stopping",
                                                  "message": "the worker is stopping and takes no new messages"})
            self.assertEqual(w.wait_exit(), 0, w.log())
            with open(marker) as f:
                self.assertEqual(f.read(), "stopped")
            self.assertIn("stopped: 51 messages answered (1 errors)", w.log())

    def test_async_stop_finishes_in_flight_first(self):
        marker = os.path.join(TMP, "stop-marker-async")
        path = os.path.join(TMP, "stop-gate-%d" % os.getpid())
        with started("bridgeagents:AsyncStopHookAgent", concurrency=10, env={"STOP_MARKER": marker}) as w:
            ids = [w.send_request("wait", json.dumps(path)) for _ in range(5)]
            self.assertEqual(w.call("echo", b"1").payload, b"1")
            w.stop()
            late = w.send_request("echo", b"2")
            self.assertEqual(w.recv_id(late).json()["code"], "worker_stopping")
            self.assertEqual(w.ping().kind, A.PONG)  # still serving the loop
            self.assertIsNone(w.proc.poll())
            self.assertFalse(os.path.exists(marker))
            open(path, "w").close()
            try:
                for id in ids:
                    self.assertEqual(w.recv_id(id).json(), "done")
                self.assertEqual(w.wait_exit(), 0, w.log())
            finally:
                os.unlink(path)
            with open(marker) as f:
                self.assertEqual(f.read(), "stopped")

    def test_sigint_is_ignored(self):
        with started("pyagents.examples.echo:EchoAgent") as w:
            os.kill(w.proc.pid, signal.SIGINT)
            self.assertEqual(w.call("echo", b"1").payload, b"1")
            self.assertIsNone(w.proc.poll())
            os.kill(w.proc.pid, signal.SIGTERM)
            self.assertEqual(w.wait_exit(), -signal.SIGTERM)


class EofTest(unittest.TestCase):
    def test_sync_eof_exits_zero(self):
        w = started("pyagents.examples.echo:EchoAgent")
        try:
            w.sock.close()
            w.sock = None
            self.assertEqual(w.wait_exit(), 0)
        finally:
            w.close()

    def test_async_eof_with_messages_held_exits_zero(self):
        marker = os.path.join(TMP, "eof-marker")
        w = started("bridgeagents:AsyncStopHookAgent", concurrency=10, env={"STOP_MARKER": marker})
        try:
            for _ in range(5):
                w.send_request("wait", json.dumps(os.path.join(TMP, "never")))
            self.assertEqual(w.call("echo", b"1").payload, b"1")
            w.sock.shutdown(socket.SHUT_RDWR)
            self.assertEqual(w.wait_exit(), 0, w.log())
            self.assertTrue(os.path.exists(marker), "on_stop best-effort at EOF")
        finally:
            w.close()


class BadFrameTest(unittest.TestCase):
    def bad(self, data, text):
        with started("pyagents.examples.echo:EchoAgent") as w:
            w.send(data)
            self.assertEqual(w.wait_exit(), 1)
            self.assertIn(text, w.log())

    def test_frame_kind_the_master_never_sends(self):
        self.bad(A.encode(A.RESULT, 5, b"1"), "unexpected RESULT frame (kind 4, len 1, id 5) from the master")

    def test_unknown_kind(self):
        self.bad(A.HEADER.pack(0, 99, 0, 0, 6), "corrupt frame header from the master (kind 99, len 0, id 6)")

    def test_oversized_length(self):
        self.bad(A.HEADER.pack(A.MAX_PAYLOAD + 1, A.REQUEST, 0, 0, 7), "corrupt frame header")

    def test_async_worker_too(self):
        with started("pyagents.examples.gate:AsyncGateAgent", concurrency=4) as w:
            w.send(A.encode(A.READY, 0, b"{}"))
            self.assertEqual(w.wait_exit(), 1)
            self.assertIn("unexpected READY frame", w.log())

    def test_chunk_from_the_master(self):
        self.bad(A.encode(A.CHUNK, 5, b"1"), "unexpected CHUNK frame (kind 10, len 1, id 5) from the master")


# ------------------------------------------------------------- streams


def have_gevent():
    """gevent importable, and a build whose workers can switch greenlets:
    greenlet copies stack slices with memcpy, which AddressSanitizer
    reports (as tests/integration/harness.py's skip_without_greenlet_support)."""
    try:
        import gevent  # noqa: F401
    except ImportError:
        return False
    try:
        with open(os.path.join(A.build_dir(), "Makefile")) as f:
            return not any(l.startswith("AP_CFLAGS =") and "-fsanitize=address" in l for l in f)
    except OSError:
        return True


class StreamWindowMixin:
    """A streaming handler's CHUNK frames in one model: in order, one
    chunk's JSON each, sent only while the bytes in flight are below
    --stream-window-bytes (one may overshoot it), more after each CREDIT,
    then the RESULT marked streamed."""
    MODEL = None
    AGENT = None

    def test_chunks_wait_for_credit(self):
        args = ["--model", self.MODEL, "--stream-window-bytes", "100"]
        with started(self.AGENT, concurrency=4, args=args) as w:
            rid = w.send_request("tokens", json.dumps({"n": 6, "size": 48}))  # each chunk: 50 bytes of JSON
            tok = [b'"t%d%s"' % (i, b"x" * (48 - len(str(i)) - 1)) for i in range(6)]
            chunk = lambda: w.recv_id(rid, kinds=(A.CHUNK,))  # noqa: E731
            self.assertEqual([chunk().payload, chunk().payload], tok[:2])  # 100 bytes: the window is full
            if self.MODEL != "sync":  # its loop answers PING while the handler waits: nothing more came
                self.assertEqual(w.ping().kind, A.PONG)
                self.assertFalse([f for f in w.pending if f.id == rid], list(w.pending))
            w.send_frame(A.CREDIT, rid, struct.pack("<I", 50))
            self.assertEqual(chunk().payload, tok[2])  # 50 back, 50 more
            if self.MODEL != "sync":
                self.assertEqual(w.ping().kind, A.PONG)
                self.assertFalse([f for f in w.pending if f.id == rid], list(w.pending))
            w.send_frame(A.CREDIT, rid, struct.pack("<I", 100))  # what the master passed on: all of it
            self.assertEqual([chunk().payload for _ in range(2)], tok[3:5])
            w.send_frame(A.CREDIT, rid, struct.pack("<I", 1000))  # never below 0 in flight: no credit is banked
            self.assertEqual(chunk().payload, tok[5])
            f = w.recv_id(rid)
            self.assertEqual((f.kind, f.flags), (A.RESULT, 1), f)  # AP_FRAME_RESULT_STREAMED
            self.assertEqual(f.json(), None if self.MODEL == "async" else {"chunks": 6})
            # a plain handler's RESULT is not marked; a chunk larger than the window still moves
            rid = w.send_request("tokens", json.dumps({"n": 1, "size": 500}))
            self.assertEqual(len(chunk().payload), 502)
            self.assertEqual(w.recv_id(rid).flags, 1)
            f = w.call("agent.metrics", b"")
            self.assertEqual((f.kind, f.flags), (A.RESULT, 0))

    def test_chunk_not_json_or_too_large_is_an_agent_error(self):
        agent = "bridgeagents:BadChunks" + ("Async" if self.MODEL == "async" else "")
        with started(agent, concurrency=4, args=["--model", self.MODEL, "--max-result-bytes", "64"]) as w:
            assert_agent_error(self, w.call("set"), exception="TypeError")
            assert_agent_error(self, w.call("big"), "chunk too large (102 bytes, limit 64)", "ValueError")


class SyncStreamWindowTest(StreamWindowMixin, unittest.TestCase):
    MODEL = "sync"
    AGENT = "pyagents.examples.tokens:TokensAgent"


class AsyncStreamWindowTest(StreamWindowMixin, unittest.TestCase):
    MODEL = "async"
    AGENT = "pyagents.examples.tokens:AsyncTokensAgent"


@unittest.skipUnless(have_gevent(), "gevent is not installed, or greenlets cannot run under this sanitizer build")
class GeventStreamWindowTest(StreamWindowMixin, unittest.TestCase):
    MODEL = "gevent"
    AGENT = "pyagents.examples.tokens:GeventTokensAgent"


# ------------------------------------------------------- Python options


class PythonEnvTest(unittest.TestCase):
    def test_python_path_first_then_source_tree(self):
        extra = os.path.join(TMP, "extra")
        os.makedirs(extra, exist_ok=True)
        with started("bridgeagents:EnvAgent", python_path=[TMP, "relative-dir"]) as w:
            r = w.call("x").json()
            self.assertEqual(r["path"][0], TMP)
            self.assertEqual(r["path"][1], os.path.join(os.getcwd(), "relative-dir"))
            srcdir = os.environ.get("AP_SRCDIR")
            if srcdir:
                self.assertIn(os.path.realpath(srcdir), [os.path.realpath(p) for p in r["path"][2:4]])
            self.assertEqual(r["argv"], ["agentpool-worker"])
            py = os.environ.get("AP_PYTHON3")
            if py:
                self.assertEqual(r["executable"], py)

    def test_environment_ignored_unless_inherited(self):
        moddir = os.path.join(TMP, "envonly")
        os.makedirs(moddir, exist_ok=True)
        with open(os.path.join(moddir, "envonlyagent.py"), "w") as f:
            f.write("class A:\n    def handle_message(self, t, d):\n        return 'from PYTHONPATH'\n")
        env = {"PYTHONPATH": moddir}
        with worker("envonlyagent:A", env=env, python_path=[]) as w:
            f = w.recv()
            self.assertEqual(f.kind, A.START_FAILED)
            self.assertIn("No module named 'envonlyagent'", f.text())
            self.assertEqual(w.wait_exit(), A.EXIT_START_FAILED)
        with started("envonlyagent:A", env=env, python_path=[], args=["--inherit-python-env"]) as w:
            self.assertEqual(w.call("x").json(), "from PYTHONPATH")

    def test_virtualenv(self):
        py = os.environ.get("AP_PYTHON3") or "/usr/bin/python3"
        venv = os.path.join(TMP, "venv")
        p = subprocess.run([py, "-m", "venv", "--without-pip", venv], capture_output=True, timeout=120)
        if p.returncode != 0:
            self.skipTest("cannot make a venv with %s: %s" % (py, p.stderr.decode(errors="replace")[-300:]))
        site = subprocess.run([os.path.join(venv, "bin", "python3"), "-c",
                               "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, timeout=60).stdout.strip()
        self.assertTrue(site.startswith(venv), site)
        with open(os.path.join(site, "venvagent.py"), "w") as f:
            f.write(textwrap.dedent("""
                import sys
                class VenvAgent:
                    def handle_message(self, type, data):
                        return {"prefix": sys.prefix, "base_prefix": sys.base_prefix,
                                "executable": sys.executable, "site": [p for p in sys.path if "site-packages" in p]}
            """))
        with started("venvagent:VenvAgent", python_path=[], args=["--virtualenv", venv]) as w:
            r = w.call("x").json()
            self.assertEqual(os.path.realpath(r["prefix"]), os.path.realpath(venv))
            self.assertNotEqual(r["prefix"], r["base_prefix"])
            self.assertEqual(r["executable"], os.path.join(venv, "bin", "python3"))
            self.assertIn(site, r["site"])
        # without --virtualenv the module is not found
        with worker("venvagent:VenvAgent", python_path=[]) as w:
            self.assertEqual(w.recv().kind, A.START_FAILED)
            self.assertEqual(w.wait_exit(), A.EXIT_START_FAILED)

    def test_virtualenv_missing(self):
        with worker("pyagents.examples.echo:EchoAgent", args=["--virtualenv", os.path.join(TMP, "nope")]) as w:
            f = w.recv()
            self.assertEqual(f.kind, A.START_FAILED)
            self.assertIn("no pyvenv.cfg there", f.text())
            self.assertEqual(w.wait_exit(), A.EXIT_START_FAILED)

    def test_virtualenv_of_another_python_version(self):
        # A venv made by another Python: one line naming both versions,
        # not a ModuleNotFoundError for whatever the agent imports first.
        venv = os.path.join(TMP, "venv-other")
        os.makedirs(os.path.join(venv, "bin"), exist_ok=True)
        os.symlink(sys.executable, os.path.join(venv, "bin", "python3"))
        ours = "%d.%d" % sys.version_info[:2]
        other = "3.%d" % (sys.version_info[1] + 1)
        with open(os.path.join(venv, "pyvenv.cfg"), "w") as f:
            f.write("home = /usr/bin\ninclude-system-site-packages = false\nversion = %s.4\n" % other)
        with worker("pyagents.examples.echo:EchoAgent", args=["--virtualenv", venv]) as w:
            f = w.recv()
            self.assertEqual(f.kind, A.START_FAILED)
            self.assertEqual(f.text(), "--virtualenv %s was made with Python %s but agentpool-worker embeds "
                             "Python %s: recreate it with python%s -m venv" % (venv, other, ours, ours))
            self.assertEqual(w.wait_exit(), A.EXIT_START_FAILED)
        # The same venv marked with our version starts.
        with open(os.path.join(venv, "pyvenv.cfg"), "w") as f:
            f.write("home = /usr/bin\ninclude-system-site-packages = false\nversion = %s.4\n" % ours)
        with worker("pyagents.examples.echo:EchoAgent", args=["--virtualenv", venv]) as w:
            w.wait_ready()


# ------------------------------------------------------------------ leaks


LEAK_DATA = json.dumps({"a": [1, 2.5, "h\u00e9llo", True, None, {"b": "x" * 40}], "n": 12345678901234567890123,
                        "s": "\U0001F600\\\"", "k%d": [-1.5e-7, 0]}).encode()


def pump(w, type, data, total, batch=1000):
    """Sends `total` requests pipelined in batches; checks every answer is a RESULT."""
    sent = 0
    frame_body = None
    while sent < total:
        n = min(batch, total - sent)
        w.send(b"".join(A.request(sent + i + 1, type, data) for i in range(n)))
        frames = w.recv_n(n)
        bad = [f for f in frames if f.kind != A.RESULT]
        if bad:
            raise AssertionError("not a RESULT: %r" % bad[0])
        if frame_body is None:
            frame_body = frames[0].payload
        sent += n
    return frame_body


class LeakTest(unittest.TestCase):
    """Memory must not grow with the number of messages.

    After a warm-up (caches and buffers at their working size), N more
    messages may move sys.getallocatedblocks() and the RSS only by a
    small constant: one leaked Python object per message would add N
    blocks, and one leaked 16-byte C allocation per message 1.6 MB or more
    of RSS (the limit is 1.5 MiB; the noise seen is ~100 KiB)."""

    def check(self, agent, n, warm, concurrency=None, type="echo", data=LEAK_DATA):
        with started(agent, concurrency=concurrency) as w:
            pump(w, type, data, warm)
            before = w.metrics()
            pump(w, type, data, n)
            after = w.metrics()
            blocks = after["allocated_blocks"] - before["allocated_blocks"]
            rss = after["rss_bytes"] - before["rss_bytes"]
            sys.stderr.write("[%s: %d messages: allocated blocks %+d, rss %+d bytes] " % (agent, n, blocks, rss))
            self.assertLess(blocks, n // 100, "allocated blocks grew by %d over %d messages" % (blocks, n))
            self.assertLess(rss, 3 << 19, "RSS grew by %d bytes over %d messages" % (rss, n))
            self.assertEqual(after["messages_received"] - before["messages_received"], n + 1)
            return blocks, rss

    def test_sync_echo_200k(self):
        self.check("pyagents.examples.echo:EchoAgent", 200000, 30000)

    def test_async_echo_100k(self):
        self.check("bridgeagents:async_function", 100000, 20000, concurrency=1000)

    def test_sync_errors_20k(self):
        with started("pyagents.examples.raising:RaiseAgent") as w:
            def burst(n):
                w.send(b"".join(A.request(i + 1, "x", b'{"message":"m"}') for i in range(n)))
                frames = w.recv_n(n)
                self.assertTrue(all(f.kind == A.ERROR for f in frames))
            for _ in range(5):
                burst(1000)
            before = w.metrics()
            for _ in range(20):
                burst(1000)
            after = w.metrics()
            self.assertLess(after["allocated_blocks"] - before["allocated_blocks"], 1000)


class UsageTest(unittest.TestCase):
    """A message's handler CPU time rides in its answer's aux (16-bit
    float of microseconds + 1, 0: not measured); what ctx.usage reported,
    summed per name, comes as one USAGE frame (a JSON object) just before
    the answer, and only then."""

    def answer(self, w, data, with_usage):
        mid = w.send_request("x", json.dumps(data))
        frames = w.recv_n(2 if with_usage else 1)
        kinds = [(f.kind, f.id) for f in frames]
        self.assertEqual(kinds, ([(A.USAGE, mid)] if with_usage else []) + [(frames[-1].kind, mid)])
        return frames[-1], (frames[0].json() if with_usage else None)

    def test_sync_and_async_send_cpu_and_the_report(self):
        for agent, kw in (("bridgeagents:Reports", {}), ("bridgeagents:ReportsAsync", {"concurrency": 4})):
            with started(agent, keep_usage=True, **kw) as w:
                answer, _ = self.answer(w, None, False)
                self.assertEqual(answer.kind, A.RESULT)
                self.assertTrue(0 < answer.aux < 0xFFFF, answer)
                answer, report = self.answer(w, {"tokens_in": 5, "cost": 0.5, "hits": 2}, True)
                self.assertEqual(report, {"tokens_in": 5, "cost": 0.5, "hits": 2})
                self.assertNotEqual(answer.aux, 0)

    @unittest.skipUnless(have_gevent(), "gevent is not installed, or greenlets cannot run under this sanitizer build")
    def test_gevent_reports_without_cpu(self):
        with started("bridgeagents:Reports", keep_usage=True, concurrency=4, args=["--model", "gevent"]) as w:
            answer, report = self.answer(w, {"tokens_out": 3}, True)
            self.assertEqual((answer.kind, answer.aux, report), (A.RESULT, 0, {"tokens_out": 3}))
            answer, _ = self.answer(w, None, False)
            self.assertEqual(answer.aux, 0)

    def test_a_refused_report_records_nothing(self):
        with started("bridgeagents:Reports", keep_usage=True) as w:
            answer, _ = self.answer(w, {"tokens_in": 1, "cost": -2}, False)  # raised before adding tokens_in
            self.assertEqual((answer.kind, answer.json()["exception"]), (A.ERROR, "ValueError"))
            self.assertNotEqual(answer.aux, 0)  # the handler's CPU, on an error too

if __name__ == "__main__":
    unittest.main(verbosity=2)
