# SPDX-License-Identifier: BSD-2-Clause
"""test_session_state.py - session state (ctx.session) kept by the master
in its SQLite store (docs/sessions.md, State and Stores).

Through the real agentpoold with real Python workers running
pyagents/examples/sessstate.py.  Proved here:
 - order: 100 appends to one session's state from 4 connections leave a
   list with every message exactly once, each at the place its answer
   says (the length after its append), each connection's in the order it
   sent them: state changes are committed in acceptance order, nothing
   lost or applied twice;
 - a handler that raises leaves the state as it was; a state past
   maxSessionBytes is agent_error "session state too large" and is not
   committed;
 - what survives: the state after kill -9 of the worker, a reload, and
   kill -9 of agentpoold itself and a new start on the same database
   (an answered message's state is durable);
 - ctx.session.save() mid-message is committed: the retry after the
   worker is killed sees it; 300 saves in a loop are each written or
   replaced by a newer one (one write per session at a time), the last
   one wins;
 - sessionTtl: an idle state is deleted by the sweep (pool.session.get no
   longer finds it) and the next message starts from {};
 - a store that cannot commit (the database locked by another process
   past the busy timeout) answers store_unavailable, and once it is free
   again messages succeed and the state is the last committed one;
 - pool.session.get / .list / .delete and agentpoolctl session; delete is
   refused session_busy while a message of the session is in flight;
 - two pools sharing one database keep the same key apart; sessionStore
   none gives ctx.session None.
Nothing waits on a duration: every wait is a condition polled until a
generous deadline.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLCTL, DEADLINE, Server, main, server_stats, wait_for  # noqa: E402

SYNC = "pyagents.examples.sessstate:StateAgent"
ASYNC = "pyagents.examples.sessstate:AsyncStateAgent"


def state_server(agent=ASYNC, workers=2, config=None, args=()):
    cfg = {"sessions": True}
    cfg.update(config or {})
    model = "async" if agent == ASYNC else "sync"
    return Server(agent=agent, workers=workers, config=cfg,
                  args=["--worker-model", model, "--max-messages-per-worker", "0"] + list(args))


def op(c, key, name, rid=None, **data):
    data["op"] = name
    extra = {"session": key}
    if rid is not None:
        extra["id"] = rid
    return c.request("state", data, **extra)


def get_state(c, key):
    a = op(c, key, "get")
    assert a["ok"], a
    return a["result"]


def admin(c, type_, **data):
    return c.request(type_, data)


def check_appends_from_four_connections(tc, s):
    """25 appends to session "conv" from each of 4 connections at once:
    the state's list holds each exactly once, at the place its answer says,
    each connection's in the order it sent them (whatever the store)."""
    conns = [s.client() for _ in range(4)]
    answers = [None] * 4

    def run(k):
        reqs = [{"id": "c%d-%d" % (k, i), "type": "state", "session": "conv",
                 "data": {"op": "append", "v": [k, i]}} for i in range(25)]
        answers[k] = conns[k].pipeline(reqs)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with s.client() as c:
        log = get_state(c, "conv")["log"]
    tc.assertEqual(sorted(map(tuple, log)), sorted((k, i) for k in range(4) for i in range(25)))
    for k in range(4):
        at = []
        for i in range(25):
            a = answers[k][json.dumps("c%d-%d" % (k, i))]
            tc.assertTrue(a["ok"], a)
            tc.assertEqual(log[a["result"] - 1], [k, i], "message %d/%d is not where its answer says" % (k, i))
            at.append(a["result"])
        tc.assertEqual(at, sorted(at), "connection %d's messages committed out of order" % k)
    for c in conns:
        c.close()


class Order(unittest.TestCase):
    def test_appends_from_four_connections_are_committed_once_each_in_acceptance_order(self):
        with state_server(workers=4, args=["--concurrency", "8"]) as s:
            check_appends_from_four_connections(self, s)
            st = server_stats(s)["sessions"]
            self.assertEqual(st["stateCommits"], 100)
            self.assertEqual(st["storeFailures"], 0)
            self.assertEqual(st["store"]["backend"], "sqlite")
            self.assertGreaterEqual(st["store"]["transactionWrites"], 100)


