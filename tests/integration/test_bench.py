# SPDX-License-Identifier: BSD-2-Clause
"""agentpool-bench against misbehaving fake servers and the real agentpoold.

The fakes are small servers written here, one thread per connection, on a
temporary Unix socket (one on TCP): NDJSON ones that answer out of order
(and in another member layout), drop one id, send an unknown id, a
duplicate and a malformed line, close a connection mid-stream, answer
with error codes; HTTP/1.1 ones that keep connections alive, close after
every response like gunicorn's sync worker (with and without pipelining),
use chunked bodies with some 500s, and cut a connection mid-stream.  Each
test checks the counts agentpool-bench reports in its --json object and
its exit status.  Then one real run: agentpoold with the echo agent and 2
workers must answer 20000 pipelined requests with zero protocol errors.

Every run is bounded by --requests; nothing asserts a throughput or a
latency value.  The only time-based number checked is a logical bound:
an id that was never answered is older at the end than the --timeout the
benchmark waited for it.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

from harness import BUILDDIR, Server

BENCH = os.path.join(BUILDDIR, "agentpool-bench")
RUN_TIMEOUT = 300  # only so that a hang fails instead of blocking make check

EXIT_OK, EXIT_CANNOT_RUN, EXIT_USAGE, EXIT_MISBEHAVED = 0, 1, 2, 3


def run_bench(*args, expect_json=True):
    """Runs agentpool-bench with --json; returns (exit status, report, stderr)."""
    argv = [BENCH] + [str(a) for a in args]
    if expect_json:
        argv.append("--json")
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=RUN_TIMEOUT)
    out, err = p.stdout.decode(), p.stderr.decode()
    report = None
    if expect_json and p.returncode in (EXIT_OK, EXIT_MISBEHAVED):
        lines = out.strip().splitlines()
        assert len(lines) == 1, "expected one JSON line, got:\n%s\nstderr:\n%s" % (out, err)
        report = json.loads(lines[0])
    return p.returncode, report, err


# ---- fake servers ---------------------------------------------------------

class FakeServer:
    """Accepts connections on a temporary Unix socket (or 127.0.0.1) and
    runs handler(server, index, sock) in a thread per connection; index
    counts connections in accept order.  Handlers record what they did in
    server.stats (under server.lock)."""

    def __init__(self, handler, tcp=False):
        self.handler = handler
        self.tmp = tempfile.mkdtemp(prefix="apbench-")
        if tcp:
            self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.lsock.bind(("127.0.0.1", 0))
            self.target = ["--tcp", "127.0.0.1:%d" % self.lsock.getsockname()[1]]
        else:
            self.path = os.path.join(self.tmp, "fake.sock")
            self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.lsock.bind(self.path)
            self.target = ["--unix", self.path]
        self.lsock.listen(128)
        self.lsock.settimeout(0.1)
        self.lock = threading.Lock()
        self.stats = {}
        self.nconns = 0
        self.stopping = False
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + n
            return self.stats[key]

    def _accept(self):
        while not self.stopping:
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self.lock:
                index = self.nconns
                self.nconns += 1
            t = threading.Thread(target=self._serve, args=(index, sock), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, index, sock):
        try:
            self.handler(self, index, sock)
        except OSError:
            pass
        finally:
            sock.close()

    def close(self):
        self.stopping = True
        self.acceptor.join()
        self.lsock.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def ndjson_batches(sock, linger=0.0):
    """Yields the requests (parsed) of each chunk read from sock; with
    linger, keeps reading for that long after each chunk so a batch holds
    everything the client had in flight."""
    buf = b""
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return
        buf += chunk
        if linger:
            sock.settimeout(linger)
            try:
                while True:
                    more = sock.recv(1 << 16)
                    if not more:
                        break
                    buf += more
            except socket.timeout:
                pass
            sock.settimeout(None)
        *lines, buf = buf.split(b"\n")
        reqs = [json.loads(l) for l in lines if l.strip()]
        if reqs:
            yield reqs


def ok_line(req, layout=0):
    """An answer line; layout 0 is agentpoold's ({"id": first), 1 puts the
    id last with spaces."""
    if layout == 0:
        return b'{"id":%d,"ok":true,"result":%s}\n' % (req["id"], json.dumps(req.get("data")).encode())
    return b'{ "ok" : true, "result" : %s, "id" : %d }\n' % (json.dumps(req.get("data")).encode(), req["id"])


def error_line(req, code):
    return b'{"id":%d,"ok":false,"error":{"code":"%s","message":"fake"}}\n' % (req["id"], code.encode())


def nd_reverse(srv, index, sock):
    for reqs in ndjson_batches(sock, linger=0.02):
        if len(reqs) > 1:
            srv.count("reversed_batches")
        srv.count("requests", len(reqs))
        sock.sendall(b"".join(ok_line(r, r["id"] % 2) for r in reversed(reqs)))


def nd_drop_first(srv, index, sock):
    for reqs in ndjson_batches(sock):
        out = []
        for r in reqs:
            if index == 0 and srv.count("seen0") == 1:
                srv.stats["dropped"] = r["id"]
                continue
            out.append(ok_line(r))
        sock.sendall(b"".join(out))


def nd_garbage(srv, index, sock):
    for reqs in ndjson_batches(sock):
        for r in reqs:
            sock.sendall(ok_line(r))
            if index == 0 and srv.count("answered0") == 5:
                sock.sendall(b'{"id":999999999999,"ok":true,"result":null}\n')
                sock.sendall(b"this is not json\n")
                sock.sendall(ok_line(r))  # the same answer twice


def nd_close_first(srv, index, sock):
    for reqs in ndjson_batches(sock):
        for r in reqs:
            if index == 0 and srv.count("answered0") > 10:
                srv.count("closed")
                return  # _serve closes the socket with requests unanswered
            sock.sendall(ok_line(r))


def nd_errors(srv, index, sock):
    for reqs in ndjson_batches(sock):
        out = []
        for r in reqs:
            n = srv.count("requests")
            if n % 10 == 0:
                srv.count("agent_error")
                out.append(error_line(r, "agent_error"))
            elif n % 10 == 5:
                srv.count("queue_full")
                out.append(error_line(r, "queue_full"))
            else:
                out.append(ok_line(r))
        sock.sendall(b"".join(out))


def http_requests(sock):
    """Yields (method, path, headers, body) for each HTTP request on sock."""
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = lines[0].split(" ")
        assert version == "HTTP/1.1", lines[0]
        headers = {}
        for l in lines[1:]:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(buf) < n:
            chunk = sock.recv(1 << 16)
            if not chunk:
                return
            buf += chunk
        body, buf = buf[:n], buf[n:]
        yield method, path, headers, body


def http_response(status, body, close=False, chunked=False):
    reason = {200: "OK", 500: "Internal Server Error"}.get(status, "X")
    head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n" % (status, reason)
    if close:
        head += "Connection: close\r\n"
    if chunked:
        half = len(body) // 2
        parts = [body[:half], body[half:]]
        data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + data
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


def http_check(srv, method, path, headers, body):
    """Records what the client sent, so the tests can check its requests."""
    req = json.loads(body)
    if method != "POST" or "host" not in headers or headers.get("content-type") != "application/json" \
            or req.get("type") != "echo" or not isinstance(req.get("data"), dict):
        srv.count("bad_requests")
    srv.count("requests")
    with srv.lock:
        srv.stats.setdefault("paths", set()).add(path)
    return req


def http_keepalive(srv, index, sock):
    for method, path, headers, body in http_requests(sock):
        req = http_check(srv, method, path, headers, body)
        sock.sendall(http_response(200, json.dumps({"id": req["id"], "ok": True}).encode()))


def http_close_each(srv, index, sock):
    """gunicorn's sync worker: one response per connection, then close."""
    for method, path, headers, body in http_requests(sock):
        http_check(srv, method, path, headers, body)
        sock.sendall(http_response(200, b'{"ok":true}', close=True))
        sock.shutdown(socket.SHUT_WR)
        return


