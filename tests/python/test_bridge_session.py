# SPDX-License-Identifier: BSD-2-Clause
"""test_bridge_session.py - ctx.session and ctx.resume in the real worker.

The master does not send session state yet (its flow is another module's
work), so this test plays the master itself through apframe.py: it
starts the real agentpool-worker with one end of a socketpair on fd 3, as
agentpoold does, runs tests/integration/agents/ckptagent.py in the sync,
async and gevent models, and speaks the frames of include/ap_frame.h.  It checks the bridge's
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
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import apframe as A  # noqa: E402

SRCDIR = os.environ.get("AP_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
STATE_SAVE = A.STATE_SAVE


def greenlet_supported():
    """False in a sanitizer build (greenlet's stack switching is not
    AddressSanitizer-aware: tests/integration/harness.py)."""
    mk = os.path.join(A.build_dir(), "Makefile")
    try:
        with open(mk) as f:
            return "-fsanitize=address" not in f.read()
    except OSError:
        return True


class FakeMaster:
    """One real worker (apframe.Worker) and requests with the session ext."""

    def __init__(self, agent, model, args=()):
        self.w = A.Worker(agent, concurrency=4, python_path=[AGENTS_DIR], args=["--model", model] + list(args))
        self.w.start()
        self.w.wait_ready()

    def log(self):
        return self.w.log()

    def close(self):
        self.w.send_frame(A.STOP)
        self.w.wait_exit()
        self.w.close()

    def request(self, type_, data=None, state=None, resume=None):
        """Sends one REQUEST (state / resume: JSON text, None for no such
        flag) and returns every frame for it up to its RESULT or ERROR, as
        (kind name, flags, payload text)."""
        fid = self.w.new_id()
        d = b"" if data is None else json.dumps(data).encode()
        self.w.send(A.request_ext(fid, type_, d, state, resume))
        got = []
        while True:
            f = self.w.recv_match(lambda f: f.id == fid)
            got.append((A.KIND_NAMES.get(f.kind, f.kind), f.flags, f.payload.decode()))
            if f.kind in (A.RESULT, A.ERROR):
                return got


MODELS = [("ckptagent:Sync", "sync"), ("ckptagent:Async", "async")]
if greenlet_supported():
    MODELS.append(("ckptagent:Gevent", "gevent"))


class BridgeSession(unittest.TestCase):
    def each_model(self, check, args=()):
        for agent, model in MODELS:
            with self.subTest(model=model):
                w = FakeMaster(agent, model, args)
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


    def test_a_malformed_ext_is_refused_and_the_worker_goes_on(self):
        import struct

        def check(fm, model):
            w = fm.w
            # state and resume lengths past the payload
            body = struct.pack("<QII", 0, 1, 0) + struct.pack("<II", 100, 5) + b"t{}"
            w.send(A.encode(A.REQUEST, 91, body, aux=1, flags=A.REQ_META | A.REQ_SESSION | A.REQ_RESUME))
            err = w.recv_id(91).json()
            self.assertEqual(err, {"code": "agent_error", "exception": "ValueError", "message":
                                   "malformed request frame: meta and ext (24 bytes), type length 1, id length 0, "
                                   "state 100 and resume 5 bytes exceed payload length 27"})
            # an ext flag without the meta
            w.send(A.encode(A.REQUEST, 92, b"t{}", aux=1, flags=A.REQ_SESSION))
            err = w.recv_id(92).json()
            self.assertEqual(err["message"], "malformed request frame: session or resume flag without meta")
            self.assertEqual([g[0] for g in fm.request("show")], ["RESULT"])
        self.each_model(check)


if __name__ == "__main__":
    unittest.main(verbosity=2)
