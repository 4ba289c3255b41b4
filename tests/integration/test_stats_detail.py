# SPDX-License-Identifier: BSD-2-Clause
"""test_stats_detail.py - detailed pool.stats, worker by worker, through the real server.

Every per-worker field of pool.stats {"detailed": true} (docs/protocol.md)
has an exact value for a known scenario here: `errors` is 3 after three
agent_error answers and stays 3 across a recycle and a crash (it counts
for the slot); `generation` is 1, then 2 after a recycle, 3 after a
crash; `messagesProcessed` counts the current process's answers;
`lastMessageAt` is null before the first answer and then lies between the
request and its answer; `startedAt` lies between the start and the ready
of its process; `rssBytes` agrees with /proc and is there as soon as a
process serves; `health` is the agent's
health() answer and `missedBeats` counts its falsy answers.  The
`agent` object is the master's cache of the worker's agent.metrics
answer, asked only when detailed stats are read (heartbeats alone never
run metrics(), a read waits for a fresh answer and shows its `ageMs`;
an agent counting its calls proves both): its counter equals the messages the
agent handled, it belongs to the current process only, an async worker is
asked while it holds messages, a too large answer is replaced, and the
asks themselves are no messages (not accepted, not processed, not typed,
not dead-lettered, never late).  Waits are on conditions only.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Gate, Server, main, server_stats, vm_rss_kb, wait_for, wait_stats  # noqa: E402
from test_metrics import Endpoint, parse_metrics  # noqa: E402

AGENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agents")
OBSERVE = "observe:ObserveAgent"
AOBSERVE = "observe:AsyncObserveAgent"
SLACK_MS = 1000  # wall-clock brackets allow this much for clock granularity


def now_ms():
    return time.time() * 1000


def observe_server(agent=OBSERVE, workers=1, args=(), **kw):
    return Server(agent=agent, workers=workers, args=["--python-path", AGENTS] + list(args), **kw)


def workers_of(srv):
    return server_stats(srv, detailed=True)["workers"]


def serving(srv, slot="worker-0"):
    """The process of `slot` taking messages (detailed stats object)."""
    for w in workers_of(srv):
        if w["id"] == slot and w["state"] in ("ready", "busy"):
            return w
    return None


class PerWorkerFields(unittest.TestCase):
    def test_errors_generation_and_messages_for_a_known_history(self):
        srv = observe_server(args=["--max-messages-per-worker", "6", "--recycle-jitter", "0"])
        with srv, srv.client() as c:
            w = serving(srv)
            self.assertEqual((w["errors"], w["generation"], w["messagesProcessed"]), (0, 1, 0), w)
            for i in range(3):
                self.assertEqual(c.request("raise", i)["error"]["code"], "agent_error")
            for i in range(2):
                self.assertTrue(c.request("echo", i)["ok"])
            w = serving(srv)
            self.assertEqual((w["errors"], w["generation"], w["messagesProcessed"]), (3, 1, 5), w)
            first_pid = w["pid"]
            # the sixth answer reaches maxMessagesPerWorker: recycled
            self.assertTrue(c.request("echo", 5)["ok"])
            w = wait_for(lambda: len(workers_of(srv)) == 1 and serving(srv) and
                         serving(srv)["generation"] == 2 and serving(srv), what="the recycle to finish")
            self.assertNotEqual(w["pid"], first_pid)
            self.assertEqual((w["errors"], w["messagesProcessed"]), (3, 0), w)
            st = server_stats(srv)
            self.assertEqual(st["restarts"]["recycled"], 1)
            self.assertEqual(st["errors"]["agent_error"], 3)
            # a crash: a new process in the same slot, the slot's errors kept
            r = c.request("crash", 0, retry=False)
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            w = wait_for(lambda: serving(srv) and serving(srv)["generation"] == 3 and serving(srv),
                         what="the respawn")
            self.assertEqual((w["errors"], w["messagesProcessed"]), (3, 0), w)
            self.assertEqual(c.request("raise", 9)["error"]["code"], "agent_error")
            self.assertEqual(serving(srv)["errors"], 4)

    def test_errors_are_counted_per_slot(self):
        srv = observe_server(workers=2)
        with srv, srv.client() as c:
            # round-robin, one at a time: one worker gets every raise
            for i in range(6):
                self.assertEqual(c.request("raise" if i % 2 == 0 else "echo", i)["ok"], i % 2 == 1)
            ws = workers_of(srv)
            self.assertEqual(sorted(w["errors"] for w in ws), [0, 3], ws)
            self.assertEqual([w["messagesProcessed"] for w in ws], [3, 3], ws)

    def test_started_at_and_last_message_at(self):
        t0 = now_ms()
        srv = observe_server()
        with srv, srv.client() as c:
            t1 = now_ms()
            w = serving(srv)
            self.assertGreaterEqual(w["startedAt"], t0 - SLACK_MS, w)
            self.assertLessEqual(w["startedAt"], t1 + SLACK_MS, w)
            self.assertIsNone(w["lastMessageAt"], w)
            ta = now_ms()
            self.assertTrue(c.request("echo", 1)["ok"])
            tb = now_ms()
            w = serving(srv)
            self.assertGreaterEqual(w["lastMessageAt"], ta - SLACK_MS, w)
            self.assertLessEqual(w["lastMessageAt"], tb + SLACK_MS, w)
            self.assertGreaterEqual(w["lastMessageAt"], w["startedAt"], w)
            before = w
            # a new process: a later startedAt, no answer yet
            tc = now_ms()
            self.assertEqual(c.request("crash", 0, retry=False)["error"]["code"], "worker_crashed")
            w = wait_for(lambda: serving(srv) and serving(srv)["generation"] == 2 and serving(srv),
                         what="the respawn")
            self.assertGreaterEqual(w["startedAt"], tc - SLACK_MS, w)
            self.assertGreaterEqual(w["startedAt"], before["startedAt"], w)
            self.assertIsNone(w["lastMessageAt"], w)

    def test_rss_bytes_agrees_with_proc(self):
        srv = observe_server()
        with srv:
            w = wait_for(lambda: serving(srv) and serving(srv)["rssBytes"] > 0 and serving(srv),
                         what="an RSS sample")
            proc = vm_rss_kb(w["pid"]) * 1024
            self.assertGreater(w["rssBytes"], proc // 2, (w["rssBytes"], proc))
            self.assertLess(w["rssBytes"], proc * 2, (w["rssBytes"], proc))

    def test_rss_bytes_from_the_moment_a_worker_is_ready(self):
        # Sampled when the process becomes ready, not only by the
        # once-a-second sampler: the first detailed stats that show a
        # respawned process serving already carry its RSS.  (Without
        # the sample at ready, each round below would see 0 unless a
        # periodic sample happened to fall between fork and this look.)
        srv = observe_server()
        with srv, srv.client() as c:
            for round in range(3):
                g = serving(srv)["generation"]
                self.assertEqual(c.request("crash", round, retry=False)["error"]["code"], "worker_crashed")
                w = wait_for(lambda: serving(srv) and serving(srv)["generation"] == g + 1 and serving(srv),
                             interval=0.001, what="the respawned worker to serve")
                self.assertGreater(w["rssBytes"], 0, w)
                proc = vm_rss_kb(w["pid"]) * 1024
                self.assertLess(w["rssBytes"], proc * 2, (w["rssBytes"], proc))

    def test_health_and_missed_beats(self):
        srv = observe_server(args=["--health-check-interval", "100", "--max-missed-beats", "1000"])
        sick = os.path.join(srv.tmp.name, "sick")
        srv.env = {"AP_TEST_SICK": sick}
        with srv, srv.client() as c:
            w = wait_for(lambda: serving(srv) and serving(srv).get("health") == {"ok": True, "calls": 0} and
                         serving(srv), what="the first health() answer")
            self.assertEqual((w["missedBeats"], w["healthy"]), (0, True), w)
            self.assertEqual(w["agent"]["health"], {"ok": True, "calls": 0}, w)
            for i in range(2):
                self.assertTrue(c.request("echo", i)["ok"])
            wait_for(lambda: serving(srv)["health"] == {"ok": True, "calls": 2}, what="health() after 2 messages")
            open(sick, "w").close()
            w = wait_for(lambda: serving(srv)["missedBeats"] >= 2 and serving(srv), what="two falsy answers")
            self.assertIs(w["health"], False, w)
            self.assertIs(w["healthy"], False, w)
            self.assertIn("health() answered false", srv.log())
            os.unlink(sick)
            w = wait_for(lambda: serving(srv)["missedBeats"] == 0 and serving(srv), what="a healthy answer")
            self.assertEqual((w["healthy"], w["health"]), (True, {"ok": True, "calls": 2}), w)
            self.assertEqual(w["generation"], 1)  # never replaced (maxMissedBeats 1000)


class AgentMetricsCache(unittest.TestCase):
    def test_the_agent_counter_equals_the_messages_it_handled(self):
        srv = observe_server(workers=2, args=["--health-check-interval", "200"])
        spec = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
        srv.args += ["--metrics-listen", spec]
        with srv, srv.client() as c:
            got = c.pipeline([{"id": i, "type": "echo", "data": i} for i in range(7)])
            self.assertTrue(all(r["ok"] for r in got.values()))
            t = now_ms()

            def cached():
                ws = workers_of(srv)
                ok = all(w["agent"]["metrics"] is not None and w["agent"]["at"] >= t - SLACK_MS and
                         w["agent"]["metrics"]["calls"] == w["messagesProcessed"] and "health" in w for w in ws)
                return ok and ws
            ws = wait_for(cached, what="agent.metrics asked after the messages, and a health() answer")
            self.assertEqual(sum(w["agent"]["metrics"]["calls"] for w in ws), 7)
            for w in ws:
                m = w["agent"]["metrics"]
                self.assertEqual((m["worker"], m["pid"], m["async"]), (w["id"], w["pid"], False), m)
                self.assertEqual(m["errors"], 0)
                self.assertLessEqual(w["agent"]["at"], now_ms() + SLACK_MS)
                self.assertEqual(w["agent"]["health"], w["health"])
            # refreshed by later detailed reads (never by heartbeats)
            at = {w["id"]: w["agent"]["at"] for w in ws}
            wait_for(lambda: all(w["agent"]["at"] > at[w["id"]] for w in workers_of(srv)), what="a refresh")
            # the asks are no messages
            st = server_stats(srv)
            self.assertEqual(st["messages"]["accepted"], 7)
            self.assertEqual(st["totalMessagesProcessed"], 7)
            self.assertEqual(st["messages"]["lateResults"], 0)
            self.assertEqual(st["deadLetters"]["records"], 0)
            self.assertEqual(set(st["types"]), {"other", "echo"})
            self.assertEqual(st["types"]["echo"], {"ok": 7, "errors": {}})
            self.assertEqual(sum(st["errors"].values()), 0)
            # /stats over HTTP shows the same cache
            status, _, body = Endpoint(spec).get("/stats")
            self.assertEqual(status, 200)
            http = {w["id"]: w["agent"]["metrics"]["calls"] for w in json.loads(body)["workers"]}
            self.assertEqual(http, {w["id"]: w["messagesProcessed"] for w in ws})
            samples, _ = parse_metrics(Endpoint(spec).get("/metrics")[2])
            self.assertFalse([k for k in samples if dict(k[1]).get("type") == "agent.metrics"])

    def test_metrics_run_for_readers_only_and_reads_get_fresh_values(self):
        srv = observe_server(agent="observe:CountingAgent", args=["--health-check-interval", "100"])
        track = os.path.join(srv.tmp.name, "counts.json")

        def counts():
            try:
                with open(track) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
        with srv, srv.client() as c:
            self.assertTrue(c.request("track", {"file": track})["ok"])
            # heartbeats alone (no detailed read): health() runs, metrics() never
            beats = wait_for(lambda: (counts() or {}).get("beats", 0) >= 5 and counts()["beats"],
                             what="five heartbeats")
            self.assertEqual(counts()["metrics"], 0, counts())
            for i in range(3):
                self.assertTrue(c.request("echo", i)["ok"])
            # a detailed read asks and waits: the values are the agent's now
            w = serving(srv)
            m = w["agent"]["metrics"]
            self.assertEqual((m["calls"], m["metricsCalls"]), (3, 1), m)
            self.assertGreaterEqual(m["beats"], beats)
            self.assertIsInstance(w["agent"]["ageMs"], (int, float))
            self.assertGreaterEqual(w["agent"]["ageMs"], 0)
            # more heartbeats (each 100 ms apart: the cache is stale by then), still no metrics() call
            wait_for(lambda: counts()["beats"] >= m["beats"] + 5, what="five more heartbeats")
            self.assertEqual(counts()["metrics"], 1, counts())
            for i in range(2):
                self.assertTrue(c.request("echo", i)["ok"])
            m = serving(srv)["agent"]["metrics"]
            self.assertEqual((m["calls"], m["metricsCalls"]), (5, 2), m)
            # non-detailed stats never ask
            for _ in range(3):
                server_stats(srv)
            self.assertEqual(counts()["metrics"], 2, counts())

    def test_async_worker_is_asked_while_it_holds_messages(self):
        srv = observe_server(agent=AOBSERVE, args=["--health-check-interval", "100"])
        with srv, Gate(srv.tmp.name) as gate, srv.client() as c:
            for i in range(3):
                self.assertTrue(c.request("echo", i)["ok"])
            c.send({"id": "a", "type": "gate", "data": gate.data(1)})
            c.send({"id": "b", "type": "gate", "data": gate.data(2)})
            wait_stats(srv, lambda st: st["inFlight"] == 2, what="two messages held")

            def metrics_are(calls, held):
                w = serving(srv)
                m = w and w["agent"]["metrics"]
                return m and m["calls"] == calls and m["queue_size"] == held and m
            m = wait_for(lambda: metrics_are(3, 2), what="metrics taken while 2 are held")
            self.assertEqual(m["async"], True)
            gate.release()
            self.assertEqual(sorted(c.recv()["id"] for _ in range(2)), ["a", "b"])
            wait_for(lambda: metrics_are(5, 0), what="metrics after the release")
            self.assertEqual(server_stats(srv)["messages"]["accepted"], 5)

    def test_a_too_large_answer_is_replaced(self):
        srv = observe_server(args=["--health-check-interval", "100"])
        with srv, srv.client() as c:
            self.assertTrue(c.request("pad", {"bytes": 10000})["ok"])
            w = wait_for(lambda: serving(srv)["agent"]["metrics"] and
                         "error" in serving(srv)["agent"]["metrics"] and serving(srv), what="the too large note")
            m = w["agent"]["metrics"]
            self.assertEqual(m["error"], "too large", m)
            self.assertGreater(m["bytes"], 10000)
            self.assertEqual(set(m), {"error", "bytes"})
            self.assertTrue(c.request("pad", {"bytes": 100})["ok"])
            m = wait_for(lambda: (serving(srv)["agent"]["metrics"] or {}).get("calls") == 2 and
                         serving(srv)["agent"]["metrics"], what="a small answer again")
            self.assertEqual(m["pad"], "x" * 100)

    def test_the_cache_belongs_to_the_current_process(self):
        srv = observe_server(args=["--health-check-interval", "100"])
        with srv, srv.client() as c:
            for i in range(4):
                self.assertTrue(c.request("echo", i)["ok"])
            w = wait_for(lambda: (serving(srv)["agent"]["metrics"] or {}).get("calls") == 4 and serving(srv),
                         what="4 calls cached")
            old_pid = w["pid"]
            self.assertEqual(c.request("crash", 0, retry=False)["error"]["code"], "worker_crashed")

            def fresh():
                for w in workers_of(srv):
                    m = w["agent"]["metrics"]
                    # never another process's numbers
                    if m is not None:
                        self.assertEqual(m["pid"], w["pid"], w)
                    if w["state"] == "dead":
                        self.assertEqual(w["agent"], {"metrics": None, "at": None, "health": None}, w)
                w = serving(srv)
                return w and w["pid"] != old_pid and w["agent"]["metrics"] and w
            w = wait_for(fresh, what="the new process's metrics")
            self.assertEqual((w["agent"]["metrics"]["calls"], w["generation"]), (0, 2), w)


if __name__ == "__main__":
    main()
