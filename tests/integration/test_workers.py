# SPDX-License-Identifier: BSD-2-Clause
"""test_workers.py - the worker processes as the operating system sees them.

Checks what docs/lifecycle.md promises about each worker: a child of the
master in its own process group, holding only fds 0-3 and 5 (its own log), with no signal
handlers or blocked signals inherited from the master (only what the
bridge sets on purpose: SIGINT and SIGPIPE ignored); dying with the
master (PDEATHSIG); respawned after kill -9 or exit with every message it
held answered worker_crashed (signal or exitStatus); on_stop() run and
exit 0 on SIGTERM and SIGINT, also when the signal comes while the pool is
still starting; SIGHUP logged and ignored; the start-up heap frozen out of
the garbage collector's full passes; async workers' timer slack at 1 ns.  Waits poll conditions until
generous deadlines; nothing asserts a duration.
"""
import os
import re
import signal
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SRCDIR, Client, Server, build_var, children_of, main, pid_gone,  # noqa: E402
                     proc_status, wait_for)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
PROBE = "probe:ProbeAgent"


def probe_server(workers=2, env=None, args=()):
    return Server(agent=PROBE, workers=workers, env=env,
                  args=["--python-path", AGENTS_DIR] + list(args))


GLIBC_INTERNAL = (1 << 31) | (1 << 32)  # signals 32 (SIGCANCEL) and 33 (SIGSETXID)


def sigmask(*sigs):
    m = 0
    for s in sigs:
        m |= 1 << (int(s) - 1)
    return m


# An ASan build's runtime installs its own handlers for fatal signals.
SANITIZER_HANDLERS = (sigmask(signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE)
                      if "-fsanitize=address" in (build_var("AP_CFLAGS") or "") else 0)
# The bridge enables Python's faulthandler after exec: fatal signals and
# SIGUSR1 (the master's "dump your stacks" before it kills a stuck worker).
FAULTHANDLER = sigmask(signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT, signal.SIGILL,
                       signal.SIGUSR1)


def sig_names(mask):
    return sorted(signal.Signals(i + 1).name if (i + 1) in signal.valid_signals() else str(i + 1)
                  for i in range(64) if mask >> i & 1)


def detailed(s):
    with s.client() as c:
        return c.stats(detailed=True)


class Processes(unittest.TestCase):
    def test_workers_are_children_of_the_master_with_their_id_in_the_environment(self):
        with Server(workers=3) as s:
            st = detailed(s)
            pids = sorted(w["pid"] for w in st["workers"])
            self.assertEqual(len(pids), 3)
            self.assertEqual(sorted(children_of(s.proc.pid)), pids)
            for w in st["workers"]:
                with open("/proc/%d/environ" % w["pid"], "rb") as f:
                    env = f.read().split(b"\0")
                self.assertEqual([e for e in env if e.startswith(b"AGENTPOOL_WORKER_ID=")],
                                 [b"AGENTPOOL_WORKER_ID=" + w["id"].encode()])

    def test_workers_hold_only_fds_0_to_3_and_their_log_even_when_forked_with_clients_connected(self):
        with Server(workers=2) as s:
            # Connections held open while worker-0 is respawned: their
            # descriptors (and the listener's) must not reach the new worker.
            clients = [s.client() for _ in range(5)]
            try:
                for c in clients:
                    c.call("echo", {"x": 1})
                old = detailed(s)["workers"][0]["pid"]
                os.kill(old, signal.SIGKILL)

                def respawned():
                    w = detailed(s)["workers"][0]
                    return w["state"] == "ready" and w["pid"] != old and w
                wait_for(respawned, what="worker-0 to be respawned")
                for c in clients:
                    c.call("echo", {"x": 2})
                for w in detailed(s)["workers"]:
                    pid = w["pid"]
                    fds = sorted(int(fd) for fd in os.listdir("/proc/%d/fd" % pid))
                    targets = {fd: os.readlink("/proc/%d/fd/%d" % (pid, fd)) for fd in fds}
                    self.assertEqual(fds, [0, 1, 2, 3, 5], "%s (pid %d) fds: %r" % (w["id"], pid, targets))
                    self.assertEqual(targets[0], "/dev/null")
                    self.assertTrue(targets[3].startswith("socket:"), targets)
                    self.assertTrue(targets[5].startswith("pipe:"), targets)  # its own log (AP_LOG_FD)
            finally:
                for c in clients:
                    c.close()

    def test_workers_inherit_no_signal_handlers_and_no_mask(self):
        with Server(workers=2) as s:
            master = proc_status(s.proc.pid)
            # the master does catch these (libevent); make sure the test means something
            master_cgt = int(master["SigCgt"], 16)
            master_ign = int(master["SigIgn"], 16)
            self.assertEqual(master_cgt & sigmask(signal.SIGTERM, signal.SIGCHLD),
                             sigmask(signal.SIGTERM, signal.SIGCHLD))
            for pid in s.worker_pids():
                st = proc_status(pid)
                blk, ign, cgt = (int(st[k], 16) for k in ("SigBlk", "SigIgn", "SigCgt"))
                self.assertEqual(blk, 0, "worker %d blocks %s" % (pid, sig_names(blk)))
                self.assertEqual(cgt, SANITIZER_HANDLERS | FAULTHANDLER,
                                 "worker %d catches %s" % (pid, sig_names(cgt)))
                # bridge/main.c ignores exactly these on purpose: ^C belongs to
                # the master, and a vanished master must be EPIPE, not death.
                # Besides them, only glibc's internal signals 32/33 may stay
                # ignored, and only when the master was started that way
                # (GNU make's posix_spawn leaves them ignored): glibc's
                # sigaction() refuses to touch them.
                expected = sigmask(signal.SIGINT, signal.SIGPIPE) | (master_ign & GLIBC_INTERNAL)
                self.assertEqual(ign, expected, "worker %d ignores %s, expected %s" % (
                    pid, sig_names(ign), sig_names(expected)))

    def test_workers_have_their_own_process_group(self):
        with Server(workers=2) as s:
            mpg = os.getpgid(s.proc.pid)
            for pid in s.worker_pids():
                self.assertNotEqual(os.getpgid(pid), mpg)
                self.assertEqual(os.getpgid(pid), pid)

    def test_SIGKILL_of_the_master_kills_every_worker(self):
        s = Server(workers=3)
        try:
            s.start()
            pids = s.worker_pids()
            self.assertEqual(len(pids), 3)
            s.proc.kill()
            s.proc.wait()
            for pid in pids:
                wait_for(lambda: pid_gone(pid), what="worker %d to die with the master" % pid)
        finally:
            s.close()


