# SPDX-License-Identifier: BSD-2-Clause
"""test_cancel.py - pool.cancel: a client stops one of its own requests.

Through the real agentpoold with real Python workers
(agents/cancelagent.py: handlers that wait for a file and record how they
ended).  In every state a message can be in: queued in the pool, held
(its connection waiting for queue room), its connection at
maxInFlightPerConnection, waiting out a retry delay, prefetched behind
the message a sync worker runs, and running, in each worker model: sync
with cancelSync finish (the handler runs to its end, its result dropped,
the slot busy until then) and kill (the worker replaced, what it held
behind the message run elsewhere), async (the task cancelled) and gevent
(the greenlet killed), and a handler that catches the cancellation and
returns anyway is still answered cancelled.  The request gets exactly one
final line, `cancelled`, before the answer to pool.cancel, which says
what it found; a cancel racing the final answer (loops of pipelined
requests and cancels) still leaves exactly one final line per request,
and the counters (messages.cancels, errors.cancelled, lateResults,
killedStuck, agentpool_cancels_total) agree with the lines, in each
model (sync finish and kill, async, gevent).  Ids are per connection:
another connection's id, an answered one and a never-sent one are
"unknown".  Nothing waits on a duration: every wait is a condition
polled until a generous deadline.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SRCDIR, Server, main, server_stats, skip_without_greenlet_support,  # noqa: E402
                     wait_for, wait_stats)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
SYNC = "cancelagent:CancelAgent"
ASYNC = "cancelagent:AsyncCancelAgent"
# judged fast against ten seconds, so prefetch does not depend on the load
FAST = ["--prefetch-fast-us", "10000000"]

try:
    import gevent  # noqa: F401
    HAVE_GEVENT = True
except ImportError:
    HAVE_GEVENT = False


def needs_gevent(test):
    test = unittest.skipUnless(HAVE_GEVENT, "gevent is not importable")(test)
    return skip_without_greenlet_support(test)


def cancel_server(model="sync", workers=1, args=()):
    agent = ASYNC if model == "async" else SYNC
    return Server(agent=agent, workers=workers,
                  args=["--python-path", AGENTS_DIR, "--worker-model", model, "--max-messages-per-worker", "0"]
                  + list(args))


def read(path):
    with open(path) as f:
        return f.read()


class Files:
    """Paths in the server's temporary directory for one waiting message."""

    def __init__(self, s, name):
        d = s.tmp.name
        self.gate = os.path.join(d, name + ".gate")
        self.started = os.path.join(d, name + ".started")
        self.marker = os.path.join(d, name + ".marker")

    def data(self, seq, **extra):
        d = {"file": self.gate, "started": self.started, "marker": self.marker, "seq": seq}
        d.update(extra)
        return d

    def release(self):
        with open(self.gate, "w"):
            pass

    def wait_started(self):
        wait_for(lambda: os.path.exists(self.started), what="%s to start" % self.started)


def cancel(c, rid, cid="cancel"):
    """Sends pool.cancel for rid; returns (the lines before its answer, found)."""
    c.send({"id": cid, "type": "pool.cancel", "data": {"id": rid}})
    before = []
    while True:
        r = c.recv()
        if r["id"] == cid:
            assert r["ok"], r
            return before, r["result"]["found"]
        before.append(r)


class CancelTest(unittest.TestCase):
    def assert_cancelled_first(self, c, rid, found):
        """pool.cancel of rid: rid's own final line is `cancelled` and comes
        first, then the answer to pool.cancel says `found`."""
        before, got = cancel(c, rid)
        self.assertEqual(got, found)
        self.assertEqual(len(before), 1, before)
        self.assertEqual(before[0]["id"], rid, before)
        self.assertFalse(before[0]["ok"], before)
        self.assertEqual(before[0]["error"]["code"], "cancelled", before)

    def assert_next_is_ping(self, c):
        """No stray line waits on c: the next one answers a pool.ping."""
        c.send({"id": "ping", "type": "pool.ping"})
        r = c.recv()
        self.assertEqual(r["id"], "ping", "a line nobody asked for: %r" % r)

    def cancels(self, s):
        return server_stats(s)["messages"]["cancels"]


