# SPDX-License-Identifier: BSD-2-Clause
"""test_sessions.py - session keys: order, sessionBusy, affinity, moves, bounds.

Through the real agentpoold with real Python workers running
pyagents/examples/sessionlog.py, which appends "start N pid" and "end N
pid" to a file per session in the test's temporary directory around each
message it runs.  Proved here (docs/sessions.md):
 - order: 100 messages of one session sent at once from 4 connections to
   4 async workers (any of which could run many at once) run one at a
   time: the file is start/end pairs with nothing between, every message
   exactly once, each connection's in the order it sent them;
 - sessionBusy enqueue (the default): a message waiting for its session
   holds a place of messageQueueSize (past it: queue_full) and its
   deadline runs (timeout while it waits); reject: session_busy at once;
   interrupt: the running message is answered cancelled and the new one
   runs; a client that leaves has its waiting messages dropped and the
   session goes on with another connection's; exactly one answer per
   request every time;
 - affinity: 20 sessions over 4 workers, 10 rounds: every message after a
   session's first goes to the worker of its previous one (hits in
   pool.stats and Prometheus, one worker per session in the answers);
 - moves: a session whose worker is killed (-9) while it runs one of its
   messages, or recycled (maxMessagesPerWorker) in the middle of its
   messages, goes on elsewhere with nothing lost, duplicated or
   reordered;
 - sessions off: bad_request with its message; maxSessions: a new session
   while every tracked one is busy is too_many_sessions, and once one is
   idle it is forgotten to make room.
Nothing waits on a duration: every wait is a condition polled until a
generous deadline.
"""
import json
import os
import signal
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Gate, Server, main, server_stats, wait_for, wait_stats  # noqa: E402
from test_metrics import Endpoint, parse_metrics, sample  # noqa: E402

SYNC = "pyagents.examples.sessionlog:SessionLogAgent"
ASYNC = "pyagents.examples.sessionlog:AsyncSessionLogAgent"


def session_server(agent=ASYNC, workers=2, config=None, args=(), metrics=False):
    cfg = {"sessions": True}
    cfg.update(config or {})
    model = "async" if agent == ASYNC else "sync"
    s = Server(agent=agent, workers=workers, config=cfg,
               args=["--worker-model", model, "--max-messages-per-worker", "0"] + list(args))
    if metrics:
        s.metrics = Endpoint("unix:" + os.path.join(s.tmp.name, "metrics.sock"))
        s.args += ["--metrics-listen", s.metrics.spec]
    return s


def req(s, key, seq, rid=None, **data):
    d = {"dir": s.tmp.name, "session": key, "seq": seq}
    d.update(data)
    return {"id": rid if rid is not None else "%s-%s" % (key, seq), "type": "log", "session": key, "data": d}


