# SPDX-License-Identifier: BSD-2-Clause
"""test_chaos.py - kill -9 random workers under pipelined load.

Four connections pipeline echo messages (a few ms of work each, every
eighth one slower) at a pool of three sync workers with maxRetries 2 and
a 10 ms retry delay, while the test kills random ready or busy workers
with SIGKILL for about three seconds (a bounded loop).  What must hold, whatever the interleaving:
every request gets exactly one response; an answer that is not ok is
worker_crashed, and each such message is in the dead-letter file (matched
by id); afterwards the pool is back to three healthy workers and the
master has no zombie children.  The test prints what it counted
(requests, ok, worker_crashed, kills, retries).  The pacing of the kills
is not asserted on; every wait polls a condition until a deadline.
"""
import json
import os
import random
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, children_of, main, server_stats, wait_for, wait_stats  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
WORKERS = 3
CONNECTIONS = 4
BATCH = 16          # requests each connection pipelines before reading
CHAOS_SECONDS = 3.0
MAX_KILLS = 100
WORK_MS = 3
SLOW_MS = 150       # every SLOW_EVERY-th message: held long enough to be
SLOW_EVERY = 8      # killed at each of its attempts now and then


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


class Load(threading.Thread):
    """One connection: pipelines BATCH requests, reads BATCH answers,
    until told to stop.  Records every answer by id; an id answered
    twice, or one never sent, is an error."""

    def __init__(self, server, index, stop):
        super().__init__(daemon=True)
        self.server, self.index, self.stop = server, index, stop
        self.sent = {}       # id -> n
        self.answers = {}    # id -> response
        self.problems = []
        self.exc = None

    def run(self):
        try:
            with self.server.client() as c:
                n = 0
                while not self.stop.is_set():
                    ids = []
                    lines = []
                    for _ in range(BATCH):
                        rid = "c%d-%d" % (self.index, n)
                        self.sent[rid] = n
                        ids.append(rid)
                        ms = SLOW_MS if n % SLOW_EVERY == SLOW_EVERY - 1 else WORK_MS
                        lines.append(json.dumps({"id": rid, "type": "echo", "data": {"ms": ms, "n": n}}))
                        n += 1
                    c.send_raw(("\n".join(lines) + "\n").encode())
                    for _ in ids:
                        self.record(c.recv())
                # nothing else may still be on its way for this connection:
                # the master answers pool.ping at once, after all of the above
                r = c.request("pool.ping", id="end-%d" % self.index)
                if not r.get("ok"):
                    self.problems.append("final ping: %r" % r)
        except Exception as e:  # reported by the test
            self.exc = e

    def record(self, r):
        rid = r.get("id")
        if rid not in self.sent:
            self.problems.append("answer for an id never sent: %r" % r)
        elif rid in self.answers:
            self.problems.append("%s answered twice: %r then %r" % (rid, self.answers[rid], r))
        else:
            self.answers[rid] = r
            n = self.sent[rid]
            ms = SLOW_MS if n % SLOW_EVERY == SLOW_EVERY - 1 else WORK_MS
            if r.get("ok") and r["result"] != {"ms": ms, "n": n}:
                self.problems.append("%s: wrong result %r" % (rid, r))


def ready_worker_pids(s):
    with s.client() as c:
        return [w["pid"] for w in c.stats(detailed=True)["workers"]
                if w["state"] in ("ready", "busy") and w["pid"]]


class Chaos(unittest.TestCase):
    def test_kill_9_under_pipelined_load_loses_nothing_and_the_pool_recovers(self):
        srv = Server(agent="life:LifeAgent", workers=WORKERS,
                     args=["--python-path", AGENTS_DIR, "--max-retries", "2", "--retry-delay", "10",
                           # the kills are deliberate: keep restart intensity
                           # out of the way (test_supervision.py covers it)
                           "--max-restarts", "100000"])
        dlq = os.path.join(srv.tmp.name, "dead.jsonl")
        srv.args += ["--dead-letter-file", dlq]
        with srv as s:
            stop = threading.Event()
            loads = [Load(s, i, stop) for i in range(CONNECTIONS)]
            for t in loads:
                t.start()
            rng = random.Random(os.getpid())
            kills = 0
            killed = set()
            try:
                wait_for(lambda: sum(len(t.answers) for t in loads) >= 50 or any(t.exc for t in loads),
                         what="the load to get going")
                end = time.monotonic() + CHAOS_SECONDS
                while time.monotonic() < end and kills < MAX_KILLS:
                    pids = [p for p in ready_worker_pids(s) if p not in killed]
                    if pids:
                        pid = rng.choice(pids)
                        try:
                            os.kill(pid, signal.SIGKILL)
                            kills += 1
                            killed.add(pid)
                        except ProcessLookupError:
                            pass
                    time.sleep(rng.uniform(0.02, 0.1))
            finally:
                stop.set()
                for t in loads:
                    t.join(120)
            for t in loads:
                self.assertFalse(t.is_alive(), "connection %d never finished" % t.index)
                if t.exc:
                    raise AssertionError("connection %d: %r\n%s" % (t.index, t.exc, s.log()[-5000:]))
                self.assertEqual(t.problems, [])
                self.assertEqual(set(t.answers), set(t.sent), "connection %d: unanswered ids" % t.index)

            answers = {rid: r for t in loads for rid, r in t.answers.items()}
            failed = {rid: r for rid, r in answers.items() if not r["ok"]}
            codes = sorted({r["error"]["code"] for r in failed.values()})
            self.assertLessEqual(set(codes), {"worker_crashed"}, [r for r in failed.values()][:5])
            for r in failed.values():
                self.assertEqual(r["error"]["attempts"], 3, r)
                self.assertEqual(r["error"]["signal"], signal.SIGKILL, r)
            recs = []
            if os.path.exists(dlq):
                with open(dlq) as f:
                    recs = [json.loads(l) for l in f if l.strip()]
            self.assertEqual(sorted(rec["id"] for rec in recs), sorted(failed), "dead letters vs worker_crashed")

            st = wait_stats(s, lambda st: st["healthy"] == WORKERS and st["total"] == WORKERS
                            and st["state"] == "ready", what="the pool back to full strength")

            def zombies():
                return [p for p in children_of(s.proc.pid) if proc_state(p) == "Z"]
            wait_for(lambda: not zombies(), what="no zombie children of the master")
            live = sorted(p for p in children_of(s.proc.pid) if proc_state(p) is not None)
            self.assertEqual(live, sorted(ready_worker_pids(s)))
            self.assertEqual(len(live), WORKERS)

            st = server_stats(s)
            self.assertGreaterEqual(kills, 1)
            self.assertGreaterEqual(st["workerEvents"]["crashed"], kills)
            self.assertEqual(st["messages"]["deadLettered"], len(failed))
            self.assertEqual(st["errors"]["worker_crashed"], len(failed))
            print("chaos: %d requests, %d ok, %d worker_crashed, %d kills, %d retries, %d crashes counted, "
                  "%d spawned" % (len(answers), len(answers) - len(failed), len(failed), kills,
                                  st["messages"]["retried"], st["workerEvents"]["crashed"],
                                  st["workerEvents"]["spawned"]))


if __name__ == "__main__":
    main()