class States(CancelTest):
    def test_queued_message_is_answered_cancelled_and_never_runs(self):
        with cancel_server(args=["--prefetch", "1"]) as s, s.client() as c:
            a, b = Files(s, "a"), Files(s, "b")
            c.send({"id": "a", "type": "wait", "data": a.data("a")})
            a.wait_started()
            c.send({"id": "b", "type": "wait", "data": b.data("b")})
            wait_stats(s, lambda st: st["queue"]["depth"] == 1, what="b queued")
            self.assert_cancelled_first(c, "b", "queued")
            st = server_stats(s)
            self.assertEqual(st["queue"]["depth"], 0)
            self.assertEqual(st["messages"]["cancels"], {"queued": 1, "running": 0, "unknown": 0})
            self.assertEqual(st["errors"]["cancelled"], 1)
            a.release()
            r = c.recv()
            self.assertEqual((r["id"], r["ok"]), ("a", True), r)
            self.assertEqual(c.call("echo", {"after": 1}), {"after": 1})
            self.assertFalse(os.path.exists(b.started), "the cancelled queued message ran")
            self.assert_next_is_ping(c)
            self.assertEqual(server_stats(s)["messages"]["lateResults"], 0)

    def test_held_message_is_cancelled_and_its_connection_reads_again(self):
        # one slot, a queue of one, overflow block: a runs, b is queued, c is
        # held and the connection stops taking messages; its pool.cancel is
        # still read and answered
        with cancel_server(args=["--prefetch", "1", "--message-queue-size", "1", "--overflow", "block"]) as s, \
                s.client() as c:
            a, b, h = Files(s, "a"), Files(s, "b"), Files(s, "h")
            c.send({"id": "a", "type": "wait", "data": a.data("a")})
            a.wait_started()
            c.send({"id": "b", "type": "wait", "data": b.data("b")})
            c.send({"id": "h", "type": "wait", "data": h.data("h")})
            wait_stats(s, lambda st: st["messages"]["held"] == 1, what="h held")
            self.assert_cancelled_first(c, "h", "queued")
            self.assertEqual(server_stats(s)["messages"]["held"], 0)
            # the connection takes messages again: d waits behind b
            c.send({"id": "d", "type": "echo", "data": {"d": 1}})
            self.assert_cancelled_first(c, "b", "queued")
            a.release()
            got = {c.recv()["id"], c.recv()["id"]}
            self.assertEqual(got, {"a", "d"})
            self.assertFalse(os.path.exists(h.started) or os.path.exists(b.started))
            self.assert_next_is_ping(c)

    def test_cancel_is_read_at_max_in_flight_per_connection(self):
        with cancel_server(args=["--prefetch", "1", "--max-in-flight-per-connection", "2"]) as s, \
                s.client() as c:
            a, b = Files(s, "a"), Files(s, "b")
            c.send({"id": "a", "type": "wait", "data": a.data("a")})
            a.wait_started()
            c.send({"id": "b", "type": "wait", "data": b.data("b")})
            wait_stats(s, lambda st: st["queue"]["depth"] == 1, what="b queued")
            # the connection is at its limit: only a pool.cancel at the head
            # of its input is read, and lines behind it keep their order
            c.send({"id": "cancel", "type": "pool.cancel", "data": {"id": "b"}})
            c.send({"id": "e", "type": "echo", "data": {"e": 1}})
            r = c.recv()
            self.assertEqual((r["id"], r["error"]["code"]), ("b", "cancelled"), r)
            r = c.recv()
            self.assertEqual((r["id"], r["result"]), ("cancel", {"found": "queued"}), r)
            a.release()
            got = {c.recv()["id"], c.recv()["id"]}
            self.assertEqual(got, {"a", "e"})
            self.assertFalse(os.path.exists(b.started))

    def test_message_waiting_for_a_retry_is_cancelled(self):
        with cancel_server(args=["--retry-delay", "600000", "--max-retry-delay", "600000"]) as s, s.client() as c:
            c.send({"id": "x", "type": "crash"})
            wait_stats(s, lambda st: st["messages"]["retryWaiting"] == 1, what="x waiting for its retry")
            self.assert_cancelled_first(c, "x", "queued")
            st = server_stats(s)
            self.assertEqual(st["messages"]["retryWaiting"], 0)
            self.assertEqual(st["messages"]["cancels"]["queued"], 1)
            self.assertEqual(c.call("echo", {"n": 1}), {"n": 1})
            self.assert_next_is_ping(c)

    def test_prefetched_message_is_skipped_by_its_sync_worker(self):
        with cancel_server(args=["--prefetch", "8"] + FAST) as s, s.client() as c:
            for i in range(40):  # a fast handler: messages go ahead to a busy worker
                c.call("echo", {"i": i})
            pid = s.worker_pids()[0]
            a, b = Files(s, "a"), Files(s, "b")
            c.send({"id": "a", "type": "wait", "data": a.data("a")})
            a.wait_started()
            c.send({"id": "b", "type": "wait", "data": b.data("b")})
            wait_stats(s, lambda st: st["messages"]["prefetched"] > 0 and st["inFlight"] == 2,
                       what="b prefetched behind a")
            self.assert_cancelled_first(c, "b", "queued")
            a.release()
            r = c.recv()
            self.assertEqual((r["id"], r["ok"]), ("a", True), r)
            self.assertEqual(c.call("echo", {"after": 1}), {"after": 1})
            wait_stats(s, lambda st: st["inFlight"] == 0, what="the worker to let go of b")
            self.assertFalse(os.path.exists(b.started), "the cancelled prefetched message ran")
            self.assertEqual(s.worker_pids(), [pid])
            self.assertEqual(server_stats(s)["workerEvents"]["killedStuck"], 0)
            self.assert_next_is_ping(c)


