# SPDX-License-Identifier: BSD-2-Clause
"""test_checkpoints.py - ctx.checkpoint, ctx.resume and the "resume" member.

Through the real agentpoold with real Python workers running
agents/ckptagent.py in the sync, async and gevent models: a handler
checkpoints its steps and its worker is killed with SIGKILL mid-message;
the retry sees the last checkpoint as ctx.resume and goes on from there.
ctx.resume (and ctx.session) are None for an ordinary first attempt; a
checkpoint over maxCheckpointBytes raises ValueError in the handler, one
that is not JSON TypeError.  A message that dies for good is dead-lettered
with its last checkpoint, and `agentpoolctl dlq replay` sends it back as
"resume", so the replay resumes.  A request's "resume" over
maxCheckpointBytes is bad_request.  A CHECKPOINT frame that agent code
forges over the limit gets its worker killed.  Conditions are polled until
generous deadlines; no duration is asserted.
"""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLCTL, SRCDIR, Server, greenlet_supported, main, server_stats,  # noqa: E402
                     skip_without_greenlet_support, wait_for)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
MODELS = {"sync": ("ckptagent:Sync", "sync"), "async": ("ckptagent:Async", "async"),
          "gevent": ("ckptagent:Gevent", "gevent")}


def ckpt_server(model="sync", workers=1, args=()):
    agent, wm = MODELS[model]
    return Server(agent=agent, workers=workers,
                  args=["--python-path", AGENTS_DIR, "--worker-model", wm, "--retry-delay", "10",
                        "--max-restarts", "100", "--timeout", "0"] + list(args))


def dead_letters(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


class Resume(unittest.TestCase):
    def kill_mid_message(self, model):
        """Steps 0..5 checkpointed one by one; SIGKILL while step 3 runs:
        the retry starts at step 4 with ctx.resume == {"step": 3}."""
        with ckpt_server(model) as s, s.client() as c:
            marker = os.path.join(s.tmp.name, "running")
            c.send({"id": "k", "type": "steps", "data": {"n": 6, "stop_at": 3, "dir": s.tmp.name}})
            wait_for(lambda: os.path.exists(marker), what="the handler to reach step 3")
            with open(marker) as f:
                pid = int(f.read())
            os.kill(pid, signal.SIGKILL)
            r = c.recv()
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["result"], {"resume": {"step": 3}, "attempt": 2, "ran": [4, 5]})
            # a new message starts afresh: no resume, no session
            shown = c.call("show")
            self.assertEqual((shown["resume"], shown["session"], shown["attempt"]), (None, None, 1), shown)
            self.assertNotEqual(shown["pid"], pid)

    def test_sync_retry_after_kill_9_resumes_from_the_last_checkpoint(self):
        self.kill_mid_message("sync")

    def test_async_retry_after_kill_9_resumes_from_the_last_checkpoint(self):
        self.kill_mid_message("async")

    @skip_without_greenlet_support
    def test_gevent_retry_after_kill_9_resumes_from_the_last_checkpoint(self):
        self.kill_mid_message("gevent")

    def test_first_attempts_see_no_resume_and_no_session_in_every_model(self):
        for model in ("sync", "async", "gevent") if greenlet_supported() else ("sync", "async"):
            with self.subTest(model=model), ckpt_server(model) as s, s.client() as c:
                shown = c.call("show")
                self.assertEqual(shown["resume"], None, shown)
                self.assertEqual(shown["session"], None, shown)
                self.assertEqual(shown["session_type"], "NoneType", shown)
                self.assertEqual(shown["attempt"], 1, shown)

    def test_a_request_resume_member_is_the_first_attempts_ctx_resume(self):
        with ckpt_server("async") as s, s.client() as c:
            r = c.request("show", None, resume={"step": 7, "big": 12345678901234567890})
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["result"]["resume"], {"step": 7, "big": 12345678901234567890})
            self.assertEqual(r["result"]["attempt"], 1)
            r = c.request("steps", {"n": 3, "stop_at": 99, "dir": s.tmp.name}, resume={"step": 0})
            self.assertEqual(r["result"], {"resume": {"step": 0}, "attempt": 1, "ran": [1, 2]})


