# SPDX-License-Identifier: BSD-2-Clause
"""The HTTP/1.1 front door (httpListen, docs/http.md), against the real
server with real Python workers.

Every status code it maps has a real cause here: 200; 400 (bad JSON);
404 (unknown pool); 405; 409 (session_busy); 413 (a body over
maxMessageBytes; a body that fits but not with its Idempotency-Key
header added as a member);
431 (headers over httpMaxHeaderBytes); 429 (queue_full and
circuit_open, with Retry-After); 500 (agent_error); 502
(worker_crashed); 503 (shutting_down during a drain; too_many_connections
past maxConnections, which HTTP shares with the socket); 504 (timeout);
a peer that closes is counted (499), not answered, and its request is
cancelled: the worker sees the cancel.  Also keep-alive, pipelining,
chunked request bodies, request smuggling refused (400, closed),
Expect: 100-continue, HEAD and HTTP/1.0, slow-loris headers and bodies cut off by
httpRequestTimeoutMs (asserted by the connection closing and the count,
never by a duration), server-sent events with heartbeats, curl as an
outside client, the unix: listener, and httpAuth's refusal at start.
"""
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import DEADLINE, SRCDIR, Server, main, wait_for  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
HTTPAGENT = "httpagent:HttpAgent"


def pool(agent=HTTPAGENT, workers=1, **kw):
    return dict({"agent": agent, "minWorkers": workers, "maxWorkers": workers}, **kw)


