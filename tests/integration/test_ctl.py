# SPDX-License-Identifier: BSD-2-Clause
"""agentpoolctl against a fake agentpoold.

The real server is developed separately, so these tests run the real
agentpoolctl binary ($AP_BUILDDIR/agentpoolctl) against a small fake
written here: a thread serving a temporary Unix socket that answers each
request line with canned responses (echoing the id).  Its modes cover the
behaviours a client must survive: answering in order, answering each batch
in reverse order, answering after a delay, never answering, and closing
without answering.  DlqFakeServer adds a dead-letter store for `dlq
replay`, to check what the real server cannot be made to do on demand
(hold answers to count the client's window, reorder them, drop the
connection midway); test_ctl_real.py runs the commands against the real
agentpoold.  Every test checks exit status and output exactly; no test
asserts how long anything took.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import full_backlog_socket

BUILDDIR = os.environ.get("AP_BUILDDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CTL = os.path.join(BUILDDIR, "agentpoolctl")
RUN_TIMEOUT = 120  # seconds; generous, only there so a hang fails instead of blocking make check

# the exit statuses agentpoolctl documents (ctl/ctl.h, --help, docs/operations.md)
EXIT_OK, EXIT_ANSWER_ERROR, EXIT_USAGE, EXIT_CONNECT, EXIT_EXCHANGE = 0, 1, 2, 3, 4

STATS = {
    # deliberately not in the order the client prints, missing fields the
    # real server sends, plus fields the client has never heard of
    "uptime": 3723000,
    "futureField": "hello",
    "futureObject": {"alpha": 1, "betaCount": 2},
    "futureTable": [{"name": "a", "n": 1}, {"name": "b", "n": 2}],
    "total": 4,
    "available": 3,
    "busy": 1,
    "healthy": 4,
    "totalMessagesProcessed": 1234,
    "averageWorkerAge": 1234567,
    "oldestWorker": 2345678,
    "slots": 4,
    "inFlight": 1,
    "queue": {"depth": 2, "capacity": 1024, "highWatermark": 7, "rejected": 0},
    "connections": 3,
    "errors": {"agent_error": 2, "timeout": 1, "bad_request": 0},
    "state": "ready",
    "throughput": {"1s": 12.5, "10s": 10, "60s": 2.25},
    "latency": {"p50": 1.5, "p90": 2.25, "p99": 15, "max": 1200, "samples": 40},
    "restarts": {"crashed": 1, "recycled": 0, "inWindow": 1, "backoff": False},
    "memory": {"allocated": 1048576, "resident": 3145728},
    "types": {"echo": {"ok": 7, "errors": {"agent_error": 2}}, "other": {"ok": 0, "errors": {}}},
    "alerts": [{"name": "queue_high", "level": "warning", "value": 85, "threshold": 80}],
}
WORKERS = [
    # keys shuffled, one scalar and one object the client has never heard
    # of, members missing
    {"age": 1234567, "state": "BUSY", "extraField": "x", "id": 0, "pid": 4242,
     "messagesProcessed": 10, "inFlight": 1, "slots": 1, "healthy": True,
     "health": {"ok": True, "queue": 3}},
    {"slots": 1, "id": 1, "pid": 4243, "state": "READY", "healthy": False,
     "messagesProcessed": 2000, "inFlight": 0, "age": 500},
]
WORKER_COLUMNS = ["id", "pid", "state", "healthy", "in-flight", "messages", "errors", "RSS",
                  "generation", "age", "last message", "missed beats", "async", "recycling",
                  "extra field"]


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


class FakeServer:
    """A Unix socket speaking agentpoold's line protocol, badly on purpose.

    mode: "normal" answers each request as it is read; "reverse" answers
    each batch read in one recv() in reverse order; "delay" waits `delay`
    seconds before answering each batch; "silent" reads but never answers;
    "close" closes the connection on the first request line; "fail_all"
    answers every request with ok:false.
    """

    def __init__(self, mode="normal", delay=0.0, gate_after=None):
        self.mode = mode
        # once gate_after requests have arrived, answers wait for self.gate
        self.gate_after = gate_after
        self.gate = threading.Event()
        self.gated = threading.Event()
        self.delay = delay
        self.dir = tempfile.mkdtemp(prefix="apctl-", dir="/tmp")
        self.path = os.path.join(self.dir, "agentpool.sock")
        self.requests = []  # raw request lines, bytes, in arrival order
        self.connections = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.gate.set()
        self.thread.join(10)
        self.listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _accept_loop(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def answer(self, line):
        try:
            req = json.loads(line)
        except ValueError:
            return {"id": None, "ok": False,
                    "error": {"code": "bad_request", "message": "not JSON"}}
        rid, rtype, data = req.get("id"), req.get("type"), req.get("data")
        if self.mode == "fail_all" or rtype == "fail":
            return {"id": rid, "ok": False,
                    "error": {"code": "agent_error", "message": "boom", "exception": "ValueError"}}
        if rtype == "pool.ping":
            result = {"pong": True}
        elif rtype == "pool.stats":
            result = dict(STATS)
            if isinstance(data, dict) and data.get("detailed"):
                result["workers"] = WORKERS
        elif rtype == "big":
            result = "x" * int(data)
        elif rtype in ("huge_ok_first", "huge_fail_first"):
            # agentpoold's member order: id, ok, then the rest
            return {"id": rid, "ok": rtype == "huge_ok_first", "result": "x" * int(data)}
        elif rtype == "tricky":
            # a nested "ok": false and one inside a string; top-level ok last
            return {"id": rid, "result": {"ok": False, "s": '"ok":false'}, "ok": True}
        elif rtype == "tricky_fail":
            return {"id": rid, "error": {"ok": True, "code": "agent_error", "message": "x"},
                    "ok": False}
        else:
            result = {"type": rtype, "data": data}
        # "ok" last, so the client must find it after arbitrarily long results
        return {"id": rid, "result": result, "ok": True}

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                lines = buf.split(b"\n")
                buf = lines.pop()
                if not lines:
                    continue
                with self.lock:
                    self.requests.extend(lines)
                if self.mode == "close":
                    return
                if self.mode == "silent":
                    self.stop.wait()
                    return
                replies = [dumps(self.answer(line)).encode() + b"\n" for line in lines]
                if self.mode == "reverse":
                    replies.reverse()
                if self.mode == "delay":
                    time.sleep(self.delay)
                if self.gate_after is not None and len(self.requests) >= self.gate_after:
                    self.gated.set()
                    self.gate.wait()
                conn.sendall(b"".join(replies))
        except OSError:
            pass
        finally:
            conn.close()


def run(args, input=None, env_extra=None, env_drop_socket=True):
    env = dict(os.environ)
    if env_drop_socket:
        env.pop("AGENTPOOL_SOCKET", None)
    if env_extra:
        env.update(env_extra)
    return subprocess.run([CTL] + args, input=input, capture_output=True,
                          timeout=RUN_TIMEOUT, env=env)


def run_measured(args, input, srv):
    """Like run(), with stdin fed and stdout read by threads, and the
    client's peak RSS (VmHWM, KiB) read from /proc while srv holds back its
    last answers: by then the client has read all of its input and
    received everything else, so the peak covers nearly the whole run."""
    p = subprocess.Popen([CTL] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = [], []

    def feed():
        try:
            p.stdin.write(input)
        finally:
            p.stdin.close()

    def drain(stream, sink):
        with stream:
            sink.append(stream.read())

    threads = [threading.Thread(target=feed),
               threading.Thread(target=drain, args=(p.stdout, out)),
               threading.Thread(target=drain, args=(p.stderr, err))]
    for t in threads:
        t.start()
    try:
        if not srv.gated.wait(RUN_TIMEOUT):
            raise AssertionError("the fake server never saw every request")
        with open("/proc/%d/status" % p.pid) as f:
            hwm = [line for line in f if line.startswith("VmHWM:")][0]
        srv.gate.set()
        p.wait(RUN_TIMEOUT)
    finally:
        srv.gate.set()
        if p.poll() is None:
            p.kill()
        for t in threads:
            t.join(RUN_TIMEOUT)
    return p.returncode, out[0], err[0], int(hwm.split()[1])


class CtlTestCase(unittest.TestCase):
    mode = "normal"

    def setUp(self):
        self.assertTrue(os.access(CTL, os.X_OK), "%s not built" % CTL)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.close()

    def server(self, mode="normal", delay=0.0, gate_after=None):
        s = FakeServer(mode, delay, gate_after)
        self.servers.append(s)
        return s

    def ctl(self, srv, *args, **kw):
        return run(["-s", srv.path] + list(args), **kw)


class TestSendOne(CtlTestCase):
    def test_send_ok_prints_the_response_line_and_exits_0(self):
        srv = self.server()
        r = self.ctl(srv, "send", "echo", '{"a": [1, 2]}')
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout, b'{"id":1,"result":{"type":"echo","data":{"a":[1,2]}},"ok":true}\n')
        self.assertEqual(srv.requests, [b'{"id":1,"type":"echo","data":{"a":[1,2]}}'])
        self.assertEqual(r.stderr, b"")

    def test_send_escapes_type_and_keeps_data_bytes_on_one_line(self):
        srv = self.server()
        weird = 'we"ird\\type\u00e9'
        data = '{\n  "big": 12345678901234567890,\n  "s": "a b\\n",\n  "f": 1.50\n}'
        r = self.ctl(srv, "send", weird, data)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(len(srv.requests), 1)
        line = srv.requests[0]
        self.assertEqual(json.loads(line)["type"], weird)
        # the user's tokens survive byte for byte, whitespace between them goes
        self.assertIn(b'"data":{"big":12345678901234567890,"s":"a b\\n","f":1.50}}', line)

    def test_send_without_data_sends_null(self):
        srv = self.server()
        r = self.ctl(srv, "send", "echo")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.requests, [b'{"id":1,"type":"echo","data":null}'])

    def test_send_data_that_looks_like_an_option_is_data(self):
        srv = self.server()
        r = self.ctl(srv, "send", "echo", "-1")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.requests, [b'{"id":1,"type":"echo","data":-1}'])

    def test_send_error_response_exits_1_and_still_prints_it(self):
        srv = self.server()
        r = self.ctl(srv, "send", "fail", "{}")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        resp = json.loads(r.stdout)
        self.assertEqual(resp["ok"], False)
        self.assertEqual(resp["error"]["code"], "agent_error")

    def test_only_the_top_level_ok_decides_the_exit_status(self):
        srv = self.server()
        r = self.ctl(srv, "send", "tricky")
        self.assertEqual(r.returncode, EXIT_OK, r.stdout + r.stderr)
        r = self.ctl(srv, "send", "tricky_fail")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stdout + r.stderr)

    def test_long_response_line_passes_through_intact(self):
        srv = self.server()
        # far more than the client's 64 KiB read buffer, with "ok" at the end
        r = self.ctl(srv, "send", "big", "700000")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertTrue(r.stdout.endswith(b"\n"))
        self.assertEqual(r.stdout.count(b"\n"), 1)
        self.assertEqual(json.loads(r.stdout)["result"], "x" * 700000)

    def test_answer_longer_than_the_line_bound_is_judged_by_its_start(self):
        srv = self.server()
        # past EXCHANGE_LINE_MAX (16 MiB): streamed through, judged by its
        # first 16 MiB, where agentpoold writes "ok"
        n = 17 * 1024 * 1024
        for rtype, status in (("huge_ok_first", EXIT_OK), ("huge_fail_first", EXIT_ANSWER_ERROR)):
            r = self.ctl(srv, "send", rtype, str(n))
            self.assertEqual(r.returncode, status, r.stderr)
            self.assertEqual(r.stdout.count(b"\n"), 1)
            self.assertTrue(r.stdout.endswith(b'x"}\n'))
            self.assertEqual(len(json.loads(r.stdout)["result"]), n)
        # "ok" after a result that passes the bound cannot be seen: not ok
        r = self.ctl(srv, "send", "big", str(n))
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        self.assertEqual(len(json.loads(r.stdout)["result"]), n)

    def test_missing_socket_exits_3_naming_the_path(self):
        d = tempfile.mkdtemp(prefix="apctl-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "nobody.sock")
        for args in (["send", "echo"], ["stats"], ["ping"]):
            r = run(["-s", path] + args)
            self.assertEqual(r.returncode, EXIT_CONNECT, args)
            msg = r.stderr.decode()
            self.assertIn("agentpoolctl: cannot connect to %s: " % path, msg)
            self.assertIn("is agentpoold running? no socket at %s" % path, msg)
            self.assertEqual(r.stdout, b"")

    def test_socket_path_comes_from_AGENTPOOL_SOCKET(self):
        srv = self.server()
        r = run(["send", "echo", "1"], env_extra={"AGENTPOOL_SOCKET": srv.path})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.requests, [b'{"id":1,"type":"echo","data":1}'])

    def test_socket_option_overrides_AGENTPOOL_SOCKET(self):
        srv = self.server()
        r = run(["-s", srv.path, "send", "echo"], env_extra={"AGENTPOOL_SOCKET": "/nonexistent.sock"})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)

    def test_closed_without_answer_exits_4(self):
        srv = self.server("close")
        r = self.ctl(srv, "send", "echo", "{}")
        self.assertEqual(r.returncode, EXIT_EXCHANGE)
        self.assertIn(b"agentpoold closed the connection (1 of 1 answer missing)", r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_silent_server_times_out_with_exit_4(self):
        srv = self.server("silent")
        r = self.ctl(srv, "--timeout", "200", "send", "echo", "{}")
        self.assertEqual(r.returncode, EXIT_EXCHANGE)
        self.assertIn(b"timed out: agentpoold sent nothing for 200 ms (1 of 1 answer missing)",
                      r.stderr)

    def test_full_listen_backlog_times_out_with_exit_3(self):
        path = full_backlog_socket(self)
        r = run(["-s", path, "--timeout", "200", "ping"])
        self.assertEqual(r.returncode, EXIT_CONNECT)
        self.assertIn(("cannot connect to %s: agentpoold accepted nothing for 200 ms" % path).encode(),
                      r.stderr)

    def test_slow_answer_is_waited_for(self):
        srv = self.server("delay", delay=0.5)
        r = self.ctl(srv, "send", "echo", "{}")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout)["id"], 1)


class TestUsage(CtlTestCase):
    def assert_usage_error(self, args, text):
        r = run(args)
        self.assertEqual(r.returncode, EXIT_USAGE, (args, r.stderr))
        self.assertIn(text.encode(), r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_invalid_data_json_is_a_usage_error_that_sends_nothing(self):
        srv = self.server()
        r = self.ctl(srv, "send", "echo", '{"a": 1,}')
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn(b"invalid DATA JSON at byte ", r.stderr)
        self.assertIn(b"after '{\"a\": 1,", r.stderr)
        self.assertEqual(srv.connections, 0)

    def test_raw_control_character_in_data_string_is_a_usage_error(self):
        srv = self.server()
        r = self.ctl(srv, "send", "echo", '"a\tb"')
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn(b"raw control character 0x09", r.stderr)

    def test_empty_data_is_a_usage_error(self):
        self.assert_usage_error(["send", "echo", " "], "invalid DATA JSON: it is empty")

    def test_usage_errors_exit_2_with_a_reason(self):
        self.assert_usage_error([], "no command given")
        self.assert_usage_error(["frobnicate"], "unknown command 'frobnicate'")
        self.assert_usage_error(["--bogus", "ping"], "unknown option '--bogus'")
        self.assert_usage_error(["ping", "-x"], "unknown option '-x'")
        self.assert_usage_error(["--timeout", "soon", "ping"], "--timeout wants milliseconds")
        self.assert_usage_error(["--timeout", "-5", "ping"], "--timeout wants milliseconds")
        self.assert_usage_error(["ping", "--socket"], "option '--socket' needs a value")
        self.assert_usage_error(["ping", "extra"], "ping: too many arguments")
        self.assert_usage_error(["send", "a", "1", "2"], "send: too many arguments")
        self.assert_usage_error(["ping", "--json"], "ping does not take --json")
        self.assert_usage_error(["send", "--detailed"], "send does not take --detailed")
        self.assert_usage_error(["health", "--detailed"], "health does not take --detailed")
        self.assert_usage_error(["history", "x"], "history: too many arguments")
        self.assert_usage_error(["dlq"], "dlq: missing arguments")
        self.assert_usage_error(["dlq", "frob"], "unknown dlq command 'frob' (list, replay or purge)")
        self.assert_usage_error(["dlq", "list", "--yes"], "dlq list does not take --yes")
        self.assert_usage_error(["--id", "3", "dlq", "list"], "dlq list does not take --id")
        self.assert_usage_error(["dlq", "replay", "--limit", "3"], "dlq replay does not take --limit")
        self.assert_usage_error(["dlq", "list", "--limit", "x"], "--limit wants a whole number, not 'x'")
        self.assert_usage_error(["dlq", "list", "--offset", "-1"], "--offset wants a whole number")
        self.assert_usage_error(["dlq", "replay", "--id", "1e3"], "--id wants a whole number")
        self.assert_usage_error(["dlq", "purge", "now"], "dlq purge: too many arguments")
        self.assert_usage_error(["scale"], "scale: missing arguments (usage: agentpoolctl scale N")
        self.assert_usage_error(["scale", "x"], "scale wants a number of workers (0 to 2147483647), not 'x'")
        self.assert_usage_error(["scale", "3", "4"], "scale: too many arguments")
        self.assert_usage_error(["scale", "99999999999"], "scale wants a number of workers")
        self.assert_usage_error(["reload", "now"], "reload: too many arguments")
        self.assert_usage_error(["reload", "--detailed"], "reload does not take --detailed")
        self.assert_usage_error(["top", "--json"], "top does not take --json")
        self.assert_usage_error(["stats", "--once"], "stats does not take --once")
        self.assert_usage_error(["top", "--interval", "5"], "--interval wants milliseconds (100 to 3600000), not '5'")
        self.assert_usage_error(["top", "--interval", "1s"], "--interval wants milliseconds")
        self.assert_usage_error(["ping", "--interval", "500"], "ping does not take --interval")
        self.assert_usage_error(["frobnicate"], "(send, stats, top, ping, health, history, reload, scale, dlq, session, events or usage)")

    def test_usage_errors_never_connect(self):
        srv = self.server()
        for args in (["scale", "x"], ["top", "--json"], ["reload", "now"], ["frob"], ["stats", "--id", "1"]):
            r = self.ctl(srv, *args)
            self.assertEqual(r.returncode, EXIT_USAGE, (args, r.stderr))
        self.assertEqual(srv.connections, 0)

    def test_dlq_purge_without_yes_exits_2_without_connecting(self):
        srv = self.server()
        r = self.ctl(srv, "dlq", "purge")
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertIn(b"dlq purge deletes every dead letter for good: add --yes to confirm", r.stderr)
        self.assertEqual(srv.connections, 0)
        r = self.ctl(srv, "dlq", "--yes", "purge")  # options may come before the sub-command
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.requests, [b'{"id":1,"type":"pool.dlq.purge","data":null}'])

    def test_help_documents_commands_and_exit_codes(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, EXIT_OK)
        text = r.stdout.decode()
        for needle in ("send TYPE [DATA]", "stats [--json] [--detailed]", "ping",
                       "--socket PATH", "--timeout MS", "$AGENTPOOL_SOCKET", "/tmp/agentpool.sock",
                       "health [--json]", "history [--json]",
                       "dlq list [--json] [--offset N] [--limit N]", "dlq replay [--id DLQID]",
                       "dlq purge --yes", "dead-lettered again", "replayed N: M ok (removed), K failed (kept)",
                       "top [--once] [--interval MS]", "reload [--json]", "scale N [--json]",
                       "--once", "--interval MS", "q or Ctrl-C quits",
                       "Exit status (the same for every command):", "\n   0  success",
                       "\n   1  agentpoold answered with an error", "\n   2  usage error",
                       "\n   3  cannot connect", "\n   4  connected, but no complete exchange",
                       "--pool NAME", "stats [--json] [--detailed] [--pool NAME]", "health [--json] [--pool NAME]",
                       "reload [--json] [--pool NAME]", "top [--once] [--interval MS] [--pool NAME]",
                       "a named pool failed while the others reloaded"):
            self.assertIn(needle, text)
        self.assertNotIn("\n  64  ", text)
        self.assertEqual(run(["stats", "-h"]).stdout, r.stdout)

    def test_version_names_the_program(self):
        r = run(["--version"])
        self.assertEqual(r.returncode, EXIT_OK)
        self.assertTrue(r.stdout.startswith(b"agentpoolctl (agentpool) "), r.stdout)


def requests_ndjson(n, fail_at=None, payload=0):
    lines = []
    for i in range(n):
        rtype = "fail" if i == fail_at else "echo"
        lines.append(dumps({"id": i, "type": rtype, "data": {"i": i, "p": "y" * payload}}))
        if i % 1000 == 0:
            lines.append("")      # blank lines are skipped, not sent
            lines.append("   \t")
    return ("\n".join(lines) + "\n").encode()


class TestSendStdin(CtlTestCase):
    def test_stdin_mode_pipelines_5000_lines_answered_out_of_order(self):
        srv = self.server("reverse")
        # ~1 KiB each way per line: several MB, far beyond the socket buffers,
        # so a client that wrote everything before reading would deadlock
        r = self.ctl(srv, "send", input=requests_ndjson(5000, payload=1000))
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        out = r.stdout.split(b"\n")
        self.assertEqual(out.pop(), b"")
        self.assertEqual(len(out), 5000)
        ids = [json.loads(line)["id"] for line in out]
        self.assertEqual(sorted(ids), list(range(5000)))
        self.assertNotEqual(ids, list(range(5000)), "the server did not reorder: test is void")
        self.assertEqual(len(srv.requests), 5000, "blank lines must not be sent")
        self.assertEqual(srv.connections, 1)

    def test_stdin_mode_with_one_error_answer_exits_1(self):
        srv = self.server("reverse")
        r = self.ctl(srv, "send", input=requests_ndjson(5000, fail_at=2345))
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        out = r.stdout.splitlines()
        self.assertEqual(len(out), 5000)
        failed = [json.loads(line) for line in out if b'"ok":false' in line]
        self.assertEqual([f["id"] for f in failed], [2345])

    def test_stdin_mode_sends_a_last_line_without_newline(self):
        srv = self.server()
        r = self.ctl(srv, "send", input=b'{"id":"a","type":"echo"}\n\n{"id":"b","type":"echo"}')
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.requests, [b'{"id":"a","type":"echo"}', b'{"id":"b","type":"echo"}'])
        self.assertEqual(len(r.stdout.splitlines()), 2)

    def test_stdin_mode_with_only_blank_lines_sends_nothing_and_exits_0(self):
        srv = self.server()
        r = self.ctl(srv, "send", input=b"\n  \n\t\n")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout, b"")
        self.assertEqual(srv.requests, [])

    def test_stdin_mode_reports_missing_answers_when_the_connection_closes(self):
        srv = self.server("close")
        r = self.ctl(srv, "send", input=requests_ndjson(3))
        self.assertEqual(r.returncode, EXIT_EXCHANGE)
        self.assertRegex(r.stderr.decode(), r"agentpoold closed the connection \(3 of 3 answers missing\)")

    def test_stdin_mode_times_out_when_answers_stop_coming(self):
        srv = self.server("silent")
        r = self.ctl(srv, "--timeout", "200", "send", input=requests_ndjson(10))
        self.assertEqual(r.returncode, EXIT_EXCHANGE)
        self.assertIn(b"timed out", r.stderr)
        self.assertIn(b"(10 of 10 answers missing)", r.stderr)

    def test_stdin_mode_memory_stays_bounded(self):
        srv = self.server("reverse", gate_after=2000)
        # 32 MiB of requests and as much back again
        data = requests_ndjson(2000, payload=16 * 1024)
        rc, out, err, maxrss_kib = run_measured(["-s", srv.path, "send"], data, srv)
        self.assertEqual(rc, EXIT_OK, err)
        self.assertEqual(out.count(b"\n"), 2000)
        # the client holds fixed buffers (<1 MiB); 24 MiB leaves room for
        # the C library and sanitizer runtimes, and is far below 64 MiB of traffic.
        # Under ASan add its quarantine (quarantine_size_mb, Makefile.am): freed
        # blocks wait there, and the client frees a cJSON tree per answer.
        quarantine = re.search(r"quarantine_size_mb=(\d+)", os.environ.get("ASAN_OPTIONS", ""))
        limit_mib = 24 + (int(quarantine.group(1)) if quarantine else 0)
        self.assertLess(maxrss_kib, limit_mib * 1024, "peak RSS %d KiB" % maxrss_kib)
        if os.environ.get("AP_CTL_VERBOSE"):
            print("agentpoolctl peak RSS: %d KiB" % maxrss_kib, file=sys.stderr)


class TestStatsAndPing(CtlTestCase):
    def table_rows(self, text):
        """The first table: lines up to the first blank one."""
        return text.split("\n\n")[0].rstrip("\n").split("\n")

    def assert_column_starts(self, rows, starts):
        for row in rows:
            for s in starts[1:]:
                self.assertEqual(row[s - 2:s], "  ", "column not aligned at %d in %r" % (s, row))
                self.assertNotEqual(row[s:s + 1], " ", "column not aligned at %d in %r" % (s, row))

    def sheet(self, text):
        """The summary sheet (up to the first blank line) as {label: value},
        continuation lines joined to their label's value with a space."""
        rows = self.table_rows(text)
        start = re.match(r"\S+(?: \S+)*\s{2,}", rows[0]).end()
        out, order, last = {}, [], None
        for r in rows:
            label, value = r[:start].strip(), r[start:]
            self.assertEqual(r[start - 2:start], "  ", "value not in the value column: %r" % r)
            self.assertNotEqual(value[:1], " ", "value not in the value column: %r" % r)
            if label:
                out[label] = value
                order.append(label)
                last = label
            else:
                out[last] += " " + value
        return out, order

    def test_stats_prints_a_sheet_of_every_field_and_asks_for_worker_states(self):
        srv = self.server()
        r = self.ctl(srv, "stats")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        # detailed, for the count of workers by state
        self.assertEqual(srv.requests, [b'{"id":1,"type":"pool.stats","data":{"detailed":true}}'])
        text = r.stdout.decode()
        sheet, order = self.sheet(text)
        self.assertEqual(sheet, {
            "pool": "ready, up 1h02m03s",
            "workers": "4 total: 1 BUSY, 1 READY",
            "serving": "available 3, busy 1, healthy 4, in flight 1 of 4 slots",
            "worker age": "average 20m34s, oldest 39m05s",
            "restarts": "crashed 1, recycled 0, in window 1, backoff no",
            "queue": "2 of 1024, high watermark 7, rejected 0",
            "connections": "3 open",
            "throughput": "12.5/s over 1s, 10.0/s over 10s, 2.2/s over 60s",
            "latency": "p50 1.50ms, p90 2.25ms, p99 15.0ms, max 1.20s, 40 samples in the last minute",
            "messages": "processed 1234",
            "errors": "agent_error 2, timeout 1, every other code 0",
            "master memory": "allocated 1.00 MiB, resident 3.00 MiB",
            "alerts": "queue_high (warning), value 85, threshold 80",
            "future field": "hello",
            "future object": "alpha 1, beta count 2",
        })
        self.assertEqual(order[:3], ["pool", "workers", "serving"])
        self.assertEqual(order[-2:], ["future field", "future object"])
        self.assertIn("\n\nanswers by type:\ntype   ok  errors\necho   7   agent_error 2\nother  0   0\n", text)
        self.assertIn("\n\nfuture table:\nname  n\na     1\nb     2\n", text)
        self.assertNotIn("\nworkers:\n", text, "worker rows only with --detailed")

    def test_stats_lines_wrap_at_COLUMNS_and_are_never_cut(self):
        srv = self.server()
        r = self.ctl(srv, "stats", env_extra={"COLUMNS": "60"})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        rows = self.table_rows(r.stdout.decode())
        for row in rows:
            self.assertLessEqual(len(row), 60, row)
        sheet, _ = self.sheet(r.stdout.decode())
        self.assertEqual(sheet["latency"], "p50 1.50ms, p90 2.25ms, p99 15.0ms, max 1.20s, "
                                           "40 samples in the last minute")
        self.assertIn("\nlatency        p50 1.50ms, p90 2.25ms, p99 15.0ms,\n"
                      "               max 1.20s, 40 samples in the last minute\n", r.stdout.decode())

    def test_stats_detailed_lists_workers_in_column_order(self):
        srv = self.server()
        r = self.ctl(srv, "stats", "--detailed")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.requests, [b'{"id":1,"type":"pool.stats","data":{"detailed":true}}'])
        text = r.stdout.decode()
        self.assertIn("\n\nworkers:\n", text)
        part = text.split("\n\nworkers:\n")[1]
        rows = part.split("\n\n")[0].rstrip("\n").split("\n")
        header = rows[0]
        starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
        self.assertEqual([header[s:e].strip() for s, e in zip(starts, starts[1:] + [None])],
                         WORKER_COLUMNS)
        self.assertEqual(len(rows), 1 + len(WORKERS))
        self.assert_column_starts(rows, starts)

        def cells(row):
            return [row[s:e].strip() for s, e in zip(starts, starts[1:] + [None])]
        self.assertEqual(cells(rows[1]), ["0", "4242", "BUSY", "yes", "1/1", "10", "-", "-", "-",
                                          "20m34s", "-", "-", "-", "-", "x"])
        self.assertEqual(cells(rows[2]), ["1", "4243", "READY", "no", "0/1", "2000", "-", "-", "-",
                                          "500ms", "-", "-", "-", "-", "-"])
        # structured members (the agent's health() answer) one per line
        self.assertTrue(text.endswith("\n\nworker details:\n0  health.ok     yes\n"
                                      "0  health.queue  3\n"), text)

    def test_stats_json_is_the_canned_result(self):
        srv = self.server()
        r = self.ctl(srv, "stats", "--json")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.requests, [b'{"id":1,"type":"pool.stats","data":{}}'])
        self.assertEqual(r.stdout.count(b"\n"), 1, "one line when stdout is not a terminal")
        self.assertEqual(json.loads(r.stdout), STATS)
        r = self.ctl(srv, "stats", "--json", "--detailed")
        self.assertEqual(json.loads(r.stdout), dict(STATS, workers=WORKERS))

    def test_options_may_follow_the_command(self):
        srv = self.server()
        r = run(["stats", "--json", "-s", srv.path, "--timeout", "0"])
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout), STATS)

    def test_stats_error_answer_exits_1_with_code_and_message(self):
        srv = self.server("fail_all")
        r = self.ctl(srv, "stats")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"agentpoolctl: pool.stats failed: agent_error: boom", r.stderr)

    def test_stats_on_closed_connection_exits_4(self):
        srv = self.server("close")
        r = self.ctl(srv, "stats")
        self.assertEqual(r.returncode, EXIT_EXCHANGE)
        self.assertIn(b"(1 of 1 answer missing)", r.stderr)

    def test_ping_prints_pong(self):
        srv = self.server()
        r = self.ctl(srv, "ping")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertRegex(r.stdout.decode(), r"^pong from %s in [0-9.]+ ms\n$" % srv.path)
        self.assertEqual(srv.requests, [b'{"id":1,"type":"pool.ping","data":null}'])

    def test_ping_error_answer_exits_1(self):
        srv = self.server("fail_all")
        r = self.ctl(srv, "ping")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR)
        self.assertIn(b"pool.ping failed: agent_error", r.stderr)


