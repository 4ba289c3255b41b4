# SPDX-License-Identifier: BSD-2-Clause
"""test_supervision.py - restart history, restart intensity, backoff.

Through the real agentpoold with real Python workers, what
docs/lifecycle.md ("Supervision") promises: more than maxRestarts
unexpected worker ends within restartWindow put the pool into backoff
(pool.health and pool.stats say degraded) instead of a fork loop, and the
pool leaves backoff by itself; pool.history keeps the last historySize
ends, oldest first, each with its reason, pid and exit status or signal;
with restartOnFailure false a crashed worker stays dead; a worker that
cannot start after the first start counts toward the intensity;
restartStrategy one-for-one replaces only the worker that died,
one-for-all replaces every worker, rolling.
Conditions are polled until generous deadlines; no duration is asserted.
"""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLCTL, SRCDIR, Server, main, pid_gone, server_stats, wait_for, wait_stats  # noqa: E402
from test_metrics import Endpoint, parse_metrics, sample  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
CRASH = "pyagents.examples.crash:CrashAgent"


def server(agent="life:LifeAgent", workers=1, args=(), env=None):
    return Server(agent=agent, workers=workers, env=env,
                  args=["--python-path", AGENTS_DIR, "--retry-delay", "10"] + list(args))


def health(s):
    with s.client() as c:
        return c.call("pool.health")


def history(s):
    with s.client() as c:
        return c.call("pool.history")["history"]


def log_count(s, pattern):
    return len(re.findall(pattern, s.log()))


def wait_log(s, pattern, n=1):
    wait_for(lambda: log_count(s, pattern) >= n, what="%d x %r in the log" % (n, pattern))


def wait_full(s, n):
    return wait_stats(s, lambda st: st["healthy"] == n, what="%d healthy workers" % n)


def worker_pid(s, name="worker-0"):
    with s.client() as c:
        return [w for w in c.stats(detailed=True)["workers"] if w["id"] == name][0]["pid"]


