# SPDX-License-Identifier: BSD-2-Clause
"""test_systemd.py - agentpoold under systemd, emulated, and the shipped units.

No systemd runs here, so this file plays its part the way systemd does:
a launcher binds and listens on the Unix socket, puts it on fd 3, binds a
datagram socket for NOTIFY_SOCKET (a path, or an abstract "@name"), forks,
and in the child sets LISTEN_PID to the child's own pid (execve keeps it),
LISTEN_FDS=1 and NOTIFY_SOCKET, then execs agentpoold.  The tests check
what docs/operations.md ("Running under systemd") promises: READY=1 only
once every initial worker is ready (the workers are held in on_start()
until the test lets them go, so an early READY=1 would be seen), STATUS=
lines with the pool's counts, messages through the passed socket,
RELOADING=1 then READY=1 around a SIGHUP reload, WATCHDOG=1 pings with
WATCHDOG_USEC, STOPPING=1 on SIGTERM, the passed socket's file never
unlinked, workers never seeing NOTIFY_SOCKET / LISTEN_* / WATCHDOG_*, and
a bad fd 3 refused.  docs/systemd/agentpoold.{service,socket} are checked
with `systemd-analyze verify` when it is installed (skipped, with the
reason, when not), and for the settings the docs rely on.
Every wait is for a condition with a generous deadline; nothing asserts a
duration.
"""
import configparser
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLD, DEADLINE, SRCDIR, Client, main, wait_for  # noqa: E402

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")
SLOW = "probe:SlowStartAgent"
PROCINFO = "procinfo:ProcInfoAgent"
SYSTEMD_VARS = ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID")