class DlqFakeServer(FakeServer):
    """A fake agentpoold with a dead-letter store, to test `dlq replay`
    where the real server cannot be made to misbehave: it holds replayed
    requests' answers until `hold` of them are unanswered (or the page
    the client last listed is all in), then answers them in reverse
    order, and records the most it ever held (`peak`).  drop_after:
    close the connection after answering that many replays."""

    def __init__(self, nrecords, hold=32, drop_after=None):
        self.records = [{"dlqId": n, "time": "2026-01-02T03:04:05.678Z", "id": "f-%d" % n,
                         "type": "echo", "data": {"n": n}, "attempts": 1,
                         "failures": [{"reason": "made by the test"}]}
                        for n in range(1, nrecords + 1)]
        self.hold, self.drop_after = hold, drop_after
        self.peak = 0
        self.page_len = 0        # records in the last page listed
        self.replays = []        # raw replay request lines, in arrival order
        self.answered_ok = 0
        super().__init__()

    def dlq_answer(self, req):
        rid, rtype, data = req.get("id"), req.get("type"), req.get("data") or {}
        if rtype == "pool.dlq.list":
            off, lim = data.get("offset", 0), data.get("limit", 100)
            page = self.records[off:off + lim]
            self.page_len = len(page)
            result = {"file": "/fake/dead.jsonl", "total": len(self.records), "offset": off,
                      "records": page}
        elif rtype == "pool.dlq.remove":
            ids = set(data["ids"])
            before = len(self.records)
            self.records = [r for r in self.records if r["dlqId"] not in ids]
            result = {"removed": before - len(self.records)}
        else:
            return None
        return {"id": rid, "ok": True, "result": result}

    def _serve(self, conn):
        buf, held, seen = b"", [], 0
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                lines = buf.split(b"\n")
                buf = lines.pop()
                out = []
                for line in lines:
                    req = json.loads(line)
                    ans = self.dlq_answer(req)
                    if ans is not None:
                        out.append(ans)
                        continue
                    with self.lock:
                        self.replays.append(line)
                    seen += 1
                    held.append({"id": req["id"], "ok": True, "result": req.get("data")})
                self.peak = max(self.peak, len(held))
                if held and (len(held) >= self.hold or seen == self.page_len):
                    out.extend(reversed(held))
                    held = []
                for ans in out:
                    # pool.dlq.* requests have id 1, replays "replay-<dlqId>"
                    if self.drop_after is not None and ans["id"] != 1:
                        if self.answered_ok == self.drop_after:
                            return
                        self.answered_ok += 1
                    conn.sendall(dumps(ans).encode() + b"\n")
        except OSError:
            pass
        finally:
            conn.close()


