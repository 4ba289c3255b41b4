# SPDX-License-Identifier: BSD-2-Clause
"""test_pools_config.py - named pools in the config file (issue 14, its
Configuration part), through the real build/agentpoold.

--check-config with two pools starts each pool's agent in its own
throwaway agentpool-worker with that pool's python settings: a pool
whose module raises at import fails the check (exit 1) with a line naming
it, and the good pool, checked after it, is still reported by name.
--print-config prints the settings of the whole server once and one
block per pool whose values say where they came from (default, file,
environment, flag, or the pool's own object); a setting of the whole
server inside a pool, a bad pool name and an unknown defaultPool stop
start-up with exit 2 and one line.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLD, DEADLINE, main  # noqa: E402


def run_ap(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTPOOL_")}
    if env_extra:
        env.update(env_extra)
    return subprocess.run([AGENTPOOLD] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, timeout=DEADLINE, text=True)


def printed_pools(stdout):
    """--print-config's output as (top, {pool: {key: (value, origin)}}), pools in order."""
    top, pools, cur = {}, {}, None
    for line in stdout.splitlines():
        m = re.match(r"^pool ([a-z0-9_-]+):$", line)
        if m:
            cur = pools.setdefault(m.group(1), {})
            continue
        m = re.match(r"^(  )?(\w+) (.*) \(([^()]*)\)$", line)
        if not m:
            continue
        if m.group(1):
            cur[m.group(2)] = (m.group(3), m.group(4))
        else:
            top[m.group(2)] = (m.group(3), m.group(4))
    return top, pools


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="aptest-pools-")
        self.dir = self.tmp.name
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "ap.sock")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text if isinstance(text, str) else json.dumps(text))
        return path

    def module_dir(self, name, module, body):
        d = os.path.join(self.dir, name)
        os.mkdir(d, 0o755)
        with open(os.path.join(d, module + ".py"), "w") as f:
            f.write(body)
        return d


class CheckConfig(Base):
    def test_each_pool_agent_is_started_with_its_own_settings_and_a_broken_one_is_named(self):
        # each module is only on its own pool's pythonPath: a check that
        # used the top level's (or the other pool's) settings fails both
        good = self.module_dir("good", "goodmod", "class Agent:\n    def handle_message(self, type, data):\n"
                                                  "        return data\n")
        bad = self.module_dir("bad", "badmod", "raise RuntimeError('broken deploy of the writer')\n")
        path = self.write("config.json", {
            "socket": self.sock,
            "pools": {
                "writer": {"agent": "badmod:Agent", "pythonPath": [bad]},
                "researcher": {"agent": "goodmod:Agent", "pythonPath": [good]},
            }})
        r = run_ap("--check-config", "--config", path)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "agentpoold: check: pool writer: agent badmod:Agent does not start in a worker: "
                                   "RuntimeError: broken deploy of the writer\n")
        # the pool after the failing one was still checked, and reported
        self.assertEqual(r.stdout, "agentpoold: check: pool researcher: agent goodmod:Agent starts in a worker\n")
        # fixed: both pass, each reported
        self.write("bad/badmod.py", "class Agent:\n    def handle_message(self, type, data):\n        return data\n")
        r = run_ap("--check-config", "--config", path)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "agentpoold: check: pool writer: agent badmod:Agent starts in a worker\n"
                                   "agentpoold: check: pool researcher: agent goodmod:Agent starts in a worker\n"
                                   "%s: configuration OK\n" % path)

    def test_a_small_bare_timeout_in_a_pool_is_warned_about_naming_the_pool(self):
        path = self.write("config.json", {"socket": self.sock, "pools": {"a": {}, "b": {"timeout": 30}}})
        r = run_ap("--check-config", "--config", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, 'agentpoold: warning: pool b in %s: timeout: 30 is 30 milliseconds; if seconds '
                                   'were meant, write "30s"\n' % path)