class Intensity(unittest.TestCase):
    def test_restart_intensity_puts_the_pool_in_backoff_instead_of_a_fork_loop(self):
        with server(workers=1, args=["--max-restarts", "2", "--restart-window", "60000"]) as s, \
                s.client() as c:
            for i in range(4):
                r = c.request("crash", {"code": 1}, retry=False)
                self.assertEqual(r["error"]["code"], "worker_crashed", r)
            h = health(s)
            self.assertEqual(h["status"], "degraded", h)
            self.assertTrue(h["backoff"], h)
            st = server_stats(s)
            self.assertEqual(st["state"], "degraded", st)
            self.assertTrue(st["restarts"]["backoff"])
            self.assertEqual(st["restarts"]["crashed"], 4)
            self.assertIn("the pool backs off", s.log())
            # No fork loop.  Once the backoff respawn the log announces has
            # happened (the one slot holds a ready worker, so no respawn is
            # pending), that one process answers everything, and the
            # counts show every spawn was the first or followed one crash.
            announced = log_count(s, r"worker-0: next respawn in \d+ ms")
            self.assertGreaterEqual(announced, 1, s.log())
            wait_full(s, 1)
            pid = worker_pid(s)
            self.assertEqual({c.call("whoami")["pid"] for _ in range(5)}, {pid})
            self.assertEqual(worker_pid(s), pid)
            spawned = log_count(s, r"worker-0 spawned \(pid")
            crashed = log_count(s, r"worker-0 \(pid \d+\) exited with status 1, holding")
            self.assertEqual(crashed, 4, s.log())
            self.assertEqual(spawned, crashed + 1, s.log())
            events = server_stats(s)["workerEvents"]
            self.assertEqual((events["spawned"], events["crashed"]), (spawned, crashed), events)
            self.assertLessEqual(announced, crashed)
            # degraded is not down: the respawned worker serves
            h = health(s)
            self.assertEqual((h["status"], h["healthy"]), ("degraded", 1), h)

    def test_restarts_in_window_counts_every_unexpected_end_within_the_window(self):
        # docs/protocol.md: restartsInWindow / restarts.inWindow are the
        # unexpected ends within restartWindow, also past maxRestarts + 1
        with server(CRASH, workers=3, args=["--max-restarts", "1", "--restart-window", "60000"]) as s, \
                s.client() as c:
            got = c.pipeline([{"id": i, "type": "boom", "retry": False} for i in range(3)])
            self.assertEqual(sorted(r["error"]["code"] for r in got.values()), ["worker_crashed"] * 3, got)
            st = wait_stats(s, lambda st: st["restarts"]["crashed"] == 3, what="three crashes counted")
            self.assertTrue(st["restarts"]["backoff"], st["restarts"])
            self.assertEqual(st["restarts"]["inWindow"], 3, st["restarts"])
            self.assertEqual(health(s)["restartsInWindow"], 3)

    def test_pool_leaves_backoff_once_no_worker_died_for_a_whole_window(self):
        # three workers crash at once: more than --max-restarts 2 within the
        # window, however slow the machine
        with server(CRASH, workers=3, args=["--max-restarts", "2", "--restart-window", "1500"]) as s, \
                s.client() as c:
            got = c.pipeline([{"id": i, "type": "boom", "retry": False} for i in range(3)])
            self.assertEqual(sorted(r["error"]["code"] for r in got.values()), ["worker_crashed"] * 3, got)
            wait_log(s, "the pool backs off")
            wait_log(s, "the pool leaves backoff")
            # "ready" may come while the last replacement still starts: wait
            # for all three rather than assume they came up together
            h = wait_for(lambda: (lambda h: h["status"] == "ready" and h["healthy"] == 3 and h)(health(s)),
                         what="pool.health to say ready again with 3 healthy workers")
            self.assertFalse(h["backoff"], h)
            self.assertEqual(server_stats(s)["state"], "ready")
            self.assertEqual(c.call("pool.ping")["state"], "ready")

    def test_failure_to_start_after_the_first_start_counts_toward_intensity(self):
        srv = server(workers=1, args=["--max-restarts", "1", "--restart-window", "60000"])
        flag = os.path.join(srv.tmp.name, "fail-start")
        srv.env = {"AP_TEST_FAIL_START": flag}
        with srv as s:
            with open(flag, "w"):
                pass
            old = worker_pid(s)
            os.kill(old, signal.SIGKILL)  # one crash: within the limit of 1
            wait_for(lambda: [h["reason"] for h in history(s)] == ["crashed", "start_failed"],
                     what="a crash, then a failed start, in pool.history")
            # the failed start is the second unexpected end: past the limit
            wait_log(s, "the pool backs off")
            lines = s.log().splitlines()
            backs_off = [i for i, l in enumerate(lines) if "the pool backs off" in l][0]
            self.assertTrue(any("failed to start" in l for l in lines[:backs_off]), s.log())
            h = health(s)
            self.assertTrue(h["backoff"], h)
            self.assertGreaterEqual(h["restartsInWindow"], 2, h)
            st = server_stats(s)
            self.assertGreaterEqual(st["restarts"]["start_failed"], 1, st["restarts"])
            self.assertEqual(st["restarts"]["crashed"], 1, st["restarts"])
            self.assertIn("RuntimeError: start refused", s.log())
            os.unlink(flag)
            wait_full(s, 1)
            self.assertNotEqual(worker_pid(s), old)


