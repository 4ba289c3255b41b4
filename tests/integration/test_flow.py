# SPDX-License-Identifier: BSD-2-Clause
"""Flow control, fairness and stats of the real agentpoold.

Gate agents hold messages until a file exists, so each test can put the
pool in an exact state (slots full, queue full, a connection paused) and
read it back from pool.stats on another connection: overflow block and
reject, maxInFlightPerConnection, FIFO dispatch of queued messages, exact
counters, all slots of async workers in flight together, and a SIGTERM
with messages in flight that are all answered before a clean exit.
Nothing here asserts a duration: conditions are polled with generous
deadlines (harness.wait_stats).
"""
import os
import signal
import unittest

from harness import (SRCDIR, Gate, Server, server_stats, wait_for, wait_stats)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
GATE = "pyagents.examples.gate:GateAgent"
ASYNC_GATE = "pyagents.examples.gate:AsyncGateAgent"


def recv_ids(client, n):
    out = []
    for _ in range(n):
        r = client.recv()
        assert r["ok"], r
        out.append(r["id"])
    return out


class FlowTest(unittest.TestCase):

    def test_overflow_block_holds_one_message_and_pauses_only_that_connection(self):
        with Server(agent=GATE, workers=1, args=["--message-queue-size", "2"]) as srv, Gate(srv.tmp.name) as gate:
            with srv.client() as a, srv.client() as b:
                for i in range(6):
                    a.send({"id": i, "type": "hold", "data": gate.data(i)})
                # 1 running, 2 queued, 1 held (a paused), the rest unread
                s = wait_stats(srv, lambda s: s["messages"]["held"] == 1 and s["inFlight"] == 1
                               and s["queue"]["depth"] == 2, what="a held message")
                # b is still answered by the master
                st = b.stats()
                self.assertEqual(st["messages"]["held"], 1)
                self.assertEqual(b.call("pool.ping"), {"pong": True, "state": "ready"})
                gate.release()
                self.assertEqual(recv_ids(a, 6), list(range(6)))
                s = b.stats()
                self.assertEqual(s["messages"]["held"], 0)
                self.assertEqual(s["messages"]["cancelled"], 0)
                self.assertEqual(s["messages"]["droppedResults"], 0)
                self.assertEqual(s["queue"]["rejected"], 0)
                self.assertEqual(s["errors"]["queue_full"], 0)
                self.assertEqual(s["queue"]["highWatermark"], 2)
                self.assertEqual(s["queue"]["capacity"], 2)

    def test_overflow_reject_answers_queue_full_and_counts_it(self):
        with Server(agent=GATE, workers=1, args=["--message-queue-size", "2", "--overflow", "reject"]) as srv, \
                Gate(srv.tmp.name) as gate:
            with srv.client() as a, srv.client() as b, srv.client() as c:
                a.send({"id": "a", "type": "hold", "data": gate.data(0)})
                wait_stats(srv, lambda s: s["inFlight"] == 1, what="one running")
                b.send({"id": "b1", "type": "hold", "data": gate.data(1)})
                b.send({"id": "b2", "type": "hold", "data": gate.data(2)})
                wait_stats(srv, lambda s: s["queue"]["depth"] == 2, what="two queued")
                resp = c.request("hold", gate.data(3), id="c")
                self.assertEqual(resp["error"]["code"], "queue_full")
                s = c.stats()
                self.assertEqual(s["overflow"], "reject")
                self.assertEqual(s["queue"]["rejected"], 1)
                self.assertEqual(s["errors"]["queue_full"], 1)
                self.assertEqual(s["messages"]["held"], 0)
                gate.release()
                self.assertEqual(recv_ids(a, 1), ["a"])
                self.assertEqual(recv_ids(b, 2), ["b1", "b2"])
                self.assertEqual(c.stats()["queue"]["rejected"], 1)

    def test_max_in_flight_per_connection_limits_one_connection_only(self):
        with Server(agent=ASYNC_GATE, workers=1,
                    args=["--concurrency", "100", "--max-in-flight-per-connection", "3"]) as srv, \
                            Gate(srv.tmp.name) as gate:
            open_gate = Gate(srv.tmp.name, "already-open")
            open_gate.release()
            with srv.client() as a, srv.client() as b:
                for i in range(10):
                    a.send({"id": i, "type": "hold", "data": gate.data(i)})
                wait_stats(srv, lambda s: s["inFlight"] + s["queue"]["depth"] == 3, what="3 in flight")
                # others continue (b's own messages run and are answered) ...
                for i in range(5):
                    self.assertEqual(b.request("hold", open_gate.data(100 + i))["ok"], True)
                # ... while a still has only 3 admitted
                s = b.stats()
                self.assertEqual(s["inFlight"] + s["queue"]["depth"], 3)
                self.assertEqual(s["messages"]["held"], 0)
                gate.release()
                self.assertEqual(sorted(recv_ids(a, 10)), list(range(10)))

    def test_freed_slot_takes_oldest_queued_message(self):
        with Server(agent="aptest_agents:GateLogAgent", workers=1, args=["--python-path", AGENTS_DIR]) as srv, \
                Gate(srv.tmp.name) as gate:
            log = os.path.join(srv.tmp.name, "order.log")
            conns = [srv.client() for _ in range(3)]
            try:
                conns[0].send({"id": 0, "type": "work", "data": gate.data(0, log=log)})
                wait_stats(srv, lambda s: s["inFlight"] == 1, what="the first running")
                n = 15
                for seq in range(1, n + 1):
                    conns[seq % 3].send({"id": seq, "type": "work", "data": gate.data(seq, log=log)})
                    wait_stats(srv, lambda s, seq=seq: s["queue"]["depth"] == seq, what="message %d queued" % seq)
                gate.release()
                for k, c in enumerate(conns):
                    want = [seq for seq in range(n + 1) if seq % 3 == k]
                    self.assertEqual([c.recv()["result"]["seq"] for _ in want], want)
                with open(log) as f:
                    self.assertEqual([int(x) for x in f.read().split()], list(range(n + 1)))
            finally:
                for c in conns:
                    c.close()

    def test_fifo_gate_sequence_numbers_come_back_in_order(self):
        with Server(agent=GATE, workers=1) as srv, Gate(srv.tmp.name) as gate:
            with srv.client() as a:
                for i in range(30):
                    a.send({"id": i, "type": "hold", "data": gate.data(i)})
                wait_stats(srv, lambda s: s["inFlight"] == 1 and s["queue"]["depth"] == 29, what="29 queued")
                gate.release()
                answers = [a.recv() for _ in range(30)]
                self.assertEqual([r["id"] for r in answers], list(range(30)))
                self.assertEqual([r["result"] for r in answers], [{"released": True, "seq": i} for i in range(30)])

    def test_stats_count_processed_messages_exactly(self):
        with Server(workers=2) as srv:
            with srv.client() as c:
                got = c.pipeline([{"id": i, "type": "echo", "data": i} for i in range(100)])
                self.assertEqual(len(got), 100)
                self.assertTrue(all(r["ok"] for r in got.values()))
                s = c.stats(detailed=True)
                self.assertEqual(s["totalMessagesProcessed"], 100)
                self.assertEqual(sum(w["messagesProcessed"] for w in s["workers"]), 100)
                self.assertEqual(s["messages"]["accepted"], 100)
                self.assertEqual(s["inFlight"], 0)
                self.assertEqual(s["queue"]["depth"], 0)
                self.assertEqual(s["available"], 2)
                self.assertEqual(s["busy"], 0)

    def test_every_slot_held_means_busy_equals_total(self):
        with Server(agent=GATE, workers=2) as srv, Gate(srv.tmp.name) as gate:
            with srv.client() as a:
                s = a.stats()
                self.assertEqual((s["total"], s["available"], s["busy"], s["healthy"], s["slots"]), (2, 2, 0, 2, 2))
                a.send({"id": 1, "type": "hold", "data": gate.data(1)})
                a.send({"id": 2, "type": "hold", "data": gate.data(2)})
                s = wait_stats(srv, lambda s: s["inFlight"] == 2, what="both workers holding one")
                self.assertEqual(s["busy"], s["total"])
                self.assertEqual(s["total"], 2)
                self.assertEqual(s["available"], 0)
                self.assertEqual(s["healthy"], 2)
                d = server_stats(srv, detailed=True)
                self.assertEqual([w["state"] for w in d["workers"]], ["busy", "busy"])
                self.assertEqual([w["inFlight"] for w in d["workers"]], [1, 1])
                gate.release()
                self.assertEqual(sorted(recv_ids(a, 2)), [1, 2])

    def test_async_workers_hold_all_their_slots_at_once(self):
        with Server(agent=ASYNC_GATE, workers=2, args=["--concurrency", "100"]) as srv, Gate(srv.tmp.name) as gate:
            with srv.client() as a, srv.client() as b:
                for i in range(200):
                    a.send({"id": i, "type": "hold", "data": gate.data(i)})
                s = wait_stats(srv, lambda s: s["inFlight"] == 200, what="200 in flight")
                self.assertEqual(s["queue"]["depth"], 0)
                self.assertEqual(s["slots"], 200)
                self.assertEqual(s["busy"], 2)
                self.assertEqual(s["available"], 0)
                d = b.stats(detailed=True)
                self.assertEqual([w["async"] for w in d["workers"]], [True, True])
                self.assertEqual([w["inFlight"] for w in d["workers"]], [100, 100])
                # a named worker answers agent.metrics without a free slot
                m = b.call("agent.metrics", {"worker": "worker-1"})
                self.assertEqual((m["worker"], m["async"], m["concurrency"], m["queue_size"]),
                                 ("worker-1", True, 100, 100))
                gate.release()
                self.assertEqual(sorted(recv_ids(a, 200)), list(range(200)))
                s = b.stats()
                self.assertEqual(s["totalMessagesProcessed"], 200)

    def test_sigterm_answers_everything_in_flight_then_exits_zero(self):
        srv = Server(agent=GATE, workers=2)
        srv.start()
        gate = Gate(srv.tmp.name)
        try:
            a, b = srv.client(), srv.client()
            for i in range(6):
                a.send({"id": i, "type": "hold", "data": gate.data(i)})
            wait_stats(srv, lambda s: s["inFlight"] == 2 and s["queue"]["depth"] == 4, what="2 running, 4 queued")
            srv.signal(signal.SIGTERM)
            wait_for(lambda: b.call("pool.ping")["state"] == "draining", what="state draining")
            gate.release()
            self.assertEqual(sorted(recv_ids(a, 6)), list(range(6)))
            self.assertEqual(srv.wait_exit(), 0)
            self.assertFalse(os.path.exists(srv.path), "socket file left behind")
            a.close()
            b.close()
        finally:
            gate.release()
            srv.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