# A server of two named pools, writer and reader (pool/ops/control.c's
# answers in shape: the totals, then "pools"; {"pool": NAME} answers that
# pool alone).
POOL_STATS = {
    "writer": {"state": "ready", "agent": "app.writer:Agent", "total": 2, "poolSize": 2, "healthy": 2,
               "slots": 2, "inFlight": 1, "queue": {"depth": 0, "capacity": 100},
               "totalMessagesProcessed": 40, "errors": {"agent_error": 1, "timeout": 0},
               "latency": {"p99": 12.5}, "throughput": {"10s": 4}, "deadLetters": {"records": 0}},
    "reader": {"state": "degraded", "agent": "app.reader:Agent", "total": 1, "poolSize": 2, "healthy": 1,
               "slots": 1, "inFlight": 0, "queue": {"depth": 5, "capacity": 50},
               "totalMessagesProcessed": 7, "errors": {"agent_error": 2, "timeout": 1},
               "latency": {"p99": 1500}, "throughput": {"10s": 0.5}, "deadLetters": {"records": 3}},
}
POOL_WORKERS = [
    {"id": "writer/worker-0", "pid": 501, "state": "ready", "inFlight": 0, "slots": 1, "messagesProcessed": 20},
    {"id": "reader/worker-0", "pid": 601, "state": "ready", "inFlight": 0, "slots": 1, "messagesProcessed": 7},
    {"id": "writer/worker-1", "pid": 502, "state": "busy", "inFlight": 1, "slots": 1, "messagesProcessed": 20},
]
POOL_HEALTH = {
    "writer": {"status": "ready", "healthy": 2, "workers": 2, "backoff": False, "backoffSlots": [],
               "restartsInWindow": 0, "codeDrift": 0, "deadLettersHeld": 0},
    "reader": {"status": "degraded", "healthy": 1, "workers": 2, "backoff": True,
               "backoffSlots": [{"worker": "reader/worker-1", "nextAttemptMs": 1500, "startFailures": 2}],
               "restartsInWindow": 3, "codeDrift": 0, "deadLettersHeld": 0},
}
POOL_HISTORY = [
    {"time": 1767322800000, "pool": "reader", "worker": "reader/worker-1", "generation": 1, "pid": 602,
     "reason": "crashed", "exitStatus": 3},
    {"time": 1767322801000, "pool": "writer", "worker": "writer/worker-0", "generation": 2, "pid": 503,
     "reason": "recycled", "signal": 15},
]
READER_ERROR = ("Traceback (most recent call last):\n  File \"app/reader.py\", line 1, in <module>\n"
                "ImportError: no module named 'app.reader'\n")