class HTTPServer(Server):
    """A Server with the front door on 127.0.0.1 (a port the kernel
    picks, read from the log) and on a unix: socket."""

    def __init__(self, config, **kw):
        self.tmpdir = tempfile.mkdtemp(prefix="aphttp-")
        self.http_sock = os.path.join(self.tmpdir, "http.sock")
        cfg = {"pythonPath": [AGENTS_DIR], "httpListen": ["127.0.0.1:0", "unix:" + self.http_sock],
               "httpAuth": "none"}
        cfg.update(config)
        super().__init__(config=cfg, **kw)
        self.port = None

    def start(self):
        super().start()
        m = wait_for(lambda: re.search(r"HTTP front door on 127\.0\.0\.1:(\d+)", self.log()),
                     what="the front door's port in the log")
        self.port = int(m.group(1))
        return self

    def close(self):
        super().close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def conn(self, timeout=DEADLINE):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def raw(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
        return s

    def stats(self):
        with self.client() as c:
            return c.stats()


def post(conn, path, body, headers=None):
    """POSTs body (an object: sent as JSON; bytes: as they are) on conn;
    returns (status, headers, parsed body or text)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, body=data, headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    r = conn.getresponse()
    text = r.read().decode()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    return r.status, r, parsed


class NonReaders:
    """conns HTTP peers on s's unix: listener that pipeline echo requests
    of answer bytes each and never read: more() sends what the kernel
    takes now (the server reads on only while it may), close() ends them."""

    def __init__(self, s, conns, answer):
        body = json.dumps({"type": "echo", "data": "x" * answer}).encode()
        req = (b"POST /v1/messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.socks, self.todo = [], []
        for _ in range(conns):
            sock = socket.socket(socket.AF_UNIX)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(s.http_sock)
            sock.setblocking(False)
            self.socks.append(sock)
            self.todo.append(req * 40)  # 2.4 MB each: far past what one connection alone may hold unsent

    def more(self):
        for i, sock in enumerate(self.socks):
            try:
                while self.todo[i]:
                    self.todo[i] = self.todo[i][sock.send(self.todo[i]):]
            except BlockingIOError:
                pass  # the kernel holds the rest back until the server reads on

    def close(self):
        for sock in self.socks:
            sock.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=DEADLINE):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def closed_by_server(sock):
    """True once the peer closed sock (reads the end, or a reset)."""
    sock.settimeout(0.05)
    try:
        return sock.recv(65536) == b""
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def read_response_head(sock):
    """Reads until the end of a response's headers; returns (status, head text)."""
    buf = b""
    sock.settimeout(DEADLINE)
    while b"\r\n\r\n" not in buf:
        b = sock.recv(4096)
        if not b:
            break
        buf += b
    head = buf.split(b"\r\n\r\n")[0].decode()
    return int(head.split()[1]), head


def events_of(text):
    """Server-sent events in text: [(event, id or None, data)], heartbeat
    comments as ("heartbeat", None, None)."""
    out = []
    for block in text.split("\n\n"):
        if not block:
            continue
        if block == ": heartbeat":
            out.append(("heartbeat", None, None))
            continue
        f = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((f["event"], f.get("id"), f["data"]))
    return out


def next_event(r):
    """The next event read from response r (heartbeats included)."""
    block = b""
    while not block.endswith(b"\n\n"):
        line = r.readline()
        if not line:
            raise AssertionError("the stream ended")
        block += line
    return events_of(block.decode())[0]


def next_data_event(r):
    """The next event that is not a heartbeat."""
    while True:
        e = next_event(r)
        if e[0] != "heartbeat":
            return e


def read_full_response(f):
    """One response with a Content-Length from file f: (status, body bytes)."""
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, v = line.decode().split(":", 1)
        if k.lower() == "content-length":
            length = int(v)
    return status, f.read(length)


def wait_idle(s, name):
    """Every worker of pool name ready with a free slot (a worker killed
    for a timeout has been replaced)."""
    def idle():
        p = s.stats()["pools"][name]
        return p["available"] == p["poolSize"] and p["busy"] == 0
    wait_for(idle, what="pool %s idle" % name)


def http_stats(s):
    return s.stats()["http"]


class Shared(unittest.TestCase):
    """One server for the tests that leave it as they found it."""

    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="aphttp-files-")
        cls.s = HTTPServer({
            "maxMessageBytes": 4096, "httpMaxHeaderBytes": 2048, "httpRequestTimeoutMs": 400,
            "streamHeartbeatMs": 50, "retryDelay": 10,
            "pools": {"main": pool(workers=2, maxRetries=0),
                      "tight": pool(messageQueueSize=0, overflow="reject", sessions=True, sessionBusy="reject",
                                    sessionStore="none"),
                      "brk": pool(breakerFailureThreshold=1, breakerResetTimeout=600000),
                      "tok": pool(agent="streamer:SyncStreamer")}}, workers=1).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        shutil.rmtree(cls.d, ignore_errors=True)

    def file(self, name):
        return os.path.join(self.d, name)

    def release(self, name):
        with open(self.file(name), "w") as f:
            f.write("go")

    def test_ok_answer_is_the_ndjson_answer_over_keepalive(self):
        before = http_stats(self.s)
        c = self.s.conn()
        for i in range(5):
            st, r, body = post(c, "/v1/pools/main/messages", {"type": "echo", "data": {"n": i, "s": "é"}})
            self.assertEqual((st, body), (200, {"ok": True, "result": {"n": i, "s": "é"}}))
            self.assertEqual(r.getheader("Content-Type"), "application/json")
        st, _, body = post(c, "/v1/messages", {"type": "echo", "data": [1]})  # the default pool: main
        self.assertEqual((st, body), (200, {"ok": True, "result": [1]}))
        c.close()
        after = http_stats(self.s)
        self.assertEqual(after["accepted"] - before["accepted"], 1)  # all six on one connection
        self.assertEqual(after["responses"]["200"] - before["responses"].get("200", 0), 6)
        # the same message over the socket answers the same object (with its id)
        with self.s.client() as nd:
            self.assertEqual(nd.request("echo", {"n": 0, "s": "é"}, pool="main")["result"], {"n": 0, "s": "é"})

    def test_idempotency_key_header_replays_the_kept_answer(self):
        c = self.s.conn()
        st, _, first = post(c, "/v1/pools/main/messages", {"type": "echo", "data": {"k": 1}},
                            headers={"Idempotency-Key": "http-key-1"})
        self.assertEqual((st, first), (200, {"ok": True, "result": {"k": 1}}))
        st, _, again = post(c, "/v1/pools/main/messages", {"type": "echo", "data": {"k": 1}},
                            headers={"Idempotency-Key": "http-key-1"})
        self.assertEqual((st, again), (200, {"ok": True, "result": {"k": 1}, "replayed": True}))
        c.close()

    def test_one_connection_takes_streams_refusals_and_messages_in_turn(self):
        """A connection's messages share one origin client (httpx.c): each
        is answered once, whatever ended the one before it (a stream, a
        refusal, an agent error, a timeout whose worker still runs)."""
        wait_idle(self.s, "tok")
        before = http_stats(self.s)
        self.release("turns")
        c = self.s.conn()
        for i in range(2):
            c.request("POST", "/v1/pools/tok/messages?stream=1",
                      body=json.dumps({"type": "quiet", "data": {"file": self.file("turns")}}))
            r = c.getresponse()
            events = [e for e in events_of(r.read().decode()) if e[0] != "heartbeat"]
            self.assertEqual([e[0] for e in events], ["chunk", "result"])
            self.assertEqual(json.loads(events[1][2]), {"ok": True, "result": "done"})
            st, _, body = post(c, "/v1/pools/main/messages", {"type": "echo", "data": i})
            self.assertEqual((st, body), (200, {"ok": True, "result": i}))
            st, _, body = post(c, "/v1/pools/main/messages", {"data": i})
            self.assertEqual((st, body["error"]["message"]), (400, "type is missing"))
            st, _, body = post(c, "/v1/pools/main/messages", {"type": "fail"})
            self.assertEqual((st, body["error"]["code"]), (500, "agent_error"))
            st, _, body = post(c, "/v1/pools/main/messages", {"type": "wait", "timeoutMs": 100,
                                                               "data": {"file": self.file("turns-wait-%d" % i)}})
            self.assertEqual((st, body["error"]["code"]), (504, "timeout"))
            self.release("turns-wait-%d" % i)
        c.close()
        after = http_stats(self.s)
        self.assertEqual(after["accepted"] - before["accepted"], 1)
        self.assertEqual(after["responses"]["200"] - before["responses"].get("200", 0), 4)
        wait_idle(self.s, "main")

    def test_pipelined_requests_are_answered_in_order(self):
        reqs = b""
        for i in range(3):
            body = json.dumps({"type": "echo", "data": i}).encode()
            reqs += (b"POST /v1/pools/main/messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        sock = self.s.raw()
        sock.sendall(reqs)  # all three in one write: pipelined
        f = sock.makefile("rb")
        got = []
        for _ in range(3):
            st, body = read_full_response(f)
            got.append((st, json.loads(body)))
        f.close()
        sock.close()
        self.assertEqual(got, [(200, {"ok": True, "result": i}) for i in range(3)])

    def test_chunked_request_body(self):
        c = self.s.conn()
        parts = [b'{"type": "echo",', b' "data": {"chunked"', b': true}}']
        c.request("POST", "/v1/pools/main/messages", body=iter(parts), encode_chunked=True,
                  headers={"Transfer-Encoding": "chunked"})
        r = c.getresponse()
        self.assertEqual((r.status, json.loads(r.read())), (200, {"ok": True, "result": {"chunked": True}}))
        c.close()

    def test_bad_request_unknown_pool_and_method(self):
        c = self.s.conn()
        st, _, body = post(c, "/v1/pools/main/messages", b'{"type": "echo", "data": ')
        self.assertEqual((st, body["ok"], body["error"]["code"]), (400, False, "bad_request"), body)
        st, _, body = post(c, "/v1/pools/main/messages", {"data": 1})
        self.assertEqual((st, body["error"]["message"]), (400, "type is missing"))
        st, _, body = post(c, "/v1/pools/nosuch/messages", {"type": "echo"})
        self.assertEqual((st, body["error"]["code"]), (404, "not_found"))
        self.assertIn('unknown pool "nosuch"', body["error"]["message"])
        # a "pool" in the body does not move the message to another pool than its URL's
        st, _, body = post(c, "/v1/pools/main/messages", {"type": "echo", "data": 7, "pool": "tok"})
        self.assertEqual((st, body), (200, {"ok": True, "result": 7}))
        c.request("GET", "/v1/pools/main/messages")
        r = c.getresponse()
        r.read()
        self.assertEqual((r.status, r.getheader("Allow")), (405, "POST"))
        c.close()

    def test_agent_error_is_500_and_worker_crash_502_and_timeout_504(self):
        c = self.s.conn()
        st, _, body = post(c, "/v1/pools/main/messages", {"type": "fail"})
        self.assertEqual((st, body["error"]["code"]), (500, "agent_error"))
        st, _, body = post(c, "/v1/pools/main/messages", {"type": "crash"})
        self.assertEqual((st, body["error"]["code"]), (502, "worker_crashed"))
        st, _, body = post(c, "/v1/pools/main/messages", {"type": "wait", "timeoutMs": 200,
                                                           "data": {"file": self.file("never")}})
        self.assertEqual((st, body["error"]["code"]), (504, "timeout"))
        c.close()

    def test_queue_full_and_session_busy(self):
        hold = self.s.conn()
        body = json.dumps({"type": "wait", "session": "s1", "data": {"file": self.file("qf")}})
        hold.request("POST", "/v1/pools/tight/messages", body=body)  # its one worker busy, queue of 0
        wait_for(lambda: self.s.stats()["pools"]["tight"]["busy"] == 1, what="the tight worker busy")
        c = self.s.conn()
        st, r, body = post(c, "/v1/pools/tight/messages", {"type": "echo"})
        self.assertEqual((st, body["error"]["code"]), (429, "queue_full"))
        self.assertEqual(r.getheader("Retry-After"), "1")
        st, r, body = post(c, "/v1/pools/tight/messages", {"type": "echo", "session": "s1"})
        self.assertEqual((st, body["error"]["code"]), (409, "session_busy"))
        self.release("qf")
        r = hold.getresponse()
        self.assertEqual((r.status, json.loads(r.read())), (200, {"ok": True, "result": "done"}))
        hold.close()
        c.close()

    def test_circuit_open_is_429_with_retry_after(self):
        c = self.s.conn()
        st, _, _ = post(c, "/v1/pools/brk/messages", {"type": "fail"})
        self.assertEqual(st, 500)  # one failure opens this type's breaker (breakerFailureThreshold 1)
        st, r, body = post(c, "/v1/pools/brk/messages", {"type": "fail"})
        self.assertEqual((st, body["error"]["code"]), (429, "circuit_open"))
        self.assertGreaterEqual(int(r.getheader("Retry-After")), 1)
        self.assertGreater(body["error"]["retryAfterMs"], 0)
        c.close()

    def test_too_large_bodies_and_headers(self):
        c = self.s.conn()
        st, _, _ = post(c, "/v1/pools/main/messages", b'{"type":"echo","data":"' + b"x" * 5000 + b'"}')
        self.assertEqual(st, 413)  # over maxMessageBytes: refused from its Content-Length, before it is read
        c.close()
        c = self.s.conn()
        body = b'{"type":"echo","data":"' + b"x" * (4096 - 30) + b'"}'
        self.assertLessEqual(len(body), 4096)
        st, _, parsed = post(c, "/v1/pools/main/messages", body)  # fits: the URL's pool goes beside it, not in it
        self.assertEqual((st, parsed["result"]), (200, "x" * (4096 - 30)))
        st, _, parsed = post(c, "/v1/pools/main/messages", body, headers={"Idempotency-Key": "k" * 40})
        self.assertEqual((st, parsed["error"]["code"]), (413, "too_large"))  # with the key added as a member, not
        c.close()
        sock = self.s.raw()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"y" * 4000 + b"\r\n\r\n")
        st, _ = read_response_head(sock)
        self.assertEqual(st, 431)  # headers over httpMaxHeaderBytes
        wait_for(lambda: closed_by_server(sock), what="the connection closed after the refusal")
        sock.close()

    def test_smuggling_refused_and_connection_closed(self):
        """Framing a proxy could read another way is answered 400 and the
        connection closed, before anything of it reaches a worker; the
        refusals are counted by status."""
        before = http_stats(self.s)["responses"].get("400", 0)
        for head in (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                     b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                     b"Content-Length: 5\r\nContent-Length: 5\r\n",
                     b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n",
                     b"Transfer-Encoding: gzip\r\n"):
            sock = self.s.raw()
            sock.sendall(b"POST /v1/pools/main/messages HTTP/1.1\r\nHost: t\r\n" + head +
                         b"\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            f = sock.makefile("rb")
            st, body = read_full_response(f)
            self.assertEqual((st, json.loads(body)["error"]["code"]), (400, "bad_request"), head)
            self.assertEqual(f.read(), b"", "the smuggled request after it was answered (%r)" % head)
            f.close()
            sock.close()
        wait_for(lambda: http_stats(self.s)["responses"].get("400", 0) >= before + 5, what="the refusals counted")

    def test_expect_continue_head_and_http10(self):
        sock = self.s.raw()
        body = json.dumps({"type": "echo", "data": "after 100"}).encode()
        sock.sendall(b"POST /v1/pools/main/messages HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body))
        f = sock.makefile("rb")
        self.assertEqual(f.readline(), b"HTTP/1.1 100 Continue\r\n")  # asked for before the body is sent
        self.assertEqual(f.readline(), b"\r\n")
        sock.sendall(body)
        st, got = read_full_response(f)
        self.assertEqual((st, json.loads(got)), (200, {"ok": True, "result": "after 100"}))
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n")
        head = f.readline()
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        length = None
        while True:
            line = f.readline()
            if line == b"\r\n":
                break
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.assertEqual(length, len(b"ready\n"))  # HEAD: the length of the body it does not send
        self.assertTrue(f.readline().startswith(b"HTTP/1.0 200"))  # the next response follows at once
        rest = f.read()  # HTTP/1.0 without keep-alive: closed after its answer
        self.assertIn(b"Connection: close\r\n", rest)
        self.assertTrue(rest.endswith(b"\r\n\r\nready\n"), rest)
        f.close()
        sock.close()

    def trickle_until_closed(self, start, drip):
        """Sends start, then drip after drip, until the server closes the
        connection or DEADLINE passes: whether it closed."""
        sock = self.s.raw()
        sock.sendall(start)
        end = time.monotonic() + DEADLINE
        closed = False
        while not closed and time.monotonic() < end:
            try:
                sock.sendall(drip)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            closed = closed_by_server(sock)
        sock.close()
        return closed

    def test_slowloris_headers_are_cut_off(self):
        before = http_stats(self.s)["requestTimeouts"]
        # one header line at a time, never a whole request
        closed = self.trickle_until_closed(b"POST /v1/pools/main/messages HTTP/1.1\r\nHost: t\r\n", b"X-Slow: 1\r\n")
        self.assertTrue(closed, "a request that never ends its headers keeps its connection")
        wait_for(lambda: http_stats(self.s)["requestTimeouts"] > before, what="the cut counted")

    def test_slowloris_body_is_cut_off(self):
        before = http_stats(self.s)["requestTimeouts"]
        closed = self.trickle_until_closed(
            b"POST /v1/pools/main/messages HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{", b" ")
        self.assertTrue(closed, "a body that never ends keeps its connection")
        wait_for(lambda: http_stats(self.s)["requestTimeouts"] > before, what="the cut counted")

    def test_sse_chunks_heartbeats_then_result(self):
        c = self.s.conn()
        c.request("POST", "/v1/pools/tok/messages", headers={"Accept": "text/event-stream"},
                  body=json.dumps({"type": "forever", "data": {"ms": 1, "file": self.file("sse")}}))
        r = c.getresponse()
        self.assertEqual((r.status, r.getheader("Content-Type")), (200, "text/event-stream"))
        self.assertEqual(next_data_event(r), ("chunk", "0", '"c0"'))
        # the handler waits after c0: the stream is idle, and heartbeats come
        self.assertEqual(next_event(r), ("heartbeat", None, None))
        self.assertEqual(next_event(r), ("heartbeat", None, None))
        self.release("sse")
        self.assertEqual(next_data_event(r), ("chunk", "1", '"c1"'))
        c.close()  # and the handler is cancelled at its next chunk
        wait_idle(self.s, "tok")

    def test_sse_close_cancels_the_request_in_the_worker(self):
        wait_idle(self.s, "tok")
        before = self.s.stats()
        marker = self.file("marker")
        c = self.s.conn()
        c.request("POST", "/v1/pools/tok/messages?stream=1",
                  body=json.dumps({"type": "forever", "data": {"ms": 5, "marker": marker}}))
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        for i in range(3):
            self.assertEqual(next_data_event(r), ("chunk", str(i), '"c%d"' % i))
        c.close()  # the peer leaves mid-stream
        wait_for(lambda: os.path.exists(marker), what="the handler's finally block")
        with open(marker) as f:
            self.assertEqual(f.read(), "GeneratorExit")  # the worker was told to stop
        after = self.s.stats()
        self.assertEqual(after["http"]["clientClosed"] - before["http"]["clientClosed"], 1)
        self.assertEqual(after["http"]["responses"]["499"] - before["http"]["responses"].get("499", 0), 1)
        os.unlink(marker)
        wait_idle(self.s, "tok")

    def test_close_seen_while_pipelined_bytes_fill_the_input(self):
        """Bytes sent behind a request being handled wait in the
        connection's bounded input (16 KiB); once it is full reading stops,
        and a close is still seen (EV_CLOSED): the request is cancelled."""
        wait_idle(self.s, "tok")
        before = self.s.stats()
        marker = self.file("marker-full")
        body = json.dumps({"type": "forever", "data": {"ms": 5, "marker": marker}}).encode()
        sock = self.s.raw()
        sock.sendall(b"POST /v1/pools/tok/messages?stream=1 HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        st, _ = read_response_head(sock)
        self.assertEqual(st, 200)
        sock.sendall(b"X" * 40000)  # more than the input buffer takes while the stream runs
        sock.close()
        wait_for(lambda: os.path.exists(marker), what="the handler's finally block")
        with open(marker) as f:
            self.assertEqual(f.read(), "GeneratorExit")
        after = self.s.stats()
        self.assertEqual(after["http"]["clientClosed"] - before["http"]["clientClosed"], 1)
        os.unlink(marker)
        wait_idle(self.s, "tok")

    def test_stream_answer_with_error_is_an_error_event(self):
        wait_idle(self.s, "tok")
        c = self.s.conn()
        c.request("POST", "/v1/pools/tok/messages", headers={"Accept": "text/event-stream"},
                  body=json.dumps({"type": "forever", "timeoutMs": 1000, "data": {"ms": 1, "file": self.file("n2")}}))
        r = c.getresponse()
        events = [e for e in events_of(r.read().decode()) if e[0] != "heartbeat"]
        self.assertEqual(events[0], ("chunk", "0", '"c0"'))
        self.assertEqual([e[0] for e in events], ["chunk", "error"])
        self.assertEqual(json.loads(events[1][2])["error"]["code"], "timeout")
        c.close()
        wait_idle(self.s, "tok")  # its sync worker is replaced

    def test_get_pools_stats_health_and_metrics(self):
        c = self.s.conn()
        c.request("GET", "/v1/pools")
        r = c.getresponse()
        pools = json.loads(r.read())["pools"]
        self.assertEqual(sorted(p["name"] for p in pools), ["brk", "main", "tight", "tok"])
        c.request("GET", "/v1/pools/tok/stats")
        r = c.getresponse()
        self.assertEqual(json.loads(r.read())["poolSize"], 1)
        for path, want in (("/healthz", 200), ("/readyz", 200), ("/v1/pools/nosuch/stats", 404)):
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, want, path)
        c.request("GET", "/metrics")
        r = c.getresponse()
        text = r.read().decode()
        self.assertRegex(text, r'agentpool_http_responses_total\{code="200"\} [1-9]')
        self.assertIn("agentpool_http_connections ", text)
        c.close()

    def test_unix_listener_and_curl(self):
        curl = shutil.which("curl")
        self.assertIsNotNone(curl, "curl is a test package (./bootstrap)")
        out = subprocess.run([curl, "-s", "--unix-socket", self.s.http_sock, "-d", '{"type":"echo","data":"u"}',
                              "http://localhost/v1/pools/main/messages"], capture_output=True, text=True,
                             timeout=DEADLINE)
        self.assertEqual(json.loads(out.stdout), {"ok": True, "result": "u"})
        wait_idle(self.s, "tok")
        out = subprocess.run([curl, "-s", "-N", "-H", "Accept: text/event-stream", "-d",
                              '{"type":"forever","timeoutMs":1000,"data":{"ms":1,"file":"%s"}}' % self.file("n3"),
                              "http://127.0.0.1:%d/v1/pools/tok/messages" % self.s.port],
                             capture_output=True, text=True, timeout=DEADLINE)
        events = [e for e in events_of(out.stdout) if e[0] != "heartbeat"]
        self.assertEqual([e[:2] for e in events], [("chunk", "0"), ("error", None)], out.stdout)
        wait_idle(self.s, "tok")
        u = UnixHTTPConnection(self.s.http_sock)
        st, _, body = post(u, "/v1/messages", {"type": "echo", "data": 3})
        self.assertEqual((st, body), (200, {"ok": True, "result": 3}))
        u.close()


class Lifecycle(unittest.TestCase):
    def test_drain_answers_running_requests_and_refuses_new_ones(self):
        with tempfile.TemporaryDirectory() as d, HTTPServer({}, agent=HTTPAGENT, workers=2) as s:
            hold = s.conn()
            hold.request("POST", "/v1/messages", body=json.dumps({"type": "wait", "data": {"file": d + "/go"}}))
            wait_for(lambda: s.stats()["busy"] == 1, what="the worker busy")
            keep = s.conn()
            st, _, _ = post(keep, "/v1/messages", {"type": "echo"})
            self.assertEqual(st, 200)
            s.signal(signal.SIGTERM)
            wait_for(lambda: "shutting down" in s.log(), what="the drain to start")
            st, r, body = post(keep, "/v1/messages", {"type": "echo"})
            self.assertEqual((st, body["error"]["code"]), (503, "shutting_down"))
            self.assertEqual(r.getheader("Connection"), "close")
            with open(d + "/go", "w") as f:
                f.write("go")
            r = hold.getresponse()
            self.assertEqual((r.status, json.loads(r.read())), (200, {"ok": True, "result": "done"}))
            self.assertEqual(s.wait_exit(), 0)

    def test_reload_drains_http_requests_on_the_old_workers(self):
        with tempfile.TemporaryDirectory() as d, HTTPServer({}, agent=HTTPAGENT, workers=1) as s:
            hold = s.conn()
            hold.request("POST", "/v1/messages", body=json.dumps({"type": "wait", "data": {"file": d + "/go"}}))
            wait_for(lambda: s.stats()["busy"] == 1, what="the worker busy")
            old = s.worker_pids()
            s.signal(signal.SIGHUP)
            wait_for(lambda: "reload" in s.log(), what="the reload to start")
            with open(d + "/go", "w") as f:
                f.write("go")
            r = hold.getresponse()
            self.assertEqual((r.status, json.loads(r.read())), (200, {"ok": True, "result": "done"}))
            wait_for(lambda: s.worker_pids() and not set(s.worker_pids()) & set(old), what="the worker replaced")
            st, _, body = post(hold, "/v1/messages", {"type": "echo", "data": 1})  # the same keep-alive connection
            self.assertEqual((st, body), (200, {"ok": True, "result": 1}))
            hold.close()

    def test_max_connections_is_shared_with_the_socket(self):
        with HTTPServer({"maxConnections": 2, "adminReserveConnections": 0}, agent=HTTPAGENT, workers=1) as s:
            nd = s.client()
            first = s.conn()
            st, _, _ = post(first, "/v1/messages", {"type": "echo"})
            self.assertEqual(st, 200)
            over = s.conn()
            st, r, body = post(over, "/v1/messages", {"type": "echo"})
            self.assertEqual((st, body["error"]["code"]), (503, "too_many_connections"))
            self.assertEqual(r.getheader("Connection"), "close")
            over.close()
            first.close()
            nd.close()
            wait_for(lambda: s.stats()["http"]["connections"] == 0, what="the HTTP connections closed")
            again = s.conn()
            st, _, _ = post(again, "/v1/messages", {"type": "echo"})
            self.assertEqual(st, 200)
            again.close()

    def test_tcp_listener_needs_keys_or_httpauth_none(self):
        s = Server(config={"httpListen": ["127.0.0.1:0"]}, wait_ready=False)
        try:
            s.start()
            self.assertNotEqual(s.wait_exit(), 0)
            self.assertIn('httpListen has a TCP address and httpAuth is "keys", but no apiKeysFile is set', s.log())
        finally:
            s.close()
        with tempfile.TemporaryDirectory() as d, Server(config={"httpListen": ["unix:" + d + "/h.sock"]}) as s:
            self.assertIn("HTTP front door on unix:", s.log())
            self.assertNotIn("httpAuth is \"none\"", s.log())
        with HTTPServer({}) as s:
            self.assertIn('httpAuth is "none"', s.log())  # the warning at start


    def test_a_peer_that_sends_and_never_reads_stops_being_read(self):
        """Pipelined requests whose answers the peer never reads: once
        256 KiB of answers wait unsent (HTTP1_OUT_HIGH), no further request
        is parsed or read, so the master holds a bounded amount for it and
        the peer's own writes block; it is served again once it reads."""
        with HTTPServer({}, agent=HTTPAGENT, workers=1) as s:
            body = json.dumps({"type": "echo", "data": "x" * 60000}).encode()
            req = (b"POST /v1/messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            sock = socket.socket(socket.AF_UNIX)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(s.http_sock)
            sock.settimeout(5)  # ends the sending once the server stops taking bytes (it never resumes unread)
            sent = 0
            try:
                for _ in range(2000):  # 120 MB, were every request taken (the master held them all before)
                    sock.sendall(req)
                    sent += 1
            except socket.timeout:
                pass
            accepted = s.stats()["messages"]["accepted"]
            self.assertLess(sent, 200, "the server kept reading a peer that does not read")
            self.assertLessEqual(accepted, 64, accepted)
            f = sock.makefile("rb")
            for _ in range(3):
                st, got = read_full_response(f)
                self.assertEqual((st, json.loads(got)["ok"]), (200, True))
            f.close()
            sock.close()

    def test_http_answers_unsent_count_in_max_buffered_bytes(self):
        """Many peers that pipeline requests and never read: their unsent
        answers count in maxBufferedBytes with the socket's, and past it a
        connection with answers unsent parses no further request, so
        together they hold about the budget plus an answer each (each
        alone would hold 256 KiB); a peer that reads is still served."""
        budget, conns, answer = 1024 * 1024, 12, 60000
        with HTTPServer({"maxBufferedBytes": budget}, agent=HTTPAGENT, workers=1) as s:
            peers = NonReaders(s, conns, answer)

            def send_more_then_look():
                peers.more()
                b = s.stats()["buffered"]
                return b if b["bytes"] >= budget else None
            st = wait_for(send_more_then_look, interval=0.05,
                          what="the HTTP connections' unsent answers counted past maxBufferedBytes")
            slack = conns * 2 * (answer + 4096)  # an answer in flight per connection when the budget passed
            self.assertLessEqual(st["bytes"], budget + slack, st)
            self.assertLessEqual(st["highWatermark"], budget + slack, st)
            c = s.conn()  # a peer with nothing unsent is still served
            st2, _, got = post(c, "/v1/messages", {"type": "echo", "data": 1})
            self.assertEqual((st2, got["result"]), (200, 1), got)
            c.close()
            self.assertLessEqual(s.stats()["buffered"]["highWatermark"], budget + slack)
            peers.close()
            wait_for(lambda: s.stats()["buffered"]["bytes"] == 0, what="the closed peers' answers let go")

    def test_a_socket_client_paused_for_http_answers_reads_again_when_they_go(self):
        """A socket client paused past maxBufferedBytes (its own answers
        unread, the HTTP peers' unsent ones making the total) reads again
        once the HTTP peers go and the total is back under the budget,
        though its own answers are still unread.  Watched over HTTP
        (GET /stats): a socket client's write would release it anyway."""
        budget, conns, answer = 1024 * 1024, 12, 60000
        with HTTPServer({"maxBufferedBytes": budget}, agent=HTTPAGENT, workers=1) as s:
            def stats():
                c = s.conn()
                c.request("GET", "/stats")
                r = c.getresponse()
                got = json.loads(r.read())
                c.close()
                return got
            line = b'{"id":%d,"type":"echo","data":"' + b"x" * answer + b'"}\n'
            me = socket.socket(socket.AF_UNIX)
            me.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            me.connect(s.path)
            me.sendall(b"".join(line % k for k in range(8)))  # 480 kB of answers it never reads
            wait_for(lambda: stats()["types"].get("echo", {}).get("ok", 0) >= 8, what="its answers written")
            peers = NonReaders(s, conns, answer)

            def send_more_then_look():
                peers.more()
                return stats()["buffered"]["bytes"] >= budget
            wait_for(send_more_then_look, interval=0.05, what="the HTTP peers' answers past maxBufferedBytes")
            me.sendall(line % 99)  # read past the budget with answers unread: it is paused
            wait_for(lambda: stats()["buffered"]["budgetPaused"] == 1, what="the socket client paused")
            peers.close()
            st = wait_for(lambda: (lambda b: b if b["bytes"] < budget and b["budgetPaused"] == 0 else None)(
                stats()["buffered"]), what="the socket client reading again under the budget")
            self.assertGreater(st["bytes"], 0, st)  # its own answers are still unread
            me.close()


class Keys(unittest.TestCase):
    """httpAuth "keys" (the default) on TCP: the Bearer key is checked by
    the same gate as the socket's "key" member."""

    def keys_server(self):
        d = tempfile.mkdtemp(prefix="aphttpkeys-")
        self.addCleanup(shutil.rmtree, d, True)
        keys = os.path.join(d, "keys.jsonl")
        lines = [{"id": "all", "secret": "s3cret-all", "pools": "*"},
                 {"id": "tenant-b", "secret": "s3cret-other", "pools": ["other"]},
                 {"id": "slow", "secret": "s3cret-slow", "pools": "*", "ratePerMinute": 1}]
        with open(keys, "w") as f:
            for l in lines:
                f.write(json.dumps({"id": l["id"], "sha256": hashlib.sha256(l["secret"].encode()).hexdigest(),
                                    "pools": l["pools"], **({"ratePerMinute": l["ratePerMinute"]}
                                                            if "ratePerMinute" in l else {})}) + "\n")
        os.chmod(keys, 0o600)
        return HTTPServer({"httpAuth": "keys", "apiKeysFile": keys,
                           "pools": {"default": pool(), "other": pool()}})

    def test_bearer_keys_401_403_429_and_usage_under_the_key(self):
        with self.keys_server() as s:
            c = s.conn()
            st, h, body = post(c, "/v1/messages", {"type": "echo", "data": 1})
            self.assertEqual(st, 401, body)
            self.assertEqual(h.getheader("WWW-Authenticate"), "Bearer")
            st, h, body = post(c, "/v1/messages", {"type": "echo", "data": 1}, {"Authorization": "Bearer nope"})
            self.assertEqual((st, body["error"]["code"]), (401, "unauthorized"), body)
            st, h, body = post(c, "/v1/messages", {"type": "echo", "data": 1}, {"Authorization": "Bearer s3cret-al"})
            self.assertEqual(st, 401, body)  # a prefix of a real key is not that key
            st, h, body = post(c, "/v1/messages", {"type": "echo", "data": 2}, {"Authorization": "Bearer s3cret-all"})
            self.assertEqual((st, body.get("result")), (200, 2), body)
            st, h, body = post(c, "/v1/messages", {"type": "echo", "data": 3}, {"Authorization": "Bearer s3cret-other"})
            self.assertEqual((st, body["error"]["code"]), (403, "forbidden"), body)
            st, h, body = post(c, "/v1/pools/other/messages", {"type": "echo", "data": 4},
                               {"Authorization": "Bearer s3cret-other"})
            self.assertEqual((st, body.get("result")), (200, 4), body)
            st, h, body = post(c, "/v1/messages", {"type": "echo"}, {"Authorization": "Bearer s3cret-slow"})
            self.assertEqual(st, 200, body)
            st, h, body = post(c, "/v1/messages", {"type": "echo"}, {"Authorization": "Bearer s3cret-slow"})
            self.assertEqual((st, body["error"]["code"]), (429, "rate_limited"), body)
            self.assertTrue(int(h.getheader("Retry-After")) >= 1, h)
            c.request("GET", "/v1/pools/default/stats", headers={"Authorization": "Bearer s3cret-other"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 403)
            c.request("GET", "/v1/pools", headers={"Authorization": "Bearer s3cret-other"})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            c.close()
            rows = s.stats()["usage"]["rows"]
            self.assertTrue(any(r.get("key") == "all" and r.get("pool") == "default" and r.get("requests") == 1
                                for r in rows), rows)
            self.assertNotIn("s3cret", s.log())


if __name__ == "__main__":
    main()
