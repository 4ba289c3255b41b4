# SPDX-License-Identifier: BSD-2-Clause
"""test_gevent.py - workerModel gevent: plain def agents on greenlets.

Through the real agentpoold with real Python workers
(agents/gevagent.py, pyagents.examples.fetch) and a local slow HTTP
server (harness.SlowHTTPServer, answers held until released): 200 fetches
through one gevent worker with concurrency 200 are all in flight at once,
as pool.stats, agent.metrics and the HTTP server see, and all answered,
while the same agent in sync mode holds one; requests.get is patched too;
the handler context works per greenlet; time.sleep is the bridge's
timerfd sleep (sleeps end in due order and never early, gevent.Timeout
and other threads still work with it, a forked child's sleeps do not
touch the worker's timer); deadlines and client disconnects
kill the message's greenlet (GreenletExit) while the worker keeps serving
the others; heartbeats are answered while every greenlet waits; a crash
is charged only to the messages that worker held; recycling, reload and
graceful stop let the running greenlets finish first; and start-up
refuses gevent without gevent, and gevent with an async def agent, in
one line each.  Nothing waits on a duration: every wait is a condition
polled until a generous deadline.
"""
import json
import os
import shutil
import signal
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SRCDIR, Server, SlowHTTPServer, main, pid_gone, server_stats,  # noqa: E402
                     skip_without_greenlet_support, wait_for, wait_stats)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
GEV = "gevagent:GeventAgent"


def gevent_server(agent=GEV, workers=1, concurrency=200, args=(), **kw):
    return Server(agent=agent, workers=workers,
                  args=["--python-path", AGENTS_DIR, "--worker-model", "gevent",
                        "--concurrency", str(concurrency), "--retry-delay", "10"] + list(args), **kw)


def read(path):
    with open(path) as f:
        return f.read()


def send_all(client, reqs):
    """Writes every request line at once (answers are read later)."""
    client.send_raw(b"".join(json.dumps(r).encode() + b"\n" for r in reqs))


def read_answers(client, n):
    out = {}
    for _ in range(n):
        r = client.recv()
        key = json.dumps(r["id"])
        assert key not in out, "answered twice: %s" % key
        out[key] = r
    return out