class Running(CancelTest):
    def test_sync_finish_answers_at_once_and_keeps_the_slot_until_the_handler_ends(self):
        with cancel_server(args=["--prefetch", "1"]) as s, s.client() as c:
            pid = s.worker_pids()[0]
            a = Files(s, "a")
            c.send({"id": "a", "type": "wait", "data": a.data("a")})
            a.wait_started()
            self.assert_cancelled_first(c, "a", "running")
            st = server_stats(s)
            self.assertEqual((st["busy"], st["inFlight"]), (1, 1), "the slot was freed before the handler ended")
            self.assertFalse(os.path.exists(a.marker))
            # a message sent now waits for the slot
            c.send({"id": "n", "type": "echo", "data": {"n": 1}})
            wait_stats(s, lambda st: st["queue"]["depth"] == 1, what="n queued behind the cancelled handler")
            a.release()
            r = c.recv()
            self.assertEqual((r["id"], r["result"]), ("n", {"n": 1}), r)
            wait_for(lambda: os.path.exists(a.marker), what="a's handler to end")
            self.assertEqual(read(a.marker), "done")
            st = wait_stats(s, lambda st: st["inFlight"] == 0, what="the slot free")
            self.assertEqual(st["messages"]["lateResults"], 1)
            self.assertEqual(st["messages"]["cancels"], {"queued": 0, "running": 1, "unknown": 0})
            self.assertEqual(st["workerEvents"]["killedStuck"], 0)
            self.assertEqual(s.worker_pids(), [pid])
            self.assert_next_is_ping(c)

    def test_sync_kill_replaces_the_worker_and_what_it_held_behind_runs_elsewhere(self):
        with cancel_server(args=["--prefetch", "8", "--cancel-sync", "kill", "--retry-delay", "10"] + FAST) as s, \
                s.client() as c:
            for i in range(40):
                c.call("echo", {"i": i})
            pid = s.worker_pids()[0]
            a = Files(s, "a")
            c.send({"id": "a", "type": "wait", "data": a.data("a")})
            a.wait_started()
            c.send({"id": "b", "type": "echo", "data": {"b": 1}})
            wait_stats(s, lambda st: st["inFlight"] == 2, what="b prefetched behind a")
            self.assert_cancelled_first(c, "a", "running")
            r = c.recv()  # b, given back when the worker was killed, runs on its replacement
            self.assertEqual((r["id"], r["result"]), ("b", {"b": 1}), r)
            new = wait_for(lambda: [p for p in s.worker_pids() if p != pid], what="a new worker")
            self.assertEqual(len(new), 1)
            st = server_stats(s)
            self.assertEqual(st["workerEvents"]["killedStuck"], 1)
            self.assertEqual(st["messages"]["cancels"]["running"], 1)
            self.assertEqual(st["errors"]["worker_crashed"], 0)
            self.assertIn("was cancelled by its client (cancelSync kill)", s.log())
            self.assertNotEqual(read(a.marker) if os.path.exists(a.marker) else "", "done")
            self.assert_next_is_ping(c)

    def check_task_cancelled(self, model, swallow):
        args = ["--concurrency", "8"] if model != "sync" else []
        with cancel_server(model=model, args=args) as s, s.client() as c:
            pid = s.worker_pids()[0]
            a, o = Files(s, "a"), Files(s, "o")
            c.send({"id": "other", "type": "wait", "data": o.data("other")})
            c.send({"id": "a", "type": "wait", "data": a.data("a", swallow=swallow)})
            a.wait_started()
            self.assert_cancelled_first(c, "a", "running")
            wait_for(lambda: os.path.exists(a.marker), what="a's task to be cancelled")
            self.assertEqual(read(a.marker), "CancelledError" if model == "async" else "GreenletExit")
            st = wait_stats(s, lambda st: st["inFlight"] == 1, what="the worker to let go of a")
            self.assertEqual(st["messages"]["lateResults"], 1)  # cancelled, or swallowed and returned: dropped
            self.assertEqual(st["workerEvents"]["killedStuck"], 0)
            # its sibling never noticed
            o.release()
            r = c.recv()
            self.assertEqual((r["id"], r["result"]), ("other", {"done": True, "seq": "other"}), r)
            self.assertEqual(s.worker_pids(), [pid])
            self.assert_next_is_ping(c)

    def test_async_task_is_cancelled(self):
        self.check_task_cancelled("async", swallow=False)

    def test_async_handler_that_swallows_the_cancellation_is_still_answered_cancelled(self):
        self.check_task_cancelled("async", swallow=True)

    @needs_gevent
    def test_gevent_greenlet_is_killed(self):
        self.check_task_cancelled("gevent", swallow=False)

    @needs_gevent
    def test_gevent_handler_that_swallows_the_kill_is_still_answered_cancelled(self):
        self.check_task_cancelled("gevent", swallow=True)


