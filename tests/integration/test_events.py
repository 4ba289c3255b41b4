# SPDX-License-Identifier: BSD-2-Clause
"""test_events.py - the lifecycle event stream, through the real server.

What docs/events.md promises, against a real agentpoold with real Python
workers: each topic comes from a real cause (kill -9 of a worker:
worker.exited critical, then worker.spawned and worker.ready; a recycle
by maxMessagesPerWorker; a dead letter of the crash agent with maxRetries
0; a retry; a breaker opening and closing; backoff entered and left by a
crash loop; pool.reload; an alert raised and cleared; a message timeout
and the stuck kill of its sync worker).  Replay with since: the seqs a
subscriber to every topic receives are consecutive from the first one
kept, across the switch from replay to live while events keep coming;
since picks the first event at or after it.  The critical filter lets
only critical events through.  A subscriber that never reads does not
stop the pool answering (thousands of messages answered meanwhile), has
events dropped for it, and once it reads gets them and one
subscriber.dropped whose count makes up exactly what it missed (counts,
never durations).  pool.unsubscribe ends the stream; maxSubscribers
refuses one more; bad subscriptions are bad_request.  agentpoolctl events
and the Python clients' subscribe() follow the same stream.

Events agents publish (ctx.publish, agents/publisher.py): from a sync,
an async and a gevent worker they reach a subscriber as agent.<topic>
with the agent's data intact; a bad topic, data that is not JSON or too
large raise in the handler and nothing is recorded; an EVENT frame a
worker forges with a bad topic or bad JSON is dropped and counted by the
master; a flood past the worker's burst is bounded (what is recorded
plus what is dropped is exactly what was published, and some was
dropped).  A subscribing agent (pyagents/examples/eventsink.py) gets
each matching event once as an "event" message (its file has each seq
once, none of the topics it does not match), even with two workers; an
event it publishes while handling one is recorded but never delivered
back to it (no loop); a bad subscribes is refused with a log line.
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLCTL, SRCDIR, DEADLINE, Gate, Server, main, server_stats, wait_for,  # noqa: E402
                     skip_without_greenlet_support,
                     wait_stats)

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")
CRASH = "pyagents.examples.crash:CrashAgent"
SLEEP = "pyagents.examples.sleep:SleepAgent"
OBSERVE = "observe:ObserveAgent"


class Sub:
    """A subscribed connection: the answer, then event lines."""

    def __init__(self, srv, data=None):
        self.c = srv.client()
        self.answer = self.c.request("pool.subscribe", data)

    def next(self):
        ev = json.loads(self.c.recv_line())
        assert "ok" not in ev, "an answer where an event was due: %r" % ev
        return ev

    def until(self, topic):
        """Events up to and including the first of topic."""
        got = []
        while not got or got[-1]["event"] != topic:
            got.append(self.next())
        return got

    def close(self):
        self.c.close()


def subscribe(testcase, srv, data=None):
    s = Sub(srv, data)
    testcase.assertTrue(s.answer["ok"], s.answer)
    testcase.addCleanup(s.close)
    return s


def pid_of(srv, name="worker-0"):
    with srv.client() as c:
        return [w for w in c.stats(detailed=True)["workers"] if w["id"] == name][0]["pid"]


class Topics(unittest.TestCase):
    def test_kill_9_gives_a_critical_exit_then_a_spawn_and_a_ready(self):
        with Server(workers=1) as s:
            sub = subscribe(self, s, {"topics": ["worker.#"]})
            self.assertEqual(sub.answer["result"]["subscribed"], ["worker.#"])
            pid = pid_of(s)
            os.kill(pid, signal.SIGKILL)
            ex, sp, rd = sub.next(), sub.next(), sub.next()
            self.assertEqual((ex["event"], ex["priority"]), ("worker.exited", "critical"), ex)
            self.assertEqual(ex["data"]["pid"], pid)
            self.assertEqual(ex["data"]["signal"], 9)
            self.assertEqual((ex["data"]["reason"], ex["data"]["expected"]), ("crashed", False))
            self.assertNotIn("pool", ex["data"])  # one unnamed pool
            self.assertEqual((sp["event"], sp["priority"]), ("worker.spawned", "normal"), sp)
            self.assertEqual(sp["data"]["worker"], "worker-0")
            self.assertNotEqual(sp["data"]["pid"], pid)
            self.assertEqual((rd["event"], rd["data"]["pid"]), ("worker.ready", sp["data"]["pid"]), rd)
            self.assertTrue(ex["seq"] < sp["seq"] < rd["seq"])

    def test_named_pools_name_theirs(self):
        cfg = {"pools": {"alpha": {"agent": "pyagents.examples.echo:EchoAgent", "minWorkers": 1, "maxWorkers": 1},
                         "beta": {"agent": "pyagents.examples.echo:EchoAgent", "minWorkers": 1, "maxWorkers": 1}}}
        with Server(workers=1, config=cfg) as s:
            sub = subscribe(self, s, {"topics": ["worker.exited"], "pool": "beta"})
            with s.client() as c:
                pools = c.stats(detailed=True)["pools"]
                alpha_pid = c.call("pool.stats", {"pool": "alpha", "detailed": True})["workers"][0]["pid"]
                beta_pid = c.call("pool.stats", {"pool": "beta", "detailed": True})["workers"][0]["pid"]
            self.assertEqual(set(pools), {"alpha", "beta"})
            os.kill(alpha_pid, signal.SIGKILL)
            os.kill(beta_pid, signal.SIGKILL)
            ev = sub.next()  # alpha's is filtered out by "pool"
            self.assertEqual((ev["data"]["pool"], ev["data"]["pid"]), ("beta", beta_pid), ev)

    def test_recycle_by_max_messages(self):
        with Server(workers=1, args=["--max-messages-per-worker", "3", "--recycle-jitter", "0"]) as s, \
                s.client() as c:
            sub = subscribe(self, s, {"topics": ["worker.recycle_started", "worker.exited"]})
            pid = pid_of(s)
            for i in range(4):
                c.call("echo", {"i": i})
            rc = sub.next()
            self.assertEqual((rc["event"], rc["priority"]), ("worker.recycle_started", "normal"), rc)
            self.assertEqual(rc["data"]["pid"], pid)
            self.assertIn("maxMessagesPerWorker", rc["data"]["why"])
            ex = sub.next()
            self.assertEqual((ex["event"], ex["priority"], ex["data"]["pid"]), ("worker.exited", "normal", pid), ex)
            self.assertEqual((ex["data"]["reason"], ex["data"]["expected"]), ("recycled", True))

    def test_dead_letter_with_max_retries_0(self):
        with Server(agent=CRASH, workers=1, args=["--max-retries", "0"]) as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["message.#"]})
            r = c.request("crash", {"code": 3}, id="dl-1")
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            ev = sub.next()  # no message.retried before it
            self.assertEqual((ev["event"], ev["priority"]), ("message.dead_lettered", "critical"), ev)
            self.assertEqual((ev["data"]["id"], ev["data"]["type"], ev["data"]["attempts"]), ("dl-1", "crash", 1))
            self.assertIn("exited with status 3", ev["data"]["last"])

    def test_retried_then_dead_lettered(self):
        with Server(agent=CRASH, workers=1, args=["--max-retries", "1", "--retry-delay", "10"]) as s, \
                s.client() as c:
            sub = subscribe(self, s, {"topics": ["message.*"]})
            r = c.request("crash", {"code": 4}, id=7)
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            rt, dl = sub.next(), sub.next()
            self.assertEqual((rt["event"], rt["priority"]), ("message.retried", "normal"), rt)
            self.assertEqual((rt["data"]["id"], rt["data"]["attempt"]), (7, 2))
            self.assertEqual((dl["event"], dl["data"]["id"], dl["data"]["attempts"]), ("message.dead_lettered", 7, 2))

    def test_breaker_opens_and_closes(self):
        with Server(agent=SLEEP, workers=1,
                    args=["--breaker-failure-threshold", "2", "--breaker-reset-timeout", "300", "--timeout", "0"]) as s, \
                s.client() as c:
            sub = subscribe(self, s, {"topics": ["breaker.*"]})
            for _ in range(2):
                self.assertEqual(c.request("sleep", {"ms": "x"})["error"]["code"], "agent_error")
            op = sub.next()
            self.assertEqual((op["event"], op["data"]["type"], op["data"]["from"]), ("breaker.opened", "sleep", "closed"))
            wait_for(lambda: c.request("sleep", {"ms": 1})["ok"], what="a successful probe")
            cl = sub.next()
            self.assertEqual((cl["event"], cl["data"]["type"], cl["data"]["from"]),
                             ("breaker.closed", "sleep", "half_open"), cl)

    def test_backoff_entered_and_left(self):
        with Server(agent=CRASH, workers=3, args=["--max-restarts", "2", "--restart-window", "1500",
                                                  "--retry-delay", "10"]) as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["pool.backoff_entered", "pool.backoff_left"]})
            got = c.pipeline([{"id": i, "type": "boom", "retry": False} for i in range(3)])
            self.assertEqual(sorted(r["error"]["code"] for r in got.values()), ["worker_crashed"] * 3, got)
            en = sub.next()
            self.assertEqual((en["event"], en["priority"]), ("pool.backoff_entered", "critical"), en)
            self.assertEqual((en["data"]["maxRestarts"], en["data"]["restartWindowMs"]), (2, 1500))
            left = sub.next()
            self.assertEqual((left["event"], left["priority"]), ("pool.backoff_left", "normal"), left)

    def test_reload_started_and_finished(self):
        with Server(workers=2) as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["pool.reload_started", "pool.reload_finished"]})
            self.assertEqual(c.call("pool.reload")["replaced"], 2)
            st, fin = sub.next(), sub.next()
            self.assertEqual((st["event"], st["data"]["workers"]), ("pool.reload_started", 2), st)
            self.assertEqual(st["data"]["agent"], "pyagents.examples.echo:EchoAgent")
            self.assertEqual((fin["event"], fin["data"]), ("pool.reload_finished", {"ok": True, "replaced": 2}))

    def test_alert_raised_and_cleared(self):
        srv = Server(agent=OBSERVE, workers=1, args=["--python-path", AGENTS, "--alert-interval", "3600000"])
        with srv as s, Gate(s.tmp.name) as gate, s.client() as c:
            sub = subscribe(self, s, {"topics": ["alert.#"]})
            c.send({"id": 1, "type": "gate", "data": gate.data(1)})
            got = sub.until("alert.raised")
            ev = got[-1]
            self.assertEqual((ev["data"]["alert"], ev["data"]["level"], ev["priority"]),
                             ("low_available_workers", "warning", "normal"), ev)
            self.assertEqual((ev["data"]["value"], ev["data"]["threshold"]), (0, 20))
            gate.release()
            self.assertTrue(c.recv()["ok"])
            cl = sub.next()
            self.assertEqual((cl["event"], cl["data"]["alert"]), ("alert.cleared", "low_available_workers"), cl)

    def test_message_timeout_and_the_stuck_kill(self):
        with Server(agent=SLEEP, workers=1) as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["message.timeout", "worker.stuck_killed"]})
            pid = pid_of(s)
            r = c.request("sleep", {"ms": 120000}, id="slow", timeoutMs=200)
            self.assertEqual(r["error"]["code"], "timeout", r)
            to = sub.next()
            self.assertEqual((to["event"], to["data"]["id"], to["data"]["timeoutMs"]), ("message.timeout", "slow", 200))
            sk = sub.next()
            self.assertEqual((sk["event"], sk["priority"], sk["data"]["pid"]), ("worker.stuck_killed", "critical", pid))


def timeouts_behind_a_gate(c, gate, n, id_bytes=8):
    """Holds the one worker with a gate message, then sends n messages that
    time out in the queue (message.timeout each); returns their answers."""
    c.send({"id": "gate", "type": "gate", "data": gate.data(0)})
    pad = "x" * max(0, id_bytes - 8)
    return c.pipeline([{"id": "t%06d%s" % (i, pad), "type": "q", "timeoutMs": 1} for i in range(n)])


def observe_server(args=()):
    return Server(agent=OBSERVE, workers=1, args=["--python-path", AGENTS, "--message-queue-size", "10000",
                                                  "--alert-interval", "3600000"] + list(args))


class Replay(unittest.TestCase):
    def test_since_replays_then_goes_live_without_gap_or_duplicate(self):
        n = 3000
        with observe_server() as s, Gate(s.tmp.name) as gate, s.client() as c:
            box = {}
            sender = threading.Thread(target=lambda: box.update(r=timeouts_behind_a_gate(c, gate, n)))
            sender.start()
            # subscribe while events keep coming: part replay, part live
            wait_stats(s, lambda st: st["events"]["emitted"] > 200, what="some events kept")
            sub = subscribe(self, s, {"since": 0})
            self.assertEqual(sub.answer["result"]["seq"], 1)
            sender.join()
            self.assertEqual(sorted(r["error"]["code"] for r in box["r"].values()), ["timeout"] * n)
            last = server_stats(s)["events"]["lastSeq"]
            events = []
            while not events or events[-1]["seq"] < last:
                events.append(sub.next())
            seqs = [e["seq"] for e in events]
            self.assertEqual(seqs, list(range(1, last + 1)), "a gap or a duplicate")
            self.assertEqual(sum(1 for e in events if e["event"] == "message.timeout"), n)
            # since picks the first event at or after it
            mid = events[len(events) // 2]
            first = min(e["seq"] for e in events if e["time"] >= mid["time"])
            sub2 = subscribe(self, s, {"since": mid["time"]})
            self.assertEqual(sub2.answer["result"]["seq"], first)
            self.assertEqual(sub2.next()["seq"], first)
            # past the newest: live only
            sub3 = subscribe(self, s, {"since": events[-1]["time"] + 10 ** 6})
            self.assertGreater(sub3.answer["result"]["seq"], last)

    def test_history_is_bounded_and_since_before_it_starts_at_the_oldest_kept(self):
        with observe_server(["--event-history", "100"]) as s, Gate(s.tmp.name) as gate, s.client() as c:
            timeouts_behind_a_gate(c, gate, 300)
            st = server_stats(s)["events"]
            self.assertEqual(st["held"], 100)
            sub = subscribe(self, s, {"since": 0})
            # the workers the timeouts killed may still be replaced (worker.exited, worker.spawned) between
            # the two reads: the oldest kept is the 100th from the newest at the moment of subscribing
            after = server_stats(s)["events"]["lastSeq"]
            oldest = sub.answer["result"]["seq"]
            self.assertTrue(st["lastSeq"] - 99 <= oldest <= after - 99, (st["lastSeq"], oldest, after))
            self.assertEqual(sub.next()["seq"], oldest)

    def test_critical_only(self):
        with Server(workers=2) as s:
            sub = subscribe(self, s, {"priority": "critical"})
            before = server_stats(s)["events"]["emitted"]
            pids = []
            for k, name in enumerate(("worker-0", "worker-1")):
                pids.append(pid_of(s, name))
                os.kill(pids[-1], signal.SIGKILL)
                wait_stats(s, lambda st: st["workerEvents"]["spawned"] == 3 + k and st["healthy"] == 2,
                           what="the worker replaced")
            a, b = sub.next(), sub.next()
            self.assertEqual([(e["event"], e["priority"]) for e in (a, b)], [("worker.exited", "critical")] * 2)
            self.assertEqual([a["data"]["pid"], b["data"]["pid"]], pids)
            # normal events (spawned, ready) were emitted in between, and not sent
            self.assertGreaterEqual(server_stats(s)["events"]["emitted"] - before, 6)
            self.assertGreater(b["seq"] - a["seq"], 1)


class SlowSubscriber(unittest.TestCase):
    def test_a_subscriber_that_never_reads_drops_events_and_is_told_how_many(self):
        n = 3000
        with observe_server(["--subscriber-buffer-bytes", "16384", "--client-write-timeout", "0"]) as s, \
                Gate(s.tmp.name) as gate, s.client() as c:
            slow = subscribe(self, s, {"topics": ["message.timeout"]})  # and never reads, for now
            answers = timeouts_behind_a_gate(c, gate, n, id_bytes=200)
            # the pool answered every message while the subscriber read nothing
            self.assertEqual(sorted(r["error"]["code"] for r in answers.values()), ["timeout"] * n)
            self.assertTrue(c.call("pool.ping")["pong"])
            ev = server_stats(s)["events"]
            self.assertEqual(ev["subscribers"], 1)
            self.assertGreater(ev["dropped"], 0)
            # what is held for it stays bounded: what it was not handed was dropped
            self.assertLess(ev["delivered"], n)
            gate.release()
            self.assertTrue(c.recv()["ok"])
            # it reads now: every event it was owed, and after each catch-up
            # one subscriber.dropped; received + told dropped is every event
            timeouts, told = [], 0
            while len(timeouts) + told < n:
                e = slow.next()
                if e["event"] == "subscriber.dropped":
                    self.assertNotIn("seq", e)
                    self.assertGreater(e["data"]["count"], 0)
                    told += e["data"]["count"]
                else:
                    self.assertEqual(e["event"], "message.timeout")
                    timeouts.append(e)
            self.assertEqual(len(timeouts) + told, n)
            self.assertEqual(server_stats(s)["events"]["dropped"], told)
            self.assertGreaterEqual(told, ev["dropped"])
            seqs = [e["seq"] for e in timeouts]
            self.assertEqual(seqs, sorted(set(seqs)))
            # the newest are kept, the oldest dropped: a replay of the
            # history (bounded the same way: it keeps its newest) ends with
            # the same last event
            replay = subscribe(self, s, {"topics": ["message.timeout"], "since": 0})
            again = replay.until("subscriber.dropped")
            self.assertEqual(again[-2]["seq"], timeouts[-1]["seq"])
            self.assertEqual(len(again) - 1 + again[-1]["data"]["count"], n)


class Subscriptions(unittest.TestCase):
    def test_unsubscribe_ends_the_stream(self):
        with Server(workers=1) as s:
            sub = subscribe(self, s, {"topics": ["worker.#"]})
            r = sub.c.request("pool.unsubscribe")
            self.assertEqual(r["result"], {"unsubscribed": True, "delivered": 0})
            self.assertEqual(server_stats(s)["events"]["subscribers"], 0)
            os.kill(pid_of(s), signal.SIGKILL)
            wait_stats(s, lambda st: st["workerEvents"]["spawned"] == 2 and st["healthy"] == 1, what="a new worker")
            # the next line on the connection is the ping's answer, no event
            self.assertTrue(sub.c.call("pool.ping")["pong"])
            r = sub.c.request("pool.unsubscribe")
            self.assertEqual(r["result"], {"unsubscribed": False, "delivered": 0})

    def test_a_half_closed_subscriber_keeps_receiving(self):
        with Server(workers=1) as s:
            sub = subscribe(self, s, {"topics": ["worker.exited"]})
            sub.c.sock.shutdown(socket.SHUT_WR)  # as nc -N does after its request
            pid = pid_of(s)
            os.kill(pid, signal.SIGKILL)
            self.assertEqual(sub.next()["data"]["pid"], pid)
            self.assertEqual(server_stats(s)["events"]["subscribers"], 1)

    def test_max_subscribers(self):
        with Server(workers=1, args=["--max-subscribers", "1"]) as s:
            first = subscribe(self, s)
            second = Sub(s)
            self.assertEqual(second.answer["error"]["code"], "too_many_connections", second.answer)
            self.assertIn("maxSubscribers (1)", second.answer["error"]["message"])
            self.assertEqual(server_stats(s)["events"]["refused"], 1)
            first.close()
            wait_stats(s, lambda st: st["events"]["subscribers"] == 0, what="the first subscriber gone")
            r = second.c.request("pool.subscribe")
            self.assertTrue(r["ok"], r)
            second.close()

    def test_bad_subscriptions_are_bad_request(self):
        with Server(workers=1) as s, s.client() as c:
            for data, text in [({"topics": ["worker..x"]}, "bad topic pattern worker..x"),
                               ({"topics": ["#.x"]}, "bad topic pattern #.x"),
                               ({"topics": []}, "\"topics\" must be an array"),
                               ({"topics": "worker.#"}, "\"topics\" must be an array"),
                               ({"since": "yesterday"}, "\"since\""),
                               ({"since": -1}, "\"since\""),
                               ({"priority": "high"}, "\"priority\""),
                               ([1], "must be an object")]:
                r = c.request("pool.subscribe", data)
                self.assertEqual(r["error"]["code"], "bad_request", (data, r))
                self.assertIn(text, r["error"]["message"])
            self.assertTrue(c.request("pool.subscribe")["ok"])
            r = c.request("pool.subscribe")
            self.assertEqual(r["error"]["code"], "bad_request", r)
            self.assertIn("subscribed already", r["error"]["message"])

    def test_stats_and_prometheus_count_events(self):
        srv = Server(workers=1)
        spec = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
        srv.args += ["--metrics-listen", spec]
        with srv as s:
            from test_metrics import Endpoint, parse_metrics, sample
            sub = subscribe(self, s, {"since": 0})
            sub.until("worker.ready")
            ev = server_stats(s)["events"]
            self.assertGreaterEqual(ev["emitted"], 2)
            self.assertEqual((ev["subscribers"], ev["dropped"]), (1, 0))
            samples, families = parse_metrics(Endpoint(spec).get("/metrics")[2])
            self.assertEqual(families["agentpool_events_emitted_total"][0], "counter")
            self.assertGreaterEqual(sample(samples, "agentpool_events_emitted_total"), 2)
            self.assertEqual(sample(samples, "agentpool_event_subscribers"), 1)
            self.assertEqual(sample(samples, "agentpool_events_dropped_total"), 0)


class Followers(unittest.TestCase):
    def test_agentpoolctl_events(self):
        with Server(workers=1) as s:
            p = subprocess.Popen([AGENTPOOLCTL, "-s", s.path, "events", "worker.exited", "worker.spawned"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.addCleanup(p.wait)
            self.addCleanup(p.kill)
            wait_stats(s, lambda st: st["events"]["subscribers"] == 1, what="agentpoolctl subscribed")
            pid = pid_of(s)
            os.kill(pid, signal.SIGKILL)
            exline, spline = p.stdout.readline(), p.stdout.readline()
            ex, sp = exline.split(), spline.split()
            self.assertEqual(ex[2:5], ["worker.exited", "-", "CRITICAL"], exline)
            self.assertIn('"pid":%d' % pid, exline)
            self.assertEqual(sp[2:4], ["worker.spawned", "-"], spline)
            q = subprocess.Popen([AGENTPOOLCTL, "-s", s.path, "events", "--json", "--critical", "--since", "1h"],
                                 stdout=subprocess.PIPE, text=True)
            self.addCleanup(q.wait)
            self.addCleanup(q.kill)
            ev = json.loads(q.stdout.readline())
            self.assertEqual((ev["event"], ev["data"]["pid"]), ("worker.exited", pid))
            bad = subprocess.run([AGENTPOOLCTL, "-s", s.path, "events", "--since", "soon"], capture_output=True,
                                 text=True, timeout=DEADLINE)
            self.assertEqual(bad.returncode, 2, bad.stderr)
            bad = subprocess.run([AGENTPOOLCTL, "-s", s.path, "events", "worker..x"], capture_output=True, text=True,
                                 timeout=DEADLINE)
            self.assertEqual(bad.returncode, 1, bad.stderr)
            self.assertIn("bad topic pattern", bad.stderr)

    def test_python_clients_subscribe(self):
        sys.path.insert(0, SRCDIR)
        from pyagents.client import AsyncClient, BadRequest, Client
        with Server(workers=1) as s:
            with Client(s.path) as c, c.subscribe(["worker.#"], since=0) as events:
                first = next(events)
                self.assertEqual((first["event"], first["seq"]), ("worker.spawned", 1))
                self.assertEqual(next(events)["event"], "worker.ready")
                with self.assertRaises(BadRequest):
                    c.subscribe(["a..b"])

            async def follow():
                async with AsyncClient(s.path) as ac:
                    sub = ac.subscribe(critical=True)
                    it = sub.__aiter__()
                    step = asyncio.ensure_future(it.__anext__())
                    await asyncio.get_running_loop().run_in_executor(
                        None, lambda: wait_stats(s, lambda st: st["events"]["subscribers"] == 1, what="subscribed"))
                    pid = pid_of(s)
                    os.kill(pid, signal.SIGKILL)
                    ev = await step
                    await sub.aclose()
                    return pid, ev

            pid, ev = asyncio.run(follow())
            self.assertEqual((ev["event"], ev["priority"], ev["data"]["pid"]), ("worker.exited", "critical", pid))


PUBLISH = {"sync": "publisher:PublishAgent", "async": "publisher:AsyncPublishAgent",
           "gevent": "publisher:PublishAgent"}

try:
    import gevent  # noqa: F401
    HAVE_GEVENT = True
except ImportError:
    HAVE_GEVENT = False


def publish_server(model="sync", agent=None):
    return Server(agent=agent or PUBLISH[model], workers=1,
                  args=["--python-path", AGENTS, "--worker-model", model])


class AgentPublish(unittest.TestCase):
    DATA = {"task": 7, "tags": ["a", "\u00e9t\u00e9"], "nested": {"ok": True, "n": None}, "f": 1.5}

    def published_reaches_a_subscriber(self, model):
        with publish_server(model) as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["agent.#"]})
            self.assertEqual(c.call("publish", {"topic": "task.done", "data": self.DATA}), {"n": 1})
            ev = sub.next()
            self.assertEqual((ev["event"], ev["priority"]), ("agent.task.done", "normal"), ev)
            self.assertEqual(ev["data"], {"worker": "worker-0", "data": self.DATA})
            st = c.stats()["events"]
            self.assertEqual((st["agentPublished"], st["agentDropped"], st["agentRefused"]), (1, 0, 0))

    def test_a_sync_handler_publishes(self):
        self.published_reaches_a_subscriber("sync")

    def test_an_async_handler_publishes(self):
        self.published_reaches_a_subscriber("async")

    @unittest.skipUnless(HAVE_GEVENT, "gevent is not importable")
    @skip_without_greenlet_support
    def test_a_gevent_handler_publishes(self):
        self.published_reaches_a_subscriber("gevent")

    def test_a_bad_topic_or_data_raises_in_the_handler_and_records_nothing(self):
        with publish_server() as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["#"]})
            cases = [({"topic": "Task"}, "ValueError"), ({"topic": "a..b"}, "ValueError"),
                     ({"topic": "task.*"}, "ValueError"), ({"topic": "x" * 129}, "ValueError"),
                     ({"topic": ""}, "ValueError"), ({"topic": "ok", "what": "set"}, "TypeError"),
                     ({"topic": "ok", "what": "big"}, "ValueError")]
            for data, exc in cases:
                r = c.call("bad", data)
                self.assertEqual(r["raised"], exc, (data, r))
            self.assertEqual(c.call("bad", {"topic": "x" * 128, "data": 1}), {"raised": None})
            c.call("publish", {"topic": "after", "data": 2})
            # nothing came between: the next agent events are the two good ones
            evs = []
            while len(evs) < 2:
                e = sub.next()
                if e["event"].startswith("agent."):
                    evs.append(e)
            self.assertEqual([e["event"] for e in evs], ["agent." + "x" * 128, "agent.after"])
            st = c.stats()["events"]
            self.assertEqual((st["agentPublished"], st["agentRefused"]), (2, 0))

    def test_the_master_drops_a_forged_event_with_a_bad_topic_or_bad_json(self):
        with publish_server(agent="rogue:RogueAgent") as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["agent.#"]})
            pid = c.call("whoami")["pid"]
            c.call("event_frame", {"topic": "Bad", "json": "1"})
            c.call("event_frame", {"topic": "ok", "json": "{\"a\":"})
            c.call("event_frame", {"topic": "good", "json": "[1]"})
            ev = sub.next()
            self.assertEqual((ev["event"], ev["data"]["data"]), ("agent.good", [1]))
            st = c.stats()["events"]
            self.assertEqual((st["agentPublished"], st["agentRefused"]), (1, 2))
            self.assertEqual(c.call("whoami")["pid"], pid)  # dropped, not a protocol error

    def test_a_flood_past_the_burst_is_dropped_and_counted(self):
        # AGENTEV_BURST is 1000 at 100/s: 5000 in one handler would need
        # 40 s of refill to all pass (counts, not a duration, are checked:
        # recorded + dropped is exactly what was published)
        n = 5000
        with publish_server() as s, s.client() as c:
            self.assertEqual(c.call("publish", {"topic": "flood", "data": None, "n": n}), {"n": n})
            st = c.stats()["events"]
            self.assertEqual(st["agentPublished"] + st["agentDropped"], n, st)
            self.assertGreaterEqual(st["agentPublished"], 1000, st)
            self.assertGreater(st["agentDropped"], 0, st)
            self.assertEqual(st["agentRefused"], 0, st)


SINK = "pyagents.examples.eventsink:EventSink"


def sink_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f.read().splitlines()]


class AgentSubscribe(unittest.TestCase):
    def sink_server(self, workers=2):
        path = os.path.join(self.tmp, "sink.jsonl")
        return Server(agent=SINK, workers=workers, env={"EVENTSINK_FILE": path}), path

    def setUp(self):
        import tempfile
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        self.tmp = d.name

    def test_matching_events_come_once_as_event_messages(self):
        srv, path = self.sink_server(workers=2)
        with srv as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["agent.#"]})
            for i in range(5):
                c.call("publish", {"topic": "task.done", "data": {"i": i}})
                c.call("publish", {"topic": "other.done", "data": {"i": i}})  # not matched
            c.call("publish", {"topic": "task.last", "data": None})
            seen = [sub.next() for _ in range(11)]
            want = [e["seq"] for e in seen if e["event"].startswith("agent.task.")]
            self.assertEqual(len(want), 6)
            wait_for(lambda: len(sink_lines(path)) >= 6, what="six events in the sink's file")
            wait_stats(s, lambda st: st["events"]["agentDelivered"] == 6, what="six delivered")
            got = sink_lines(path)
            self.assertEqual(sorted(e["seq"] for e in got), want)  # each once, only the matching
            self.assertEqual(sorted(e["data"]["data"]["i"] for e in got if e["event"] == "agent.task.done"),
                             list(range(5)))
            self.assertTrue(all(set(e) == {"event", "time", "seq", "priority", "data"} for e in got), got)
            st = c.stats()
            self.assertEqual(st["events"]["agentDeliveryDropped"], 0)

    def test_an_event_published_while_handling_an_event_is_not_delivered_again(self):
        srv, path = self.sink_server(workers=1)
        with srv as s, s.client() as c:
            sub = subscribe(self, s, {"topics": ["agent.#"]})
            c.call("publish", {"topic": "task.start", "data": {"again": True}})
            first = sub.next()
            again = sub.next()  # the sink's own, while it handled the first
            self.assertEqual((first["event"], again["event"]), ("agent.task.start", "agent.task.again"))
            self.assertEqual(again["data"]["data"], {"from": first["seq"]})
            # one sync worker runs its messages in order: had task.again been
            # delivered, it would be in the file before the marker
            c.call("publish", {"topic": "task.marker", "data": 1})
            wait_for(lambda: any(e["event"] == "agent.task.marker" for e in sink_lines(path)), what="the marker")
            self.assertEqual([e["event"] for e in sink_lines(path)], ["agent.task.start", "agent.task.marker"])
            self.assertEqual(c.stats()["events"]["agentDelivered"], 2)

    def test_a_bad_subscribes_is_refused_with_a_log_line(self):
        with Server(agent="publisher:BadSubscriber", workers=1, args=["--python-path", AGENTS]) as s, \
                s.client() as c:
            c.call("publish", {"topic": "task.x", "data": 1})
            self.assertIn("its agent's subscribes is refused", s.log())
            self.assertEqual(c.stats()["events"]["agentDelivered"], 0)


if __name__ == "__main__":
    main()