def http_chunked_500(srv, index, sock):
    for method, path, headers, body in http_requests(sock):
        http_check(srv, method, path, headers, body)
        if srv.count("n") % 5 == 0:
            srv.count("sent_500")
            sock.sendall(http_response(500, b'{"error":"boom"}', chunked=True))
        else:
            sock.sendall(http_response(200, b'{"ok":true,"pad":"' + b"y" * 300 + b'"}', chunked=True))


def http_cut_first(srv, index, sock):
    answered = 0
    for method, path, headers, body in http_requests(sock):
        http_check(srv, method, path, headers, body)
        if index == 0 and answered == 3:
            srv.count("cut")
            return  # no Connection: close, requests pipelined behind this one
        sock.sendall(http_response(200, b'{"ok":true}'))
        answered += 1


# ---- the tests ------------------------------------------------------------

def nd_stream(srv, index, sock):
    """Streams: request id i gets i % 4 chunks (so some streams have
    none), the chunks of one batch interleaved across its requests, a
    heartbeat per request, then the final answers in reverse order.
    Counts requests, requests without "stream": true, chunks, and streams
    with at least one chunk.  srv.bad_seq_at: the request number whose
    second chunk skips a seq."""
    for reqs in ndjson_batches(sock, linger=0.01):
        left = {}
        for r in reqs:
            n = srv.count("requests")
            if r.get("stream") is not True:
                srv.count("not_streamed")
            left[r["id"]] = [r["id"] % 4, 0, n]
            if r["id"] % 4:
                srv.count("streams_with_chunks")
        out = []
        while any(v[0] for v in left.values()):
            for rid, v in left.items():
                if v[0]:
                    seq = v[1] + (1 if v[1] == 1 and v[2] == getattr(srv, "bad_seq_at", None) else 0)
                    out.append(b'{"id":%d,"chunk":{"t":"tok %d"},"seq":%d}\n' % (rid, seq, seq))
                    srv.count("chunks")
                    v[0] -= 1
                    v[1] += 1
        for r in reqs:
            out.append(b'{"id":%d,"heartbeat":true}\n' % r["id"])
        out.extend(ok_line(r) for r in reversed(reqs))
        sock.sendall(b"".join(out))