class Ids(CancelTest):
    def test_unknown_answered_and_other_connections_ids_are_unknown(self):
        with cancel_server(model="async", args=["--concurrency", "8"]) as s, s.client() as c, s.client() as other:
            a = Files(s, "a")
            c.send({"id": "a", "type": "wait", "data": a.data("a")})
            a.wait_started()
            # another connection cannot reach it, even by the same id
            self.assertEqual(cancel(other, "a"), ([], "unknown"))
            self.assertEqual(cancel(c, "never-sent"), ([], "unknown"))
            self.assertEqual(cancel(c, 1), ([], "unknown"))  # the integer 1 is not the string "a"
            c.send({"id": 7, "type": "echo", "data": {"seven": 7}})
            self.assertEqual(c.recv()["id"], 7)
            self.assertEqual(cancel(c, 7), ([], "unknown"))  # answered already
            a.release()
            r = c.recv()
            self.assertEqual((r["id"], r["ok"]), ("a", True), r)
            self.assertEqual(read(a.marker), "done")
            self.assertEqual(self.cancels(s), {"queued": 0, "running": 0, "unknown": 4})
            self.assert_next_is_ping(other)
            self.assert_next_is_ping(c)

    def test_integer_id_is_found(self):
        with cancel_server(model="async", args=["--concurrency", "8"]) as s, s.client() as c:
            a = Files(s, "a")
            c.send({"id": 12, "type": "wait", "data": a.data("a")})
            a.wait_started()
            self.assert_cancelled_first(c, 12, "running")

    def test_bad_cancel_requests_are_refused(self):
        with cancel_server() as s, s.client() as c:
            why = ("pool.cancel needs {\"id\": ID}: the id (a string or an integer) of a request in flight on "
                   "this connection")
            for data in (None, {}, [1], {"id": None}, {"id": 1.5}, {"id": {"x": 1}}, "a"):
                req = {"id": "c", "type": "pool.cancel"}
                if data is not None:
                    req["data"] = data
                c.send(req)
                r = c.recv()
                self.assertEqual((r["id"], r["ok"]), ("c", False), r)
                self.assertEqual(r["error"], {"code": "bad_request", "message": why}, data)
            self.assertEqual(self.cancels(s), {"queued": 0, "running": 0, "unknown": 0})