POOL_RELOAD = {
    "writer": {"status": "reloaded", "replaced": 2, "agent": "app.writer:Agent"},
    "reader": {"status": "failed", "replaced": 0, "agent": "app.reader:Agent", "error": READER_ERROR},
    "extra": {"status": "added", "agent": "app.extra:Agent"},
    "old": {"status": "removed"},
}


class PoolsFakeServer(FakeServer):
    """A fake agentpoold of named pools: pool.stats, pool.health,
    pool.history, pool.reload and pool.scale answered in the shape
    agentpoold gives them, every pool's or, with {"pool": NAME}, one
    pool's; an unknown pool is a bad_request naming the pools.
    reload_fails: which pools' reloads fail (of writer and reader)."""

    def __init__(self, reload_fails=("reader",)):
        self.reload_fails = reload_fails
        super().__init__()

    def answer(self, line):
        req = json.loads(line)
        rid, rtype, data = req.get("id"), req.get("type"), req.get("data")
        data = data if isinstance(data, dict) else {}
        pool = data.get("pool")
        if pool is not None and pool not in POOL_STATS:
            return {"id": rid, "ok": False, "error": {
                "code": "bad_request", "message": 'unknown pool "%s": the pools are writer, reader' % pool}}
        if rtype == "pool.stats":
            if pool:
                result = dict(POOL_STATS[pool], pool=pool)
            else:
                result = dict(STATS, total=3, pools={n: dict(v, lifecycle="running")
                                                    for n, v in POOL_STATS.items()})
            if data.get("detailed"):
                result["workers"] = [w for w in POOL_WORKERS if not pool or w["id"].startswith(pool + "/")]
        elif rtype == "pool.health":
            if pool:
                result = dict(POOL_HEALTH[pool], pool=pool)
            else:
                result = {"status": "degraded", "healthy": 3, "workers": 4, "backoff": True,
                          "backoffSlots": POOL_HEALTH["reader"]["backoffSlots"], "restartsInWindow": 3,
                          "codeDrift": 0, "deadLettersHeld": 0, "pools": POOL_HEALTH}
        elif rtype == "pool.history":
            result = {"history": [e for e in POOL_HISTORY if not pool or e["pool"] == pool]}
        elif rtype == "pool.reload":
            pools = {n: dict(v) for n, v in POOL_RELOAD.items() if not pool or n == pool}
            for n, v in pools.items():
                if n in ("writer", "reader") and n not in self.reload_fails:
                    v.update(status="reloaded", replaced=2)
                    v.pop("error", None)
            failed = [n for n, v in pools.items() if v["status"] == "failed"]
            if failed and len(failed) == len([v for v in pools.values() if v["status"] != "removed"]):
                return {"id": rid, "ok": False, "error": {
                    "code": "agent_error", "traceback": READER_ERROR,
                    "message": "reload aborted: the new agent code failed to start; the old workers keep serving"}}
            result = {"replaced": sum(v.get("replaced", 0) for v in pools.values()), "agent": "app.writer:Agent",
                      "requiresRestart": [], "pools": pools, "failed": failed}
        elif rtype == "pool.scale":
            if not pool:
                return {"id": rid, "ok": False, "error": {
                    "code": "bad_request",
                    "message": 'pool.scale concerns one pool: name it with {"pool": NAME} (the pools are writer, reader)'}}
            result = {"pool": pool, "requested": data["workers"], "before": 2, "workers": data["workers"],
                      "clamped": False, "minWorkers": 1, "maxWorkers": 4}
        else:
            return super().answer(line)
        return {"id": rid, "ok": True, "result": result}