def assert_clean(test, r, n):
    """n measured requests, all answered ok, nothing wrong anywhere."""
    test.assertEqual(r["end"], "complete", r)
    test.assertEqual(r["requests"]["sent"], n, r)
    test.assertEqual(r["requests"]["ok"], n, r)
    test.assertEqual(r["requests"]["errors"], 0, r)
    test.assertEqual(r["errors"], {}, r)
    test.assertEqual(r["protocol_errors"]["total"], 0, r)
    test.assertEqual(r["outstanding"]["count"], 0, r)
    test.assertEqual(r["latency_us"]["count"], n, r)


class CommandLine(unittest.TestCase):
    def test_usage_errors(self):
        for args, text in [(["--conns", "0"], "--conns 0: expected an integer from 1 to 10000"),
                           (["--depth", "x"], "--depth x: expected an integer"),
                           (["--proto", "spdy"], "--proto spdy: expected ndjson or http"),
                           (["--rate", "-5"], "--rate -5: expected a number"),
                           (["--unix", "/a", "--tcp", "127.0.0.1:1"], "--unix and --tcp are exclusive"),
                           (["--tcp", "nocolon"], "--tcp nocolon: expected HOST:PORT"),
                           (["--bogus"], "unknown option"),
                           (["--unix", "/tmp/x.sock", "--data", "{nope"], "--data is not valid JSON"),
                           (["--unix", "/tmp/x.sock", "--proto", "http", "--path", "no-slash"],
                            "--path must start with '/'"),
                           (["--unix", "/tmp/x.sock", "--proto", "http", "--stream"],
                            "--stream needs --proto ndjson")]:
            rc, _, err = run_bench(*args, expect_json=False)
            self.assertEqual(rc, EXIT_USAGE, (args, err))
            self.assertIn(text, err, args)

    def test_cannot_connect(self):
        tmp = tempfile.mkdtemp(prefix="apbench-")
        try:
            path = os.path.join(tmp, "nobody.sock")
            rc, _, err = run_bench("--unix", path, "--requests", 10, expect_json=False)
            self.assertEqual(rc, EXIT_CANNOT_RUN, err)
            self.assertIn("cannot run against unix:%s" % path, err)
            self.assertIn("No such file or directory", err)
        finally:
            shutil.rmtree(tmp)

    def test_help(self):
        p = subprocess.run([BENCH, "--help"], stdout=subprocess.PIPE, timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"--payload-bytes", p.stdout)


