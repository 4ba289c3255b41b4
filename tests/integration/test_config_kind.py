# SPDX-License-Identifier: BSD-2-Clause
"""test_config_kind.py - a configuration that is kind to people (issue 14).

Runs the real build/agentpoold, serving with real Python workers where
the point is what the server does with the settings: AGENTPOOL_*
environment variables override the file and flags override them (seen in
the number of workers a served pool has and in --print-config's origins);
comments (// and /* */, with both inside strings kept) in a file the
server serves from; a parse error told as line and column of the file as
written; durations with units; --check-config's one-line warning for a
bare timeout that looks like seconds; --check-config starting the agent
in a throwaway worker (a module that raises at import is reported with
the traceback's last line, exit 1) and checking the socket's directory
(missing, or not writable by the user the server runs as).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLD, DEADLINE, Server, main  # noqa: E402


def run_ap(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTPOOL_")}
    if env_extra:
        env.update(env_extra)
    return subprocess.run([AGENTPOOLD] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=DEADLINE, text=True)


def printed(stdout):
    """--print-config's lines as {key: (value, origin)}."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\w+) (.*) \(([^()]*)\)$", line)
        if m:
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="aptest-cfg-")
        self.dir = self.tmp.name
        self.sock = os.path.join(self.dir, "ap.sock")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, text, name="config.json"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        return path


class EnvironmentAndPrecedence(Base):
    def serve_count(self, args, env):
        srv = Server(bare=True, socket_path=self.sock, args=["--socket", self.sock] + args, env=env)
        with srv:
            return len(srv.worker_pids())

    def test_environment_overrides_the_file_and_a_flag_overrides_the_environment(self):
        path = self.write({"minWorkers": 1, "maxWorkers": 3})
        self.assertEqual(self.serve_count(["--config", path], {}), 1)
        self.assertEqual(self.serve_count(["--config", path], {"AGENTPOOL_MIN_WORKERS": "2"}), 2)
        self.assertEqual(self.serve_count(["--config", path, "--min-workers", "3"],
                                          {"AGENTPOOL_MIN_WORKERS": "2"}), 3)

    def test_print_config_tells_where_each_value_came_from(self):
        path = self.write({"socket": self.sock, "minWorkers": 1, "timeout": "1s", "maxWorkers": 4})
        r = run_ap("--config", path, "--max-workers", "5", "--print-config",
                   env_extra={"AGENTPOOL_TIMEOUT": "45s", "AGENTPOOL_MAX_WORKERS": "6", "AGENTPOOL_OVERFLOW": ""})
        self.assertEqual(r.returncode, 0, r.stderr)
        p = printed(r.stdout)
        self.assertEqual(p["minWorkers"], ("1", "file " + path))
        self.assertEqual(p["timeout"], ("45s", "environment AGENTPOOL_TIMEOUT"))
        self.assertEqual(p["maxWorkers"], ("5", "flag --max-workers"))
        self.assertEqual(p["overflow"], ("block", "default"))
        self.assertEqual(p["socket"], (self.sock, "file " + path))
        # every setting --help lists is printed, once
        keys = re.findall(r"^\s+--[a-z0-9-]+\s+\[(\w+)\]", run_ap("--help").stdout, re.M)
        self.assertEqual(sorted(p), sorted(keys))
        self.assertFalse(os.path.exists(self.sock), "--print-config started a server")

    def test_agentpool_socket_is_the_socket_setting_over_the_file(self):
        other = os.path.join(self.dir, "other.sock")
        path = self.write({"socket": other})
        r = run_ap("--config", path, "--print-config", env_extra={"AGENTPOOL_SOCKET": self.sock})
        self.assertEqual(printed(r.stdout)["socket"], (self.sock, "environment AGENTPOOL_SOCKET"))

    def test_a_bad_value_in_the_environment_names_the_variable(self):
        r = run_ap("--socket", self.sock, "--check-config", env_extra={"AGENTPOOL_MAX_RETRIES": "lots"})
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, 'agentpoold: environment AGENTPOOL_MAX_RETRIES: maxRetries: "lots" is not an '
                                   'integer\n')
        r = run_ap("--socket", self.sock, env_extra={"AGENTPOOL_TIMEOUT": "30 s"})
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, 'agentpoold: environment AGENTPOOL_TIMEOUT: timeout: "30 s": unknown unit " s" '
                                   '(known: ms, s, m, h, d)\n')