class Crashes(unittest.TestCase):
    def test_kill_9_of_a_worker_respawns_it_and_the_pool_serves_again(self):
        with Server(workers=2) as s, s.client() as c:
            before = c.stats(detailed=True)
            self.assertEqual(before["workerEvents"], {"spawned": 2, "crashed": 0, "killedStuck": 0, "recycled": 0})
            old = before["workers"][1]["pid"]
            os.kill(old, signal.SIGKILL)

            def respawned():
                st = c.stats(detailed=True)
                w = st["workers"][1]
                return w["state"] == "ready" and w["pid"] not in (0, old) and st
            st = wait_for(respawned, what="worker-1 to be respawned")
            w0, w1 = st["workers"]
            self.assertEqual(w1["generation"], 2)
            self.assertEqual(w0["generation"], 1)
            self.assertEqual(w0["pid"], before["workers"][0]["pid"])
            self.assertEqual(st["workerEvents"], {"spawned": 3, "crashed": 1, "killedStuck": 0, "recycled": 0})
            self.assertEqual(st["total"], 2)
            self.assertEqual(st["state"], "ready")
            self.assertIn(w1["pid"], children_of(s.proc.pid))
            self.assertTrue(pid_gone(old))
            answers = c.pipeline([{"id": i, "type": "echo", "data": i} for i in range(50)])
            self.assertEqual(sorted(r["result"] for r in answers.values()), list(range(50)))
            self.assertRegex(s.log(), r"worker-1 \(pid %d\) killed by signal 9" % old)

    def test_a_worker_killed_while_holding_a_message_answers_worker_crashed_signal_9(self):
        with tempfile.TemporaryDirectory(prefix="aptest-gate-") as d, \
                Server(agent="pyagents.examples.gate:GateAgent", workers=1) as s, \
                s.client() as c, s.client() as watcher:
            gate = os.path.join(d, "open")
            # "retry": false: answered at once, not retried (lifecycle.md)
            c.send({"id": "held", "type": "wait", "data": {"file": gate}, "retry": False})

            def running():
                w = watcher.stats(detailed=True)["workers"][0]
                return w["inFlight"] == 1 and w["running"] and w
            w = wait_for(running, what="the worker to run the message")
            os.kill(w["pid"], signal.SIGKILL)
            resp = c.recv()
            self.assertEqual(resp["id"], "held")
            self.assertFalse(resp["ok"])
            self.assertEqual(resp["error"]["code"], "worker_crashed")
            self.assertEqual(resp["error"]["signal"], 9)
            self.assertNotIn("exitStatus", resp["error"])

            wait_for(lambda: watcher.stats()["healthy"] == 1, what="the worker to be respawned")
            st = watcher.stats()
            self.assertEqual(st["errors"]["worker_crashed"], 1)
            self.assertEqual(st["workerEvents"]["crashed"], 1)
            open(gate, "w").close()
            ok = c.request("wait", {"file": gate})
            self.assertTrue(ok["ok"], ok)

    def test_every_message_an_async_worker_held_is_answered_worker_crashed(self):
        with tempfile.TemporaryDirectory(prefix="aptest-gate-") as d, \
                Server(agent="pyagents.examples.gate:AsyncGateAgent", workers=1,
                       args=["--concurrency", "8"]) as s, \
                s.client() as c, s.client() as watcher:
            gate = os.path.join(d, "open")
            for i in range(5):
                c.send({"id": i, "type": "wait", "data": {"file": gate, "seq": i}, "retry": False})
            w = wait_for(lambda: watcher.stats(detailed=True)["workers"][0]["inFlight"] == 5
                         and watcher.stats(detailed=True)["workers"][0], what="5 messages held")
            os.kill(w["pid"], signal.SIGKILL)
            answers = [c.recv() for _ in range(5)]
            self.assertEqual(sorted(a["id"] for a in answers), list(range(5)))
            for a in answers:
                self.assertFalse(a["ok"], a)
                self.assertEqual(a["error"]["code"], "worker_crashed")
                self.assertEqual(a["error"]["signal"], 9)
            wait_for(lambda: watcher.stats()["healthy"] == 1, what="the worker to be respawned")
            self.assertEqual(watcher.stats()["errors"]["worker_crashed"], 5)

    def test_a_worker_exiting_mid_message_answers_worker_crashed_with_exit_status(self):
        with Server(agent="pyagents.examples.crash:CrashAgent", workers=1) as s, s.client() as c:
            resp = c.request("die", {"code": 42}, retry=False)
            self.assertFalse(resp["ok"], resp)
            self.assertEqual(resp["error"]["code"], "worker_crashed")
            self.assertEqual(resp["error"]["exitStatus"], 42)
            self.assertNotIn("signal", resp["error"])
            wait_for(lambda: c.stats()["healthy"] == 1, what="the worker to be respawned")
            st = c.stats(detailed=True)
            self.assertEqual(st["workers"][0]["generation"], 2)
            self.assertEqual(st["workerEvents"]["crashed"], 1)
            self.assertRegex(s.log(), r"worker-0 \(pid \d+\) exited with status 42, holding 1 message")