class MisbehavingNdjson(unittest.TestCase):
    def test_out_of_order_is_fine(self):
        n = 3000
        with FakeServer(nd_reverse) as srv:
            rc, r, err = run_bench(*srv.target, "--requests", n, "--conns", 4, "--depth", 16)
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, n)
            self.assertEqual(r["proto"], "ndjson")
            self.assertEqual(r["mode"], "closed")
            # the server really answered batches in reverse
            self.assertGreater(srv.stats.get("reversed_batches", 0), 0)
            self.assertEqual(srv.stats["requests"], n)

    def test_dropped_id_is_outstanding_with_its_age(self):
        n, timeout = 400, 3
        with FakeServer(nd_drop_first) as srv:
            rc, r, err = run_bench(*srv.target, "--requests", n, "--conns", 2, "--depth", 8,
                                   "--timeout", timeout)
            self.assertEqual(rc, EXIT_MISBEHAVED, err)
            self.assertIn("dropped", srv.stats)
            self.assertEqual(r["end"], "stalled", r)
            self.assertEqual(r["requests"]["sent"], n)
            self.assertEqual(r["requests"]["ok"], n - 1, r)
            self.assertEqual(r["requests"]["errors"], 0, r)
            self.assertEqual(r["requests"]["outstanding"], 1, r)
            self.assertEqual(r["outstanding"]["count"], 1, r)
            self.assertEqual(r["outstanding"]["in_flight"], 1, r)
            # it waited --timeout after the last answer, and the dropped
            # request was sent before that answer
            self.assertGreaterEqual(r["outstanding"]["oldest_age_ms"], timeout * 1000, r)
            self.assertEqual(r["protocol_errors"]["total"], 0, r)

    def test_unknown_duplicate_and_malformed_are_protocol_errors(self):
        n = 500
        with FakeServer(nd_garbage) as srv:
            rc, r, err = run_bench(*srv.target, "--requests", n, "--conns", 2, "--depth", 4)
            self.assertEqual(rc, EXIT_MISBEHAVED, err)
            self.assertEqual(r["end"], "complete", r)
            self.assertEqual(r["requests"]["ok"], n, r)
            self.assertEqual(r["outstanding"]["count"], 0, r)
            pe = r["protocol_errors"]
            self.assertEqual(pe["unknown_id"], 1, r)
            self.assertEqual(pe["duplicate_id"], 1, r)
            self.assertEqual(pe["malformed"], 1, r)
            self.assertEqual(pe["truncated"], 0, r)
            self.assertEqual(pe["total"], 3, r)

    def test_close_mid_stream_is_counted_and_reconnected(self):
        n = 600
        with FakeServer(nd_close_first) as srv:
            # one connection, so the run can only finish by reconnecting
            rc, r, err = run_bench(*srv.target, "--requests", n, "--conns", 1, "--depth", 16)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(srv.stats.get("closed"), 1)
            self.assertEqual(r["end"], "complete", r)
            self.assertEqual(r["connections"]["closed_by_server"], 1, r)
            self.assertEqual(r["connections"]["reconnects"], 1, r)
            self.assertEqual(r["requests"]["sent"], n, r)
            # at least 16 were in flight and the server answered 10
            lost = r["errors"].get("connection_closed", 0)
            self.assertGreaterEqual(lost, 6, r)
            self.assertEqual(r["requests"]["errors"], lost, r)
            self.assertEqual(r["requests"]["ok"] + lost, n, r)
            self.assertEqual(r["protocol_errors"]["total"], 0, r)
            self.assertEqual(r["outstanding"]["count"], 0, r)

    def test_error_answers_by_code(self):
        n = 1000
        with FakeServer(nd_errors) as srv:
            rc, r, err = run_bench(*srv.target, "--requests", n, "--conns", 3, "--depth", 8)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(r["errors"], {"agent_error": 100, "queue_full": 100}, r)
            self.assertEqual(r["requests"]["errors"], 200, r)
            self.assertEqual(r["requests"]["ok"], 800, r)
            self.assertEqual(r["latency_us"]["count"], n, r)
            self.assertEqual(r["protocol_errors"]["total"], 0, r)

    def test_open_loop(self):
        n = 400
        with FakeServer(nd_reverse) as srv:
            rc, r, err = run_bench(*srv.target, "--requests", n, "--conns", 4, "--depth", 4, "--rate", 2000)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(r["mode"], "open")
            self.assertEqual(r["rate"], 2000)
            assert_clean(self, r, n)
            self.assertEqual(r["outstanding"]["unsent"], 0, r)

    def test_warmup_not_counted(self):
        n = 300
        with FakeServer(nd_reverse) as srv:
            rc, r, err = run_bench(*srv.target, "--requests", n, "--conns", 2, "--depth", 4,
                                   "--warmup", 0.2)
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, n)
            # the first requests go out at the start, inside the warm-up
            self.assertGreater(r["warmup"]["sent"], 0, r)
            self.assertEqual(r["warmup"]["sent"], r["warmup"]["done"], r)
            self.assertEqual(srv.stats["requests"], n + r["warmup"]["sent"])

    def test_closed_loop_by_time_counts_answers_inside_the_window(self):
        # The period is the window itself, not the window plus the drain of
        # the last round (what a latency adds after --seconds); the
        # throughput is the answers received inside it.
        with FakeServer(nd_reverse) as srv:
            rc, r, err = run_bench(*srv.target, "--seconds", 0.4, "--conns", 2, "--depth", 4)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(r["end"], "complete", r)
            self.assertAlmostEqual(r["duration_s"], 0.4, places=6, msg=r)
            self.assertGreater(r["requests"]["in_window"], 0, r)
            self.assertLessEqual(r["requests"]["in_window"], r["requests"]["ok"] + r["warmup"]["done"], r)
            self.assertAlmostEqual(r["throughput_rps"] * r["duration_s"], r["requests"]["in_window"], places=3)
            # --requests keeps the completed-requests definition
            rc, r, err = run_bench(*srv.target, "--requests", 100, "--conns", 1, "--depth", 1)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertIsNone(r["requests"]["in_window"], r)

    def test_payload_and_data(self):
        with FakeServer(nd_reverse) as srv:
            rc, r, err = run_bench(*srv.target, "--requests", 50, "--conns", 1, "--depth", 2,
                                   "--payload-bytes", 100000)
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, 50)
            self.assertEqual(r["payload_bytes"], 100000)
            self.assertGreater(r["request_bytes"], 100000)
            rc, r, err = run_bench(*srv.target, "--requests", 50, "--conns", 1, "--type", "sleep",
                                   "--data", '{"ms": 0}')
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, 50)
            self.assertIsNone(r["payload_bytes"])
            self.assertEqual(r["type"], "sleep")