class PrintConfig(Base):
    def test_server_settings_once_then_a_block_per_pool_with_each_value_origin(self):
        path = self.write("config.json", """{
  // the top level: the defaults of every pool
  "socket": "%s",
  "minWorkers": 1,
  "timeout": "20s",
  "defaultPool": "writer",
  "pools": {
    "researcher": {"timeout": "2m", "maxWorkers": 8, "concurrency": 4},
    "writer": {"minWorkers": 2}
  }
}""" % self.sock)
        r = run_ap("--config", path, "--print-config", "--timeout", "40s", "--max-retries", "5",
                   env_extra={"AGENTPOOL_CONCURRENCY": "16"})
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertFalse(os.path.exists(self.sock), "--print-config started a server")
        top, pools = printed_pools(r.stdout)
        self.assertEqual(list(pools), ["researcher", "writer"])
        self.assertEqual(top["socket"], (self.sock, "file " + path))
        self.assertEqual(top["defaultPool"], ("writer", "file " + path))
        # per-pool settings are in the blocks only, server-wide ones at the top only
        self.assertNotIn("timeout", top)
        self.assertNotIn("socket", pools["writer"])
        self.assertEqual(set(pools["writer"]), set(pools["researcher"]))
        r_in = "pool researcher in " + path
        self.assertEqual(pools["researcher"]["timeout"], ("2m", r_in))           # the pool over the flag
        self.assertEqual(pools["researcher"]["concurrency"], ("4", r_in))        # ... and the environment
        self.assertEqual(pools["researcher"]["maxWorkers"], ("8", r_in))
        self.assertEqual(pools["researcher"]["minWorkers"], ("1", "file " + path))
        self.assertEqual(pools["writer"]["timeout"], ("40s", "flag --timeout"))  # inherited from the top
        self.assertEqual(pools["writer"]["concurrency"], ("16", "environment AGENTPOOL_CONCURRENCY"))
        self.assertEqual(pools["writer"]["minWorkers"], ("2", "pool writer in " + path))
        self.assertEqual(pools["writer"]["maxRetries"], ("5", "flag --max-retries"))
        self.assertEqual(pools["writer"]["overflow"], ("block", "default"))

    def test_without_pools_the_output_is_one_flat_list(self):
        r = run_ap("--socket", self.sock, "--print-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\npool ", r.stdout)
        self.assertNotIn("\n  ", r.stdout)
        self.assertIn("\ntimeout 30s (default)\n", r.stdout)
        self.assertIn("\ndefaultPool (none) (default)\n", r.stdout)


class Refusals(Base):
    def refused(self, cfg, want, *args):
        path = self.write("config.json", cfg)
        r = run_ap("--config", path, "--socket", self.sock, *args)
        self.assertEqual((r.returncode, r.stdout), (2, ""), r.stderr)
        self.assertEqual(r.stderr, "agentpoold: " + want.replace("FILE", path) + "\n")
        self.assertFalse(os.path.exists(self.sock))

    def test_a_setting_of_the_whole_server_inside_a_pool(self):
        self.refused({"pools": {"writer": {"maxConnections": 10}}},
                     'FILE: pool "writer": maxConnections is a setting of the whole server; set it at the top level')

    def test_bad_duplicate_and_missing_pools(self):
        self.refused({"pools": {"Writer": {}}},
                     'FILE: pools: "Writer" is not a pool name (1 to 64 of a-z, 0-9, _ and -)')
        self.refused('{"pools": {"a": {}, "a": {}}}', 'FILE: pools: "a" is given twice')
        self.refused({"pools": {}}, 'FILE: pools: empty; name at least one pool, or leave "pools" out for one pool')
        self.refused({"pools": {"a": {}, "b": {}}}, 'FILE: defaultPool: "c" is not a pool (pools: a, b)',
                     "--default-pool", "c")

    def test_a_top_level_dead_letter_file_with_pools(self):
        self.refused({"deadLetterFile": os.path.join(self.dir, "dl.jsonl"), "pools": {"a": {}}},
                     'FILE: deadLetterFile: set at the top level (file FILE), but with "pools" each pool has its '
                     'own: set it inside each pool that needs another file than SOCKET.POOL.deadletter.jsonl')


if __name__ == "__main__":
    main()
