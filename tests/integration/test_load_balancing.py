# SPDX-License-Identifier: BSD-2-Clause
"""test_load_balancing.py - the three load-balancing strategies, seen from outside.

Every answer says which worker produced it (the whoami agent, or the probe
test agent's "whoami" type), so each strategy's rule is checked on what
clients actually observe: round-robin rotates strictly, least-busy avoids
a worker that holds a message and otherwise prefers the one that has
processed fewest, random reaches every worker.  Each case also pipelines
a burst from several connections and checks nothing is lost: one answer
per id, and totalMessagesProcessed grows by exactly the burst.
"""
import os
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, main, wait_for  # noqa: E402

WHOAMI = "pyagents.examples.whoami:WhoamiAgent"
AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
PROBE = "probe:ProbeAgent"
NAMES = ["worker-0", "worker-1", "worker-2"]


def strategy_server(strategy, agent=WHOAMI, workers=3):
    return Server(agent=agent, workers=workers,
                  args=["--load-balancing-strategy", strategy, "--python-path", AGENTS_DIR])


def is_strict_rotation(seq, n):
    return len(set(seq[:n])) == n and all(seq[i] == seq[i % n] for i in range(len(seq)))


class Strategies(unittest.TestCase):
    def assert_nothing_lost(self, s, per_conn=200, conns=3):
        """Pipelines conns x per_conn whoami requests at once; every id must
        be answered exactly once, ok, by a real worker."""
        with s.client() as c:
            before = c.stats()["totalMessagesProcessed"]
        results, errors = {}, []

        def run(k):
            try:
                with s.client() as c:
                    reqs = [{"id": "c%d-%d" % (k, i), "type": "whoami"} for i in range(per_conn)]
                    results[k] = c.pipeline(reqs)
            except Exception as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for k in range(conns):
            ans = results[k]
            self.assertEqual(sorted(ans), sorted('"c%d-%d"' % (k, i) for i in range(per_conn)))
            for r in ans.values():
                self.assertTrue(r["ok"], r)
                self.assertIn(r["result"]["worker"], NAMES)
        with s.client() as c:
            st = c.stats()
        self.assertEqual(st["totalMessagesProcessed"], before + per_conn * conns)
        self.assertEqual(st["queue"]["depth"], 0)
        self.assertEqual(st["inFlight"], 0)
        self.assertEqual(st["workerEvents"]["crashed"], 0)

    def test_round_robin_hits_workers_in_strict_rotation(self):
        with strategy_server("round-robin") as s, s.client() as a, s.client() as b:
            self.assertEqual(a.stats()["strategy"], "round-robin")
            # alternate connections: the rotation is the pool's, not per connection
            seq = [(a if i % 2 else b).call("whoami")["worker"] for i in range(30)]
            self.assertTrue(is_strict_rotation(seq, 3), seq)
            self.assertEqual(sorted(seq[:3]), NAMES)
            per = {w["id"]: w["messagesProcessed"] for w in a.stats(detailed=True)["workers"]}
            self.assertEqual(per, {n: 10 for n in NAMES})
            self.assert_nothing_lost(s)

    def test_least_busy_avoids_a_worker_holding_a_message(self):
        with tempfile.TemporaryDirectory(prefix="aptest-gate-") as d, \
                strategy_server("least-busy", agent=PROBE) as s, \
                s.client() as held, s.client() as c:
            self.assertEqual(c.stats()["strategy"], "least-busy")
            gate = os.path.join(d, "open")
            held.send({"id": "held", "type": "gate", "data": {"file": gate}})

            def holder():
                busy = [w for w in c.stats(detailed=True)["workers"] if w["inFlight"] == 1]
                return busy and busy[0]["id"]
            a = wait_for(holder, what="one worker to hold the gated message")
            seq = [c.call("whoami")["worker"] for _ in range(20)]
            self.assertNotIn(a, seq)
            self.assertEqual(set(seq), set(NAMES) - {a})
            open(gate, "w").close()
            resp = held.recv()
            self.assertEqual(resp["id"], "held")
            self.assertTrue(resp["ok"], resp)
            self.assertEqual(resp["result"]["worker"], a)

    def test_least_busy_prefers_the_idle_worker_with_fewest_processed(self):
        with tempfile.TemporaryDirectory(prefix="aptest-gate-") as d, \
                strategy_server("least-busy", agent=PROBE) as s, \
                s.client() as held, s.client() as c:
            gate = os.path.join(d, "open")
            # hold one worker while 20 messages go to the other two, so the
            # counts become uneven, then release it
            held.send({"id": "held", "type": "gate", "data": {"file": gate}})
            wait_for(lambda: c.stats()["inFlight"] == 1, what="the gated message to run")
            for _ in range(20):
                c.call("whoami")
            open(gate, "w").close()
            self.assertTrue(held.recv()["ok"])
            first = []
            for i in range(24):
                workers = c.stats(detailed=True)["workers"]
                self.assertTrue(all(w["inFlight"] == 0 for w in workers), workers)
                fewest = min(w["messagesProcessed"] for w in workers)
                candidates = {w["id"] for w in workers if w["messagesProcessed"] == fewest}
                got = c.call("whoami")["worker"]
                self.assertIn(got, candidates, "request %d went to %s; processed: %r" % (
                    i, got, {w["id"]: w["messagesProcessed"] for w in workers}))
                first.append(got)
            # the held worker (1 processed against ~10) took the next several
            self.assertEqual(len(set(first[:8])), 1, first)
            self.assert_nothing_lost(s)

    def test_random_reaches_every_worker(self):
        with strategy_server("random") as s, s.client() as c:
            self.assertEqual(c.stats()["strategy"], "random")
            seq = [c.call("whoami")["worker"] for _ in range(300)]
            counts = {n: seq.count(n) for n in NAMES}
            self.assertTrue(all(counts[n] > 0 for n in NAMES), counts)
            self.assertEqual(sum(counts.values()), 300)
            self.assertFalse(is_strict_rotation(seq, 3), "random behaved exactly like round-robin")
            self.assertEqual(c.stats()["totalMessagesProcessed"], 300)
            self.assert_nothing_lost(s)

    def test_round_robin_skips_a_worker_holding_a_message(self):
        with tempfile.TemporaryDirectory(prefix="aptest-gate-") as d, \
                strategy_server("round-robin", agent=PROBE) as s, \
                s.client() as held, s.client() as c:
            gate = os.path.join(d, "open")
            held.send({"id": "held", "type": "gate", "data": {"file": gate}})
            wait_for(lambda: c.stats()["inFlight"] == 1, what="the gated message to run")
            seq = [c.call("whoami")["worker"] for _ in range(20)]
            self.assertTrue(is_strict_rotation(seq, 2), seq)
            open(gate, "w").close()
            self.assertTrue(held.recv()["ok"])
            self.assert_nothing_lost(s)


if __name__ == "__main__":
    main()