class Streams(unittest.TestCase):
    def test_chunks_and_first_chunk_samples_match_what_the_server_sent(self):
        n = 1000
        with FakeServer(nd_stream) as srv:
            rc, r, err = run_bench(*srv.target, "--stream", "--requests", n, "--conns", 2, "--depth", 8)
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, n)
            self.assertEqual(srv.stats["requests"], n)
            self.assertNotIn("not_streamed", srv.stats)
            st = r["stream"]
            self.assertEqual(st["chunks"], srv.stats["chunks"], r)
            self.assertEqual(st["heartbeats"], n, r)
            # one sample per stream that sent a chunk, none for those that did not
            self.assertEqual(st["first_chunk_us"]["count"], srv.stats["streams_with_chunks"], r)
            self.assertLess(st["first_chunk_us"]["count"], n)
            # a stream's first chunk comes before its final answer
            self.assertLessEqual(st["first_chunk_us"]["max"], r["latency_us"]["max"], r)
            self.assertLessEqual(st["first_chunk_us"]["p50"], st["first_chunk_us"]["p99"], r)
            self.assertGreater(st["chunks_per_s"], 0)
            self.assertGreater(st["final_per_s"], 0)
            self.assertEqual(r["protocol_errors"]["bad_seq"], 0)

    def test_a_chunk_out_of_sequence_is_a_protocol_error(self):
        n = 200
        with FakeServer(nd_stream) as srv:
            # one connection, depth 1: the 48th request has id 47, so 3 chunks;
            # its second says seq 2 (the third then is in sequence again)
            srv.bad_seq_at = 48
            rc, r, err = run_bench(*srv.target, "--stream", "--requests", n, "--conns", 1, "--depth", 1)
            self.assertEqual(rc, EXIT_MISBEHAVED, err)
            self.assertEqual(r["protocol_errors"]["bad_seq"], 1, r)
            self.assertEqual(r["stream"]["chunks"], srv.stats["chunks"], r)

    def test_without_stream_the_report_says_null(self):
        with FakeServer(nd_reverse) as srv:
            rc, r, err = run_bench(*srv.target, "--requests", 10)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertIsNone(r["stream"])


