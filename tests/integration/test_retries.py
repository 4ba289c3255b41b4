# SPDX-License-Identifier: BSD-2-Clause
"""test_retries.py - a message whose worker dies is retried, then dead-lettered.

Through the real agentpoold with real Python workers (agents/life.py):
a message that kills its worker once is sent again to a new process and
succeeds; "retry": false and spent retries answer worker_crashed with
attempts and the last exit status, and put the message, with its original
data bytes, in the dead-letter file (0600), which pool.dlq.* and pool.stats
show; an unwritable dead-letter file is loud but not fatal; an agent
exception is an agent_error, never a retry; and a retried message goes
ahead of the queue.  Conditions are polled until generous deadlines; no
duration is asserted.
"""
import json
import os
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Gate, Server, main, pid_gone, server_stats, wait_stats  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
LIFE = "life:LifeAgent"
FAST_RETRY = ["--retry-delay", "10"]


def life_server(workers=1, args=(), env=None):
    return Server(agent=LIFE, workers=workers, env=env,
                  args=["--python-path", AGENTS_DIR] + FAST_RETRY + list(args))


def read_pid(path):
    with open(path) as f:
        return int(f.read())


def dead_letters(path):
    """The dead-letter file as (raw lines, parsed records)."""
    with open(path, "rb") as f:
        lines = [l for l in f.read().split(b"\n") if l]
    return lines, [json.loads(l) for l in lines]


