# SPDX-License-Identifier: BSD-2-Clause
"""agentpool-slowhttp, the slow HTTP service of bench/compare's fetch50.

It is started on a port the kernel picks with --max-pending 2; each test
speaks HTTP to it over 127.0.0.1 and checks what it answers and counts
(GET /stats): /delay/N answers "ok /delay/N" with Connection: close and
not before N ms (a lower bound, which no load can break); bad paths are
404 and counted; past --max-pending waits a request is refused with 503
and counted; a client that leaves before its answer costs nothing (the
server goes on serving and counts the answer it could not deliver); a bad
option is a usage error; SIGTERM stops it cleanly with its counts.
Nothing here asserts a speed.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import unittest

from harness import BUILDDIR

SLOW = os.path.join(BUILDDIR, "agentpool-slowhttp")


class SlowHTTP:
    def __init__(self, *args):
        self.proc = subprocess.Popen([SLOW] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line + self.proc.stderr.read()
        self.port = int(line.split()[2].split(":")[1])

    def get(self, path, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.getheader("Connection"), r.read().decode()
        finally:
            c.close()

    def stats(self):
        status, _, body = self.get("/stats")
        assert status == 200, body
        return json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def send_raw(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    return s


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


class TestSlowHTTP(unittest.TestCase):
    def setUp(self):
        self.srv = SlowHTTP("--max-pending", "2")

    def tearDown(self):
        self.srv.stop()

    def test_delay_answers_after_the_delay_and_closes(self):
        t0 = time.monotonic()
        status, conn, body = self.srv.get("/delay/50")
        waited = time.monotonic() - t0
        self.assertEqual((status, conn, body), (200, "close", "ok /delay/50"))
        self.assertGreaterEqual(waited, 0.050)
        st = self.srv.stats()
        self.assertEqual((st["served"], st["pending"], st["refused"], st["bad"]), (1, 0, 0, 0))

    def test_bad_paths_are_404_and_counted(self):
        for path in ("/", "/delay/", "/delay/x", "/delay/-1", "/delay/60001", "/other/5"):
            status, conn, _ = self.srv.get(path)
            self.assertEqual((status, conn), (404, "close"), path)
        st = self.srv.stats()
        self.assertEqual((st["bad"], st["served"]), (6, 0))

    def test_past_max_pending_is_503_and_counted(self):
        held = [send_raw(self.srv.port, "/delay/400") for _ in range(2)]
        try:
            self.assertTrue(wait_for(lambda: self.srv.stats()["pending"] == 2))
            status, conn, _ = self.srv.get("/delay/0")
            self.assertEqual((status, conn), (503, "close"))
            self.assertEqual(self.srv.stats()["refused"], 1)
        finally:
            for s in held:
                s.close()

    def test_a_client_that_leaves_early_costs_nothing(self):
        s = send_raw(self.srv.port, "/delay/200")
        self.assertTrue(wait_for(lambda: self.srv.stats()["pending"] == 1))
        s.close()
        self.assertTrue(wait_for(lambda: self.srv.stats()["pending"] == 0))
        self.assertEqual(self.srv.get("/delay/1")[0], 200)
        self.assertIsNone(self.srv.proc.poll())
        self.assertEqual(self.srv.stats()["served"], 2)

    def test_sigterm_stops_with_the_counts(self):
        self.srv.get("/delay/1")
        rc, err = self.srv.stop()
        self.assertEqual(rc, 0, err)
        self.assertIn("slowhttp: served 1, refused 0, bad 0, pending 0", err)


class TestSlowHTTPUsage(unittest.TestCase):
    def test_bad_options_are_usage_errors(self):
        for args in (["--port"], ["--port", "70000"], ["--max-pending", "0"], ["--nope", "1"]):
            r = subprocess.run([SLOW] + args, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("slowhttp: bad option or value", r.stderr)


if __name__ == "__main__":
    unittest.main()
