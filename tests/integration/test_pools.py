# SPDX-License-Identifier: BSD-2-Clause
"""test_pools.py - several agents in one agentpoold: named pools.

A real server runs two pools with different agents and sizes: requests
name their pool (or go to defaultPool), an unknown pool is refused naming
the pools there are, settings are inherited from the top level, each pool
is supervised on its own (a crash loop in one leaves the other ready and
answering), a full queue in one pool under overflow block holds back only
the connection's messages for that pool, reloads act on one pool or all
(adding and removing pools), rest-for-one restarts the later slots, and
stats, Prometheus series and dead-letter files are per pool.  No test
asserts how long anything took.
"""

import json
import os
import signal
import sys
import tempfile
import unittest

from harness import Server, wait_for

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_metrics import Endpoint, check_with_promtool, parse_metrics, sample  # noqa: E402

ECHO = "pyagents.examples.echo:EchoAgent"
WHOAMI = "pyagents.examples.whoami:WhoamiAgent"
CRASH = "pyagents.examples.crash:CrashAgent"
GATE = "pyagents.examples.gate:GateAgent"
BROKEN = "pyagents.examples.broken_import:Agent"


def two_pools(**top):
    cfg = {"pools": {"researcher": {"agent": WHOAMI, "minWorkers": 2, "maxWorkers": 2},
                     "writer": {"agent": ECHO, "minWorkers": 1, "maxWorkers": 1}}}
    cfg.update(top)
    return cfg