class Faults(unittest.TestCase):
    def test_a_handler_that_raises_leaves_the_state_as_it_was(self):
        with state_server(agent=SYNC, workers=1) as s, s.client() as c:
            self.assertEqual(op(c, "k", "append", v=1)["result"], 1)
            a = op(c, "k", "raise", v=2)
            self.assertEqual(a["error"]["code"], "agent_error", a)
            self.assertEqual(get_state(c, "k"), {"log": [1]})
            self.assertEqual(op(c, "k", "append", v=3)["result"], 2)

    def test_a_message_answered_cancelled_while_it_runs_commits_nothing_more(self):
        # sync worker, cancelSync finish: the interrupted handler runs to
        # its end and leaves a changed state, which must not be committed
        with state_server(agent=SYNC, workers=1, config={"sessionBusy": "interrupt"}) as s, \
                s.client() as c, s.client() as c2:
            gate = os.path.join(s.tmp.name, "gate")
            c.send({"id": "m1", "type": "state", "session": "k", "data": {"op": "append_wait", "v": 1, "gate": gate}})
            wait_for(lambda: os.path.exists(gate + ".running"), what="the first message running")
            c2.send({"id": "m2", "type": "state", "session": "k", "data": {"op": "append", "v": 2}})
            a = c.recv()
            self.assertEqual((a["id"], a["error"]["code"]), ("m1", "cancelled"), a)
            open(gate, "w").close()
            b = c2.recv()
            self.assertEqual(b["result"], 1, b)
            self.assertEqual(get_state(c, "k"), {"log": [2]})
            self.assertEqual(server_stats(s)["sessions"]["stateAfterAnswer"], 1)

    def test_replacing_ctx_session_raises_instead_of_being_lost(self):
        with state_server(agent=SYNC, workers=1) as s, s.client() as c:
            self.assertEqual(op(c, "k", "append", v=1)["result"], 1)
            a = op(c, "k", "assign")
            self.assertEqual((a["error"]["code"], a["error"]["exception"]), ("agent_error", "AttributeError"), a)
            self.assertEqual(get_state(c, "k"), {"log": [1]})

    def test_a_state_past_max_session_bytes_is_agent_error_and_not_committed(self):
        with state_server(workers=1, config={"maxSessionBytes": 1000}) as s, s.client() as c:
            self.assertTrue(op(c, "k", "pad", bytes=100)["ok"])
            a = op(c, "k", "pad", bytes=2000)
            self.assertEqual(a["error"]["code"], "agent_error", a)
            self.assertIn("session state too large", a["error"]["message"])
            self.assertEqual(get_state(c, "k"), {"pad": "x" * 100, "n": 1})

    def test_save_mid_message_is_kept_for_the_retry_after_the_worker_dies(self):
        with state_server(agent=SYNC, workers=1) as s, s.client() as c:
            gate = os.path.join(s.tmp.name, "gate")
            c.send({"id": "m", "type": "state", "session": "k", "data": {"op": "save", "v": "step-1", "gate": gate}})
            wait_for(lambda: os.path.exists(gate + ".saved"), what="the handler to save its state")
            wait_for(lambda: server_stats(s)["sessions"]["stateCommits"] == 1, what="the save committed")
            os.kill(s.worker_pids()[0], signal.SIGKILL)
            a = c.recv()
            self.assertEqual(a["id"], "m")
            self.assertEqual(a["result"], {"saved": "step-1", "attempt": 2}, a)

    def test_saves_in_a_loop_are_written_one_at_a_time_newest_wins(self):
        with state_server(agent=SYNC, workers=1) as s, s.client() as c:
            self.assertEqual(op(c, "k", "save_loop", n=300)["result"], 300)
            self.assertEqual(get_state(c, "k"), {"i": 300})
            st = server_stats(s)["sessions"]
            # every save reached the master; each was written or replaced by a newer one
            self.assertEqual(st["stateCommits"] + st["stateCoalesced"], 300, st)
            self.assertEqual(st["storeFailures"], 0)

    def test_a_store_that_cannot_commit_answers_store_unavailable_then_recovers(self):
        with state_server(agent=SYNC, workers=1) as s, s.client() as c:
            self.assertEqual(op(c, "k", "append", v=1)["result"], 1)
            db = sqlite3.connect(s.path + ".sessions.db", timeout=30, isolation_level=None)
            try:
                db.execute("BEGIN EXCLUSIVE")
                a = op(c, "k", "append", v=2)
                self.assertEqual(a["error"]["code"], "store_unavailable", a)
                self.assertIn("commit", a["error"]["message"])
                b = op(c, "new", "append", v=1)  # a session the master must read first
                self.assertEqual(b["error"]["code"], "store_unavailable", b)
            finally:
                db.execute("ROLLBACK")
                db.close()
            self.assertEqual(get_state(c, "k"), {"log": [1]})
            self.assertEqual(op(c, "k", "append", v=3)["result"], 2)
            st = server_stats(s)["sessions"]
            self.assertGreaterEqual(st["storeFailures"], 2)
            self.assertIn("session store", s.log())