class Retries(unittest.TestCase):
    def test_message_whose_worker_died_is_retried_on_a_new_process_and_succeeds(self):
        with life_server(workers=2) as s, s.client() as c:
            marker = os.path.join(s.tmp.name, "crashed-once")
            r = c.request("crash_once", {"marker": marker, "seq": 1})
            self.assertTrue(r["ok"], r)
            crashed_pid = read_pid(marker)
            self.assertNotEqual(r["result"]["pid"], crashed_pid, "the retry ran in the process that died")
            self.assertTrue(pid_gone(crashed_pid))
            st = server_stats(s)
            self.assertEqual(st["messages"]["retried"], 1, st["messages"])
            self.assertEqual(st["workerEvents"]["crashed"], 1, st["workerEvents"])
            self.assertEqual(st["messages"]["deadLettered"], 0)
            self.assertEqual(st["errors"]["worker_crashed"], 0)
            self.assertIn("will be retried", s.log())

    def test_retry_false_is_answered_worker_crashed_at_the_first_crash_and_dead_lettered(self):
        with life_server(workers=1) as s, s.client() as c:
            marker = os.path.join(s.tmp.name, "crashed-once")
            r = c.request("crash_once", {"marker": marker, "code": 3}, id="no-retry-1", retry=False)
            self.assertFalse(r["ok"], r)
            err = r["error"]
            self.assertEqual(err["code"], "worker_crashed", err)
            self.assertEqual(err["attempts"], 1, err)
            self.assertEqual(err["exitStatus"], 3, err)
            self.assertNotIn("signal", err)
            st = server_stats(s)
            self.assertEqual(st["messages"]["retried"], 0)
            self.assertEqual(st["messages"]["deadLettered"], 1)
            # the default dead-letter file sits next to the socket
            dlq = s.path + ".deadletter.jsonl"
            self.assertEqual(st["deadLetters"]["file"], dlq)
            _, recs = dead_letters(dlq)
            self.assertEqual([rec["id"] for rec in recs], ["no-retry-1"])
            self.assertEqual(recs[0]["attempts"], 1)
            self.assertEqual(len(recs[0]["failures"]), 1)
            self.assertEqual(recs[0]["failures"][0]["pid"], read_pid(marker))

    def test_poison_message_gets_worker_crashed_after_its_retries_and_one_dead_letter(self):
        big = "123456789012345678901234567890123456789"
        srv = life_server(workers=2, args=["--max-retries", "2"])
        dlq = os.path.join(srv.tmp.name, "dead.jsonl")
        srv.args += ["--dead-letter-file", dlq]
        with srv as s, s.client() as c:
            pidfile = os.path.join(s.tmp.name, "pid")
            data = '{"code": 7, "pidfile": "%s", "n": %s}' % (pidfile, big)
            c.send_raw(b'{"id": "poison-1", "type": "crash", "data": ' + data.encode() + b'}\n')
            r = c.recv()
            self.assertEqual(r["id"], "poison-1")
            self.assertFalse(r["ok"], r)
            err = r["error"]
            self.assertEqual(err["code"], "worker_crashed", err)
            self.assertEqual(err["attempts"], 3, err)
            self.assertEqual(err["exitStatus"], 7, err)

            lines, recs = dead_letters(dlq)
            self.assertEqual(len(recs), 1, lines)
            rec = recs[0]
            self.assertEqual(rec["id"], "poison-1")
            self.assertEqual(rec["type"], "crash")
            self.assertEqual(rec["attempts"], 3)
            # data is the request's bytes, not a re-serialisation: the big
            # integer keeps every digit
            self.assertIn(b'"n": ' + big.encode(), lines[0])
            self.assertEqual(rec["data"]["n"], int(big))
            self.assertEqual(len(rec["failures"]), 3, rec["failures"])
            pids = [f["pid"] for f in rec["failures"]]
            self.assertEqual(len(set(pids)), 3, "each attempt ran in a new process: %r" % pids)
            for f in rec["failures"]:
                self.assertIn(f["worker"], ("worker-0", "worker-1"))
                self.assertIn("exited with status 7", f["reason"])
            self.assertEqual(pids[-1], read_pid(pidfile))
            self.assertEqual(stat.S_IMODE(os.stat(dlq).st_mode), 0o600)

            st = server_stats(s)
            self.assertEqual(st["messages"]["retried"], 2)
            self.assertEqual(st["workerEvents"]["crashed"], 3)
            self.assertEqual(st["messages"]["deadLettered"], 1)
            self.assertEqual(st["deadLetters"]["file"], dlq)
            self.assertEqual(st["deadLetters"]["records"], 1)
            self.assertEqual(st["deadLetters"]["writeErrors"], 0)
            self.assertEqual(st["errors"]["worker_crashed"], 1)

            lst = c.call("pool.dlq.list", {"offset": 0, "limit": 10})
            self.assertEqual(lst["file"], dlq)
            self.assertEqual(lst["total"], 1)
            self.assertEqual(len(lst["records"]), 1)
            listed = lst["records"][0]
            self.assertEqual(listed["id"], "poison-1")
            self.assertEqual(listed["dlqId"], rec["dlqId"])
            self.assertEqual(listed["attempts"], 3)
            self.assertEqual(listed["data"]["n"], int(big))

            self.assertEqual(c.call("pool.dlq.remove", {"ids": [rec["dlqId"]]}), {"removed": 1})
            lst = c.call("pool.dlq.list")
            self.assertEqual((lst["total"], lst["records"]), (0, []))
            self.assertEqual(server_stats(s)["deadLetters"]["records"], 0)

    def test_unwritable_dead_letter_file_is_logged_counted_and_not_fatal(self):
        srv = life_server(workers=1)
        dlq = os.path.join(srv.tmp.name, "no-such-dir", "dead.jsonl")
        srv.args += ["--dead-letter-file", dlq]
        with srv as s, s.client() as c:
            self.assertEqual(c.call("echo", {"x": 1}), {"x": 1})
            r = c.request("crash", {"code": 4}, id="lost-1", retry=False)
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            self.assertEqual(r["error"]["attempts"], 1, r)
            self.assertEqual(r["error"]["exitStatus"], 4, r)
            st = wait_stats(s, lambda st: st["healthy"] == 1, what="the worker to be respawned")
            self.assertGreaterEqual(st["deadLetters"]["writeErrors"], 1, st["deadLetters"])
            self.assertEqual(st["messages"]["deadLettered"], 1)
            # loud: the lost message is logged as failed for good, and an
            # ERROR line naming the file follows it
            lines = s.log().splitlines()
            lost = [i for i, l in enumerate(lines) if '"lost-1"' in l and "failed for good" in l]
            self.assertEqual(len(lost), 1, s.log())
            self.assertTrue(any(" ERROR " in l and "DEAD LETTER" in l and dlq in l for l in lines[lost[0] + 1:]),
                            s.log())
            # the server still serves, and says why it cannot list dead letters
            self.assertEqual(c.call("echo", {"x": 2}), {"x": 2})
            r = c.request("pool.dlq.list")
            self.assertEqual(r["error"]["code"], "bad_request", r)
            self.assertIsNone(s.proc.poll())

    def test_agent_exception_is_agent_error_not_a_crash_and_not_retried(self):
        with life_server(workers=1) as s, s.client() as c:
            before = c.call("whoami")["pid"]
            r = c.request("raise", {"message": "nope"})
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "agent_error")
            self.assertEqual(r["error"]["exception"], "ValueError")
            self.assertEqual(c.call("whoami")["pid"], before)
            st = server_stats(s)
            self.assertEqual(st["messages"]["retried"], 0)
            self.assertEqual(st["workerEvents"]["crashed"], 0)
            self.assertEqual(st["workerEvents"]["spawned"], 1)
            self.assertEqual(st["messages"]["deadLettered"], 0)

    def test_retried_message_runs_ahead_of_queued_messages(self):
        # the respawned worker waits in on_start while this file exists, so
        # the retry is back in the queue before any worker can take a
        # message, whatever the machine's speed
        srv = life_server(workers=1)
        hold = os.path.join(srv.tmp.name, "hold-start")
        srv.env = {"AP_TEST_HOLD_START": hold}
        with srv as s, Gate(s.tmp.name) as gate:
            log = os.path.join(s.tmp.name, "order.log")
            marker = os.path.join(s.tmp.name, "crashed-once")
            c = s.client()
            try:
                reqs = [{"id": "g", "type": "gate", "data": {"file": gate.path, "seq": "g", "log": log}},
                        {"id": "a", "type": "crash_once", "data": {"marker": marker, "seq": "a", "log": log}}]
                reqs += [{"id": k, "type": "run", "data": {"seq": k, "log": log}} for k in ("b", "c", "d")]
                for r in reqs:
                    c.send(r)
                wait_stats(s, lambda st: st["queue"]["depth"] == 4, what="a, b, c, d queued behind g")
                with open(hold, "w"):
                    pass
                gate.release()
                self.assertEqual(c.recv()["id"], "g")
                # a crashed its worker; the new one is held in on_start; a
                # waits its retry delay, then goes back to the queue
                wait_stats(s, lambda st: st["messages"]["retried"] == 1 and st["messages"]["retryWaiting"] == 0
                           and st["queue"]["depth"] == 4, what="a back in the queue")
                os.unlink(hold)
                got = {}
                for _ in range(4):
                    r = c.recv()
                    got[r["id"]] = r
                self.assertTrue(all(r["ok"] for r in got.values()), got)
            finally:
                c.close()
            with open(log) as f:
                self.assertEqual(f.read().split(), ["g", "a", "b", "c", "d"])


if __name__ == "__main__":
    main()