def runs(s, key):
    """The session's file as [(what, seq, pid)]."""
    path = os.path.join(s.tmp.name, key + ".log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [(w, json.loads(n), int(p)) for w, n, p in (line.split() for line in f if line.strip())]


def completed(testcase, s, key):
    """Checks the session's file shows one message at a time (a start is
    followed by its end, or, for an attempt its worker died in, by the
    start of the same message again: its retry) and returns the seqs of
    the messages that ended, in the order they ran."""
    out, open_ = [], None
    for what, seq, pid in runs(s, key):
        if what == "start":
            testcase.assertTrue(open_ is None or (open_[0] == seq and open_[1] != pid),
                                "message %r started while %r ran: %r" % (seq, open_, runs(s, key)))
            open_ = (seq, pid)
        else:
            testcase.assertEqual(open_, (seq, pid), "end of %r without its start: %r" % (seq, runs(s, key)))
            out.append(seq)
            open_ = None
    testcase.assertIsNone(open_, "a message still runs")
    return out


def sessions_stats(s):
    return server_stats(s)["sessions"]


class Order(unittest.TestCase):
    def test_one_session_from_four_connections_runs_one_at_a_time_in_order(self):
        with session_server(workers=4, args=["--concurrency", "16"]) as s:
            conns = [s.client() for _ in range(4)]
            results = [None] * 4

            def run(k):
                reqs = [req(s, "conv", [k, i], rid="c%d-%d" % (k, i), ms=(i * 7 + k) % 4) for i in range(25)]
                results[k] = conns[k].pipeline(reqs)
            threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for k in range(4):
                self.assertEqual(len(results[k]), 25)
                for i in range(25):
                    a = results[k][json.dumps("c%d-%d" % (k, i))]
                    self.assertTrue(a["ok"], a)
                    self.assertEqual(a["result"]["seq"], [k, i])
            order = completed(self, s, "conv")
            self.assertEqual(len(order), 100)
            self.assertEqual(sorted(map(tuple, order)), [(k, i) for k in range(4) for i in range(25)])
            for k in range(4):
                mine = [i for kk, i in order if kk == k]
                self.assertEqual(mine, list(range(25)), "connection %d's messages out of order" % k)
            st = sessions_stats(s)
            self.assertEqual((st["active"], st["waiting"], st["tracked"]), (0, 0, 1))
            self.assertEqual(st["hits"] + st["moves"], 99)
            for c in conns:
                c.close()

    def test_two_sessions_do_not_wait_for_each_other(self):
        with session_server(workers=1, args=["--concurrency", "4"]) as s, Gate(s.tmp.name) as gate, \
                s.client() as c:
            c.send(req(s, "a", 1, gate=gate.path))
            wait_for(lambda: runs(s, "a"), what="a's first message running")
            self.assertEqual(c.request("log", req(s, "b", 1)["data"], session="b", id="b1")["ok"], True)
            gate.release()
            self.assertTrue(c.recv()["ok"])


class Busy(unittest.TestCase):
    def test_enqueue_counts_against_the_queue_and_keeps_deadlines(self):
        with session_server(workers=1, config={"messageQueueSize": 2, "overflow": "reject"},
                            args=["--concurrency", "1"]) as s, \
                Gate(s.tmp.name) as gate, s.client() as c:
            c.send(req(s, "q", 0, gate=gate.path))
            wait_for(lambda: runs(s, "q"), what="the first message running")
            c.send(req(s, "q", 1))
            c.send(dict(req(s, "q", 2), timeoutMs=200))
            wait_stats(s, lambda st: st["sessions"]["waiting"] == 2, what="two messages waiting for the session")
            # the queue's two places are held by the session's waiting messages
            a = c.request("log", req(s, "other", 0)["data"], session="other", id="x")
            self.assertEqual(a["error"]["code"], "queue_full", a)
            a = c.recv()
            self.assertEqual((a["id"], a["error"]["code"]), ("q-2", "timeout"), a)
            self.assertIn("waiting in the queue", a["error"]["message"])
            gate.release()
            got = {}
            for _ in range(2):
                a = c.recv()
                got[a["id"]] = a
            self.assertEqual(sorted(got), ["q-0", "q-1"])
            self.assertTrue(all(a["ok"] for a in got.values()), got)
            self.assertEqual(completed(self, s, "q"), [0, 1])
            st = wait_stats(s, lambda st: st["sessions"]["active"] == 0, what="the session idle")
            self.assertEqual(st["queue"]["depth"], 0)
            self.assertEqual(st["sessions"]["waiting"], 0)

    def test_reject_answers_session_busy_at_once(self):
        with session_server(workers=2, config={"sessionBusy": "reject"}) as s, Gate(s.tmp.name) as gate, \
                s.client() as c, s.client() as c2:
            c.send(req(s, "r", 0, gate=gate.path))
            wait_for(lambda: runs(s, "r"), what="the first message running")
            a = c2.request("log", req(s, "r", 1)["data"], session="r", id="r1")
            self.assertEqual(a, {"id": "r1", "ok": False, "error": {
                "code": "session_busy", "message": "its session has a message in flight (sessionBusy reject)"}})
            self.assertTrue(c2.request("log", req(s, "r2", 0)["data"], session="r2", id="o")["ok"])
            gate.release()
            self.assertEqual(c.recv()["id"], "r-0")
            self.assertTrue(c2.request("log", req(s, "r", 2)["data"], session="r", id="r2")["ok"])
            self.assertEqual(completed(self, s, "r"), [0, 2])
            st = server_stats(s)
            self.assertEqual(st["sessions"]["busyRejected"], 1)
            self.assertEqual(st["errors"]["session_busy"], 1)

    def test_interrupt_cancels_the_running_message_and_runs_the_new_one(self):
        with session_server(workers=1, config={"sessionBusy": "interrupt"}) as s, Gate(s.tmp.name) as gate, \
                s.client() as c, s.client() as c2:
            c.send(req(s, "i", 0, gate=gate.path))
            wait_for(lambda: runs(s, "i"), what="the first message running")
            c2.send(req(s, "i", 1))
            a = c.recv()
            self.assertEqual(a["id"], "i-0")
            self.assertEqual(a["error"], {"code": "cancelled", "message":
                                          "cancelled by a later message of its session (sessionBusy interrupt) "
                                          "while it ran"})
            b = c2.recv()
            self.assertEqual((b["id"], b["ok"]), ("i-1", True), b)
            # the cancelled task let go before the new one started: one at a time still
            self.assertEqual(runs(s, "i")[0], ("start", 0, runs(s, "i")[0][2]))
            self.assertEqual([r[:2] for r in runs(s, "i")[1:]], [("start", 1), ("end", 1)])
            st = server_stats(s)
            self.assertEqual(st["sessions"]["interrupted"], 1)
            self.assertEqual(st["errors"]["cancelled"], 1)
            # nothing else is ever answered on either connection
            self.assertEqual(c.request("pool.ping")["ok"], True)
            self.assertEqual(c2.request("pool.ping")["ok"], True)


    def test_a_client_leaving_drops_its_waiting_messages_and_the_session_goes_on(self):
        with session_server(workers=1) as s, Gate(s.tmp.name) as gate, s.client() as b:
            a = s.client()
            a.send(req(s, "d", 0, gate=gate.path))
            wait_for(lambda: runs(s, "d"), what="the first message running")
            a.send(req(s, "d", 1))
            a.send(req(s, "d", 2))
            wait_stats(s, lambda st: st["sessions"]["waiting"] == 2, what="two messages waiting")
            b.send(req(s, "d", 3))
            wait_stats(s, lambda st: st["sessions"]["waiting"] == 3, what="three messages waiting")
            a.close()  # d-0 is cancelled on its async worker, d-1 and d-2 dropped: d-3 runs, gate or not
            got = b.recv()
            self.assertEqual((got["id"], got["ok"]), ("d-3", True), got)
            # d-0, abandoned by its client, was cancelled on its async worker (no end) and let go
            # of before d-3 started; d-1 and d-2 never ran
            self.assertEqual([r[:2] for r in runs(s, "d")], [("start", 0), ("start", 3), ("end", 3)])
            st = wait_stats(s, lambda st: st["sessions"]["active"] == 0, what="the session idle")
            self.assertEqual((st["sessions"]["waiting"], st["queue"]["depth"], st["messages"]["pendingBytes"]),
                             (0, 0, 0))
            self.assertEqual(st["messages"]["cancelled"], 2)
            self.assertEqual(b.request("pool.ping")["ok"], True)  # nothing else was answered on b


class Affinity(unittest.TestCase):
    def test_twenty_sessions_stay_on_their_workers(self):
        with session_server(workers=4, args=["--concurrency", "32"], metrics=True) as s, s.client() as c:
            seen = {}
            for rnd in range(10):
                out = c.pipeline([req(s, "s%d" % k, rnd) for k in range(20)])
                for k in range(20):
                    a = out[json.dumps("s%d-%d" % (k, rnd))]
                    self.assertTrue(a["ok"], a)
                    seen.setdefault(k, set()).add(a["result"]["worker"])
            self.assertEqual({k: len(w) for k, w in seen.items()}, {k: 1 for k in range(20)})
            self.assertGreater(len(set().union(*seen.values())), 1, "every session on one worker")
            st = sessions_stats(s)
            self.assertEqual((st["hits"], st["moves"], st["tracked"]), (180, 0, 20))
            _, _, body = s.metrics.get("/metrics")
            samples, _ = parse_metrics(body)
            self.assertEqual(sample(samples, "agentpool_session_affinity_total", result="hit"), 180)
            self.assertEqual(sample(samples, "agentpool_session_affinity_total", result="move"), 0)
            self.assertEqual(sample(samples, "agentpool_sessions_tracked"), 20)


class Moves(unittest.TestCase):
    def test_kill_9_of_its_worker_moves_the_session_without_loss_or_reorder(self):
        with session_server(agent=SYNC, workers=2, args=["--retry-delay", "0"]) as s, Gate(s.tmp.name) as gate, \
                s.client() as c:
            c.send(req(s, "k", 0))
            self.assertTrue(c.recv()["ok"])
            c.send(req(s, "k", 1, gate=gate.path))
            for i in range(2, 12):
                c.send(req(s, "k", i))
            wait_for(lambda: len(runs(s, "k")) == 3, what="message 1 running")
            pid = runs(s, "k")[-1][2]
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: [r for r in runs(s, "k") if r[:2] == ("start", 1) and r[2] != pid],
                     what="message 1 retried elsewhere")
            gate.release()
            got = [c.recv() for _ in range(11)]
            self.assertEqual([a["id"] for a in got], ["k-%d" % i for i in range(1, 12)])
            self.assertTrue(all(a["ok"] for a in got), got)
            self.assertEqual(completed(self, s, "k"), list(range(12)))
            st = server_stats(s)
            self.assertGreaterEqual(st["sessions"]["moves"], 1)
            self.assertEqual(st["sessions"]["hits"] + st["sessions"]["moves"], 12)  # 11 later messages + 1 retry

    def test_recycled_worker_moves_the_session_without_loss_or_reorder(self):
        with Server(agent=SYNC, workers=2, config={"sessions": True},
                    args=["--worker-model", "sync", "--max-messages-per-worker", "5", "--recycle-jitter", "0"]) as s, \
                s.client() as c:
            # batches of the session's messages until its worker was replaced twice
            n = 0
            while len({p for _, _, p in runs(s, "rc")}) < 3:
                self.assertLess(n, 5000, "no worker was recycled")
                out = c.pipeline([req(s, "rc", n + i, ms=5) for i in range(10)])
                self.assertTrue(all(a["ok"] for a in out.values()), out)
                n += 10
            self.assertEqual(completed(self, s, "rc"), list(range(n)))
            st = server_stats(s)
            self.assertEqual(st["sessions"]["hits"] + st["sessions"]["moves"], n - 1)
            self.assertGreaterEqual(st["sessions"]["moves"], 2)  # a replacement is another worker entry
            self.assertGreaterEqual(st["sessions"]["moves"], 1)