class Pools(unittest.TestCase):
    def start(self, config, **kw):
        srv = Server(config=config, **kw)
        srv.start()
        self.addCleanup(srv.close)
        return srv

    def test_requests_are_routed_by_pool_and_default_to_the_first(self):
        srv = self.start(two_pools())
        with srv.client() as c:
            who = c.request("whoami", pool="researcher")
            self.assertTrue(who["ok"], who)
            self.assertIn("pid", who["result"])
            self.assertTrue(who["result"]["worker"].startswith("researcher/worker-"), who)
            echo = c.request("hi", {"a": 1}, pool="writer")
            self.assertEqual(echo["result"], {"a": 1})
            # no "pool": the first pool (defaultPool unset)
            self.assertIn("pid", c.request("whoami")["result"])
            st = c.call("pool.stats")
            self.assertEqual(sorted(st["pools"]), ["researcher", "writer"])
            self.assertEqual(st["pools"]["researcher"]["poolSize"], 2)
            self.assertEqual(st["pools"]["writer"]["poolSize"], 1)
            self.assertEqual(st["pools"]["writer"]["messages"]["answeredOk"], 1)
            self.assertEqual(st["pools"]["researcher"]["messages"]["answeredOk"], 2)
            self.assertEqual(st["messages"]["answeredOk"], 3)  # the totals
            self.assertEqual(st["poolSize"], 3)

    def test_default_pool_setting_routes_requests_that_name_none(self):
        srv = self.start(two_pools(defaultPool="writer"))
        with srv.client() as c:
            self.assertEqual(c.request("hi", 7)["result"], 7)

    def test_an_unknown_pool_is_a_bad_request_naming_the_pools(self):
        srv = self.start(two_pools())
        with srv.client() as c:
            r = c.request("hi", 1, pool="nosuch")
            self.assertFalse(r["ok"])
            self.assertEqual(r["error"]["code"], "bad_request")
            self.assertIn('unknown pool "nosuch"', r["error"]["message"])
            self.assertIn("researcher, writer", r["error"]["message"])
            r = c.request("hi", 1, pool="")
            self.assertIn('unknown pool ""', r["error"]["message"])
            r = c.request("hi", 1, pool=5)
            self.assertEqual(r["error"]["code"], "bad_request")
            self.assertIn("pool must be a string", r["error"]["message"])
            # the connection goes on
            self.assertEqual(c.request("hi", 2, pool="writer")["result"], 2)
            # a pool.* request naming an unknown pool too
            r = c.request("pool.stats", {"pool": "nosuch"})
            self.assertEqual(r["error"]["code"], "bad_request")

    def test_top_level_settings_are_inherited_and_a_pool_overrides_them(self):
        cfg = two_pools(messageQueueSize=77)
        cfg["pools"]["writer"]["messageQueueSize"] = 5
        srv = self.start(cfg)
        with srv.client() as c:
            st = c.call("pool.stats")
            self.assertEqual(st["pools"]["researcher"]["queue"]["capacity"], 77)
            self.assertEqual(st["pools"]["writer"]["queue"]["capacity"], 5)
            one = c.call("pool.stats", {"pool": "writer"})
            self.assertEqual(one["pool"], "writer")
            self.assertEqual(one["agent"], ECHO)
            self.assertEqual(one["queue"]["capacity"], 5)

    def test_a_crash_loop_in_one_pool_leaves_the_other_ready_and_answering(self):
        cfg = {"pools": {"crashy": {"agent": CRASH, "minWorkers": 1, "maxWorkers": 1, "maxRestarts": 1,
                                    "restartWindow": "60s", "maxRetries": 0},
                         "steady": {"agent": ECHO, "minWorkers": 1, "maxWorkers": 1}}}
        srv = self.start(cfg)
        with srv.client() as c:
            for i in range(3):
                r = c.request("boom", {"code": 1}, pool="crashy")
                self.assertFalse(r["ok"])
            wait_for(lambda: c.call("pool.health", {"pool": "crashy"})["backoff"], what="crashy to back off")
            health = c.call("pool.health")
            self.assertEqual(health["status"], "degraded")
            self.assertEqual(health["pools"]["crashy"]["status"], "degraded")
            self.assertEqual(health["pools"]["steady"]["status"], "ready")
            self.assertFalse(health["pools"]["steady"]["backoff"])
            for i in range(50):
                self.assertEqual(c.request("e", i, pool="steady")["result"], i)
            st = c.call("pool.stats")
            self.assertEqual(st["pools"]["steady"]["restarts"]["crashed"], 0)
            self.assertGreaterEqual(st["pools"]["crashy"]["restarts"]["crashed"], 2)
            self.assertIn("pool crashy: more than 1 worker restarts", srv.log())

    def test_a_full_queue_in_one_pool_under_block_holds_only_that_pools_messages(self):
        gates = tempfile.mkdtemp(prefix="aptest-gate-")
        cfg = {"overflow": "block",
               "pools": {"slow": {"agent": GATE, "minWorkers": 1, "maxWorkers": 1, "messageQueueSize": 1,
                                  "prefetch": 1},
                         "fast": {"agent": ECHO, "minWorkers": 1, "maxWorkers": 1}}}
        srv = self.start(cfg)
        gate = os.path.join(gates, "open")
        self.addCleanup(lambda: os.path.exists(gate) and os.unlink(gate))
        with srv.client() as a, srv.client() as b:
            # One write: a message for the fast pool, three for the slow one
            # (one runs, one queues, the third is held: the queue is full),
            # then another for the fast pool, read only once there is room.
            lines = [{"id": "f1", "type": "e", "data": 1, "pool": "fast"}]
            lines += [{"id": "s%d" % i, "type": "wait", "data": {"file": gate, "seq": i}, "pool": "slow"}
                      for i in range(3)]
            lines += [{"id": "f2", "type": "e", "data": 2, "pool": "fast"}]
            a.send_raw("".join(json.dumps(x) + "\n" for x in lines).encode())
            self.assertEqual(a.recv(), {"id": "f1", "ok": True, "result": 1})  # read before the held one
            wait_for(lambda: b.call("pool.stats")["messages"]["held"] == 1, what="a message held for room")
            # Another connection's messages for the fast pool flow meanwhile.
            for i in range(20):
                self.assertEqual(b.request("e", i, pool="fast")["result"], i)
            st = b.call("pool.stats")
            self.assertEqual(st["pools"]["slow"]["queue"]["depth"], 1)
            self.assertEqual(st["pools"]["fast"]["queue"]["depth"], 0)
            self.assertEqual(st["pools"]["fast"]["messages"]["accepted"], 21)  # f2 not read yet
            open(gate, "w").close()
            got = {}
            for _ in range(4):
                r = a.recv()
                got[r["id"]] = r
            self.assertEqual(sorted(got), ["f2", "s0", "s1", "s2"])
            self.assertEqual(got["f2"]["result"], 2)

    def test_prometheus_series_carry_the_pool_label(self):
        spec = "unix:" + os.path.join(tempfile.mkdtemp(prefix="aptest-m-"), "m.sock")
        srv = self.start(two_pools(metricsListen=spec))
        with srv.client() as c:
            c.request("hi", 1, pool="writer")
        text = Endpoint(spec).get("/metrics")[2]
        check_with_promtool(self, text)
        samples, _ = parse_metrics(text)
        self.assertEqual(sample(samples, "agentpool_queue_capacity", pool="writer"), 1024)
        self.assertEqual(sample(samples, "agentpool_queue_capacity", pool="researcher"), 1024)
        self.assertEqual(sample(samples, "agentpool_messages_total", pool="writer", type="hi", outcome="ok"), 1)
        self.assertIsNone(sample(samples, "agentpool_messages_total", pool="researcher", type="hi", outcome="ok"))
        self.assertEqual(sample(samples, "agentpool_pool_ready", pool="researcher"), 1)
        self.assertEqual(sample(samples, "agentpool_workers", pool="researcher", state="ready"), 2)
        self.assertEqual(sample(samples, "agentpool_workers", pool="writer", state="ready"), 1)
        self.assertEqual(sample(samples, "agentpool_alert_active", pool="writer", alert="queue_nearly_full"), 0)
        self.assertEqual(sample(samples, "agentpool_ready"), 1)  # the server's own: no pool label
        with srv.client() as c:
            pid = [w["pid"] for w in c.stats(detailed=True)["workers"] if w["id"] == "writer/worker-0"][0]
        self.assertEqual(sample(samples, "agentpool_worker_info", pool="writer", slot="0", worker="writer/worker-0",
                                pid=str(pid), state="ready"), 1)

    def test_each_pool_has_its_own_dead_letter_file(self):
        cfg = {"pools": {"crashy": {"agent": CRASH, "minWorkers": 1, "maxWorkers": 1, "maxRetries": 0},
                         "steady": {"agent": ECHO, "minWorkers": 1, "maxWorkers": 1}}}
        srv = self.start(cfg)
        with srv.client() as c:
            r = c.request("boom", {"code": 1}, pool="crashy")
            self.assertFalse(r["ok"])
            path = srv.path + ".crashy.deadletter.jsonl"
            wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, what="the dead letter")
            with open(path) as f:
                self.assertEqual(json.loads(f.readline())["type"], "boom")
            self.assertTrue(os.path.exists(srv.path + ".steady.deadletter.jsonl"))
            self.assertEqual(os.path.getsize(srv.path + ".steady.deadletter.jsonl"), 0)
            lst = c.call("pool.dlq.list", {"pool": "crashy"})
            self.assertEqual(lst["total"], 1)
            r = c.request("pool.dlq.list")
            self.assertEqual(r["error"]["code"], "bad_request")  # two pools: name one
            self.assertEqual(c.call("pool.stats")["pools"]["crashy"]["deadLetters"]["records"], 1)

    def test_rest_for_one_restarts_the_dead_worker_and_every_later_slot(self):
        cfg = {"pools": {"chain": {"agent": WHOAMI, "minWorkers": 4, "maxWorkers": 4,
                                   "restartStrategy": "rest-for-one", "loadBalancingStrategy": "round-robin"}}}
        srv = self.start(cfg)
        with srv.client() as c:
            before = {w["id"]: w["pid"] for w in c.stats(detailed=True)["workers"]}
            self.assertEqual(len(before), 4)
            victim = before["chain/worker-1"]
            os.kill(victim, signal.SIGKILL)

            def replaced():
                now = {w["id"]: w["pid"] for w in c.stats(detailed=True)["workers"]
                       if w["state"] in ("ready", "busy")}
                return len(now) == 4 and all(now[k] != before[k] for k in
                                             ("chain/worker-1", "chain/worker-2", "chain/worker-3")) and now
            now = wait_for(replaced, what="worker-1 and the later slots replaced")
            self.assertEqual(now["chain/worker-0"], before["chain/worker-0"])  # an earlier slot is left alone

            def ended():  # the replaced processes drain, then stop: their ends come last
                hist = c.call("pool.history")["history"]
                return len(hist) >= 3 and hist
            hist = wait_for(ended, what="three ends in the history")
            ends = {(e["worker"], e["reason"]) for e in hist}
            self.assertIn(("worker-1", "crashed"), ends)
            self.assertIn(("worker-2", "recycled"), ends)
            self.assertIn(("worker-3", "recycled"), ends)
            self.assertNotIn("worker-0", {e["worker"] for e in hist})
            self.assertIn("rest-for-one", srv.log())