class Limits(unittest.TestCase):
    def check_limits(self, model):
        with ckpt_server(model, args=["--max-checkpoint-bytes", "1024"]) as s, s.client() as c:
            self.assertEqual(c.call("checkpoint", {"bytes": 1024}), {"ok": True})
            self.assertEqual(c.call("checkpoint", {"bytes": 1025}),
                             {"error": "ValueError", "message": "checkpoint too large (1025 bytes, limit 1024)"})
            r = c.call("checkpoint", {"set": True})
            self.assertEqual(r["error"], "TypeError", r)
            self.assertEqual(r["message"], "checkpoint is not JSON serializable: set at $", r)
            self.assertEqual(c.call("checkpoint", {"value": None}), {"ok": True})
            st = server_stats(s)
            self.assertEqual(st["restarts"]["crashed"], 0, st)

    def test_sync_checkpoint_over_the_limit_raises_value_error(self):
        self.check_limits("sync")

    def test_async_checkpoint_over_the_limit_raises_value_error(self):
        self.check_limits("async")

    @skip_without_greenlet_support
    def test_gevent_checkpoint_over_the_limit_raises_value_error(self):
        self.check_limits("gevent")

    def test_a_resume_member_over_max_checkpoint_bytes_is_bad_request(self):
        with ckpt_server("sync", args=["--max-checkpoint-bytes", "64"]) as s, s.client() as c:
            r = c.request("show", None, resume="x" * 62)  # 64 bytes with its quotes
            self.assertTrue(r["ok"], r)
            r = c.request("show", None, resume="x" * 63)
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"], {"code": "bad_request",
                                          "message": "resume longer than maxCheckpointBytes (65 bytes, limit 64)"})

    def test_a_forged_checkpoint_frame_over_the_limit_gets_the_worker_killed(self):
        with ckpt_server("sync", args=["--max-checkpoint-bytes", "1024"]) as s, s.client() as c:
            pid = c.call("show")["pid"]
            r = c.request("forge_checkpoint", {"bytes": 2048})
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            self.assertEqual(r["error"]["signal"], 9, r)
            self.assertIn("(pid %d): CHECKPOINT frame while busy (a checkpoint over maxCheckpointBytes); killing it"
                          % pid, s.log())
            st = server_stats(s)
            # each attempt forged one, and was killed for it
            self.assertEqual(st["workerFaults"]["framesOutOfPlace"], r["error"]["attempts"], st["workerFaults"])
            self.assertNotEqual(c.call("show")["pid"], pid)

    def test_a_forged_checkpoint_frame_within_the_limit_for_no_message_is_dropped(self):
        with ckpt_server("sync", args=["--max-checkpoint-bytes", "1024"]) as s, s.client() as c:
            pid = c.call("show")["pid"]
            self.assertEqual(c.call("forge_checkpoint", {"bytes": 1000}), {"pid": pid})
            self.assertEqual(c.call("show")["pid"], pid)


class DeadLetters(unittest.TestCase):
    def test_a_dead_letter_keeps_its_checkpoint_and_replay_resumes_from_it(self):
        srv = ckpt_server("sync", args=["--max-retries", "1"])
        dlq = os.path.join(srv.tmp.name, "dead.jsonl")
        srv.args += ["--dead-letter-file", dlq]
        with srv as s:
            with s.client() as c:
                r = c.request("lives", {"after": 2}, id="poison")
                self.assertEqual(r["error"]["code"], "worker_crashed", r)
                self.assertEqual(r["error"]["attempts"], 2, r)
            recs = dead_letters(dlq)
            self.assertEqual(len(recs), 1, recs)
            self.assertEqual(recs[0]["checkpoint"], {"seen": 2}, recs[0])
            self.assertEqual(recs[0]["id"], "poison")
            with s.client() as c:
                listed = c.call("pool.dlq.list")["records"]
            self.assertEqual(listed[0]["checkpoint"], {"seen": 2}, listed)
            r = subprocess.run([AGENTPOOLCTL, "--socket", s.path, "dlq", "replay"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(r.stdout, "replayed 1: 1 ok (removed), 0 failed (kept)\n")
            self.assertEqual(dead_letters(dlq), [])
            # the replay's answer went to agentpoolctl; its effect shows in a
            # new dead letter when it fails again: replay a second poison
            with s.client() as c:
                r = c.request("lives", {"after": 5}, id="again")
                self.assertEqual(r["error"]["code"], "worker_crashed", r)
            self.assertEqual(dead_letters(dlq)[0]["checkpoint"], {"seen": 2})
            r = subprocess.run([AGENTPOOLCTL, "--socket", s.path, "dlq", "replay"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            recs = dead_letters(dlq)
            # the replay started from {"seen": 2}: its two attempts saw 3 and 4
            self.assertEqual([(x["id"], x["checkpoint"]) for x in recs],
                             [("again", {"seen": 2}), ("replay-2", {"seen": 4})], recs)

    def test_a_message_dead_lettered_without_a_checkpoint_has_no_checkpoint_member(self):
        srv = ckpt_server("sync", args=["--max-retries", "0"])
        dlq = os.path.join(srv.tmp.name, "dead.jsonl")
        srv.args += ["--dead-letter-file", dlq]
        with srv as s, s.client() as c:
            r = c.request("forge_checkpoint", {"bytes": 1 << 20}, id="no-ckpt")  # killed before any checkpoint
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            recs = dead_letters(dlq)
            self.assertEqual(len(recs), 1, recs)
            self.assertNotIn("checkpoint", recs[0])


if __name__ == "__main__":
    main()