class Bounds(unittest.TestCase):
    def test_sessions_off_is_bad_request(self):
        with Server(agent=SYNC, workers=1) as s, s.client() as c:
            a = c.request("log", {"x": 1}, session="a", id=1)
            self.assertEqual(a, {"id": 1, "ok": False, "error": {
                "code": "bad_request", "message": "sessions are off in pool default (set sessions: true)"}})
            self.assertEqual(c.request("log", {"x": 1}, session="", id=2)["error"]["message"],
                             "session must not be empty")

    def test_max_sessions_refuses_a_new_session_while_all_are_busy(self):
        with session_server(workers=1, config={"maxSessions": 2}) as s, Gate(s.tmp.name) as gate, \
                s.client() as c:
            c.send(req(s, "m1", 0, gate=gate.path))
            c.send(req(s, "m2", 0, gate=gate.path))
            wait_for(lambda: runs(s, "m1") and runs(s, "m2"), what="both sessions running")
            a = c.request("log", req(s, "m3", 0)["data"], session="m3", id="m3")
            self.assertEqual(a, {"id": "m3", "ok": False, "error": {
                "code": "too_many_sessions",
                "message": "pool default tracks maxSessions (2) sessions and every one has a message in flight"}})
            gate.release()
            self.assertEqual(sorted(c.recv()["id"] for _ in range(2)), ["m1-0", "m2-0"])
            wait_stats(s, lambda st: st["sessions"]["active"] == 0, what="both sessions idle")
            self.assertTrue(c.request("log", req(s, "m3", 1)["data"], session="m3", id="m3b")["ok"])
            st = sessions_stats(s)
            self.assertEqual((st["tracked"], st["refused"]), (2, 1))


if __name__ == "__main__":
    main()