@skip_without_greenlet_support
class Concurrency(unittest.TestCase):
    def test_200_fetches_in_flight_at_once_through_one_gevent_worker(self):
        with SlowHTTPServer() as http, gevent_server() as s, s.client() as c:
            reqs = [{"id": i, "type": "fetch", "data": {"url": http.url("/gate")}} for i in range(200)]
            send_all(c, reqs)
            st = wait_stats(s, lambda st: st["inFlight"] == 200, what="200 messages in flight")
            self.assertEqual(st["total"], 1)
            wait_for(lambda: http.current == 200, what="200 requests at the HTTP server at once")
            with s.client() as c2:
                w = c2.stats(detailed=True)["workers"][0]
                self.assertEqual((w["model"], w["inFlight"], w["slots"]), ("gevent", 200, 200))
                m = w["agent"]["metrics"]  # the worker's own agent.metrics, asked outside its slots
                self.assertEqual((m["model"], m["in_flight"]), ("gevent", 200), w)
            http.release()
            answers = read_answers(c, 200)
            self.assertTrue(all(a["ok"] and a["result"]["status"] == 200 for a in answers.values()),
                            [a for a in answers.values() if not a["ok"]][:3])
            self.assertEqual(http.peak, 200)
            self.assertEqual(server_stats(s)["inFlight"], 0)

    def test_the_same_agent_in_sync_mode_holds_one(self):
        with SlowHTTPServer() as http, \
                Server(agent=GEV, workers=1, args=["--python-path", AGENTS_DIR, "--worker-model", "sync",
                                                   "--concurrency", "200"]) as s, s.client() as c:
            reqs = [{"id": i, "type": "fetch", "data": {"url": http.url("/delay/20")}} for i in range(10)]
            answers = c.pipeline(reqs)
            self.assertTrue(all(a["ok"] for a in answers.values()))
            self.assertEqual(http.peak, 1, "a sync worker had two fetches open at once")
            w = server_stats(s, detailed=True)["workers"][0]
            self.assertEqual((w["model"], w["slots"]), ("sync", 1))

    def test_requests_get_is_patched_too(self):
        with SlowHTTPServer() as http, gevent_server(concurrency=20) as s, s.client() as c:
            reqs = [{"id": i, "type": "fetch", "data": {"url": http.url("/gate"), "client": "requests"}}
                    for i in range(20)]
            send_all(c, reqs)
            wait_for(lambda: http.current == 20, what="20 requests.get at the HTTP server at once")
            http.release()
            answers = read_answers(c, 20)
            bad = [a for a in answers.values() if not a["ok"]]
            if bad and "requests is not installed" in bad[0]["error"]["message"]:
                self.skipTest("python3-requests is not installed")
            self.assertFalse(bad, bad[:2])

    def test_a_greenlet_that_answered_takes_the_next_message(self):
        # one greenlet per message in flight, reused: no greenlet made per message
        with gevent_server() as s, s.client() as c:
            ran = [c.call("whoami")["greenlet_ran"] for _ in range(20)]
            self.assertEqual(ran, list(range(1, 21)))

    def test_each_greenlet_sees_its_own_context(self):
        with Server(agent="ctxagent:ThreeParams", workers=1,
                    args=["--python-path", AGENTS_DIR, "--worker-model", "gevent", "--concurrency", "20"]) as s, \
                s.client() as c:
            reqs = [{"id": "g%d" % i, "type": "t%d" % i, "data": {"sleep": 0.05}, "timeoutMs": 40000}
                    for i in range(20)]
            for a in c.pipeline(reqs).values():
                self.assertTrue(a["ok"], a)
                n = a["id"][1:]
                self.assertEqual((a["result"]["id"], a["result"]["type"]), ("g" + n, "t" + n))
                self.assertTrue(a["result"]["same"])
                self.assertGreater(a["result"]["remaining"], 0)
                self.assertEqual(a["result"]["attempt"], 1)


@skip_without_greenlet_support
class Sleep(unittest.TestCase):
    def test_time_sleep_is_the_bridges_and_keeps_its_contract(self):
        with gevent_server() as s, s.client() as c:
            r = c.call("sleeps")
            self.assertEqual(r, {"bridge": True, "order": [10, 20, 30], "early": 0, "cut": "Timeout",
                                 "timeout": "Timeout", "after": True, "zero": True, "thread": True, "bad": "TypeError"})

    def test_a_forked_childs_sleeps_leave_the_workers_timer_alone(self):
        with gevent_server(args=["--health-check-interval", "0"]) as s, s.client() as c:
            self.assertEqual(c.call("forksleep"), {"armed": True})