class Threads(unittest.TestCase):
    def test_a_thread_the_agent_started_runs_while_its_sync_worker_waits_for_messages(self):
        life = os.path.join(SRCDIR, "tests", "integration", "agents")
        with Server(agent="life:LifeAgent", workers=1, args=["--python-path", life]) as s, s.client() as c:
            path = os.path.join(s.tmp.name, "ticks")
            c.call("ticker", {"file": path})

            def ticks():
                try:
                    with open(path) as f:
                        return len(f.read().split())
                except FileNotFoundError:
                    return 0
            # no message is sent from here on: the worker waits in read()
            first = ticks()
            wait_for(lambda: ticks() >= first + 50, what="the agent's thread to keep ticking between messages")


class AsyncLoop(unittest.TestCase):
    def test_async_agents_run_on_the_precise_loop_whose_timers_never_fire_early(self):
        life = os.path.join(SRCDIR, "tests", "integration", "agents")
        with Server(agent="life:AsyncLifeAgent", workers=1, args=["--python-path", life]) as s, s.client() as c:
            r = c.call("loop")
            self.assertEqual(r["selector"], "PreciseEpollSelector", r)
            self.assertGreaterEqual(r["min_wait"], 0.02, "asyncio.sleep(0.02) returned early: %r" % r)

    def test_async_workers_wait_with_a_timer_slack_of_1_ns_not_the_kernels_50_us(self):
        life = os.path.join(SRCDIR, "tests", "integration", "agents")
        with Server(agent="life:AsyncLifeAgent", workers=1, args=["--python-path", life]) as s, s.client() as c:
            r = c.call("loop")
            self.assertEqual(r["timerslack_ns"], 1, r)