class TestNamedPools(CtlTestCase):
    def pools_server(self, **kw):
        s = PoolsFakeServer(**kw)
        self.servers.append(s)
        return s

    def test_pool_option_names_the_pool_in_every_command_s_request(self):
        srv = self.server()
        for args in (["stats"], ["stats", "--json"], ["health"], ["history"], ["reload"], ["scale", "3"],
                     ["top", "--once"], ["dlq", "list"], ["dlq", "purge", "--yes"]):
            # before or after the command, as every option
            self.ctl(srv, "--pool", "wr\"iter", *args)
            self.ctl(srv, *args, "--pool", "wr\"iter")
        datas = [json.loads(line)["data"] for line in srv.requests]
        self.assertEqual(len(datas), 18)
        self.assertTrue(all(d["pool"] == 'wr"iter' for d in datas), datas)
        # spliced in first, the command's own members kept
        self.assertEqual(srv.requests[0], b'{"id":1,"type":"pool.stats","data":{"pool":"wr\\"iter","detailed":true}}')
        self.assertIn(b'{"id":1,"type":"pool.stats","data":{"pool":"wr\\"iter"}}', srv.requests)
        self.assertIn(b'{"id":1,"type":"pool.scale","data":{"pool":"wr\\"iter","workers":3}}', srv.requests)
        self.assertIn(b'{"id":1,"type":"pool.health","data":{"pool":"wr\\"iter"}}', srv.requests)
        self.assertIn(b'{"id":1,"type":"pool.dlq.list","data":{"pool":"wr\\"iter","offset":0,"limit":100}}',
                      srv.requests)

    def test_send_pool_sets_the_request_s_pool_member(self):
        srv = self.server()
        r = self.ctl(srv, "send", "--pool", "writer", "echo", '{"a": 1}')
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.requests, [b'{"id":1,"type":"echo","data":{"a":1},"pool":"writer"}'])
        r = self.ctl(srv, "--pool", "writer", "send", "--stream", "echo")
        self.assertEqual(srv.requests[1], b'{"id":1,"type":"echo","data":null,"pool":"writer","stream":true}')

    def test_pool_usage_errors_send_nothing(self):
        srv = self.server()
        for args, text in ((["ping", "--pool", "a"], "ping does not take --pool"),
                           (["stats", "--pool", ""], "--pool wants a pool's name"),
                           (["stats", "--pool"], "option '--pool' needs a value"),
                           (["send", "--pool", "a"], "send --pool: TYPE missing")):
            r = self.ctl(srv, *args, input=b'{"id":1,"type":"echo"}\n')
            self.assertEqual(r.returncode, EXIT_USAGE, (args, r.stderr))
            self.assertIn(text.encode(), r.stderr)
        self.assertEqual(srv.connections, 0)

    def test_an_unknown_pool_is_agentpoold_s_error_exit_1(self):
        srv = self.pools_server()
        for args in (["stats"], ["health"], ["history"], ["reload"], ["scale", "2"]):
            r = self.ctl(srv, *args, "--pool", "nope")
            self.assertEqual((r.returncode, r.stdout), (EXIT_ANSWER_ERROR, b""), args)
            self.assertRegex(r.stderr, rb'bad_request\)?: unknown pool "nope": the pools are writer, reader\n$')

    def test_stats_of_one_unnamed_pool_prints_what_it_always_did(self):
        srv = self.server()
        before = self.ctl(srv, "stats", "--detailed")
        STATS["pools"] = {"default": dict(STATS, lifecycle="running")}
        try:
            after = self.ctl(srv, "stats", "--detailed")
        finally:
            del STATS["pools"]
        self.assertEqual(after.returncode, EXIT_OK, after.stderr)
        # (times printed as "ago" may tick between the two runs)
        strip = re.compile(rb"\d+(\.\d+)?(us|ms|s) ago")
        self.assertEqual(strip.sub(b"", after.stdout), strip.sub(b"", before.stdout))

    def test_stats_shows_a_table_of_the_pools(self):
        srv = self.pools_server()
        r = self.ctl(srv, "stats")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        text = r.stdout.decode()
        self.assertIn("\n\npools (stats --pool NAME shows one in full):\n"
                      "pool    lifecycle  state     workers  healthy  in flight  queue  processed  errors  p99     dead letters  agent\n"
                      "writer  running    ready     2        2        1/2        0/100  40         1       12.5ms  0             app.writer:Agent\n"
                      "reader  running    degraded  1        1        0/1        5/50   7          3       1.50s   3             app.reader:Agent\n"
                      "\nanswers by type:\n", text)
        self.assertNotIn("\npools  ", text, "no sheet line of its own")

    def test_stats_pool_leads_the_sheet_with_the_pool_and_its_agent(self):
        srv = self.pools_server()
        r = self.ctl(srv, "stats", "--pool", "reader")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        sheet = r.stdout.decode().split("\n\n")[0].split("\n")
        self.assertEqual(re.split(r"\s{2,}", sheet[0]), ["pool", "reader, degraded"])
        self.assertEqual(re.split(r"\s{2,}", sheet[1]), ["settings", "agent app.reader:Agent"])
        self.assertNotIn("pools (", r.stdout.decode())
        r = self.ctl(srv, "stats", "--pool", "reader", "--json")
        self.assertEqual(json.loads(r.stdout), dict(POOL_STATS["reader"], pool="reader"))

    def test_health_prints_the_server_s_line_then_each_pool_s(self):
        srv = self.pools_server()
        r = self.ctl(srv, "health")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        self.assertEqual(r.stdout.decode(),
                         "degraded: 3/4 workers healthy; backoff: yes; restarts in window: 3; in restart backoff: "
                         "reader/worker-1 (2 failed starts, next attempt in 1.5 s)\n"
                         "pool writer: ready: 2/2 workers healthy\n"
                         "pool reader: degraded: 1/2 workers healthy; backoff: yes; restarts in window: 3; "
                         "in restart backoff: reader/worker-1 (2 failed starts, next attempt in 1.5 s)\n")
        r = self.ctl(srv, "health", "--pool", "writer")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, b"pool writer: ready: 2/2 workers healthy\n"))
        r = self.ctl(srv, "health", "--pool", "reader", "--json")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR)
        self.assertEqual(json.loads(r.stdout), dict(POOL_HEALTH["reader"], pool="reader"))

    def test_history_has_a_pool_column_when_entries_name_their_pool(self):
        srv = self.pools_server()
        r = self.ctl(srv, "history", env_extra={"TZ": "UTC"})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        lines = r.stdout.decode().splitlines()
        self.assertEqual(re.split(r"\s{2,}", lines[0]), ["time", "pool", "worker", "generation", "pid", "reason", "exit"])
        self.assertEqual(re.split(r"\s{2,}", lines[1])[1:], ["reader", "reader/worker-1", "1", "602", "crashed", "status 3"])
        self.assertEqual(re.split(r"\s{2,}", lines[2])[1:], ["writer", "writer/worker-0", "2", "503", "recycled", "signal SIGTERM"])
        self.assertEqual(len(lines), 3)
        r = self.ctl(srv, "history", "--pool", "writer")
        self.assertEqual(len(r.stdout.splitlines()), 2)

    def test_reload_prints_a_line_per_pool_and_exits_1_when_one_failed(self):
        srv = self.pools_server()
        r = self.ctl(srv, "reload")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        self.assertEqual(r.stdout.decode(),
                         "pool writer: reloaded, 2 workers replaced, agent app.writer:Agent\n"
                         "pool reader: FAILED: ImportError: no module named 'app.reader'\n"
                         "pool extra: added, agent app.extra:Agent\n"
                         "pool old: removed\n")
        err = r.stderr.decode()
        self.assertIn("pool reader: error of the new code, as its first new worker reported it:\n" + READER_ERROR, err)
        self.assertTrue(err.endswith("agentpoolctl: reload failed in 1 pool: reader\n"), err)
        r = self.ctl(srv, "reload", "--json")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR)
        self.assertEqual(json.loads(r.stdout)["failed"], ["reader"])
        self.assertEqual(r.stderr, b"agentpoolctl: reload failed in 1 pool: reader\n")

    def test_reload_of_every_pool_ok_exits_0_and_of_one_pool_names_it(self):
        srv = self.pools_server(reload_fails=())
        r = self.ctl(srv, "reload")
        self.assertEqual((r.returncode, r.stderr), (EXIT_OK, b""))
        self.assertIn(b"pool reader: reloaded, 2 workers replaced, agent app.reader:Agent\n", r.stdout)
        r = self.ctl(srv, "reload", "--pool", "writer")
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (EXIT_OK, b"pool writer: reloaded, 2 workers replaced, agent app.writer:Agent\n", b""))
        self.assertEqual(json.loads(srv.requests[-1])["data"], {"pool": "writer"})

    def test_reload_where_every_pool_failed_is_an_error_with_the_traceback(self):
        srv = self.pools_server(reload_fails=("reader",))
        r = self.ctl(srv, "reload", "--pool", "reader")
        self.assertEqual((r.returncode, r.stdout), (EXIT_ANSWER_ERROR, b""))
        self.assertIn(b"reload failed (agent_error): reload aborted", r.stderr)
        self.assertIn(READER_ERROR.encode(), r.stderr)

    def test_scale_names_the_pool_it_scaled(self):
        srv = self.pools_server()
        r = self.ctl(srv, "scale", "3", "--pool", "writer")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, b"pool writer: scaled from 2 to 3 workers\n"), r.stderr)
        r = self.ctl(srv, "scale", "3")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR)
        self.assertIn(b'pool.scale concerns one pool: name it with {"pool": NAME}', r.stderr)

    def test_top_once_shows_a_block_per_pool_or_only_pool_s(self):
        srv = self.pools_server()
        r = self.ctl(srv, "top", "--once")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        lines = r.stdout.decode().split("\n")
        self.assertEqual(lines[3:5], ["", "pool writer ready   workers 2/2 ready   queue 0/100   4.0/s (10s)   "
                                          "p99 12.5ms   errors 1"])
        self.assertTrue(lines[5].startswith("WORKER "), lines)
        self.assertEqual([ln.split()[0] for ln in lines[6:8]], ["writer/worker-0", "writer/worker-1"])
        self.assertEqual(lines[8:10], ["", "pool reader degraded   workers 1/2 ready   queue 5/50   0.5/s (10s)   "
                                           "p99 1.50s   errors 3"])
        self.assertEqual([ln.split()[0] for ln in lines[11:12]], ["reader/worker-0"])
        self.assertEqual(lines[12:], [""])
        r = self.ctl(srv, "top", "--once", "--pool", "reader")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        lines = r.stdout.decode().split("\n")
        self.assertEqual(lines[0], "pool reader degraded   workers 1/2 ready   queue 5/50")
        self.assertEqual([ln.split()[0] for ln in lines[4:-1]], ["reader/worker-0"])