class Survival(unittest.TestCase):
    def test_state_survives_kill_of_the_worker_a_reload_and_kill_of_agentpoold(self):
        s = state_server(agent=SYNC, workers=1)
        s.start()
        try:
            with s.client() as c:
                self.assertEqual(op(c, "k", "append", v=1)["result"], 1)
                pid = s.worker_pids()[0]
                os.kill(pid, signal.SIGKILL)
                wait_for(lambda: pid not in s.worker_pids() and s.worker_pids(), what="a new worker")
                self.assertEqual(op(c, "k", "append", v=2)["result"], 2)
                a = c.request("pool.reload")
                self.assertTrue(a["ok"], a)
                self.assertEqual(op(c, "k", "append", v=3)["result"], 3)
            s.stop(signal.SIGKILL)  # no clean shutdown: only what was committed is there
            s.start()
            with s.client() as c:
                self.assertEqual(get_state(c, "k"), {"log": [1, 2, 3]})
                self.assertEqual(server_stats(s)["sessions"]["stateLoads"], 1)
        finally:
            s.close()

    def test_an_idle_state_expires_after_session_ttl(self):
        with state_server(workers=1, config={"sessionTtl": "1s"}) as s, s.client() as c:
            self.assertEqual(op(c, "k", "append", v=1)["result"], 1)

            def gone():
                a = admin(c, "pool.session.get", session="k")
                return not a["ok"] and a["error"]["code"] == "bad_request"
            wait_for(gone, what="the state deleted by the sweep")
            wait_for(lambda: server_stats(s)["sessions"]["store"]["expired"] >= 1, what="the sweep counted")
            self.assertEqual(get_state(c, "k"), {})


class Operating(unittest.TestCase):
    def test_get_list_and_delete(self):
        with state_server(agent=SYNC, workers=1) as s, s.client() as c:
            for k in ("a", "b", "c"):
                op(c, k, "append", v=k)
            a = admin(c, "pool.session.get", session="b")
            self.assertTrue(a["ok"], a)
            self.assertEqual(a["result"]["state"], {"log": ["b"]})
            self.assertEqual(a["result"]["session"], "b")
            self.assertEqual(a["result"]["bytes"], len(json.dumps({"log": ["b"]}, separators=(",", ":"))))
            page = admin(c, "pool.session.list", limit=2)["result"]
            self.assertEqual([x["session"] for x in page["sessions"]], ["a", "b"])
            self.assertTrue(page["more"])
            page = admin(c, "pool.session.list", after=page["next"])["result"]
            self.assertEqual([x["session"] for x in page["sessions"]], ["c"])
            self.assertFalse(page["more"])
            out = subprocess.run([AGENTPOOLCTL, "-s", s.path, "session", "show", "a"], capture_output=True,
                                 text=True, timeout=DEADLINE)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn('"log"', out.stdout)
            out = subprocess.run([AGENTPOOLCTL, "-s", s.path, "session", "list"], capture_output=True, text=True,
                                 timeout=DEADLINE)
            self.assertEqual([line.split()[0] for line in out.stdout.splitlines()], ["a", "b", "c"])
            out = subprocess.run([AGENTPOOLCTL, "-s", s.path, "session", "delete", "a"], capture_output=True,
                                 text=True, timeout=DEADLINE)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("deleted", out.stdout)
            self.assertEqual(get_state(c, "a"), {})
            self.assertFalse(admin(c, "pool.session.delete", session="a")["result"]["deleted"])

    def test_delete_is_refused_while_a_message_of_the_session_runs(self):
        with state_server(agent=SYNC, workers=1) as s, s.client() as c, s.client() as c2:
            gate = os.path.join(s.tmp.name, "gate")
            c.send({"id": "m", "type": "state", "session": "k", "data": {"op": "save", "v": 1, "gate": gate}})
            wait_for(lambda: os.path.exists(gate + ".saved"), what="the message running")
            a = admin(c2, "pool.session.delete", session="k")
            self.assertEqual(a["error"]["code"], "session_busy", a)
            open(gate, "w").close()
            self.assertTrue(c.recv()["ok"])
            self.assertTrue(admin(c2, "pool.session.delete", session="k")["result"]["deleted"])

    def test_two_pools_keep_one_key_apart_and_store_none_keeps_nothing(self):
        pools = {"a": {"agent": SYNC, "sessions": True, "workerModel": "sync"},
                 "b": {"agent": SYNC, "sessions": True, "workerModel": "sync"},
                 "n": {"agent": SYNC, "sessions": True, "workerModel": "sync", "sessionStore": "none"}}
        with Server(agent=SYNC, workers=1, config={"pools": pools}) as s, s.client() as c:
            self.assertEqual(c.request("state", {"op": "append", "v": "A"}, session="k", pool="a")["result"], 1)
            self.assertEqual(c.request("state", {"op": "append", "v": "B"}, session="k", pool="b")["result"], 1)
            self.assertEqual(c.request("state", {"op": "get"}, session="k", pool="a")["result"], {"log": ["A"]})
            self.assertEqual(c.request("state", {"op": "get"}, session="k", pool="b")["result"], {"log": ["B"]})
            self.assertIsNone(c.request("state", {"op": "get"}, session="k", pool="n")["result"])


if __name__ == "__main__":
    main()