class FakeSystemd:
    """Starts agentpoold the way systemd would for a Type=notify service
    with a socket unit, and collects what it says on NOTIFY_SOCKET."""

    def __init__(self, agent="probe:ProbeAgent", workers=2, abstract=False, extra_env=None, args=(),
                 passed="listening", configured_socket=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="aptest-sd-")
        self.path = os.path.join(self.tmp.name, "ap.sock")
        self.logpath = os.path.join(self.tmp.name, "agentpoold.log")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "aptest-notify-%d-%d" % (os.getpid(), id(self))
            self.notify.bind("\0" + name)
            self.notify_addr = "@" + name
        else:
            self.notify_addr = os.path.join(self.tmp.name, "notify")
            self.notify.bind(self.notify_addr)
        self.messages = []  # every datagram, in order, as a dict of its lines
        if passed == "listening":
            self.listen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listen.bind(self.path)
            self.listen.listen(64)
        elif passed == "unlistened":
            self.listen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listen.bind(self.path)
        else:  # a datagram socket: not what agentpoold can serve
            self.listen = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.listen.bind(self.path)
        env = dict(os.environ)
        env.pop("AGENTPOOL_SOCKET", None)
        for k in SYSTEMD_VARS:
            env.pop(k, None)
        env["NOTIFY_SOCKET"] = self.notify_addr
        env["LISTEN_FDS"] = "1"
        env["LISTEN_FDNAMES"] = "agentpoold.socket"
        env.update(extra_env or {})
        self.env = env
        self.argv = [AGENTPOOLD, "--socket", configured_socket or self.path, "--agent", agent,
                     "--python-path", AGENTS, "--min-workers", str(workers), "--max-workers", str(workers),
                     "--health-check-interval", "0"] + list(args)
        self.pid = None
        self.status = None

    def start(self):
        logfd = os.open(self.logpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        pid = os.fork()
        if pid == 0:  # the child: become the service
            try:
                os.dup2(logfd, 1)
                os.dup2(logfd, 2)
                if self.listen.fileno() != 3:
                    os.dup2(self.listen.fileno(), 3)
                os.set_inheritable(3, True)
                env = dict(self.env)
                if "LISTEN_PID" not in env:
                    env["LISTEN_PID"] = str(os.getpid())  # execve keeps the pid
                os.execve(self.argv[0], self.argv, env)
            finally:
                os._exit(127)
        os.close(logfd)
        self.pid = pid
        return self

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def poll(self):
        """Reads every datagram waiting; returns the list of all so far."""
        self.notify.setblocking(False)
        while True:
            try:
                data = self.notify.recv(4096)
            except BlockingIOError:
                break
            fields = {}
            for line in data.decode().split("\n"):
                k, _, v = line.partition("=")
                fields[k] = v
            self.messages.append(fields)
        return self.messages

    def wait_message(self, pred, what, after=-1):
        """Waits until a datagram after index `after` satisfies pred;
        returns its index."""
        def found():
            for i, m in enumerate(self.poll()):
                if i > after and pred(m):
                    return i + 1
            self.check_alive()  # after reading: what it said before exiting counts
            return None
        try:
            return wait_for(found, what=what) - 1
        except AssertionError as e:
            raise AssertionError("%s\ndatagrams: %s\nlog:\n%s" % (e, self.messages, self.log()))

    def check_alive(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
        if self.status is not None:
            raise AssertionError("agentpoold exited with %s:\n%s" % (self.status, self.log()))

    def wait_exit(self):
        if self.status is not None:
            return self.status
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                return self.status
            time.sleep(0.01)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError("agentpoold did not exit:\n" + self.log())

    def close(self):
        if self.pid and self.status is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.wait_exit()
            except (ProcessLookupError, AssertionError):
                pass
        self.notify.close()
        self.listen.close()
        self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.close()


def is_ready(m):
    return m.get("READY") == "1"


class SocketActivationAndNotify(unittest.TestCase):
    def test_ready_only_after_workers_status_messages_and_stopping(self):
        with tempfile.TemporaryDirectory(prefix="aptest-gate-") as gdir:
            gate = os.path.join(gdir, "start")
            with FakeSystemd(agent=SLOW, workers=2, extra_env={"AP_TEST_START_GATE": gate}) as sd:
                # The passed socket answers before any worker is ready.
                wait_for(lambda: "socket activation: using passed fd 3 (%s)" % sd.path in sd.log(),
                         what="the socket activation log line")
                with Client(sd.path) as c:
                    self.assertEqual(c.call("pool.ping")["state"], "starting")
                    wait_for(lambda: c.call("pool.stats")["workerEvents"]["spawned"] == 2,
                             what="both workers spawned")
                    # Held in on_start(): they cannot be ready, so neither may READY=1 be.
                    self.assertFalse([m for m in sd.poll() if is_ready(m)], sd.messages)
                    open(gate, "w").close()
                    ready_at = sd.wait_message(is_ready, "READY=1")
                    st = c.call("pool.stats", {"detailed": True})
                    self.assertEqual(st["state"], "ready")
                    self.assertEqual(sorted(w["state"] for w in st["workers"]), ["ready", "ready"])
                    self.assertIn("STATUS", sd.messages[ready_at])
                    self.assertRegex(sd.messages[ready_at]["STATUS"],
                                     r"^ready: 2 workers \(\d+ idle, \d+ busy\), queue \d+/\d+, [\d.]+ msg/s$")
                    # Messages go through the socket systemd passed.
                    self.assertEqual(c.call("echo", {"n": 1}), {"n": 1})
                    self.assertIn(c.call("whoami")["pid"], [w["pid"] for w in st["workers"]])
                # A later STATUS= line carries the counts too (sent when they change, at most
                # every few seconds): 3 messages answered change the rate.
                with Client(sd.path) as c:
                    for i in range(3):
                        c.call("echo", {"i": i})
                sd.wait_message(lambda m: "STATUS" in m and "READY" not in m and
                                m["STATUS"].startswith("ready: 2 workers"), "a STATUS= update")
                os.kill(sd.pid, signal.SIGTERM)
                sd.wait_message(lambda m: m.get("STOPPING") == "1", "STOPPING=1 after READY=1", after=ready_at)
                self.assertEqual(sd.wait_exit(), 0, sd.log())
                # Not ours: the socket file systemd made is left where it is.
                self.assertTrue(os.path.exists(sd.path), "agentpoold removed the passed socket's file")
                self.assertNotIn("replaced stale socket", sd.log())
                self.assertEqual(sum(1 for m in sd.poll() if is_ready(m)), 1, sd.messages)

    def test_abstract_notify_socket_watchdog_reload_and_worker_environment(self):
        with FakeSystemd(agent=PROCINFO, workers=1, abstract=True,
                         extra_env={"WATCHDOG_USEC": "200000"}) as sd:
            sd.wait_message(is_ready, "READY=1 on an abstract socket")
            with Client(sd.path) as c:
                env = c.call("env")["env"]
                for k in SYSTEMD_VARS:
                    self.assertNotIn(k, env, "a worker saw %s" % k)
                self.assertEqual(env.get("AGENTPOOL_WORKER_ID"), "worker-0")
            # The master's own environment is left alone (only workers lose them).
            with open("/proc/%d/environ" % sd.pid, "rb") as f:
                master_env = f.read().split(b"\0")
            self.assertIn(("NOTIFY_SOCKET=" + sd.notify_addr).encode(), master_env)
            self.assertIn(b"LISTEN_FDS=1", master_env)
            first = sd.wait_message(lambda m: m.get("WATCHDOG") == "1", "a WATCHDOG=1 ping")
            sd.wait_message(lambda m: m.get("WATCHDOG") == "1", "a second WATCHDOG=1 ping", after=first)
            self.assertIn("pinging every 100 ms", sd.log())
            os.kill(sd.pid, signal.SIGHUP)
            rel = sd.wait_message(lambda m: m.get("RELOADING") == "1", "RELOADING=1")
            self.assertIn("MONOTONIC_USEC", sd.messages[rel])
            self.assertTrue(sd.messages[rel]["STATUS"].startswith("reloading"), sd.messages[rel])
            again = sd.wait_message(is_ready, "READY=1 after the reload", after=rel)
            self.assertIn("reload finished", sd.log())
            with Client(sd.path) as c:
                self.assertEqual(c.call("pool.stats")["state"], "ready")
            sd.close()
            self.assertGreater(len(sd.messages), again)

    def test_passed_socket_at_another_path_is_used_with_a_warning(self):
        with tempfile.TemporaryDirectory(prefix="aptest-other-") as other:
            configured = os.path.join(other, "configured.sock")
            with FakeSystemd(workers=1, configured_socket=configured) as sd:
                sd.wait_message(is_ready, "READY=1")
                self.assertIn("the passed socket is %s, not the configured socket %s" % (sd.path, configured),
                              sd.log())
                with Client(sd.path) as c:
                    self.assertEqual(c.call("echo", [1, 2]), [1, 2])
                self.assertFalse(os.path.exists(configured))

    def test_a_socket_that_is_not_listening_is_refused(self):
        for passed, why in (("unlistened", "is not listening"), ("datagram", "is not a stream socket")):
            with self.subTest(passed=passed):
                with FakeSystemd(workers=1, passed=passed) as sd:
                    self.assertEqual(sd.wait_exit(), 1, sd.log())
                    self.assertIn("socket activation: fd 3 %s" % why, sd.log())
                    self.assertNotIn("spawned", sd.log())

    def test_listen_pid_of_another_process_means_no_activation(self):
        # LISTEN_PID names someone else (a parent that was activated): bind as usual.
        with tempfile.TemporaryDirectory(prefix="aptest-own-") as own:
            mine = os.path.join(own, "own.sock")
            with FakeSystemd(workers=1, configured_socket=mine, extra_env={"LISTEN_PID": "1"}) as sd:
                sd.wait_message(is_ready, "READY=1")
                self.assertNotIn("socket activation", sd.log())
                with Client(mine) as c:
                    self.assertEqual(c.call("echo", "x"), "x")
                os.kill(sd.pid, signal.SIGTERM)
                self.assertEqual(sd.wait_exit(), 0, sd.log())
                self.assertFalse(os.path.exists(mine), "the socket agentpoold bound itself was left behind")

    def test_without_notify_socket_nothing_is_sent_and_it_serves(self):
        with FakeSystemd(workers=1, extra_env={"NOTIFY_SOCKET": ""}) as sd:
            wait_for(lambda: "ready: 1 workers" in sd.log(), what="ready")
            with Client(sd.path) as c:
                self.assertEqual(c.call("echo", 5), 5)
            self.assertEqual(sd.poll(), [])


class UnitFiles(unittest.TestCase):
    UNITS = os.path.join(SRCDIR, "docs", "systemd")

    def read(self, name):
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        cp.optionxform = str
        with open(os.path.join(self.UNITS, name)) as f:
            cp.read_string(f.read())
        return cp

    def test_service_settings_the_docs_rely_on(self):
        svc = self.read("agentpoold.service")["Service"]
        self.assertEqual(svc["Type"], "notify")
        self.assertEqual(svc["NotifyAccess"], "main")
        self.assertEqual(svc["ExecReload"], "/bin/kill -HUP $MAINPID")
        self.assertEqual(svc["KillSignal"], "SIGTERM")
        self.assertEqual(svc["KillMode"], "mixed")
        # Above the default shutdownTimeout (30 s) and the 5 s STOP grace.
        self.assertGreater(int(svc["TimeoutStopSec"]), 35)
        self.assertEqual(svc["RestartPreventExitStatus"], "2")
        sock = self.read("agentpoold.socket")["Socket"]
        self.assertEqual(sock["ListenStream"], "/run/agentpool/agentpool.sock")
        self.assertEqual(sock["SocketMode"], "0660")
        self.assertEqual(sock["Accept"], "no")

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if tool is None:
            self.skipTest("systemd-analyze is not installed; the unit files were only parsed")
        with tempfile.TemporaryDirectory(prefix="aptest-units-") as d:
            for name in ("agentpoold.service", "agentpoold.socket"):
                with open(os.path.join(self.UNITS, name)) as f:
                    text = f.read()
                # verify checks that ExecStart's program exists: point it at this build.
                text = text.replace("/usr/local/bin/agentpoold", AGENTPOOLD)
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)
            r = subprocess.run([tool, "verify", os.path.join(d, "agentpoold.socket"),
                                os.path.join(d, "agentpoold.service")],
                               capture_output=True, text=True, timeout=DEADLINE)
            if r.returncode != 0 and ("Failed to " in r.stderr and "bus" in r.stderr.lower()):
                self.skipTest("systemd-analyze verify cannot run here: %s" % r.stderr.strip())
            self.assertEqual(r.returncode, 0, r.stderr)
            # Unknown keys and bad values are only warnings: none may mention our units.
            ours = [l for l in (r.stdout + r.stderr).splitlines() if "agentpoold." in l]
            self.assertEqual(ours, [])
            # And a broken copy is caught, so the check above can fail.
            with open(os.path.join(d, "agentpoold.service")) as f:
                text = f.read()
            with open(os.path.join(d, "agentpoold.service"), "w") as f:
                f.write(text.replace("KillMode=mixed", "KillMode=mixed\nBogusKey=1"))
            r = subprocess.run([tool, "verify", os.path.join(d, "agentpoold.service")],
                               capture_output=True, text=True, timeout=DEADLINE)
            self.assertIn("BogusKey", r.stderr)


if __name__ == "__main__":
    main()