class TestDlqReplayFake(CtlTestCase):
    def dlq_server(self, *args, **kw):
        s = DlqFakeServer(*args, **kw)
        self.servers.append(s)
        return s

    def test_replay_keeps_at_most_32_unanswered_and_matches_reordered_answers(self):
        srv = self.dlq_server(250)
        r = self.ctl(srv, "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout, b"replayed 250: 250 ok (removed), 0 failed (kept)\n")
        self.assertEqual(srv.peak, 32)
        self.assertEqual(srv.records, [])
        self.assertEqual(len(srv.replays), 250)
        self.assertEqual(srv.replays[0], b'{"id":"replay-1","type":"echo","data":{"n":1}}')

    def test_replay_pool_sends_each_dead_letter_to_that_pool(self):
        srv = self.dlq_server(3)
        r = self.ctl(srv, "dlq", "replay", "--pool", "writer")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(srv.replays[0], b'{"id":"replay-1","type":"echo","data":{"n":1},"pool":"writer"}')
        self.assertEqual(srv.records, [])

    def test_replay_cut_off_midway_removes_what_succeeded_and_exits_4(self):
        srv = self.dlq_server(100, drop_after=40)
        r = self.ctl(srv, "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_EXCHANGE, r.stderr)
        # closed, or reset since requests were still arriving: either way lost
        self.assertRegex(r.stderr.decode(), r"^agentpoolctl: dlq replay: .* \(\d+ of \d+ answers missing\)\n$")
        m = re.fullmatch(rb"replayed (\d+): 40 ok \(removed\), 0 failed \(kept\), (\d+) unanswered \(kept\)",
                         r.stdout.splitlines()[-1])
        self.assertIsNotNone(m, r.stdout)
        replayed, unanswered = int(m.group(1)), int(m.group(2))
        self.assertEqual(replayed, 40 + unanswered)
        self.assertTrue(0 < unanswered <= 32, unanswered)
        self.assertEqual(len(srv.records), 60)


if __name__ == "__main__":
    unittest.main(verbosity=2)
