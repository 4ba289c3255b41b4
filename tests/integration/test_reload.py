# SPDX-License-Identifier: BSD-2-Clause
"""test_reload.py - rolling reload: new code in, no request failing, a bad
deploy never takes the pool down.

Through the real agentpoold, started from a config file (flags would
override it) that each test rewrites before asking for a reload.
"""
import json
import os
import signal
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, main, wait_for  # noqa: E402


class Reload(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="aptest-reload-")
        self.cfg = os.path.join(self.dir, "agentpool.json")
        self.sock = os.path.join(self.dir, "s.sock")
        self.write({"agent": "pyagents.examples.echo:EchoAgent"})
        self.server = Server(bare=True, socket_path=self.sock,
                             args=["--socket", self.sock, "--min-workers", "2", "--max-workers", "2",
                                   "--config", self.cfg]).start()
        self.addCleanup(self.server.close)

    def write(self, cfg):
        with open(self.cfg, "w") as f:
            json.dump(cfg, f)

    def test_reload_under_load_replaces_every_worker_with_zero_failed_requests(self):
        s = self.server
        with s.client() as c:
            before = set(s.worker_pids())
            self.write({"agent": "pyagents.examples.whoami:WhoamiAgent"})
            stop, results, errors = threading.Event(), [], []

            def load():
                try:
                    with s.client() as lc:
                        i = 0
                        while not stop.is_set():
                            out = lc.pipeline([{"id": i + k, "type": "t", "data": k} for k in range(40)])
                            results.extend(out.values())
                            i += 40
                except Exception as e:  # reported below
                    errors.append(e)
            threads = [threading.Thread(target=load) for _ in range(3)]
            for t in threads:
                t.start()
            wait_for(lambda: len(results) > 200, what="load running")
            r = c.request("pool.reload")
            stop.set()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["result"]["replaced"], 2)
            self.assertEqual(r["result"]["agent"], "pyagents.examples.whoami:WhoamiAgent")
            self.assertEqual([x for x in results if not x["ok"]], [])
            self.assertTrue(before.isdisjoint(s.worker_pids()))
            self.assertIn("worker", c.call("anything"))  # the new agent answers

    def test_a_bad_deploy_aborts_the_reload_and_the_old_workers_keep_serving(self):
        s = self.server
        with s.client() as c:
            before = set(s.worker_pids())
            self.write({"agent": "pyagents.examples.broken_import:Agent"})
            r = c.request("pool.reload")
            self.assertFalse(r["ok"])
            self.assertEqual(r["error"]["code"], "agent_error")
            self.assertIn("ImportError", r["error"]["traceback"])
            self.assertEqual(set(s.worker_pids()), before)
            self.assertEqual(c.call("echo", {"still": 1}), {"still": 1})
            self.assertIn("reload aborted", s.log())
            self.assertEqual(c.call("pool.health")["status"], "ready")

    def test_an_invalid_config_aborts_the_reload_and_keeps_the_running_settings(self):
        s = self.server
        with s.client() as c:
            before = set(s.worker_pids())
            self.write({"minWorkers": "two"})
            r = c.request("pool.reload")
            self.assertEqual(r["error"]["code"], "bad_request")
            self.assertIn("minWorkers", r["error"]["message"])
            self.assertEqual(set(s.worker_pids()), before)
            self.assertEqual(c.call("echo", 5), 5)

    def test_a_setting_that_needs_a_restart_is_reported_and_kept(self):
        s = self.server
        with s.client() as c:
            self.write({"agent": "pyagents.examples.echo:EchoAgent", "socketMode": "0600", "historySize": 7})
            r = c.call("pool.reload")
            self.assertEqual(sorted(r["requiresRestart"]), ["historySize", "socketMode"])
            self.assertEqual(oct(os.stat(self.sock).st_mode & 0o777), "0o660")

    def test_sighup_reloads(self):
        s = self.server
        with s.client() as c:
            self.write({"agent": "pyagents.examples.whoami:WhoamiAgent"})
            s.signal(signal.SIGHUP)
            wait_for(lambda: "reload finished" in s.log(), what="the reload to finish")
            self.assertIn("worker", c.call("anything"))


if __name__ == "__main__":
    main()