class PoolReload(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="aptest-poolreload-")
        self.cfgpath = os.path.join(self.dir, "config.json")
        self.sock = os.path.join(self.dir, "ap.sock")

    def write(self, cfg):
        with open(self.cfgpath, "w") as f:
            json.dump(cfg, f)

    def start(self, cfg):
        self.write(cfg)
        srv = Server(bare=True, args=["--socket", self.sock, "--config", self.cfgpath])
        srv.path = self.sock
        srv.start()
        self.addCleanup(srv.close)
        return srv

    def test_reload_of_one_pool_leaves_the_other_alone(self):
        srv = self.start(two_pools())
        with srv.client() as c:
            before = {w["id"]: w["pid"] for w in c.stats(detailed=True)["workers"]}
            cfg = two_pools()
            cfg["pools"]["writer"]["agent"] = WHOAMI
            self.write(cfg)
            r = c.call("pool.reload", {"pool": "writer"})
            self.assertEqual(r["pools"]["writer"]["status"], "reloaded")
            self.assertEqual(r["pools"]["writer"]["replaced"], 1)
            self.assertNotIn("researcher", r["pools"])
            after = {w["id"]: w["pid"] for w in c.stats(detailed=True)["workers"]}
            self.assertNotEqual(after["writer/worker-0"], before["writer/worker-0"])
            for k in ("researcher/worker-0", "researcher/worker-1"):
                self.assertEqual(after[k], before[k])
            self.assertIn("pid", c.request("x", pool="writer")["result"])

    def test_reload_adds_and_removes_pools(self):
        srv = self.start(two_pools())
        with srv.client() as c:
            cfg = {"pools": {"researcher": {"agent": WHOAMI, "minWorkers": 2, "maxWorkers": 2},
                             "reviewer": {"agent": ECHO, "minWorkers": 1, "maxWorkers": 1}}}
            self.write(cfg)
            r = c.call("pool.reload")
            self.assertEqual(r["pools"]["writer"]["status"], "removed")
            self.assertEqual(r["pools"]["reviewer"]["status"], "added")
            self.assertEqual(r["pools"]["researcher"]["status"], "reloaded")
            self.assertEqual(r["failed"], [])
            self.assertEqual(c.request("hi", 3, pool="reviewer")["result"], 3)
            bad = c.request("hi", 3, pool="writer")
            self.assertEqual(bad["error"]["code"], "bad_request")
            wait_for(lambda: sorted(c.call("pool.stats")["pools"]) == ["researcher", "reviewer"],
                     what="the removed pool to stop")

    def test_a_pool_whose_new_code_fails_keeps_its_workers_and_the_others_reload(self):
        srv = self.start(two_pools())
        with srv.client() as c:
            before = {w["id"]: w["pid"] for w in c.stats(detailed=True)["workers"]}
            cfg = two_pools()
            cfg["pools"]["writer"]["agent"] = BROKEN
            self.write(cfg)
            r = c.call("pool.reload")
            self.assertEqual(r["failed"], ["writer"])
            self.assertEqual(r["pools"]["writer"]["status"], "failed")
            self.assertIn("ImportError", r["pools"]["writer"]["error"])
            self.assertEqual(r["pools"]["researcher"]["status"], "reloaded")
            after = {w["id"]: w["pid"] for w in c.stats(detailed=True)["workers"] if w["state"] != "dead"}
            self.assertEqual(after["writer/worker-0"], before["writer/worker-0"])
            self.assertNotEqual(after["researcher/worker-0"], before["researcher/worker-0"])
            self.assertEqual(c.request("hi", 4, pool="writer")["result"], 4)
            self.assertEqual(c.call("pool.health")["status"], "ready")


if __name__ == "__main__":
    unittest.main()