@skip_without_greenlet_support
class Promises(unittest.TestCase):
    def test_deadline_kills_the_greenlet_and_the_worker_serves_on(self):
        with gevent_server(args=["--timeout", "0"]) as s, s.client() as c:
            t = s.tmp.name
            gate, marker = os.path.join(t, "never"), os.path.join(t, "marker")
            pid = c.call("whoami")["pid"]
            r = c.request("wait", {"file": gate, "marker": marker}, timeoutMs=300)
            self.assertEqual(r["error"]["code"], "timeout", r)
            wait_for(lambda: os.path.exists(marker), what="the timed-out greenlet to end")
            self.assertEqual(read(marker), "GreenletExit")
            self.assertEqual(c.call("whoami")["pid"], pid, "the worker was replaced")
            wait_stats(s, lambda st: st["inFlight"] == 0, what="the killed greenlet to let go")
            self.assertEqual(c.call("pool.history")["history"], [])

    def test_client_disconnect_cancels_the_greenlet(self):
        with gevent_server() as s:
            t = s.tmp.name
            started, marker = os.path.join(t, "started"), os.path.join(t, "marker")
            with s.client() as c0:
                pid = c0.call("whoami")["pid"]
            c = s.client()
            c.send({"id": 1, "type": "wait", "data": {"file": os.path.join(t, "never"), "started": started,
                                                      "marker": marker}})
            wait_for(lambda: os.path.exists(started), what="the handler to start")
            c.close()
            wait_for(lambda: os.path.exists(marker), what="the greenlet to be cancelled")
            self.assertEqual(read(marker), "GreenletExit")
            with s.client() as c2:
                self.assertEqual(c2.call("whoami")["pid"], pid)
            wait_stats(s, lambda st: st["inFlight"] == 0, what="nothing in flight")

    def test_heartbeats_are_answered_while_every_greenlet_waits(self):
        tmp = tempfile.mkdtemp(prefix="aptest-beats-")
        beats = os.path.join(tmp, "beats")
        gate = os.path.join(tmp, "gate")

        def count():
            try:
                with open(beats) as f:
                    return len(f.readlines())
            except FileNotFoundError:
                return 0
        try:
            with gevent_server(concurrency=5, args=["--health-check-interval", "50", "--max-missed-beats", "2"],
                               env={"GEVAGENT_HEALTH_LOG": beats}) as s, s.client() as c:
                pid = c.call("whoami")["pid"]
                send_all(c, [{"id": i, "type": "wait", "data": {"file": gate}} for i in range(5)])
                wait_stats(s, lambda st: st["inFlight"] == 5, what="5 greenlets waiting")
                n0 = count()
                wait_for(lambda: count() >= n0 + 5, what="5 heartbeats answered while every slot waits")
                w = server_stats(s, detailed=True)["workers"][0]
                self.assertEqual((w["pid"], w["missedBeats"], w["inFlight"]), (pid, 0, 5))
                open(gate, "w").close()
                answers = read_answers(c, 5)
                self.assertTrue(all(a["ok"] and a["result"]["pid"] == pid for a in answers.values()))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@skip_without_greenlet_support
