# SPDX-License-Identifier: BSD-2-Clause
"""test_startup.py - agentpoold's command line, configuration and start-up.

Each test runs the real build/agentpoold (with real Python workers where
it serves) and checks one documented behaviour: --help, --version and
--check-config with exact exit codes and one-line errors naming key,
value and file; flags over the config file over defaults; the default
socket from --socket or $AGENTPOOL_SOCKET; an agent that cannot start
at first stops the server at once (traceback logged, no crash loop,
socket removed), while one that fails to restart later is retried with
the documented backoff and recovers; stale and live sockets; socket
permissions; jemalloc as the master's allocator; "ready" logged only
after every worker is.  No test asserts how long anything took: waits
poll a condition until a deadline.
"""
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLD, BUILDDIR, DEADLINE, SRCDIR, Server, build_var,  # noqa: E402
                     main, pid_gone, wait_for)

NCPUS = os.sysconf("SC_NPROCESSORS_ONLN")

# Settings whose flag and default --help must show (the full list is
# checked against docs/operations.md below).
SETTINGS = [
    "socket", "socketMode", "agent", "pythonPath", "virtualenv", "inheritPythonEnv",
    "workerBinary", "minWorkers", "maxWorkers", "workerModel", "concurrency", "loadBalancingStrategy",
    "messageQueueSize", "overflow", "maxMessageBytes", "maxConnections",
    "maxInFlightPerConnection", "maxPendingBytes", "listenBacklog", "shutdownTimeout",
    "restartOnFailure", "maxRetries", "retryDelay", "healthCheckInterval",
    "workerRecycleInterval", "maxMessagesPerWorker", "timeout", "logLevel", "logFormat",
]



def settings_in_docs():
    """The settings docs/operations.md's "Settings" table documents: the
    names in each row's first cell (a row may name several)."""
    with open(os.path.join(SRCDIR, "docs", "operations.md")) as f:
        text = f.read()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    names = []
    for row in section.splitlines():
        if row.startswith("| `"):
            names += re.findall(r"`(\w+)`", row.split("|")[1])
    return names


AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")


def flag_of(key):
    return "--" + re.sub(r"([A-Z])", lambda m: "-" + m.group(1).lower(), key)


def run_ap(*args, env_extra=None):
    env = dict(os.environ)
    env.pop("AGENTPOOL_SOCKET", None)
    if env_extra:
        env.update(env_extra)
    return subprocess.run([AGENTPOOLD] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=DEADLINE, text=True)


def master_lines(log):
    return [ln for ln in log.splitlines() if "[master " in ln]