class SlotBackoff(unittest.TestCase):
    def test_one_slot_in_restart_backoff_makes_the_pool_degraded_and_is_named(self):
        # maxRestarts is high: the pool itself never backs off, yet one slot
        # keeps failing to start while the other serves.  That must not
        # read as "ready" (agentpoolctl health once exited 0 here).
        srv = server(workers=2, args=["--max-restarts", "1000", "--restart-window", "60000"])
        flag = os.path.join(srv.tmp.name, "fail-start")
        srv.env = {"AP_TEST_FAIL_START": flag}
        spec = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
        srv.args += ["--metrics-listen", spec]
        with srv as s:
            self.assertEqual(health(s)["backoffSlots"], [])
            with open(flag, "w"):
                pass
            os.kill(worker_pid(s, "worker-1"), signal.SIGKILL)

            def in_backoff():
                h = health(s)
                return h["status"] == "degraded" and h["backoffSlots"] and h
            h = wait_for(in_backoff, what="worker-1 in restart backoff, the pool degraded")
            self.assertFalse(h["backoff"], h)  # the pool's own intensity is not exceeded
            self.assertEqual([e["worker"] for e in h["backoffSlots"]], ["worker-1"])
            self.assertGreaterEqual(h["backoffSlots"][0]["startFailures"], 1)
            self.assertEqual(h["healthy"], 1)
            samples, _ = parse_metrics(Endpoint(spec).get("/metrics")[2])
            r = subprocess.run([AGENTPOOLCTL, "-s", s.path, "health"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertRegex(r.stdout, r"^degraded: 1/2 workers healthy; backoff: no; restarts in window: \d+; "
                                       r"in restart backoff: worker-1 \(\d+ failed starts?, "
                                       r"(next attempt in \d+\.\d s|starting again)\)\n$")
            self.assertEqual(sample(samples, "agentpool_slots_in_backoff"), 1)
            self.assertEqual(sample(samples, "agentpool_restart_backoff"), 0)
            os.unlink(flag)
            wait_full(s, 2)
            h = wait_for(lambda: (lambda h: h["status"] == "ready" and h)(health(s)), what="ready again")
            self.assertEqual(h["backoffSlots"], [])
            r = subprocess.run([AGENTPOOLCTL, "-s", s.path, "health"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout)


class History(unittest.TestCase):
    def test_history_records_every_end_oldest_first_bounded_by_history_size(self):
        srv = server(workers=2, args=["--history-size", "3", "--max-restarts", "100"])
        flag = os.path.join(srv.tmp.name, "fail-start")
        hold_dir = srv.tmp.name
        srv.env = {"AP_TEST_FAIL_START": flag, "AP_TEST_HOLD_STOP_DIR": hold_dir}
        pidfile = os.path.join(srv.tmp.name, "pid")
        expected = []  # (worker, pid, reason, "signal"/"exitStatus", value)

        def check():
            hist = history(s)
            got = [(h["worker"], h["pid"], h["reason"], "signal" if "signal" in h else "exitStatus",
                    h.get("signal", h.get("exitStatus"))) for h in hist]
            self.assertEqual(got, expected[-3:], hist)
            times = [h["time"] for h in hist]
            self.assertEqual(times, sorted(times), hist)
            return hist

        def pidfile_pid():
            with open(pidfile) as f:
                return int(f.read())

        with srv as s, s.client() as c:
            self.assertEqual(history(s), [])
            # 1. a message kills its worker: exit status 5
            r = c.request("crash", {"code": 5, "pidfile": pidfile}, retry=False)
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            p = pidfile_pid()
            w = "worker-%d" % [i for i in range(2) if "worker-%d" % i in r["error"]["message"]][0]
            expected.append((w, p, "crashed", "exitStatus", 5))
            wait_full(s, 2)
            check()
            # 2. kill -9
            p = worker_pid(s, "worker-1")
            os.kill(p, signal.SIGKILL)
            wait_for(lambda: len(history(s)) == 2, what="the second end")
            expected.append(("worker-1", p, "crashed", "signal", 9))
            wait_full(s, 2)
            check()
            # 3. stuck: killed by the master
            r = c.request("hang", {"s": 60, "pidfile": pidfile}, timeoutMs=300)
            self.assertEqual(r["error"]["code"], "timeout", r)
            p = pidfile_pid()
            wait_for(lambda: len(history(s)) == 3, what="the stuck worker's end")
            h = history(s)[-1]
            self.assertIn("signal", h)
            self.assertIn(h["signal"], (signal.SIGTERM, signal.SIGKILL))
            expected.append((h["worker"], p, "killed_stuck", "signal", h["signal"]))
            wait_full(s, 2)
            check()
            # 4. killed, then cannot start until the flag goes away
            with open(flag, "w"):
                pass
            p = worker_pid(s, "worker-0")
            os.kill(p, signal.SIGKILL)
            expected.append(("worker-0", p, "crashed", "signal", 9))
            wait_for(lambda: history(s)[-1]["reason"] == "start_failed", what="a failed start")
            os.unlink(flag)
            wait_full(s, 2)
            hist = history(s)
            self.assertEqual(len(hist), 3)
            # one failed start or more (each retried after its backoff)
            fails = [h for h in hist if h["reason"] == "start_failed"]
            self.assertGreaterEqual(len(fails), 1, hist)
            for h in fails:
                self.assertEqual(h["worker"], "worker-0")
                self.assertTrue(pid_gone(h["pid"]))
                expected.append((h["worker"], h["pid"], "start_failed", "signal" if "signal" in h else "exitStatus",
                                 h.get("signal", h.get("exitStatus"))))
            check()
            # 5. shutdown: worker-0 stops; worker-1 is held in on_stop so the
            # master still answers pool.history on this open connection
            hold = os.path.join(hold_dir, "worker-1.hold")
            with open(hold, "w"):
                pass
            before = check()
            try:
                p = worker_pid(s, "worker-0")
                s.signal(signal.SIGTERM)
                wait_for(lambda: c.call("pool.history")["history"][-1]["reason"] == "stopped",
                         what="worker-0's stop in pool.history")
                hist = c.call("pool.history")["history"]
                self.assertEqual(len(hist), 3, hist)
                self.assertEqual((hist[-1]["worker"], hist[-1]["pid"], hist[-1].get("exitStatus")),
                                 ("worker-0", p, 0), hist)
                self.assertEqual(hist[:2], before[1:], hist)
            finally:
                os.unlink(hold)
            self.assertEqual(s.wait_exit(), 0, s.log())


class NoRestart(unittest.TestCase):
    def test_no_restart_on_failure_leaves_a_crashed_worker_dead(self):
        with server(workers=2, args=["--no-restart-on-failure"]) as s, s.client() as c:
            r = c.request("crash", {"code": 2}, retry=False)
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            wait_log(s, "not respawning")
            st = wait_stats(s, lambda st: st["total"] == 1, what="one worker left")
            self.assertEqual(st["healthy"], 1)
            self.assertEqual(st["workerEvents"]["spawned"], 2)
            # the survivor serves; still nothing was respawned
            for i in range(4):
                self.assertEqual(c.call("echo", {"i": i}), {"i": i})
            st = server_stats(s)
            self.assertEqual((st["total"], st["workerEvents"]["spawned"]), (1, 2), st)
            self.assertEqual(log_count(s, r"spawned \(pid"), 2)
            self.assertEqual([h["reason"] for h in history(s)], ["crashed"])


class RestartStrategy(unittest.TestCase):
    def test_one_for_one_replaces_only_the_worker_that_died(self):
        with Server(agent="life:LifeAgent", workers=3, args=["--python-path", AGENTS_DIR]) as s, s.client() as c:
            before = set(s.worker_pids())
            r = c.request("crash", {}, retry=False)
            self.assertEqual(r["error"]["code"], "worker_crashed")
            wait_for(lambda: len(set(s.worker_pids())) == 3 and c.stats()["healthy"] == 3, what="respawn")
            self.assertEqual(len(before & set(s.worker_pids())), 2)

    def test_one_for_all_replaces_every_worker_after_a_crash_rolling(self):
        with Server(agent="life:LifeAgent", workers=3,
                    args=["--python-path", AGENTS_DIR, "--restart-strategy", "one-for-all"]) as s, s.client() as c:
            before = set(s.worker_pids())
            r = c.request("crash", {}, retry=False)
            self.assertEqual(r["error"]["code"], "worker_crashed")

            def all_new():
                pids = set(s.worker_pids())
                return len(pids) == 3 and before.isdisjoint(pids) and c.stats()["healthy"] == 3
            wait_for(all_new, what="every worker replaced")
            reasons = sorted(h["reason"] for h in c.call("pool.history")["history"])
            self.assertEqual(reasons, ["crashed", "recycled", "recycled"])
            self.assertIn("one-for-all", s.log())
            self.assertEqual(c.call("echo", {"x": 1}), {"x": 1})


if __name__ == "__main__":
    main()