class Lifecycle(unittest.TestCase):
    def held(self, s, c, n, gate, first_id=0):
        """Sends n "wait" messages held until gate exists; returns once all
        n run (their started files name the process)."""
        t = s.tmp.name
        reqs = [{"id": first_id + i, "type": "wait",
                 "data": {"file": gate, "started": os.path.join(t, "started-%d" % (first_id + i))}}
                for i in range(n)]
        send_all(c, reqs)
        wait_for(lambda: all(os.path.exists(os.path.join(t, "started-%d" % (first_id + i))) for i in range(n)),
                 what="%d handlers to start" % n)
        return {first_id + i: int(read(os.path.join(t, "started-%d" % (first_id + i)))) for i in range(n)}

    def test_a_crash_is_charged_only_to_the_messages_that_worker_held(self):
        with gevent_server(workers=2, args=["--max-retries", "0", "--load-balancing-strategy", "least-busy"]) as s, \
                s.client() as c:
            gate = os.path.join(s.tmp.name, "gate")
            where = self.held(s, c, 4, gate)
            self.assertEqual(len(set(where.values())), 2, "the 4 messages did not spread over both workers")
            c.send({"id": 100, "type": "crash", "data": {"code": 7}})
            crashed = wait_for(lambda: [p for p in set(where.values()) if pid_gone(p)], what="a worker to die")
            self.assertEqual(len(crashed), 1)
            open(gate, "w").close()
            answers = read_answers(c, 5)
            self.assertEqual(answers["100"]["error"]["code"], "worker_crashed")
            for i, pid in where.items():
                a = answers[str(i)]
                if pid == crashed[0]:
                    self.assertEqual(a["error"]["code"], "worker_crashed", a)
                else:
                    self.assertTrue(a["ok"], a)
                    self.assertEqual(a["result"]["pid"], pid)

    def check_drained(self, s, c, gate, where, answers_expected):
        open(gate, "w").close()
        answers = read_answers(c, answers_expected)
        for i, pid in where.items():
            a = answers[str(i)]
            self.assertTrue(a["ok"], a)
            self.assertEqual(a["result"]["pid"], pid)
        return answers

    def test_recycling_lets_running_greenlets_finish_first(self):
        with gevent_server(args=["--max-messages-per-worker", "3", "--recycle-jitter", "0"]) as s, s.client() as c:
            gate = os.path.join(s.tmp.name, "gate")
            where = self.held(s, c, 6, gate)
            old = set(where.values()).pop()
            with s.client() as c2:
                for _ in range(3):
                    self.assertEqual(c2.call("whoami")["pid"], old)
            wait_stats(s, lambda st: st["restarts"]["recycled"] >= 1 or st["total"] >= 2,
                       what="the recycle to begin")
            self.check_drained(s, c, gate, where, 6)
            wait_for(lambda: pid_gone(old), what="the recycled worker to exit")
            hist = wait_for(lambda: c.call("pool.history")["history"], what="the old worker's end")
            self.assertEqual((hist[0]["reason"], hist[0]["exitStatus"]), ("recycled", 0), hist)
            self.assertNotEqual(c.call("whoami")["pid"], old)

    def test_reload_lets_running_greenlets_finish_first(self):
        with gevent_server() as s, s.client() as c:
            gate = os.path.join(s.tmp.name, "gate")
            where = self.held(s, c, 4, gate)
            old = set(where.values()).pop()
            s.signal(signal.SIGHUP)
            wait_stats(s, lambda st: st["total"] >= 2, what="the replacement to start")
            self.check_drained(s, c, gate, where, 4)
            wait_for(lambda: "reload finished" in s.log(), what="the reload to finish")
            wait_for(lambda: pid_gone(old), what="the old worker to exit")
            self.assertNotEqual(c.call("whoami")["pid"], old)

    def test_graceful_stop_lets_running_greenlets_finish_first(self):
        s = gevent_server()
        s.start()
        try:
            c = s.client()
            gate = os.path.join(s.tmp.name, "gate")
            where = self.held(s, c, 4, gate)
            s.signal(signal.SIGTERM)
            wait_for(lambda: "shutting down" in s.log() or "draining" in s.log(), what="the shutdown to begin")
            self.check_drained(s, c, gate, where, 4)
            self.assertEqual(s.wait_exit(), 0, s.log())
            c.close()
        finally:
            s.close()


class Startup(unittest.TestCase):
    def refused(self, agent, args, line):
        s = Server(agent=agent, workers=1, wait_ready=False,
                   args=["--python-path", AGENTS_DIR, "--worker-model", "gevent"] + args)
        try:
            s.start()
            rc = s.wait_exit()
            log = s.log()
        finally:
            s.close()
        self.assertEqual(rc, 1, log)
        self.assertIn(line, log)

    def test_gevent_with_an_async_def_agent_is_refused(self):
        self.refused("gevagent:AsyncAgent", [],
                     "workerModel gevent runs plain def agents, but gevagent:AsyncAgent's handle_message is "
                     "async def (use workerModel async or auto)")

    def test_gevent_without_gevent_importable_is_refused(self):
        tmp = tempfile.mkdtemp(prefix="aptest-nogevent-")
        try:
            os.mkdir(os.path.join(tmp, "gevent"))
            with open(os.path.join(tmp, "gevent", "__init__.py"), "w") as f:
                f.write("raise ImportError('No module named gevent (test double)')\n")
            self.refused(GEV, ["--python-path", tmp],
                         "workerModel gevent needs gevent, which cannot be imported (No module named gevent "
                         "(test double)): install python3-gevent")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