class MisbehavingHttp(unittest.TestCase):
    def test_keepalive(self):
        n = 1000
        with FakeServer(http_keepalive) as srv:
            rc, r, err = run_bench(*srv.target, "--proto", "http", "--path", "/run", "--requests", n,
                                   "--conns", 4)
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, n)
            self.assertEqual(r["proto"], "http")
            self.assertEqual(r["depth"], 1)
            self.assertEqual(r["connections"]["reconnects"], 0, r)
            self.assertEqual(srv.nconns, 4)
            self.assertEqual(srv.stats["paths"], {"/run"})
            self.assertNotIn("bad_requests", srv.stats)

    def test_keepalive_pipelined_over_tcp(self):
        n = 1000
        with FakeServer(http_keepalive, tcp=True) as srv:
            rc, r, err = run_bench(*srv.target, "--proto", "http", "--requests", n, "--conns", 2,
                                   "--depth", 8)
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, n)
            self.assertTrue(r["target"].startswith("tcp:127.0.0.1:"), r)
            self.assertEqual(srv.stats["paths"], {"/"})

    def test_close_after_each_response_reconnects(self):
        n, conns = 200, 4
        with FakeServer(http_close_each) as srv:
            rc, r, err = run_bench(*srv.target, "--proto", "http", "--requests", n, "--conns", conns)
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, n)
            c = r["connections"]
            self.assertEqual(c["close_announced"], n, r)
            self.assertEqual(c["closed_by_server"], 0, r)
            self.assertGreaterEqual(c["reconnects"], n - conns, r)
            self.assertLessEqual(c["reconnects"], n, r)
            self.assertEqual(r["requests"]["resent"], 0, r)

    def test_close_after_each_response_pipelined_resends(self):
        n = 100
        with FakeServer(http_close_each) as srv:
            rc, r, err = run_bench(*srv.target, "--proto", "http", "--requests", n, "--conns", 2,
                                   "--depth", 4)
            self.assertEqual(rc, EXIT_OK, err)
            assert_clean(self, r, n)
            # requests written behind an answer that announced the close
            # were written again on the next connection
            self.assertGreater(r["requests"]["resent"], 0, r)
            self.assertEqual(r["connections"]["close_announced"], n, r)

    def test_chunked_and_server_errors(self):
        n = 500
        with FakeServer(http_chunked_500) as srv:
            rc, r, err = run_bench(*srv.target, "--proto", "http", "--requests", n, "--conns", 2,
                                   "--depth", 2)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(srv.stats["sent_500"], n // 5)
            self.assertEqual(r["errors"], {"http_5xx": n // 5}, r)
            self.assertEqual(r["requests"]["ok"], n - n // 5, r)
            self.assertEqual(r["protocol_errors"]["total"], 0, r)
            self.assertEqual(r["outstanding"]["count"], 0, r)

    def test_cut_mid_stream_is_counted_and_reconnected(self):
        n = 300
        with FakeServer(http_cut_first) as srv:
            # one connection, so the run can only finish by reconnecting
            rc, r, err = run_bench(*srv.target, "--proto", "http", "--requests", n, "--conns", 1,
                                   "--depth", 4)
            self.assertEqual(rc, EXIT_OK, err)
            self.assertEqual(srv.stats.get("cut"), 1)
            c = r["connections"]
            self.assertEqual(c["closed_by_server"], 1, r)
            self.assertEqual(c["reconnects"], 1, r)
            self.assertEqual(c["close_announced"], 0, r)
            lost = r["errors"].get("connection_closed", 0)
            self.assertGreaterEqual(lost, 1, r)
            self.assertEqual(r["requests"]["ok"] + lost, n, r)
            self.assertEqual(r["requests"]["errors"], lost, r)
            self.assertEqual(r["protocol_errors"]["total"], 0, r)
            self.assertEqual(r["outstanding"]["count"], 0, r)


class RealServer(unittest.TestCase):
    def test_echo_pipelined(self):
        n = 20000
        with Server(agent="pyagents.examples.echo:EchoAgent", workers=2) as srv:
            rc, r, err = run_bench("--unix", srv.path, "--requests", n, "--conns", 8, "--depth", 16)
            self.assertEqual(rc, EXIT_OK, err + srv.log())
            assert_clean(self, r, n)
            self.assertEqual(r["connections"]["reconnects"], 0, r)
            self.assertEqual(r["connections"]["closed_by_server"], 0, r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