class FileText(Base):
    def test_comments_are_allowed_and_strings_keep_their_slashes(self):
        # "//" inside the socket path: if comments were cut inside strings
        # the file would not parse, or the server would serve elsewhere
        os.mkdir(os.path.join(self.dir, "d"))
        sock = os.path.join(self.dir, "d") + "//ap.sock"
        path = self.write('{\n'
                          '  // the socket, with a double slash on purpose\n'
                          '  "socket": "%s", /* a block comment */\n'
                          '# a hash line\n'
                          '  "minWorkers": 1, "maxWorkers": 1,\n'
                          '  "gracefulTimeout": "2s", /* multi\n   line */\n'
                          '  "chdir": "/tmp/*not-a-comment*/x"\n'
                          '}\n' % sock)
        r = run_ap("--config", path, "--print-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        p = printed(r.stdout)
        self.assertEqual(p["socket"][0], sock)
        self.assertEqual(p["chdir"][0], "/tmp/*not-a-comment*/x")
        self.assertEqual(p["gracefulTimeout"], ("2s", "file " + path))
        path = self.write(open(path).read().replace('  "chdir": "/tmp/*not-a-comment*/x"\n', '  "timeout": "3s"\n'))
        with Server(bare=True, socket_path=sock, args=["--config", path]) as srv:
            with srv.client() as c:
                self.assertEqual(c.call("echo", {"x": 1}), {"x": 1})

    def test_a_parse_error_names_line_and_column(self):
        path = self.write('{\n  // a comment\n  "minWorkers": 2,,\n  /* another */\n}\n')
        r = run_ap("--check-config", "--config", path)
        self.assertEqual(r.returncode, 2)
        # cJSON stops at the "}" two lines below; the error is told just after the stray comma
        self.assertEqual(r.stderr, "agentpoold: %s: line 3, column 20: not valid JSON\n" % path)
        path = self.write('{"socket": "/a/b",\n "timeout": 30/2}')
        r = run_ap("--check-config", "--config", path)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "agentpoold: %s: line 2, column 15: '/' outside a string that starts no "
                                   "comment (// or /* */)\n" % path)

    def test_durations_take_units_and_a_bare_small_timeout_is_warned_about(self):
        path = self.write({"socket": self.sock, "minWorkers": 1, "timeout": 30, "gracefulTimeout": "30s"})
        r = run_ap("--check-config", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, 'agentpoold: warning: file %s: timeout: 30 is 30 milliseconds; if seconds were '
                                   'meant, write "30s"\n' % path)
        r = run_ap("--check-config", "--config", path, "--timeout", "30s")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        r = run_ap("--socket", self.sock, "--graceful-timeout", "1.5s", "--check-config")
        self.assertEqual(r.returncode, 2)
        self.assertIn('gracefulTimeout: "1.5s": fractions are not accepted', r.stderr)


class CheckConfigMachine(Base):
    def agent_module(self, body):
        with open(os.path.join(self.dir, "deployed.py"), "w") as f:
            f.write(body)
        os.chmod(self.dir, 0o755)

    def test_a_broken_agent_module_is_caught_with_its_traceback_last_line(self):
        self.agent_module("import json\nraise RuntimeError('broken deploy: missing settings')\n")
        r = run_ap("--check-config", "--socket", self.sock, "--python-path", self.dir, "--agent", "deployed:Agent")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "agentpoold: check: agent deployed:Agent does not start in a worker: "
                                   "RuntimeError: broken deploy: missing settings\n")
        r = run_ap("--check-config", "--socket", self.sock, "--python-path", self.dir, "--agent", "nosuchmod:Agent")
        self.assertEqual(r.returncode, 1)
        self.assertIn("ModuleNotFoundError: No module named 'nosuchmod'", r.stderr)

    def test_a_good_agent_module_passes(self):
        self.agent_module("class Agent:\n    def handle_message(self, type, data):\n        return data\n")
        r = run_ap("--check-config", "--socket", self.sock, "--python-path", self.dir, "--agent", "deployed:Agent",
                   "--print-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertTrue(r.stdout.endswith("defaults and flags: configuration OK\n"), r.stdout)
        self.assertEqual(printed(r.stdout)["agent"], ("deployed:Agent", "flag --agent"))

    def test_a_missing_socket_directory_is_caught(self):
        sock = os.path.join(self.dir, "missing", "ap.sock")
        r = run_ap("--check-config", "--socket", sock)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "agentpoold: check: socket %s: directory %s: No such file or directory\n"
                         % (sock, os.path.dirname(sock)))

    def test_a_socket_directory_the_server_user_cannot_write_is_caught(self):
        d = os.path.join(self.dir, "run")
        os.mkdir(d, 0o755)
        sock = os.path.join(d, "ap.sock")
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:
            # root passes every permission test: the check is as `user`
            args, who = ["--user", "nobody"], "nobody"
            r = run_ap("--check-config", "--socket", sock, *args)
        else:
            os.chmod(d, 0o555)
            args, who = [], "this user"
            r = run_ap("--check-config", "--socket", sock)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("agentpoold: check: socket %s: directory %s is not writable by %s: Permission denied\n"
                      % (sock, d, who), r.stderr)
        os.chmod(d, 0o777)
        r = run_ap("--check-config", "--socket", sock, *args)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    main()