class Race(CancelTest):
    """Requests and their cancels pipelined: each cancel finds its request
    queued, running, or already answered (the race with its final line).
    Exactly one final line each, and the counters agree with the lines."""
    N = 400

    def send_race(self, c):
        """First a burst (every line in one write: most cancels find their
        request queued or running), then one by one, each cancel after a
        pause of 0 to 1.2 ms (varied, so that cancels land before, during
        and after the answer; what is asserted holds for any timing).
        Nothing is read until all are sent.  Returns how many were sent."""
        burst = []
        for i in range(self.N // 2):
            burst.append({"id": "q%d" % i, "type": "echo", "data": {"i": i}})
            burst.append({"id": "c%d" % i, "type": "pool.cancel", "data": {"id": "q%d" % i}})
        c.send_raw(b"".join(json.dumps(x).encode() + b"\n" for x in burst))
        for i in range(self.N // 2, self.N):
            self.send_pair(c, i)
        return self.N

    def send_pair(self, c, i):
        c.send({"id": "q%d" % i, "type": "echo", "data": {"i": i}})
        if i % 5:
            time.sleep((i % 5) * 0.0003)
        c.send({"id": "c%d" % i, "type": "pool.cancel", "data": {"id": "q%d" % i}})

    def send_kill_race(self, s, c):
        """cancelSync kill replaces a worker at each cancel that finds its
        request running: each pair waits until both workers take messages
        again (else every cancel would find its request queued), so fewer
        pairs."""
        n = self.N // 10
        for i in range(n):
            wait_stats(s, lambda st: st["available"] == 2 and st["queue"]["depth"] == 0,
                       what="both workers to take messages")
            self.send_pair(c, i)
        return n

    def check_race(self, model, args, kill=False):
        if kill:
            args = args + ["--cancel-sync", "kill", "--max-restarts", "100000"]
        with cancel_server(model=model, workers=2, args=args) as s, s.client() as c:
            before = server_stats(s)
            n = self.send_kill_race(s, c) if kill else self.send_race(c)
            finals, found, order = {}, {}, {}
            for k in range(2 * n):
                r = c.recv()
                rid = r["id"]
                order[rid] = k
                if rid.startswith("q"):
                    self.assertNotIn(rid, finals, "two final lines for %s" % rid)
                    finals[rid] = r
                else:
                    self.assertTrue(r["ok"], r)
                    found[rid] = r["result"]["found"]
            self.assertEqual(len(finals), n)
            tally = {"queued": 0, "running": 0, "unknown": 0}
            for i in range(n):
                q, f = finals["q%d" % i], found["c%d" % i]
                tally[f] += 1
                if f == "unknown":
                    self.assertEqual(q["result"], {"i": i}, q)
                else:
                    self.assertEqual(q["error"]["code"], "cancelled", q)
                    self.assertLess(order["q%d" % i], order["c%d" % i])
            st = wait_stats(s, lambda st: st["inFlight"] == 0 and st["queue"]["depth"] == 0,
                            what="every worker to let go")
            self.assert_next_is_ping(c)
            for k in tally:
                self.assertEqual(st["messages"]["cancels"][k] - before["messages"]["cancels"][k], tally[k], tally)
            self.assertEqual(st["errors"]["cancelled"] - before["errors"]["cancelled"],
                             tally["queued"] + tally["running"])
            self.assertEqual(st["messages"]["answeredOk"] - before["messages"]["answeredOk"], tally["unknown"])
            late = st["messages"]["lateResults"] - before["messages"]["lateResults"]
            kills = st["workerEvents"]["killedStuck"] - before["workerEvents"]["killedStuck"]
            if kill:  # one kill per running one found, fewer when one worker's kill covers several
                self.assertLessEqual(kills, tally["running"])
                self.assertEqual(kills > 0, tally["running"] > 0, (kills, tally))
                # what a killed worker held is not answered late: it dies with it
                self.assertLessEqual(late, tally["running"] + tally["queued"])
            elif model == "sync":  # a prefetched one counts as queued, and is answered (skipped) late
                self.assertGreaterEqual(late, tally["running"])
                self.assertLessEqual(late, tally["running"] + tally["queued"])
            else:
                self.assertEqual(late, tally["running"], tally)
            if not kill:
                self.assertEqual(kills, 0)
            return tally

    def test_sync_finish(self):
        self.check_race("sync", ["--prefetch", "8"] + FAST)

    def test_sync_kill(self):
        self.check_race("sync", ["--prefetch", "8"] + FAST, kill=True)

    def test_async(self):
        self.check_race("async", ["--concurrency", "16"])

    @needs_gevent
    def test_gevent(self):
        self.check_race("gevent", ["--concurrency", "16"])


class Counters(CancelTest):
    def test_prometheus_counters_and_the_access_log(self):
        s = cancel_server(args=["--prefetch", "1"])
        metrics_sock = os.path.join(s.tmp.name, "metrics.sock")
        access = os.path.join(s.tmp.name, "access.log")
        s.args += ["--metrics-listen", "unix:" + metrics_sock, "--access-log", access]
        with s, s.client() as c:
            a, b = Files(s, "a"), Files(s, "b")
            c.send({"id": "a", "type": "wait", "data": a.data("a")})
            a.wait_started()
            c.send({"id": "b", "type": "wait", "data": b.data("b")})
            wait_stats(s, lambda st: st["queue"]["depth"] == 1, what="b queued")
            self.assert_cancelled_first(c, "b", "queued")
            self.assert_cancelled_first(c, "a", "running")
            self.assertEqual(cancel(c, "a"), ([], "unknown"))
            text = prometheus_text(metrics_sock)
            for found, n in (("queued", 1), ("running", 1), ("unknown", 1)):
                self.assertIn('agentpool_cancels_total{found="%s"} %d\n' % (found, n), text)
            self.assertIn("# TYPE agentpool_cancels_total counter\n", text)
            wait_for(lambda: os.path.exists(access) and read(access).count("\n") >= 2, what="two access lines")
            outcomes = {}
            for line in read(access).splitlines():
                fields = dict(f.split("=", 1) for f in line.split(" ")[1:] if "=" in f)
                outcomes[fields["id"]] = fields["outcome"]
            self.assertEqual(outcomes, {'"a"': "cancelled", '"b"': "cancelled"})
            a.release()


def prometheus_text(path):
    """GET /metrics over the Unix socket at path."""
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    sock.connect(path)
    sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    out = b""
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        out += chunk
    sock.close()
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], head
    return body.decode()


if __name__ == "__main__":
    main()
