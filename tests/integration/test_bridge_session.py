# SPDX-License-Identifier: BSD-2-Clause
"""test_bridge_session.py - ctx.session and ctx.resume in the real worker.

The master does not send session state yet (its flow is another module's
work), so this test plays the master itself: it starts the real
agentpool-worker with one end of a socketpair on fd 3, as agentpoold
does, runs agents/ckptagent.py in the sync, async and gevent models,
and speaks the frames of include/ap_frame.h.  It checks the bridge's
side of the session wire: a REQUEST with AP_FRAME_REQ_SESSION and/or
AP_FRAME_REQ_RESUME and its ext is decoded into ctx.session (a dict,
class Session) and ctx.resume; a handler that changed its state sends one
STATE frame before its RESULT (after a stream's chunks), none when the
state is unchanged, none after an exception; a state over
--max-session-bytes or not JSON is answered agent_error with no STATE;
session.save() sends a STATE with AP_FRAME_STATE_SAVE at once.  Frames are
read until the answer comes (a generous deadline); no duration is
asserted.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILDDIR, DEADLINE, SRCDIR, greenlet_supported, main  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
WORKER = os.path.join(BUILDDIR, "agentpool-worker")

READY, START_FAILED, REQUEST, RESULT, ERROR, STOP = 1, 2, 3, 4, 5, 6
CHUNK, STATE, CHECKPOINT = 10, 13, 14
REQ_META, REQ_SESSION, REQ_RESUME = 0x01, 0x02, 0x04
STATE_SAVE = 0x01
HDR = struct.Struct("<IBBHQ")


class FakeMaster:
    """One real worker process and the master's end of its link."""

    def __init__(self, agent, model, tmp, args=()):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.logpath = os.path.join(tmp, "worker.log")
        self.logf = open(self.logpath, "wb")
        fd = theirs.fileno()
        self.proc = subprocess.Popen(
            [WORKER, "--id", "worker-0", "--agent", agent, "--model", model, "--concurrency", "4",
             "--python-path", AGENTS_DIR] + list(args),
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.dup2(fd, 3), close_fds=False)
        theirs.close()
        self.sock = ours
        self.sock.settimeout(DEADLINE)
        self.buf = b""
        kind, _, _, payload = self.frame()
        assert kind == READY, (kind, payload, self.log())
        self.next_id = 1 << 32

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        try:
            self.sock.sendall(HDR.pack(0, STOP, 0, 0, 0))
            self.proc.wait(DEADLINE)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.sock.close()
        self.logf.close()

    def frame(self):
        """(kind, flags, id, payload) of the next frame."""
        while True:
            if len(self.buf) >= HDR.size:
                n, kind, flags, _, fid = HDR.unpack_from(self.buf)
                if len(self.buf) >= HDR.size + n:
                    payload = self.buf[HDR.size:HDR.size + n]
                    self.buf = self.buf[HDR.size + n:]
                    return kind, flags, fid, payload
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the worker closed the link:\n" + self.log())
            self.buf += chunk

    def request(self, type_, data=None, state=None, resume=None, flags=0):
        """Sends one REQUEST (state / resume: JSON text, or None for no
        such flag) and returns every frame for it up to its RESULT or
        ERROR, as (kind name, flags, payload text)."""
        fid = self.next_id
        self.next_id += 1
        t = type_.encode()
        d = b"" if data is None else json.dumps(data).encode()
        st = b"" if state is None else state.encode()
        rs = b"" if resume is None else resume.encode()
        flags |= REQ_META | (REQ_SESSION if state is not None else 0) | (REQ_RESUME if resume is not None else 0)
        body = struct.pack("<QII", 0, 1, 0)
        if flags & (REQ_SESSION | REQ_RESUME):
            body += struct.pack("<II", len(st), len(rs))
        body += t + st + rs + d
        self.sock.sendall(HDR.pack(len(body), REQUEST, flags, len(t), fid) + body)
        got = []
        names = {RESULT: "RESULT", ERROR: "ERROR", CHUNK: "CHUNK", STATE: "STATE", CHECKPOINT: "CHECKPOINT"}
        while True:
            kind, fl, rid, payload = self.frame()
            assert rid == fid, (kind, rid, fid, payload)
            got.append((names.get(kind, kind), fl, payload.decode()))
            if kind in (RESULT, ERROR):
                return got


MODELS = [("ckptagent:Sync", "sync"), ("ckptagent:Async", "async")]
if greenlet_supported():
    MODELS.append(("ckptagent:Gevent", "gevent"))


