# SPDX-License-Identifier: BSD-2-Clause
"""Bad and hostile clients against the real agentpoold.

Each test plays one misbehaving client (binary and invalid UTF-8 lines, a
100 MB line, half a line then gone, a client that never reads, 1,000
clients at once, more clients than maxConnections, a client that leaves
with queued messages) and checks the documented answer, that nothing
leaks (pool.stats counters return to idle), and - after every test - that
a separate healthy client connected from the start is still served.
No test asserts a duration: conditions are polled with generous deadlines.
"""
import json
import os
import random
import socket
import threading
import unittest

from harness import (SRCDIR, Client, Gate, Server, server_stats, vm_rss_kb, wait_for, wait_stats)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")


def raw_id(line):
    """The id a request line starts with ({"id":"x",...})."""
    return json.loads(line[len(b'{"id":'):line.index(b",")])


def recv_strict(client):
    line = client.recv_line()
    return line, json.loads(line.decode("utf-8"))


class BadInputTest(unittest.TestCase):
    """One echo server (2 workers, default limits) and one healthy client
    for the whole class."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(workers=2).start()
        cls.healthy = cls.server.client()

    @classmethod
    def tearDownClass(cls):
        cls.healthy.close()
        cls.server.close()

    def tearDown(self):
        self.assertIsNone(self.server.proc.poll(), "agentpoold exited:\n" + self.server.log())
        self.assertEqual(self.healthy.call("echo", {"still": "served"}), {"still": "served"})
        self.assertTrue(self.healthy.call("pool.ping")["pong"])

    def wait_idle(self, connections):
        """Waits until no message is queued, held, running or buffered and
        `connections` connections are open (the healthy client, the stats
        connection itself, and whatever the test still holds)."""
        return wait_stats(self.server, lambda s: s["connections"] == connections and s["inFlight"] == 0
                          and s["queue"]["depth"] == 0 and s["messages"]["held"] == 0
                          and s["messages"]["pendingBytes"] == 0, what="an idle pool")

    def test_zero_timeout_and_infinite_numbers_are_bad_request_at_the_edge(self):
        # Refused by the master with the exact reason, never sent to a
        # worker (which would read 1e999999999999 as infinity and fail).
        cases = [
            (b'{"id":"t0","type":"echo","timeoutMs":0}',
             "timeoutMs must be a positive integer (milliseconds)"),
            (b'{"id":"t1","type":"echo","timeoutMs":-0}',
             "timeoutMs must be a positive integer (milliseconds)"),
            (b'{"id":"n1","type":"echo","data":1e999999999999}',
             "number out of range at byte 32 (beyond a double's largest, about 1.8e308)"),
            (b'{"id":"n2","type":"echo","data":{"x":[-1.8e308]}}',
             "number out of range at byte 38 (beyond a double's largest, about 1.8e308)"),
            (b'{"id":"n3","type":"echo","timeoutMs":1e999999999999}',
             "number out of range at byte 37 (beyond a double's largest, about 1.8e308)"),
        ]
        before = server_stats(self.server)
        with self.server.client() as c:
            for line, message in cases:
                with self.subTest(line=line):
                    c.send_raw(line + b"\n")
                    _, resp = recv_strict(c)
                    self.assertEqual(resp["error"], {"code": "bad_request", "message": message})
                    self.assertEqual(resp["id"], raw_id(line))
            # what a double can hold, and integers of any size, still pass
            self.assertEqual(c.call("echo", {"x": 1.7976931348623157e308}), {"x": 1.7976931348623157e308})
            c.send_raw(b'{"id":"big","type":"echo","data":123456789012345678901234567890,"timeoutMs":1}\n')
            self.assertEqual(c.recv()["id"], "big")
        after = server_stats(self.server)
        self.assertEqual(after["errors"]["bad_request"] - before["errors"]["bad_request"], len(cases))
        self.assertEqual(after["messages"]["accepted"] - before["messages"]["accepted"], 2)

    def test_binary_and_invalid_utf8_lines_are_bad_request(self):
        rnd = random.Random(1234)
        noise = bytes(b for b in (rnd.randrange(256) for _ in range(8192)) if b not in b"\n\r\t ")
        lines = [
            b"\xff\xfe\xfd",
            b"\x00\x01\x02binary\x00",
            noise,
            b'{"id":"u1","type":"echo","data":"\xc3\x28"}',           # bad continuation byte
            b'{"id":"u2","type":"echo","data":"\xc0\xaf"}',           # overlong encoding
            b'{"id":"u3","type":"echo","data":"\xe0\x80\xaf"}',       # overlong, 3 bytes
            b'{"id":"u4","type":"echo","data":"\xed\xa0\x80"}',       # UTF-16 surrogate
            b'{"id":"u5","type":"echo","data":"\xf4\x90\x80\x80"}',   # above U+10FFFF
            b'{"id":"u6","type":"echo","data":"\xe2\x82"}',           # truncated sequence
            b'{"id":"u7","type":"echo","data":"\x80"}',               # lone continuation byte
            b'{"id":"u8","type":"echo","data":"\xf8\x88\x80\x80\x80"}',  # 5-byte form
            b'{"id":"\xff","type":"echo"}',                           # in the id
            b'{"id":"u9","type":"ech\xff"}',                          # in the type
            b'{"id":"u10","type":"echo","\xfe":1}',                   # in an ignored member's name
            b'{"id":"u11","type":"echo","x":"\xfe"}',                 # in an ignored member's value
            b'{"id":"u12","type":"echo"}\xff',                        # after the object
            b'{"id":"u13","type":"echo","data":"a\x00b"}',            # raw NUL in a string
        ]
        before = server_stats(self.server)["errors"]["bad_request"]
        with self.server.client() as c:
            for line in lines:
                with self.subTest(line=line[:40]):
                    c.send_raw(line + b"\n")
                    got, resp = recv_strict(c)  # the answer itself is valid UTF-8 JSON
                    self.assertFalse(resp["ok"], got)
                    self.assertEqual(resp["error"]["code"], "bad_request", got)
            # all of it in one burst too, then a good request: one answer each
            c.send_raw(b"".join(l + b"\n" for l in lines) + b'{"id":"good","type":"echo","data":"\xc3\xa9"}\n')
            for _ in lines:
                _, resp = recv_strict(c)
                self.assertEqual(resp["error"]["code"], "bad_request")
            _, resp = recv_strict(c)
            self.assertEqual(resp, {"id": "good", "ok": True, "result": "\u00e9"})
        after = server_stats(self.server)["errors"]["bad_request"]
        self.assertEqual(after - before, 2 * len(lines))

    def test_hundred_megabyte_line_is_one_too_large_and_memory_stays_bounded(self):
        before = server_stats(self.server)["errors"]["too_large"]
        pid = self.server.proc.pid
        base_kb = vm_rss_kb(pid)
        chunk = b"a" * (1 << 20)
        with self.server.client() as c:
            err = []

            def send_big():
                try:
                    c.sock.sendall(b'{"id":"big","type":"echo","data":"')
                    for _ in range(100):
                        c.sock.sendall(chunk)
                    c.sock.sendall(b'"}\n')
                except OSError as e:
                    err.append(e)

            t = threading.Thread(target=send_big, daemon=True)
            t.start()
            peak_kb = base_kb
            line, resp = recv_strict(c)
            self.assertEqual(resp["error"]["code"], "too_large", line)
            self.assertIsNone(resp["id"])
            while t.is_alive():
                peak_kb = max(peak_kb, vm_rss_kb(pid))
                t.join(0.005)
            self.assertEqual(err, [])
            peak_kb = max(peak_kb, vm_rss_kb(pid))
            # the next line after the newline is served: nothing else was answered before it
            self.assertEqual(c.request("echo", {"after": "big"})["result"], {"after": "big"})
            # growth, not the absolute size: an ASan build starts near 40 MB
            # and its 16 MB free quarantine counts; 100 MB were sent
            self.assertLess(peak_kb - base_kb, 32 * 1024,
                            "agentpoold RSS rose to %d kB (from %d kB)" % (peak_kb, base_kb))
        after = server_stats(self.server)["errors"]["too_large"]
        self.assertEqual(after - before, 1)

    def test_half_a_line_then_disconnect_is_logged_and_nothing_leaks(self):
        # (the server is shared: a client that never read, in another test,
        # had its waiting messages cancelled when it left)
        cancelled0 = self.wait_idle(connections=2)["messages"]["cancelled"]
        with self.server.client() as c:
            c.send_raw(b'{"id":"half","type":"echo","data":"never fin')
        wait_for(lambda: "middle of a line" in self.server.log(), what="the half line logged")
        s = self.wait_idle(connections=2)
        self.assertEqual(s["messages"]["cancelled"], cancelled0)

    def test_client_that_never_reads_does_not_stop_others(self):
        s0 = server_stats(self.server)
        # ~24 MB of requests and as much in answers: far past what the
        # server buffers for one connection (1 MiB of answers) plus the
        # kernel's socket buffers, so the server must stop reading it.
        payload = b"".join(b'{"id":%d,"type":"echo","data":"%s"}\n' % (i, b"x" * 1000) for i in range(24000))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.server.path)
        err = []

        def flood():
            try:
                sock.sendall(payload)
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=flood, daemon=True)
        t.start()
        try:
            wait_stats(self.server, lambda s: s["messages"]["accepted"] - s0["messages"]["accepted"] >= 1000,
                       what="the flood being read")
            # others are served meanwhile, by the master and by the workers
            with self.server.client() as other:
                for i in range(20):
                    self.assertEqual(other.call("echo", i), i)
                self.assertTrue(other.call("pool.ping")["pong"])
                self.assertEqual(other.stats()["state"], "ready")
            # backpressure: the server cannot have taken all of it
            self.assertTrue(t.is_alive(), "the server read 24 MB from a client that reads nothing")
            self.assertLess(vm_rss_kb(self.server.proc.pid), 100 * 1024)
        finally:
            sock.shutdown(socket.SHUT_RDWR)
            t.join(60)
            sock.close()
        self.assertFalse(t.is_alive())
        self.wait_idle(connections=2)

    def test_thousand_clients_at_once_each_answered(self):
        n = 1000
        socks = []
        try:
            # connect() on a socket with a timeout is non-blocking: it fails
            # with EAGAIN instead of waiting when the listen backlog
            # (listenBacklog, default 1024) is full, so all 1,000 must fit.
            for _ in range(n):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(60)
                try:
                    s.connect(self.server.path)
                except BlockingIOError:
                    s.close()
                    self.fail("connect() number %d failed with EAGAIN: the server's listen backlog is smaller "
                              "than listenBacklog (1024)" % (len(socks) + 1))
                socks.append(s)
            for i, s in enumerate(socks):
                s.sendall(b'{"id":%d,"type":"pool.ping"}\n' % i)
            for i, s in enumerate(socks):
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "connection %d closed without an answer" % i)
                    buf += chunk
                resp = json.loads(buf)
                self.assertEqual(resp["id"], i)
                self.assertTrue(resp["ok"], resp)
            st = wait_stats(self.server, lambda s: s["connections"] == n + 2,
                            what="every connection counted (plus the healthy and the stats one)")
            self.assertEqual(st["connectionsTotal"]["rejected"], 0)
        finally:
            for s in socks:
                s.close()
        self.wait_idle(connections=2)

    def test_client_leaving_with_queued_messages_cancels_them(self):
        with Server(agent="aptest_agents:GateLogAgent", workers=1, args=["--python-path", AGENTS_DIR]) as srv, \
                Gate(srv.tmp.name) as gate:
            log = os.path.join(srv.tmp.name, "ran.log")
            a = srv.client()
            for i in range(6):
                a.send({"id": i, "type": "work", "data": gate.data(i, log=log)})
            wait_stats(srv, lambda s: s["inFlight"] == 1 and s["queue"]["depth"] == 5, what="1 running, 5 queued")
            a.close()
            s = wait_stats(srv, lambda s: s["messages"]["cancelled"] == 5 and s["queue"]["depth"] == 0
                           and s["connections"] == 1, what="the queued messages cancelled")
            self.assertEqual(s["messages"]["droppedResults"], 0)
            gate.release()
            s = wait_stats(srv, lambda s: s["messages"]["droppedResults"] == 1 and s["inFlight"] == 0,
                           what="the running one's result dropped")
            # a later message from another client runs after anything that
            # could still have been queued: the log shows only 0, then it
            with srv.client() as b:
                self.assertEqual(b.call("work", gate.data(99, log=log)), {"seq": 99})
            with open(log) as f:
                self.assertEqual(f.read().split(), ["0", "99"])
            s = server_stats(srv)
            self.assertEqual(s["messages"]["cancelled"], 5)
            self.assertEqual(s["messages"]["droppedResults"], 1)
            self.assertEqual(s["messages"]["pendingBytes"], 0)


class MaxConnectionsTest(unittest.TestCase):

    def test_connection_over_max_connections_gets_too_many_connections(self):
        with Server(workers=1, args=["--max-connections", "10"]) as srv:
            # the harness's readiness probe has gone; wait until it is no longer counted
            wait_for(lambda: self._count(srv) == 1, what="only the probe connection open")
            clients = []
            try:
                for i in range(10):
                    c = srv.client()
                    clients.append(c)
                    self.assertTrue(c.call("pool.ping")["pong"])
                extra = Client(srv.path)
                try:
                    line = extra.recv_line()
                    resp = json.loads(line)
                    self.assertEqual(resp["ok"], False)
                    self.assertIsNone(resp["id"])
                    self.assertEqual(resp["error"]["code"], "too_many_connections")
                    with self.assertRaises((ConnectionError, OSError)):
                        extra.recv_line()
                finally:
                    extra.close()
                st = clients[0].stats()
                self.assertEqual(st["connections"], 10)
                self.assertEqual(st["connectionsTotal"]["rejected"], 1)
                # the ten still work
                for c in clients:
                    self.assertTrue(c.call("pool.ping")["pong"])
                # a freed place is taken again
                clients.pop().close()
                wait_for(lambda: self._ping_ok(srv), what="a new connection accepted after one closed")
            finally:
                for c in clients:
                    c.close()

    def test_a_refused_client_that_sent_requests_first_still_reads_the_refusal(self):
        # Closing over unread input would reset the connection and the
        # client would see ECONNRESET instead of the line (refuse.c).
        with Server(workers=1, args=["--max-connections", "1"]) as srv:
            wait_for(lambda: self._count(srv) == 1 or self._count(srv) == 0, what="the probe gone")
            with srv.client() as held:
                self.assertTrue(held.call("pool.ping")["pong"])
                for i in range(5):
                    extra = Client(srv.path)
                    try:
                        extra.send_raw(b'{"id":1,"type":"echo","data":1}\n' * 200)
                        resp = json.loads(extra.recv_line())
                        self.assertEqual(resp["error"]["code"], "too_many_connections", resp)
                        with self.assertRaises(ConnectionError):  # then a clean EOF
                            extra.recv_line()
                    finally:
                        extra.close()

    def test_a_refused_client_that_pipelined_a_megabyte_still_reads_the_refusal(self):
        # The linger drains for its time, not a byte count: 1 MB sent
        # before reading is read and dropped, and the line still arrives.
        with Server(workers=1, args=["--max-connections", "1"]) as srv:
            wait_for(lambda: self._count(srv) == 1 or self._count(srv) == 0, what="the probe gone")
            with srv.client() as held:
                self.assertTrue(held.call("pool.ping")["pong"])
                extra = Client(srv.path)
                try:
                    line = b'{"id":1,"type":"echo","data":"%s"}\n' % (b"x" * 990)
                    payload = line * (1024 * 1024 // len(line) + 1)
                    self.assertGreater(len(payload), 1024 * 1024)
                    extra.sock.sendall(payload)  # the whole megabyte, before reading anything
                    resp = json.loads(extra.recv_line())
                    self.assertEqual(resp["error"]["code"], "too_many_connections", resp)
                    with self.assertRaises(ConnectionError):  # then a clean EOF
                        extra.recv_line()
                finally:
                    extra.close()

    @staticmethod
    def _count(srv):
        try:
            return server_stats(srv)["connections"]
        except (OSError, KeyError, ValueError):
            return None

    @staticmethod
    def _ping_ok(srv):
        try:
            with srv.client() as c:
                c.send({"id": "probe", "type": "pool.ping"})
                resp = c.recv()
                return resp["id"] == "probe" and resp["ok"]
        except (OSError, KeyError, ValueError):
            return False


if __name__ == "__main__":
    unittest.main(verbosity=2)
