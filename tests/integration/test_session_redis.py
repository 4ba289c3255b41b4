# SPDX-License-Identifier: BSD-2-Clause
"""test_session_redis.py - session state kept in Redis
(sessionStore "redis://HOST:PORT/DB", docs/sessions.md, Stores/Redis).

Through the real agentpoold with real Python workers running
pyagents/examples/sessstate.py (the helpers of test_session_state.py)
and a real redis-server started here on a free port in a temporary
directory (Debian's redis-server, installed by ./bootstrap: without it
this test fails).  Proved here:
 - order: appends from 4 connections are committed once each, in
   acceptance order, through Redis;
 - what survives: the state after kill -9 of the worker, a reload, and
   kill -9 of agentpoold and a new start (the states are in Redis);
 - Redis stopped mid-run: messages are answered store_unavailable with
   the address and the error, logged once; when Redis is back on the same
   port (with its append-only file) messages succeed and the state is the
   last committed one;
 - a Redis that stops answering (SIGSTOP) makes messages fail
   store_unavailable instead of hanging, and they succeed once it answers;
 - pool.session.get / .list / .delete over Redis; two pools on one Redis
   keep the same key apart; sessionTtl expires an idle state in Redis;
 - agentpoold does not start when its Redis cannot be reached (saying
   why, naming the pool), nor with a host name in the spec.
Nothing waits on a duration: every wait is a condition polled until a
generous deadline.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DEADLINE, Server, main, server_stats, wait_for  # noqa: E402
from test_session_state import (ASYNC, SYNC, admin, check_appends_from_four_connections, get_state, op,  # noqa: E402
                                state_server)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of our own: a temporary directory, a free port, an
    append-only file (so a restart keeps what was written; persist=False:
    none, nothing written to disk)."""

    def __init__(self, persist=True):
        self.persist = persist
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("redis-server not found: ./bootstrap installs Debian's redis-server")
        self.dir = tempfile.mkdtemp(prefix="aptest-redis-")
        self.port = free_port()
        self.proc = None

    def spec(self, db=0):
        return "redis://127.0.0.1:%d/%d" % (self.port, db)

    def start(self):
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--save", ""] + aof +
            ["--daemonize", "no", "--logfile", os.path.join(self.dir, "redis.log")])
        wait_for(self.pings, what="redis-server answering PING")
        return self

    def pings(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(DEADLINE)
        self.proc = None

    def freeze(self, on):
        self.proc.send_signal(signal.SIGSTOP if on else signal.SIGCONT)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.close()


def redis_state_server(r, agent=SYNC, workers=1, config=None, args=()):
    cfg = {"sessionStore": r.spec()}
    cfg.update(config or {})
    return state_server(agent=agent, workers=workers, config=cfg, args=args)


def append_until_ok(c, key, v):
    """Appends until it is not store_unavailable (the store coming back)."""
    out = {}

    def ok():
        a = op(c, key, "append", v=v)
        if not a["ok"]:
            assert a["error"]["code"] == "store_unavailable", a
            return False
        out["a"] = a
        return True
    wait_for(ok, interval=0.1, what="the Redis store back")
    return out["a"]


class Order(unittest.TestCase):
    def test_appends_from_four_connections_are_committed_once_each_in_acceptance_order(self):
        with Redis() as r, redis_state_server(r, agent=ASYNC, workers=4, args=["--concurrency", "8"]) as s:
            check_appends_from_four_connections(self, s)
            st = server_stats(s)["sessions"]
            self.assertEqual(st["store"]["backend"], "redis")
            self.assertEqual(st["store"]["up"], 1)
            self.assertEqual(st["storeFailures"], 0)


class Survival(unittest.TestCase):
    def test_state_survives_kill_of_the_worker_a_reload_and_kill_of_agentpoold(self):
        with Redis() as r:
            s = redis_state_server(r)
            s.start()
            try:
                with s.client() as c:
                    self.assertEqual(op(c, "k", "append", v=1)["result"], 1)
                    pid = s.worker_pids()[0]
                    os.kill(pid, signal.SIGKILL)
                    wait_for(lambda: pid not in s.worker_pids() and s.worker_pids(), what="a new worker")
                    self.assertEqual(op(c, "k", "append", v=2)["result"], 2)
                    self.assertTrue(c.request("pool.reload")["ok"])
                    self.assertEqual(op(c, "k", "append", v=3)["result"], 3)
                s.stop(signal.SIGKILL)
                s.start()
                with s.client() as c:
                    self.assertEqual(get_state(c, "k"), {"log": [1, 2, 3]})
            finally:
                s.close()


class Faults(unittest.TestCase):
    def test_redis_stopped_mid_run_answers_store_unavailable_then_recovers(self):
        with Redis() as r, redis_state_server(r) as s, s.client() as c:
            self.assertEqual(op(c, "k", "append", v=1)["result"], 1)
            r.stop()
            for key in ("k", "new"):  # a known session's commit, a new session's read
                a = op(c, key, "append", v=2)
                self.assertEqual(a["error"]["code"], "store_unavailable", a)
                self.assertIn("Redis at 127.0.0.1:%d/0" % r.port, a["error"]["message"])
            self.assertEqual(server_stats(s)["sessions"]["store"]["up"], 0)
            r.start()
            self.assertEqual(append_until_ok(c, "k", 3)["result"], 2)
            self.assertEqual(get_state(c, "k"), {"log": [1, 3]})
            log = s.log()
            self.assertEqual(log.count("session operations fail (store_unavailable) until it is back"), 1, log)
            self.assertEqual(log.count("is back, after"), 1, log)
            self.assertGreaterEqual(server_stats(s)["sessions"]["storeFailures"], 2)

    def test_a_redis_that_stops_answering_fails_messages_instead_of_hanging(self):
        with Redis() as r, redis_state_server(r) as s, s.client() as c:
            self.assertEqual(op(c, "k", "append", v=1)["result"], 1)
            r.freeze(True)
            try:
                a = op(c, "k", "append", v=2)
            finally:
                r.freeze(False)
            self.assertEqual(a["error"]["code"], "store_unavailable", a)
            self.assertIn("no answer", a["error"]["message"])
            self.assertEqual(append_until_ok(c, "k", 3)["result"], 2)
            self.assertEqual(get_state(c, "k"), {"log": [1, 3]})


class Operating(unittest.TestCase):
    def test_get_list_delete_and_two_pools_on_one_redis(self):
        with Redis() as r:
            pools = {"a": {"agent": SYNC, "sessions": True, "workerModel": "sync", "sessionStore": r.spec()},
                     "b": {"agent": SYNC, "sessions": True, "workerModel": "sync", "sessionStore": r.spec()}}
            with Server(agent=SYNC, workers=1, config={"pools": pools}) as s, s.client() as c:
                for k in ("x", "y", "z"):
                    self.assertTrue(c.request("state", {"op": "append", "v": k}, session=k, pool="a")["ok"])
                self.assertTrue(c.request("state", {"op": "append", "v": "B"}, session="x", pool="b")["ok"])
                a = c.request("pool.session.get", {"session": "x", "pool": "a"})
                self.assertEqual(a["result"]["state"], {"log": ["x"]}, a)
                a = c.request("pool.session.get", {"session": "x", "pool": "b"})
                self.assertEqual(a["result"]["state"], {"log": ["B"]}, a)
                page = c.request("pool.session.list", {"limit": 2, "pool": "a"})["result"]
                self.assertEqual([x["session"] for x in page["sessions"]], ["x", "y"])
                self.assertTrue(page["more"])
                page = c.request("pool.session.list", {"after": page["next"], "pool": "a"})["result"]
                self.assertEqual([x["session"] for x in page["sessions"]], ["z"])
                self.assertFalse(page["more"])
                self.assertTrue(c.request("pool.session.delete", {"session": "x", "pool": "a"})["result"]["deleted"])
                self.assertEqual(c.request("state", {"op": "get"}, session="x", pool="a")["result"], {})
                self.assertEqual(c.request("state", {"op": "get"}, session="x", pool="b")["result"], {"log": ["B"]})

    def test_an_idle_state_expires_after_session_ttl(self):
        with Redis() as r, redis_state_server(r, config={"sessionTtl": "1s"}) as s, s.client() as c:
            self.assertEqual(op(c, "k", "append", v=1)["result"], 1)

            def gone():
                a = admin(c, "pool.session.get", session="k")
                return not a["ok"]
            wait_for(gone, interval=0.1, what="the state expired by Redis")
            self.assertEqual(get_state(c, "k"), {})


class Startup(unittest.TestCase):
    def assert_does_not_start(self, spec, *texts):
        s = state_server(agent=SYNC, workers=1, config={"sessionStore": spec})
        s.wait_ready = False
        s.start()
        try:
            self.assertNotEqual(s.wait_exit(), 0)
            log = s.log()
            for t in texts:
                self.assertIn(t, log)
        finally:
            s.close()

    def test_agentpoold_does_not_start_without_its_redis(self):
        port = free_port()
        self.assert_does_not_start("redis://127.0.0.1:%d/0" % port,
                                   "session store Redis at 127.0.0.1:%d/0: Connection refused" % port)

    def test_a_host_name_is_refused(self):
        self.assert_does_not_start("redis://redis.example.com:6379/0",
                                   "'redis.example.com' is not a numeric address")


if __name__ == "__main__":
    main()
