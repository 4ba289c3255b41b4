# SPDX-License-Identifier: BSD-2-Clause
"""test_halfclose.py - half-close is not leaving, through the real agentpoold.

A client that sends its requests and then shuts its writing side
(shutdown(SHUT_WR), as `nc -N` and socat do) still reads: every request
it sent (running, queued, streams) is answered, a last line without its
newline too, and then the server closes the connection (the client reads
EOF), counted in connectionsTotal.halfClosed; through a shutdown too, and
clientWriteTimeout still closes one that does not read.  A peer that is really gone
(a full close, before or after a half-close) still has its running work
cancelled.  socat is used as an outside client, and `agentpoolctl send <
file` keeps working (it does not half-close: it waits for its answers).
Real Python workers (agents/cancelagent.py, agents/streamer.py) hold
requests until a file exists, and the file is created only once the
server has counted the half-close, so nothing depends on a duration.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLCTL, DEADLINE, SRCDIR, Server, main, server_stats,  # noqa: E402
                     wait_for, wait_stats)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
SYNC = "cancelagent:CancelAgent"
ASYNC = "cancelagent:AsyncCancelAgent"


def pool(agent=SYNC, model="sync", workers=1, args=()):
    return Server(agent=agent, workers=workers,
                  args=["--python-path", AGENTS_DIR, "--worker-model", model, "--max-messages-per-worker", "0"]
                  + list(args))


def connect(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(DEADLINE)
    sock.connect(path)
    return sock


def read_to_eof(sock):
    """Every line the server writes until it closes: (objects, trailing bytes)."""
    data = b""
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    lines = data.split(b"\n")
    return [json.loads(line) for line in lines[:-1]], lines[-1]


def line(obj):
    return json.dumps(obj).encode() + b"\n"


def wait_half_closed(s, n=1):
    return wait_stats(s, lambda st: st["connectionsTotal"].get("halfClosed") == n,
                      what="the server to count %d half-close(s)" % n)


def gate_paths(s, name):
    d = s.tmp.name
    return (os.path.join(d, name + ".gate"), os.path.join(d, name + ".started"),
            os.path.join(d, name + ".marker"))


def release(path):
    with open(path, "w"):
        pass


def read(path):
    with open(path) as f:
        return f.read()


class HalfClose(unittest.TestCase):
    def test_pipelined_requests_then_half_close_are_all_answered_then_eof(self):
        # one sync worker: the first request runs, the others wait in the queue
        with pool() as s:
            gate, started, _ = gate_paths(s, "g")
            sock = connect(s.path)
            reqs = [{"id": i, "type": "wait", "data": {"file": gate, "started": started, "seq": i}} for i in range(4)]
            reqs.append({"id": "e", "type": "echo", "data": {"x": 1}})
            reqs.append({"id": "p", "type": "pool.ping"})
            sock.sendall(b"".join(line(r) for r in reqs))
            wait_for(lambda: os.path.exists(started), what="the first request to run")
            sock.shutdown(socket.SHUT_WR)
            wait_half_closed(s)
            release(gate)
            got, rest = read_to_eof(sock)
            sock.close()
            self.assertEqual(rest, b"")
            by_id = {r["id"]: r for r in got}
            self.assertEqual(len(got), len(reqs), got)  # each exactly once
            for i in range(4):
                self.assertEqual(by_id[i]["result"], {"done": True, "seq": i}, by_id[i])
            self.assertEqual(by_id["e"]["result"], {"x": 1})
            self.assertTrue(by_id["p"]["ok"], by_id["p"])
            st = wait_stats(s, lambda st: st["connections"] == 1, what="the half-closed connection to be closed")
            self.assertEqual(st["errors"].get("cancelled", 0), 0, st)
            self.assertEqual(st["connectionsTotal"]["halfClosed"], 1)

    def test_half_close_with_nothing_in_flight_closes_at_once(self):
        with pool() as s:
            sock = connect(s.path)
            sock.sendall(line({"id": 1, "type": "pool.ping"}))
            self.assertEqual(json.loads(sock.makefile("rb").readline())["id"], 1)
            sock.shutdown(socket.SHUT_WR)
            got, rest = read_to_eof(sock)
            sock.close()
            self.assertEqual((got, rest), ([], b""))
            self.assertEqual(server_stats(s)["connectionsTotal"]["halfClosed"], 1)

    def test_last_line_without_newline_is_answered(self):
        with pool() as s:
            gate, started, _ = gate_paths(s, "g")
            sock = connect(s.path)
            sock.sendall(line({"id": "a", "type": "wait", "data": {"file": gate, "started": started, "seq": "a"}}) +
                         json.dumps({"id": "b", "type": "echo", "data": "last"}).encode())
            wait_for(lambda: os.path.exists(started), what="the first request to run")
            sock.shutdown(socket.SHUT_WR)
            wait_half_closed(s)
            release(gate)
            got, rest = read_to_eof(sock)
            sock.close()
            self.assertEqual(rest, b"")
            self.assertEqual([(r["id"], r["result"]) for r in got], [("a", {"done": True, "seq": "a"}), ("b", "last")])

    def test_stream_then_half_close_gets_every_chunk_and_the_final_line(self):
        with pool(agent="streamer:AsyncStreamer", model="async", args=["--concurrency", "8"]) as s:
            gate, _, _ = gate_paths(s, "g")
            sock = connect(s.path)
            sock.sendall(b"".join(line({"id": i, "type": "quiet", "stream": True, "data": {"file": gate}})
                                  for i in range(2)))
            sock.shutdown(socket.SHUT_WR)
            wait_half_closed(s)
            release(gate)
            got, rest = read_to_eof(sock)
            sock.close()
            self.assertEqual(rest, b"")
            for i in range(2):
                mine = [r for r in got if r["id"] == i]
                self.assertEqual(mine[0], {"id": i, "chunk": "late", "seq": 0}, got)
                self.assertEqual(len(mine), 2, got)
                self.assertTrue(mine[1]["ok"], got)
            st = server_stats(s)
            self.assertEqual(st["streams"]["ended"]["ok"], 2, st)

    def test_full_close_while_running_still_cancels_it(self):
        with pool(agent=ASYNC, model="async") as s:
            gate, started, marker = gate_paths(s, "g")
            sock = connect(s.path)
            sock.sendall(line({"id": 1, "type": "wait",
                               "data": {"file": gate, "started": started, "marker": marker, "seq": 1}}))
            wait_for(lambda: os.path.exists(started), what="the request to run")
            sock.close()
            wait_for(lambda: os.path.exists(marker), what="the handler to end")
            self.assertEqual(read(marker), "CancelledError")
            st = wait_stats(s, lambda st: st["inFlight"] == 0, what="the slot to be freed")
            self.assertEqual(st["connectionsTotal"]["halfClosed"], 0, st)

    def test_full_close_after_half_close_cancels_what_runs(self):
        # the hang-up is seen on the tick, not only when an answer is written
        with pool(agent=ASYNC, model="async") as s:
            gate, started, marker = gate_paths(s, "g")
            sock = connect(s.path)
            sock.sendall(line({"id": 1, "type": "wait",
                               "data": {"file": gate, "started": started, "marker": marker, "seq": 1}}))
            wait_for(lambda: os.path.exists(started), what="the request to run")
            sock.shutdown(socket.SHUT_WR)
            wait_half_closed(s)
            sock.close()
            wait_for(lambda: os.path.exists(marker), what="the handler to be cancelled")
            self.assertEqual(read(marker), "CancelledError")
            wait_stats(s, lambda st: st["connections"] == 1 and st["inFlight"] == 0,
                       what="the connection closed and the slot freed")

    def test_half_closed_connection_is_answered_through_shutdown_then_closed(self):
        with pool() as s:
            gate, started, _ = gate_paths(s, "g")
            sock = connect(s.path)
            sock.sendall(line({"id": 1, "type": "wait", "data": {"file": gate, "started": started, "seq": 1}}))
            wait_for(lambda: os.path.exists(started), what="the request to run")
            sock.shutdown(socket.SHUT_WR)
            wait_half_closed(s)
            s.signal(signal.SIGTERM)
            wait_for(lambda: "shutting down" in s.log(), what="the server to start draining")
            release(gate)
            got, rest = read_to_eof(sock)
            sock.close()
            self.assertEqual(([(r["id"], r.get("result")) for r in got], rest), ([(1, {"done": True, "seq": 1})], b""))
            self.assertEqual(s.wait_exit(), 0)

    def test_half_closed_client_that_stops_reading_is_closed_for_client_write_timeout(self):
        srv = Server(agent="bigresult:BigResultAgent", workers=1,
                     args=["--python-path", AGENTS_DIR, "--client-write-timeout", "1000", "--timeout", "0"])
        with srv:
            sock = connect(srv.path)
            try:
                # one answer too big for the socket, then one that waits behind it; never read
                sock.sendall(b'{"id":1,"type":"size","data":{"bytes":%d}}\n{"id":2,"type":"who","data":2}\n'
                             % (2 << 20))
                sock.shutdown(socket.SHUT_WR)
                st = wait_stats(srv, lambda st: st["connectionsTotal"]["writeTimeouts"] == 1,
                                what="the half-closed non-reader to be closed")
                self.assertEqual(st["connectionsTotal"]["halfClosed"], 1, st)
                self.assertEqual(st["connections"], 1, st)  # only this stats connection
            finally:
                sock.close()


class OutsideClients(unittest.TestCase):
    @unittest.skipIf(shutil.which("socat") is None, "socat is not installed (./bootstrap installs it)")
    def test_socat_sends_a_file_half_closes_and_gets_every_answer(self):
        with pool() as s:
            gate, started, _ = gate_paths(s, "g")
            reqs = [{"id": i, "type": "wait", "data": {"file": gate, "started": started, "seq": i}} for i in range(3)]
            path = os.path.join(s.tmp.name, "requests.ndjson")
            with open(path, "wb") as f:
                f.write(b"".join(line(r) for r in reqs))
            with open(path, "rb") as src:
                # -t: how long socat waits for the server after its input ended
                p = subprocess.Popen(["socat", "-t", str(int(DEADLINE)), "-", "UNIX-CONNECT:" + s.path],
                                     stdin=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                wait_half_closed(s)
                release(gate)
                out, err = p.communicate(timeout=DEADLINE)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertEqual(p.returncode, 0, err)
            got = [json.loads(x) for x in out.splitlines()]
            self.assertEqual(sorted((r["id"], r["result"]["seq"]) for r in got), [(i, i) for i in range(3)], got)

    def test_agentpoolctl_send_from_a_file_gets_every_answer(self):
        # agentpoolctl does not half-close: it keeps its socket open until each
        # request has its answer; the answers come after its input has ended
        with pool() as s:
            gate, started, _ = gate_paths(s, "g")
            path = os.path.join(s.tmp.name, "requests.ndjson")
            with open(path, "wb") as f:
                f.write(b"".join(line({"id": i, "type": "wait", "data": {"file": gate, "started": started, "seq": i}})
                                 for i in range(3)))
            with open(path, "rb") as src:
                p = subprocess.Popen([AGENTPOOLCTL, "--socket", s.path, "--timeout", str(int(DEADLINE * 1000)), "send"],
                                     stdin=src, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                wait_for(lambda: os.path.exists(started), what="the first request to run")
                release(gate)
                out, err = p.communicate(timeout=DEADLINE)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertEqual(p.returncode, 0, err)
            got = [json.loads(x) for x in out.splitlines()]
            self.assertEqual([r["id"] for r in got], [0, 1, 2], got)
            self.assertEqual(server_stats(s)["connectionsTotal"]["halfClosed"], 0)


if __name__ == "__main__":
    main()