class BridgeSession(unittest.TestCase):
    def each_model(self, check, args=()):
        import tempfile
        for agent, model in MODELS:
            with self.subTest(model=model), tempfile.TemporaryDirectory(prefix="aptest-") as tmp:
                w = FakeMaster(agent, model, tmp, args)
                try:
                    check(w, model)
                finally:
                    w.close()

    def test_a_changed_state_is_sent_once_before_the_result(self):
        def check(w, model):
            got = w.request("session_set", {"set": {"b": 2}}, state='{"a":1}')
            self.assertEqual(got, [("STATE", 0, '{"a":1,"b":2}'), ("RESULT", 0, '["a","b"]')])
        self.each_model(check)

    def test_a_state_only_read_sends_nothing_back_and_is_a_session_dict(self):
        def check(w, model):
            got = w.request("show", state='{"a":[1,{"b":null}]}')
            self.assertEqual([g[0] for g in got], ["RESULT"], got)
            res = json.loads(got[0][2])
            self.assertEqual(res["session"], {"a": [1, {"b": None}]})
            self.assertEqual(res["session_type"], "Session")
            self.assertIsNone(res["resume"])
            # a new session's "{}" unchanged: nothing either
            self.assertEqual([g[0] for g in w.request("show", state="{}")], ["RESULT"])
        self.each_model(check)

    def test_no_state_after_an_exception(self):
        def check(w, model):
            got = w.request("session_raise", state='{"a":1}')
            self.assertEqual(len(got), 1, got)
            self.assertEqual(got[0][0], "ERROR")
            err = json.loads(got[0][2])
            self.assertEqual(err, {"code": "agent_error", "message": "failed after changing the state",
                                   "exception": "RuntimeError"})
            # the worker goes on, and forgot that message's session
            self.assertEqual([g[0] for g in w.request("show")], ["RESULT"])
        self.each_model(check)

    def test_a_state_over_max_session_bytes_is_agent_error_without_state(self):
        def check(w, model):
            got = w.request("session_big", {"bytes": 1025}, state="{}")
            self.assertEqual(got, [("ERROR", 0, json.dumps(
                {"code": "agent_error", "message": "session state too large (1025 bytes, limit 1024)"},
                separators=(",", ":")))])
            got = w.request("session_big", {"bytes": 1024}, state="{}")
            self.assertEqual([(k, len(p)) for k, _, p in got], [("STATE", 1024), ("RESULT", 4)], got)
            self.assertIn("session state too large (1025 bytes, limit 1024); answered agent_error", w.log())
        self.each_model(check, args=["--max-session-bytes", "1024"])

    def test_a_state_that_is_not_json_is_agent_error_type_error(self):
        def check(w, model):
            got = w.request("session_bad", state="{}")
            self.assertEqual(len(got), 1, got)
            err = json.loads(got[0][2])
            self.assertEqual(err, {"code": "agent_error", "exception": "TypeError",
                                   "message": "session state is not JSON serializable: set at $.bad"})
        self.each_model(check)

    def test_save_sends_the_state_at_once_then_the_end_sends_what_changed_after(self):
        def check(w, model):
            got = w.request("session_save", {"set": {"x": 1}, "then": {"y": 2}}, state="{}")
            self.assertEqual(got, [("STATE", STATE_SAVE, '{"x":1}'), ("STATE", 0, '{"x":1,"y":2}'),
                                   ("RESULT", 0, '{"error":null}')])
            # saved and unchanged since: the end sends nothing more
            got = w.request("session_save", {"set": {"x": 1}}, state="{}")
            self.assertEqual(got, [("STATE", STATE_SAVE, '{"x":1}'), ("RESULT", 0, '{"error":null}')])
            # too large: ValueError in the handler, nothing sent for it
            got = w.request("session_save", {"bytes": 2000, "then": {"z": 3}}, state='{"a":1}')
            self.assertEqual(got[0], ("STATE", 0, '{"a":1,"z":3}'), got)
            # {"a":1,"big":"x...x"} is 2016 bytes
            self.assertEqual(json.loads(got[1][2]), {"error": {
                "error": "ValueError", "message": "session state too large (2016 bytes, limit 1024)"}})
        self.each_model(check, args=["--max-session-bytes", "1024"])

    def test_a_streamed_handler_sends_its_state_after_the_chunks_before_the_result(self):
        def check(w, model):
            if model == "async":
                return
            got = w.request("session_stream", state="{}")
            self.assertEqual(got, [("CHUNK", 0, "0"), ("CHUNK", 0, "1"), ("STATE", 0, '{"n":1}'),
                                   ("RESULT", 1, '"done"')])
        self.each_model(check)

    def test_resume_is_decoded_into_ctx_resume_with_or_without_a_session(self):
        def check(w, model):
            got = w.request("show", resume='{"step":3,"big":12345678901234567890}')
            res = json.loads(got[-1][2])
            self.assertEqual(res["resume"], {"step": 3, "big": 12345678901234567890})
            self.assertIsNone(res["session"])
            got = w.request("show", state='{"k":"v"}', resume="[1,2]")
            res = json.loads(got[-1][2])
            self.assertEqual((res["session"], res["resume"]), ({"k": "v"}, [1, 2]))
            # and a checkpoint goes out as a CHECKPOINT frame for the message
            got = w.request("checkpoint", {"value": {"at": 1}})
            self.assertEqual(got, [("CHECKPOINT", 0, '{"at":1}'), ("RESULT", 0, '{"ok":true}')])
        self.each_model(check)

    def test_a_state_that_is_not_an_object_is_refused(self):
        def check(w, model):
            got = w.request("show", state="[1]")
            err = json.loads(got[-1][2])
            self.assertEqual(err["code"], "agent_error", err)
            self.assertEqual(err["message"],
                             "the message's session state: the session state is list, not a JSON object")
            got = w.request("show", state="{nope")
            err = json.loads(got[-1][2])
            self.assertTrue(err["message"].startswith("the message's session state: invalid JSON"), err)
            self.assertEqual([g[0] for g in w.request("show")], ["RESULT"])
        self.each_model(check)


if __name__ == "__main__":
    main()
