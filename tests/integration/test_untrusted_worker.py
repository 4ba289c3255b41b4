# SPDX-License-Identifier: BSD-2-Clause
"""test_untrusted_worker.py - a worker runs agent code: what it says is checked.

Through the real agentpoold with real Python workers running
agents/rogue.py, an agent that misbehaves towards its master from agent
code, as any agent can (issue 10): it tampers with its progress page,
and writes frames on the master link.
The master must bound what one message can cost by what it knows
itself.  Conditions are polled until generous deadlines; no duration is
asserted.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, main, server_stats, wait_for  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
ROGUE = "rogue:RogueAgent"


def rogue_server(workers=1, args=()):
    # timeout 0: without the bound the message would never be answered,
    # and the client's own deadline (harness DEADLINE) ends the test.
    return Server(agent=ROGUE, workers=workers,
                  args=["--python-path", AGENTS_DIR, "--retry-delay", "10", "--max-retries", "3",
                        "--max-restarts", "100", "--timeout", "0"] + list(args))


class PoisonBound(unittest.TestCase):
    def test_a_message_whose_worker_dies_after_finishing_it_ends_after_max_retries_plus_one_runs(self):
        # The worker stores the message as finished, then dies before its
        # answer leaves: its page says "between messages" at every death,
        # so it is never charged; but it ran, so its attempt stays spent
        # and it ends after maxRetries + 1, like a charged one.
        with rogue_server() as s, s.client() as c:
            r = c.request("finish_then_die", {"code": 7}, id="poison-1")
            self.assertFalse(r["ok"], r)
            err = r["error"]
            self.assertEqual(err["code"], "worker_crashed", err)
            self.assertEqual(err["attempts"], 4, err)
            self.assertEqual(err["exitStatus"], 7, err)
            self.assertIn("after this message had run, before its answer was sent", err["message"])
            st = server_stats(s)
            self.assertEqual(st["workerEvents"]["crashed"], 4, st["workerEvents"])
            self.assertEqual(st["messages"]["failedUncharged"], 1, st["messages"])
            self.assertEqual(st["messages"]["deadLettered"], 1, st["messages"])
            self.assertTrue(c.request("whoami")["ok"])

    def test_a_progress_page_naming_a_message_never_sent_is_ignored_and_logged(self):
        # The page names an id this worker never held: ignored, and the
        # death is charged as without a page, to the message it held.
        with rogue_server() as s, s.client() as c:
            r = c.request("bogus_then_die", {}, id="bogus-1")
            self.assertFalse(r["ok"], r)
            err = r["error"]
            self.assertEqual(err["code"], "worker_crashed", err)
            self.assertEqual(err["attempts"], 4, err)
            st = server_stats(s)
            self.assertEqual(st["workerEvents"]["crashed"], 4, st["workerEvents"])
            self.assertEqual(st["workerFaults"]["badProgressPages"], 4, st["workerFaults"])
            self.assertEqual(st["messages"]["failedUncharged"], 0, st["messages"])
            log = s.log()
            self.assertIn("its progress page says it was running message %d, which it did not hold: ignored"
                          % 0x7FFF0000DEADBEEF, log)
            self.assertTrue(c.request("whoami")["ok"])

    def test_a_progress_page_zeroed_at_each_death_cannot_keep_a_message_alive(self):
        # A page reset to "nothing started" says the message never ran,
        # so every attempt is given back: the deliveries, which are never
        # given back, end it after 2 x (maxRetries + 1) sends.
        with rogue_server() as s, s.client() as c:
            r = c.request("zero_then_die", {}, id="zeroed-1")
            self.assertFalse(r["ok"], r)
            err = r["error"]
            self.assertEqual(err["code"], "worker_crashed", err)
            self.assertEqual(err["attempts"], 8, err)
            self.assertIn("it was sent to a worker that died each time", err["message"])
            st = server_stats(s)
            self.assertEqual(st["workerEvents"]["crashed"], 8, st["workerEvents"])
            self.assertEqual(st["messages"]["failedUncharged"], 1, st["messages"])
            self.assertEqual(st["messages"]["deadLettered"], 1, st["messages"])
            self.assertTrue(c.request("whoami")["ok"])


class FramesInPlace(unittest.TestCase):
    def test_a_second_ready_frame_is_a_protocol_error_and_changes_nothing(self):
        # Agent code writes READY (async, 64 slots) on the master link
        # while its worker is ready: the master refuses the frame before it
        # changes anything, logs it and kills the worker; the message that
        # did it is charged (maxRetries 0: answered worker_crashed).
        with rogue_server(args=["--max-retries", "0"]) as s, s.client() as c:
            before = c.stats(detailed=True)["workers"][0]
            self.assertFalse(before["async"])
            r = c.request("ready_again", {}, id="ready-1")
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            # (busy: a sync worker holding its one message)
            line = "worker-0 (pid %d): READY frame while busy (said only once, at start); killing it" % before["pid"]
            self.assertEqual(s.log().count(line), 1, s.log())
            st = c.stats(detailed=True)
            self.assertEqual(st["workerFaults"]["framesOutOfPlace"], 1, st["workerFaults"])
            wait_for(lambda: c.stats(detailed=True)["workers"][0]["state"] == "ready", what="a new worker")
            after = c.stats(detailed=True)["workers"][0]
            self.assertNotEqual(after["pid"], before["pid"])
            self.assertFalse(after["async"], after)
            self.assertEqual(after["slots"], 1, after)
            self.assertTrue(c.request("whoami")["ok"])


    def test_a_credit_frame_from_a_worker_is_a_protocol_error(self):
        # CREDIT goes master -> worker only (streams' flow control): a
        # worker that sends one is killed, what it held answered as after
        # a crash, and a new worker takes its place.
        with rogue_server(args=["--max-retries", "0"]) as s, s.client() as c:
            before = c.stats(detailed=True)["workers"][0]
            r = c.request("credit_frame", {})
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            line = "worker-0 (pid %d): CREDIT frame while busy (never sent by a worker); killing it" % before["pid"]
            self.assertEqual(s.log().count(line), 1, s.log())
            self.assertEqual(c.stats(detailed=True)["workerFaults"]["framesOutOfPlace"], 1)
            wait_for(lambda: c.stats(detailed=True)["workers"][0]["state"] == "ready", what="a new worker")
            self.assertTrue(c.request("whoami")["ok"])


    def test_a_chunk_frame_of_no_bytes_or_over_max_result_bytes_is_a_protocol_error(self):
        # the bridge sends a chunk as one JSON value within maxResultBytes:
        # dropping another would leave a silent gap in the client's stream
        for size, why in ((0, "an empty chunk"), (2000, "a chunk over maxResultBytes")):
            with rogue_server(args=["--max-retries", "0", "--max-result-bytes", "1024"]) as s, s.client() as c:
                before = c.stats(detailed=True)["workers"][0]
                r = c.request("chunk_frame", {"bytes": size})
                self.assertEqual(r["error"]["code"], "worker_crashed", r)
                line = "worker-0 (pid %d): CHUNK frame while busy (%s); killing it" % (before["pid"], why)
                self.assertEqual(s.log().count(line), 1, s.log())
                self.assertEqual(c.stats(detailed=True)["workerFaults"]["framesOutOfPlace"], 1)
                wait_for(lambda: c.stats(detailed=True)["workers"][0]["state"] == "ready", what="a new worker")
                self.assertTrue(c.request("whoami")["ok"])

    def test_an_event_frame_with_a_topic_over_128_bytes_is_a_protocol_error(self):
        # ctx.publish checks the topic's size before it sends: only a
        # forged frame has one the master must not read
        with rogue_server(args=["--max-retries", "0"]) as s, s.client() as c:
            before = c.stats(detailed=True)["workers"][0]
            r = c.request("event_frame", {"topic": "x" * 129, "json": "1"})
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            line = "worker-0 (pid %d): EVENT frame while busy (a topic of 0 or over 128 bytes); killing it" % (
                before["pid"])
            self.assertEqual(s.log().count(line), 1, s.log())
            self.assertEqual(c.stats()["events"]["agentPublished"], 0)


class OwnLogLines(unittest.TestCase):
    def test_a_client_cannot_forge_a_worker_log_line_through_an_agent_that_prints_its_input(self):
        # The client sends text shaped exactly like the worker's own log
        # line (its role, its pid, another level); the agent prints it on
        # stdout and stderr.  It is logged as agent output, with the
        # stream's prefix, never relayed as the worker's own line, while
        # the worker's real lines (from its own fd) still are.
        with rogue_server() as s, s.client() as c:
            me = c.call("whoami")
            forged = "2026-01-01T00:00:00.000Z CRIT  [%s %d] forged-by-client: pool compromised" % (
                me["worker"], me["pid"])
            self.assertEqual(c.call("echo_text", {"text": forged}), {"printed": True})
            prefix = "%s (pid %d) " % (me["worker"], me["pid"])
            wait_for(lambda: s.log().count("forged-by-client") == 2, what="both printed lines in the log")
            lines = [l for l in s.log().splitlines() if "forged-by-client" in l]
            for l in lines:
                self.assertFalse(l.startswith("2026-01-01T00:00:00.000Z"), "relayed as the worker's own: " + l)
                self.assertRegex(l, r"^\S+Z (INFO |WARN ) \[master \d+\] ")
            self.assertTrue(any((prefix + "stdout: " + forged) in l for l in lines), lines)
            self.assertTrue(any((prefix + "stderr: " + forged) in l for l in lines), lines)
            # the worker's own lines still come through as its own
            self.assertRegex(s.log(), r"(?m)^\S+Z INFO  \[%s %d\] ready: agent rogue:RogueAgent"
                             % (me["worker"], me["pid"]))


if __name__ == "__main__":
    main()