class HelpVersion(unittest.TestCase):
    def test_help_lists_every_setting_with_its_default_and_exits_0(self):
        r = run_ap("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        defaults = {}
        lines = r.stdout.splitlines()
        for i, ln in enumerate(lines):
            m = re.match(r"^\s+(--[a-z0-9-]+)\s+\[(\w+)\]", ln)
            if m:
                d = re.match(r"^\s+default:\s*(.*)$", lines[i + 1])
                self.assertIsNotNone(d, "no default line after %r" % ln)
                self.assertEqual(m.group(1), flag_of(m.group(2)), ln)
                defaults[m.group(1)] = d.group(1).strip()
        for key in SETTINGS:
            self.assertIn(flag_of(key), defaults, "--help does not list %s" % key)
        self.assertEqual(defaults["--min-workers"], str(NCPUS))
        self.assertEqual(defaults["--load-balancing-strategy"], "round-robin")
        self.assertEqual(defaults["--message-queue-size"], "1024")
        self.assertEqual(defaults["--overflow"], "block")
        self.assertEqual(defaults["--max-message-bytes"], "4194304")
        self.assertEqual(defaults["--shutdown-timeout"], "30000")
        self.assertEqual(defaults["--socket-mode"], "0660")
        self.assertEqual(defaults["--concurrency"], "64")
        self.assertEqual(defaults["--agent"], "pyagents.examples.echo:EchoAgent")
        for flag in ("--config", "--check-config", "--version"):
            self.assertIn(flag, r.stdout)

    def test_help_and_the_docs_list_the_same_settings(self):
        # one table in config.c drives --help; docs/operations.md is
        # written by hand: a setting added, renamed or removed in one
        # and not the other fails here
        r = run_ap("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        in_help = re.findall(r"^\s+--[a-z0-9-]+\s+\[(\w+)\]", r.stdout, re.M)
        documented = settings_in_docs()
        self.assertGreater(len(documented), len(SETTINGS), "the docs' settings table was not found")
        self.assertEqual(len(documented), len(set(documented)), "a setting documented twice")
        self.assertEqual(len(in_help), len(set(in_help)), "a setting listed twice by --help")
        self.assertEqual(sorted(in_help), sorted(documented))

    def test_version_prints_the_package_version_and_exits_0(self):
        r = run_ap("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        version = build_var("PACKAGE_VERSION")
        self.assertTrue(version, "PACKAGE_VERSION not found in %s/Makefile" % BUILDDIR)
        self.assertEqual(r.stdout, "agentpoold %s\n" % version)
        self.assertEqual(run_ap("-V").stdout, r.stdout)


class CheckConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="aptest-")
        self.sock = os.path.join(self.tmp.name, "never.sock")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, obj, name="config.json"):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def test_valid_config_exits_0_and_binds_nothing(self):
        path = self.write({"socket": self.sock, "socketMode": "0600", "minWorkers": 3,
                           "loadBalancingStrategy": "least-busy", "overflow": "reject",
                           "pythonPath": [self.tmp.name], "logLevel": "warn"})
        r = run_ap("--check-config", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK", r.stdout)
        self.assertEqual(r.stderr, "")
        self.assertFalse(os.path.exists(self.sock), "--check-config created the socket")

    def assert_refused(self, r, path, *names):
        """Exit 2, nothing on stdout, one line on stderr naming every one of
        names (key, value, file)."""
        self.assertEqual(r.returncode, 2, "stdout=%r stderr=%r" % (r.stdout, r.stderr))
        self.assertEqual(r.stdout, "")
        lines = r.stderr.strip("\n").split("\n")
        self.assertEqual(len(lines), 1, "expected one line, got %r" % r.stderr)
        line = lines[0]
        if path:
            self.assertIn(path, line)
            line = line.replace(path, "")
        for n in names:
            self.assertRegex(line, r"(?<![\w.])%s(?![\w.])" % re.escape(n), "%r not named" % n)
        return lines[0]

    def test_unknown_key_is_refused_naming_key_and_file(self):
        path = self.write({"minWorkers": 2, "minWorkerz": 3})
        self.assert_refused(run_ap("--check-config", "--config", path), path, "minWorkerz")

    def test_wrong_type_is_refused_naming_key_value_and_file(self):
        path = self.write({"minWorkers": "two"})
        self.assert_refused(run_ap("--check-config", "--config", path), path, "minWorkers", "two")

    def test_out_of_range_is_refused_naming_key_value_and_file(self):
        path = self.write({"minWorkers": 0})
        self.assert_refused(run_ap("--check-config", "--config", path), path, "minWorkers", "0")
        path = self.write({"maxMessageBytes": 99999999999}, "big.json")
        self.assert_refused(run_ap("--check-config", "--config", path), path, "maxMessageBytes", "99999999999")

    def test_bad_enum_is_refused_naming_key_value_and_file(self):
        path = self.write({"loadBalancingStrategy": "fastest"})
        self.assert_refused(run_ap("--check-config", "--config", path), path, "loadBalancingStrategy", "fastest")

    def test_invalid_json_and_missing_file_are_refused_naming_the_file(self):
        path = self.write('{"minWorkers": 2,,}')
        self.assert_refused(run_ap("--check-config", "--config", path), path)
        path = self.write('[1, 2]', "array.json")
        self.assert_refused(run_ap("--check-config", "--config", path), path)
        missing = os.path.join(self.tmp.name, "missing.json")
        self.assert_refused(run_ap("--check-config", "--config", missing), missing)

    def test_bad_flag_value_is_refused_naming_key_and_value(self):
        self.assert_refused(run_ap("--check-config", "--min-workers", "two"), None, "minWorkers", "two")
        self.assert_refused(run_ap("--check-config", "--overflow", "drop"), None, "overflow", "drop")

    def test_the_server_refuses_a_bad_config_the_same_way(self):
        path = self.write({"socket": self.sock, "minWorkers": 0})
        self.assert_refused(run_ap("--config", path), path, "minWorkers", "0")
        self.assertFalse(os.path.exists(self.sock))

    def test_bad_flags_exit_non_zero_without_serving(self):
        for args in (["--bogus"], ["--min-workers"], ["stray-argument"], ["--socket-mode", "999"],
                     ["--min-workers", "3x"], ["--config"]):
            r = run_ap("--socket", self.sock, *args)
            self.assertNotEqual(r.returncode, 0, "%s accepted: %r" % (args, r.stdout))
            self.assertNotEqual(r.stderr.strip(), "", "%s: no error message" % args)
            self.assertEqual(len(r.stderr.strip().split("\n")), 1, r.stderr)
            self.assertFalse(os.path.exists(self.sock), "%s: the server started" % args)
        self.assertIn("--bogus", run_ap("--bogus").stderr)


class Serving(unittest.TestCase):
    def test_flags_override_the_config_file(self):
        cfg = {"minWorkers": 1, "loadBalancingStrategy": "random", "messageQueueSize": 77}
        with Server(workers=3, config=cfg) as s, s.client() as c:
            st = c.stats()
            self.assertEqual(st["total"], 3)             # the flag wins
            self.assertEqual(st["strategy"], "random")   # from the file
            self.assertEqual(st["queue"]["capacity"], 77)

    def test_flags_win_whether_before_or_after_the_config_option(self):
        with tempfile.TemporaryDirectory(prefix="aptest-") as d:
            cfg = os.path.join(d, "c.json")
            with open(cfg, "w") as f:
                json.dump({"minWorkers": 1, "overflow": "reject"}, f)
            path = os.path.join(d, "ap.sock")
            for args in (["--config", cfg, "--min-workers", "3"], ["--min-workers", "3", "--config", cfg]):
                with Server(bare=True, socket_path=path, args=["--socket", path] + args) as s, \
                        s.client() as c:
                    st = c.stats()
                    self.assertEqual(st["total"], 3, args)
                    self.assertEqual(st["overflow"], "reject", args)

    def skip_if_many_cpus(self):
        if NCPUS > 16:
            self.skipTest("the default minWorkers would start %d workers here" % NCPUS)

    def check_default_echo(self, s):
        with s.client() as c:
            st = c.stats()
            self.assertEqual(st["total"], NCPUS)         # default minWorkers
            self.assertEqual(st["strategy"], "round-robin")
            data = {"hello": "world", "n": [1, 2.5, None, True]}
            self.assertEqual(c.call("greeting", data), data)
        self.assertIn("pyagents.examples.echo:EchoAgent", s.log())

    def test_with_only_socket_flag_it_serves_the_echo_agent(self):
        self.skip_if_many_cpus()
        with tempfile.TemporaryDirectory(prefix="aptest-") as d:
            path = os.path.join(d, "only.sock")
            with Server(bare=True, socket_path=path, args=["--socket", path]) as s:
                self.check_default_echo(s)
            self.assertFalse(os.path.exists(path))

    def test_with_no_arguments_it_serves_on_AGENTPOOL_SOCKET(self):
        self.skip_if_many_cpus()
        with tempfile.TemporaryDirectory(prefix="aptest-") as d:
            path = os.path.join(d, "env.sock")
            with Server(bare=True, socket_path=path, env={"AGENTPOOL_SOCKET": path}) as s:
                self.check_default_echo(s)
                self.assertIn(path, s.log())
            self.assertFalse(os.path.exists(path))

    def test_ready_is_logged_only_after_every_worker_is_ready(self):
        with Server(workers=4) as s:
            lines = master_lines(s.log())
        ready = [i for i, ln in enumerate(lines) if re.search(r"\] ready: 4 workers", ln)]
        self.assertEqual(len(ready), 1, "\n".join(lines))
        for w in range(4):
            idx = [i for i, ln in enumerate(lines) if re.search(r"\] worker-%d ready \(pid" % w, ln)]
            self.assertEqual(len(idx), 1, "worker-%d ready lines:\n%s" % (w, "\n".join(lines)))
            self.assertLess(idx[0], ready[0], "pool ready logged before worker-%d:\n%s" % (w, "\n".join(lines)))


class StartFailures(unittest.TestCase):
    def check_fatal_start(self, agent, expect_in_log, workers=2, traceback=True):
        s = Server(agent=agent, workers=workers, wait_ready=False, args=["--python-path", AGENTS_DIR])
        try:
            s.start()
            rc = s.wait_exit()
            log = s.log()
            self.assertEqual(rc, 1, log)
            # the master itself relays what the worker reported
            mlog = "\n".join(master_lines(log))
            if traceback:
                self.assertIn("Traceback (most recent call last)", mlog)
            for text in expect_in_log:
                self.assertIn(text, mlog)
            spawned = re.findall(r"\] worker-\d+ spawned \(pid", log)
            self.assertEqual(len(spawned), workers, "crash loop? %d spawns:\n%s" % (len(spawned), log))
            self.assertIsNone(re.search(r"\] ready: ", log), log)
            self.assertFalse(os.path.exists(s.path), "socket file left behind")
        finally:
            s.close()

    def test_import_error_at_first_start_exits_1_with_traceback_and_no_crash_loop(self):
        self.check_fatal_start("pyagents.examples.broken_import:Agent", ["ImportError"])

    def test_on_start_raising_at_first_start_exits_1_with_traceback_and_no_crash_loop(self):
        self.check_fatal_start("pyagents.examples.badstart:BadStartAgent", ["RuntimeError: bad start"])

    def test_missing_agent_module_at_first_start_exits_1(self):
        # raised by the import machinery itself: no Python frame to show
        self.check_fatal_start("no_such_module_here:Agent",
                               ["ModuleNotFoundError: No module named 'no_such_module_here'"],
                               workers=1, traceback=False)


    def test_a_worker_dying_before_ready_at_first_start_exits_1_without_respawn(self):
        self.check_fatal_start("exit_at_import:Agent", ["exited with status 7 before it was ready"],
                               workers=2, traceback=False)

    def test_start_failures_after_the_first_start_back_off_and_recover(self):
        with tempfile.TemporaryDirectory(prefix="aptest-flaky-") as d:
            flag = os.path.join(d, "fail")
            s = Server(agent="probe:FlakyStartAgent", workers=2, env={"AP_TEST_FAIL_START": flag},
                       args=["--python-path", AGENTS_DIR])
            try:
                s.start()
                with s.client() as c:
                    old = c.stats(detailed=True)["workers"][1]["pid"]
                    open(flag, "w").close()
                    os.kill(old, signal.SIGKILL)
                    backoff = re.compile(r"worker-1: agent failed to start (\d+) time\(s\) in a row; "
                                         r"next attempt in (\d+) ms")
                    wait_for(lambda: len(backoff.findall(s.log())) >= 3, what="three failed restarts")
                    # still serving, on the other worker, but "degraded": a slot
                    # failing to start again and again is in restart backoff
                    self.assertEqual({c.call("whoami")["worker"] for _ in range(6)}, {"worker-0"})
                    st = c.stats()
                    self.assertEqual(st["state"], "degraded")
                    self.assertEqual(st["healthy"], 1)
                    self.assertEqual([e["worker"] for e in c.call("pool.health")["backoffSlots"]], ["worker-1"])
                    os.unlink(flag)

                    def recovered():
                        w = c.stats(detailed=True)["workers"][1]
                        return w["state"] == "ready" and w
                    w1 = wait_for(recovered, what="worker-1 to start again")
                    self.assertEqual(c.stats()["state"], "ready")
                    log = s.log()
                    fails = [(int(n), int(ms)) for n, ms in backoff.findall(log)]
                    self.assertEqual(fails[:3], [(1, 250), (2, 500), (3, 1000)])
                    # one spawn per attempt: the first, the respawn after
                    # kill -9, one per failure but the last, plus the good one
                    spawns = re.findall(r"\] worker-1 spawned \(pid", log)
                    self.assertEqual(len(spawns), len(fails) + 2, log)
                    self.assertEqual(w1["generation"], len(fails) + 2)
                    self.assertIn("RuntimeError: start refused", log)
                    seen = {c.call("whoami")["worker"] for _ in range(6)}
                    self.assertEqual(seen, {"worker-0", "worker-1"})
                self.assertIsNone(s.proc.poll())
            finally:
                s.close()


class Sockets(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="aptest-")
        self.path = os.path.join(self.tmp.name, "ap.sock")

    def tearDown(self):
        self.tmp.cleanup()

    def assert_serves(self, s):
        with s.client() as c:
            self.assertEqual(c.call("pool.ping")["state"], "ready")
            self.assertEqual(c.call("echo", {"k": 1}), {"k": 1})

    def test_stale_socket_file_of_a_dead_process_is_replaced(self):
        # bound but never listening: what a crashed server leaves behind
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(self.path)
        dead.close()
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.path).st_mode))
        with Server(socket_path=self.path, workers=1) as s:
            self.assert_serves(s)
            self.assertIn("stale", s.log())

    def test_socket_left_by_a_SIGKILLed_server_is_replaced(self):
        first = Server(socket_path=self.path, workers=1)
        try:
            first.start()
            pids = first.worker_pids()
            first.proc.kill()
            first.proc.wait()
            self.assertTrue(os.path.exists(self.path), "expected the killed server's socket file to remain")
            for pid in pids:
                wait_for(lambda: pid_gone(pid), what="worker %d to die with its master" % pid)
        finally:
            first.close()
        with Server(socket_path=self.path, workers=1) as s:
            self.assert_serves(s)

    def test_a_live_server_on_the_path_makes_a_second_one_refuse(self):
        with Server(socket_path=self.path, workers=1) as first:
            ino = os.lstat(self.path).st_ino
            second = Server(socket_path=self.path, workers=1, wait_ready=False)
            try:
                second.start()
                rc = second.wait_exit()
                log = second.log()
            finally:
                second.close()
            self.assertNotEqual(rc, 0, log)
            self.assertIn("already serving %s" % self.path, log)
            self.assertEqual(len(re.findall(r"spawned \(pid", log)), 0, "the second server forked workers")
            self.assertEqual(os.lstat(self.path).st_ino, ino, "the live server's socket file was replaced")
            self.assert_serves(first)
            self.assertIsNone(first.proc.poll())

    def test_a_regular_file_at_the_socket_path_is_not_replaced(self):
        with open(self.path, "w") as f:
            f.write("precious")
        s = Server(socket_path=self.path, workers=1, wait_ready=False)
        try:
            s.start()
            rc = s.wait_exit()
            log = s.log()
        finally:
            s.close()
        self.assertNotEqual(rc, 0, log)
        self.assertIn("not a socket", log)
        with open(self.path) as f:
            self.assertEqual(f.read(), "precious")

    def test_socket_mode_defaults_to_0660(self):
        with Server(workers=1) as s:
            self.assertEqual(stat.S_IMODE(os.lstat(s.path).st_mode), 0o660)

    def test_socket_mode_flag_is_respected(self):
        with Server(workers=1, args=["--socket-mode", "0600"]) as s:
            self.assertEqual(stat.S_IMODE(os.lstat(s.path).st_mode), 0o600)
            self.assert_serves(s)

    def test_socket_mode_from_the_config_file_is_respected(self):
        with Server(workers=1, config={"socketMode": "0640"}) as s:
            self.assertEqual(stat.S_IMODE(os.lstat(s.path).st_mode), 0o640)


class Allocator(unittest.TestCase):
    def test_jemalloc_is_the_masters_allocator(self):
        if build_var("JEMALLOC_DEFS") != "-DHAVE_JEMALLOC=1":
            self.skipTest("built without jemalloc (--without-jemalloc or --enable-asan)")
        with Server(workers=1) as s, s.client() as c:
            st = c.stats()
            self.assertRegex(st["allocator"], r"^jemalloc \d")
            with open("/proc/%d/maps" % st["pid"]) as f:
                maps = f.read()
            self.assertRegex(maps, r"/libjemalloc\.so")
            self.assertEqual(st["pid"], s.proc.pid)
            self.assertIn("allocator jemalloc", s.log())


if __name__ == "__main__":
    main()
