# SPDX-License-Identifier: BSD-2-Clause
"""test_wenv.py - the environment workers start in, through the real server.

What docs/operations.md ("Worker environment") promises, seen from inside
the worker by tests/integration/agents/procinfo.py, which reports its
process at import time and per message: with `env` set, the worker's
environment is exactly the allow-list (NAME copied from agentpoold's own
environment when there, NAME=VALUE set, the last entry for a name
winning) plus AGENTPOOL_WORKER_ID, before Python starts; without it,
everything is inherited except systemd's variables (NOTIFY_SOCKET,
LISTEN_*, WATCHDOG_*); `chdir` and `umask` are the worker's directory and
umask; `workerLimits` are the worker's soft and hard limits already at
import.  A chdir that cannot be done is a failure to start with the
reason in the log, exit status 71 in pool.history, the pool exiting 1 at
first start and the other workers serving on later; bad values are
configuration errors (exit 2).  Runs as any user.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLD, SRCDIR, Server, build_var, main, server_stats,  # noqa: E402
                     wait_for, wait_stats)

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")
PROCINFO = "procinfo:ProcInfoAgent"
PYARGS = ["--python-path", AGENTS]
SANITIZER_VARS = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS")
# Set by CPython itself at start-up (PEP 538 locale coercion) when the
# locale is C/POSIX: not from agentpoold.
PYTHON_OWN = ("LC_CTYPE",)
SANITIZED = "-fsanitize" in (build_var("AP_CFLAGS") or "")


def procinfo(srv, type_="view"):
    with srv.client() as c:
        return c.call(type_)


class EnvAllowList(unittest.TestCase):
    def test_only_listed_variables_reach_the_worker(self):
        env_list = ["PATH", "AP_WENV_SET=hello world", "AP_WENV_COPIED", "AP_WENV_ABSENT",
                    "AP_WENV_DUP=first", "AP_WENV_DUP=second", "AP_WENV_EQ=a=b", "NOTIFY_SOCKET"]
        env_list += list(SANITIZER_VARS)  # so a sanitizer build keeps its options
        master_env = {"AP_WENV_COPIED": "copied", "AP_WENV_SECRET": "hidden", "PATH": "/usr/bin:/bin",
                      "NOTIFY_SOCKET": "/nonexistent/aptest-notify"}
        with Server(agent=PROCINFO, workers=2, args=PYARGS, config={"env": env_list}, env=master_env) as srv:
            for view in (procinfo(srv), procinfo(srv, "at_import")):
                env = view["env"]
                extra = set(env) - {"PATH", "AP_WENV_SET", "AP_WENV_COPIED", "AP_WENV_DUP", "AP_WENV_EQ",
                                    "AGENTPOOL_WORKER_ID"} - set(SANITIZER_VARS) - set(PYTHON_OWN)
                self.assertEqual(extra, set(), env)
                self.assertEqual(env["PATH"], "/usr/bin:/bin")
                self.assertEqual(env["AP_WENV_SET"], "hello world")
                self.assertEqual(env["AP_WENV_COPIED"], "copied")
                self.assertEqual(env["AP_WENV_DUP"], "second")
                self.assertEqual(env["AP_WENV_EQ"], "a=b")
                self.assertRegex(env["AGENTPOOL_WORKER_ID"], r"^worker-[01]$")
                self.assertNotIn("AP_WENV_SECRET", env)
                self.assertNotIn("AP_WENV_ABSENT", env)
                self.assertNotIn("NOTIFY_SOCKET", env)  # never, even when listed

    def test_an_empty_list_leaves_only_the_worker_id(self):
        cfg = {"env": list(SANITIZER_VARS)} if SANITIZED else {"env": []}
        with Server(agent=PROCINFO, workers=1, args=PYARGS, config=cfg, env={"AP_WENV_SECRET": "x"}) as srv:
            env = procinfo(srv)["env"]
            self.assertEqual(set(env) - set(SANITIZER_VARS) - set(PYTHON_OWN), {"AGENTPOOL_WORKER_ID"}, env)

    def test_without_env_everything_but_systemd_variables_is_inherited(self):
        master_env = {"AP_WENV_SECRET": "inherited", "LISTEN_PID": "1", "LISTEN_FDS": "1",
                      "LISTEN_FDNAMES": "x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1",
                      "NOTIFY_SOCKET": "/nonexistent/aptest-notify"}
        with Server(agent=PROCINFO, workers=1, args=PYARGS, env=master_env) as srv:
            env = procinfo(srv)["env"]
            self.assertEqual(env["AP_WENV_SECRET"], "inherited")
            self.assertEqual(env["PYTHONPATH"], os.environ["PYTHONPATH"])
            for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID",
                      "NOTIFY_SOCKET"):
                self.assertNotIn(k, env)
            # The master keeps its own environment untouched.
            with open("/proc/%d/environ" % srv.proc.pid, "rb") as f:
                self.assertIn(b"LISTEN_FDS=1", f.read().split(b"\0"))


class DirectoryUmaskLimits(unittest.TestCase):
    def test_chdir_and_umask(self):
        with tempfile.TemporaryDirectory(prefix="aptest-wd-") as wd:
            with Server(agent=PROCINFO, workers=1, args=PYARGS + ["--umask", "027"],
                        config={"chdir": wd}) as srv:
                view = procinfo(srv)
                self.assertEqual(view["cwd"], os.path.realpath(wd))
                self.assertEqual(view["umask"], 0o027)
                self.assertEqual(procinfo(srv, "at_import")["cwd"], os.path.realpath(wd))
                with srv.client() as c:
                    made = c.call("write_file", {"path": "made.txt"})
                self.assertEqual(made["mode"], 0o640)
                self.assertTrue(os.path.exists(os.path.join(wd, "made.txt")))
                # The master itself did not move.
                self.assertEqual(os.readlink("/proc/%d/cwd" % srv.proc.pid), os.getcwd())

    def test_worker_limits_are_in_force_before_the_agent_is_imported(self):
        limits = {"openFiles": 64, "coreSize": 0}
        if not SANITIZED:  # ASan reserves terabytes of address space
            limits["addressSpace"] = 8 << 30
        with Server(agent=PROCINFO, workers=1, args=PYARGS, config={"workerLimits": limits}) as srv:
            for view in (procinfo(srv, "at_import"), procinfo(srv)):
                self.assertEqual(view["nofile"], [64, 64])
                self.assertEqual(view["core"], [0, 0])
                if not SANITIZED:
                    self.assertEqual(view["as"], [8 << 30, 8 << 30])
            # The master's own limits are not the workers'.
            with open("/proc/%d/limits" % srv.proc.pid) as f:
                nofile = [l for l in f if l.startswith("Max open files")][0].split()
            self.assertNotEqual(nofile[3], "64")
            # A respawned worker gets them too.
            pid = procinfo(srv)["pid"]
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: procinfo(srv)["pid"] != pid, what="the respawned worker")
            self.assertEqual(procinfo(srv)["nofile"], [64, 64])

    def test_limits_from_the_command_line(self):
        with Server(agent=PROCINFO, workers=1,
                    args=PYARGS + ["--worker-limits", "openFiles=100,coreSize=unlimited"]) as srv:
            view = procinfo(srv)
            self.assertEqual(view["nofile"], [100, 100])
            # RLIM_INFINITY; ASan lowers its own soft core limit to 0 at start-up.
            self.assertEqual(view["core"], [0 if SANITIZED else -1, -1])


class SetupFailures(unittest.TestCase):
    def test_impossible_chdir_at_first_start_is_start_failed_with_the_reason(self):
        srv = Server(agent=PROCINFO, workers=2, args=PYARGS, config={"chdir": "/nonexistent/aptest-wd"},
                     wait_ready=False)
        try:
            srv.start()
            self.assertEqual(srv.wait_exit(), 1, srv.log())
            log = srv.log()
            self.assertIn("the worker environment could not be set up: chdir(/nonexistent/aptest-wd): "
                          "No such file or directory", log)
            self.assertIn("exited with status 71 (its environment could not be set up)", log)
            self.assertIn("shutting down (the agent failed to start)", log)
            self.assertNotIn("ready:", log)
        finally:
            srv.close()

    def test_chdir_gone_later_is_start_failed_and_the_others_serve(self):
        with tempfile.TemporaryDirectory(prefix="aptest-wd-") as parent:
            wd = os.path.join(parent, "wd")
            os.mkdir(wd)
            with Server(agent=PROCINFO, workers=2, args=PYARGS,
                        config={"chdir": wd, "maxRestarts": 1000}) as srv:
                pids = srv.worker_pids()
                os.rmdir(wd)
                os.kill(pids[0], signal.SIGKILL)

                def failed_start():
                    with srv.client() as c:
                        h = c.call("pool.history")["history"]
                    return [e for e in h if e["reason"] == "start_failed"]
                ends = wait_for(failed_start, what="a start_failed end in pool.history")
                self.assertEqual(ends[0]["exitStatus"], 71, ends)
                self.assertIn("chdir(%s): No such file or directory" % wd, srv.log())
                # The surviving worker answers (its own directory is gone, so it is
                # asked for what it saw at import); the pool is not taken down.
                self.assertEqual(procinfo(srv, "at_import")["pid"], pids[1])
                st = server_stats(srv)
                self.assertGreaterEqual(st["restarts"]["start_failed"], 1)
                # Back once the directory is: the slot is respawned (backing off).
                os.mkdir(wd)
                wait_stats(srv, lambda s: s["total"] == 2 and s["healthy"] == 2, what="both workers back")

    def test_a_reload_to_an_impossible_chdir_is_aborted_with_the_reason(self):
        with tempfile.TemporaryDirectory(prefix="aptest-wd-") as wd:
            srv = Server(agent=PROCINFO, workers=2, args=PYARGS, config={"chdir": wd})
            with srv:
                pids = srv.worker_pids()
                srv.config["chdir"] = "/nonexistent/aptest-reload"
                with open(os.path.join(srv.tmp.name, "config.json"), "w") as f:
                    json.dump(srv.config, f)
                with srv.client() as c:
                    r = c.request("pool.reload")
                self.assertFalse(r["ok"], r)
                self.assertEqual(r["error"]["code"], "agent_error")
                self.assertIn("chdir(/nonexistent/aptest-reload): No such file or directory",
                              r["error"]["traceback"])
                # The old workers keep serving, in the old directory.
                self.assertEqual(sorted(srv.worker_pids()), sorted(pids))
                self.assertEqual(procinfo(srv)["cwd"], os.path.realpath(wd))

    def test_bad_values_are_configuration_errors(self):
        cases = [
            ({"env": ["1BAD"]}, 'env: "1BAD" is not NAME or NAME=VALUE'),
            ({"env": "A=1"}, None),
            ({"workerLimits": {"nofile": 10}}, 'workerLimits: unknown limit "nofile"'),
            ({"workerLimits": {"openFiles": 8}}, "workerLimits: openFiles: 8 is out of range"),
            ({"workerLimits": {"openFiles": "many"}}, 'workerLimits: openFiles: "many" is not an integer'),
            ({"workerLimits": 5}, "workerLimits: 5 is a number, expected an object"),
            ({"umask": "0999"}, 'umask: "0999"'),
            ({"chdir": 7}, "chdir: 7 is a number, expected a string"),
        ]
        with tempfile.TemporaryDirectory(prefix="aptest-cfg-") as d:
            for cfg, why in cases:
                with self.subTest(cfg=cfg):
                    path = os.path.join(d, "c.json")
                    with open(path, "w") as f:
                        json.dump(cfg, f)
                    r = subprocess.run([AGENTPOOLD, "--check-config", "--config", path],
                                       capture_output=True, text=True)
                    if why is None:
                        self.assertEqual(r.returncode, 0, r.stderr)
                        continue
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn(why, r.stderr)
                    self.assertIn(path, r.stderr)
            r = subprocess.run([AGENTPOOLD, "--check-config", "--worker-limits", "openFiles"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
            self.assertIn("workerLimits: expected NAME=VALUE pairs separated by commas", r.stderr)


if __name__ == "__main__":
    main()