class Heap(unittest.TestCase):
    def test_the_heap_built_at_start_up_is_frozen_out_of_full_collections_sync_and_async(self):
        life = os.path.join(SRCDIR, "tests", "integration", "agents")
        for agent in ("life:LifeAgent", "life:AsyncLifeAgent"):
            with self.subTest(agent=agent), \
                    Server(agent=agent, workers=1, args=["--python-path", life]) as s, s.client() as c:
                r = c.call("heap")
                # the interpreter, asyncio/json and the agent: thousands of objects
                self.assertGreater(r["frozen"], 1000, r)


class Shutdown(unittest.TestCase):
    def test_SIGHUP_reloads_the_workers_and_the_master_stays(self):
        with Server(workers=2) as s, s.client() as c:
            pids = set(s.worker_pids())
            s.signal(signal.SIGHUP)
            wait_for(lambda: "reload finished" in s.log(), what="the SIGHUP reload to finish")
            self.assertEqual(c.call("echo", {"still": "here"}), {"still": "here"})
            self.assertTrue(pids.isdisjoint(s.worker_pids()))
            self.assertEqual(c.stats()["state"], "ready")
            self.assertIsNone(s.proc.poll())

    def check_graceful(self, sig):
        with tempfile.TemporaryDirectory(prefix="aptest-stop-") as d:
            s = probe_server(workers=2, env={"AP_TEST_STOP_DIR": d})
            try:
                s.start()
                with s.client() as c:
                    names = {c.call("whoami")["worker"] for _ in range(4)}
                self.assertEqual(names, {"worker-0", "worker-1"})
                pids = s.worker_pids()
                s.signal(sig)
                rc = s.wait_exit()
                log = s.log()
            finally:
                s.close()
            self.assertEqual(rc, 0, log)
            self.assertFalse(os.path.exists(s.path), "socket file left behind")
            stopped = {}
            for name in ("worker-0", "worker-1"):
                p = os.path.join(d, name + ".stopped")
                self.assertTrue(os.path.exists(p), "%s: on_stop() did not run\n%s" % (name, log))
                with open(p) as f:
                    stopped[int(f.read())] = name
            self.assertEqual(sorted(stopped), sorted(pids))
            for pid in pids:
                self.assertTrue(pid_gone(pid))
                self.assertRegex(log, r"worker-\d \(pid %d\) stopped" % pid)
            self.assertIn(signal.Signals(sig).name, log)

    def test_SIGTERM_while_starting_serves_what_was_queued_then_stops_cleanly(self):
        with tempfile.TemporaryDirectory(prefix="aptest-stop-") as d:
            gate = os.path.join(d, "start")
            s = Server(agent="probe:SlowStartAgent", workers=2, wait_ready=False,
                       env={"AP_TEST_STOP_DIR": d, "AP_TEST_START_GATE": gate},
                       args=["--python-path", AGENTS_DIR])
            try:
                s.start()

                def starting():
                    try:
                        with Client(s.path, timeout=5) as c:
                            return c.call("pool.ping")["state"] == "starting"
                    except OSError:
                        return False
                wait_for(starting, what="the pool to answer while starting")
                with s.client() as c:
                    c.send({"id": "early", "type": "whoami"})
                    wait_for(lambda: c.stats()["queue"]["depth"] == 1, what="the message to be queued")
                    s.signal(signal.SIGTERM)
                    wait_for(lambda: "shutting down (SIGTERM)" in s.log(), what="the shutdown to begin")
                    open(gate, "w").close()
                    resp = c.recv()
                    self.assertEqual(resp["id"], "early")
                    self.assertTrue(resp["ok"], resp)
                rc = s.wait_exit()
                log = s.log()
            finally:
                s.close()
            self.assertEqual(rc, 0, log)
            self.assertFalse(os.path.exists(s.path))
            for name in ("worker-0", "worker-1"):
                self.assertTrue(os.path.exists(os.path.join(d, name + ".stopped")),
                                "%s: on_stop() did not run\n%s" % (name, log))
            self.assertNotRegex(log, r"killed by signal|SIGKILL")
            self.assertEqual(len(re.findall(r"\] worker-\d \(pid \d+\) stopped", log)), 2, log)

    def test_SIGTERM_runs_on_stop_exits_0_and_removes_the_socket(self):
        self.check_graceful(signal.SIGTERM)

    def test_SIGINT_runs_on_stop_exits_0_and_removes_the_socket(self):
        self.check_graceful(signal.SIGINT)


if __name__ == "__main__":
    main()
