# SPDX-License-Identifier: BSD-2-Clause
"""Every pool an A2A server (docs/a2a.md): the Agent Card and the
JSON-RPC 2.0 endpoint on the HTTP front door, against the real server with
real Python workers (tests/integration/agents/a2aagent.py).

Proves: the card (the agent's own fields from its READY, the pool's
defaults when it has none or a bad one, capabilities, Cache-Control, ETag
and 304); SendMessage blocking and with returnImmediately (1.0) or
blocking false (0.3), then GetTask with historyLength; version
negotiation (no header: the 0.3 names and lower-case states; "1.0": the
1.0 names; "9.9": VersionNotSupported); CancelTask of a running task and
of a terminal one; task states from the pool's outcomes (agent_error,
worker_crashed, timeout -> FAILED with the error in the status message,
cancel -> CANCELED, queue_full -> REJECTED); SubscribeToTask (the Task
first, then its outcome; a terminal task refused; on a task waiting for
input, its next turn, or its expiry); tasks in a session store (a
restart keeps them; while they are read back, an unknown task is 503
with Retry-After, and a store that fails the reading is read again);
contextId as the pool's
session; SendStreamingMessage (1.0) and message/stream (0.3): the Task,
an artifact update per chunk, the result, the final status, a stream
ended by CancelTask; a caller that leaves does not end its task; a task
swept after a2aTaskTtl; ListTasks paging, newest first, and ownership by
API key; and each JSON-RPC error code served by a
real cause (-32700, -32600, -32601, -32602, -32603 a2aMaxTasks, -32001,
-32002, -32003, -32004, -32005, -32007, -32009).
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import greenlet_supported, main, wait_for  # noqa: E402
from test_http import HTTPServer, post  # noqa: E402

AGENT = "a2aagent:A2AAgent"


def pool(agent=AGENT, workers=1, **kw):
    return dict({"agent": agent, "minWorkers": workers, "maxWorkers": workers, "a2a": True, "maxRetries": 0}, **kw)


def msg(text, **kw):
    return dict({"role": "user", "messageId": "m-" + text[:20], "parts": [{"text": text}]}, **kw)


def msg03(text, **kw):
    return dict({"kind": "message", "role": "user", "messageId": "m-" + text[:20],
                 "parts": [{"kind": "text", "text": text}]}, **kw)


def rpc(conn, pool_name, method, params, version="1.0", key=None, rid=1):
    """One JSON-RPC call; returns the response object (asserting HTTP 200)."""
    headers = {}
    if version is not None:
        headers["A2A-Version"] = version
    if key:
        headers["Authorization"] = "Bearer " + key
    body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
    st, _, resp = post(conn, "/a2a/" + pool_name, body, headers)
    assert st == 200, (st, resp)
    return resp


def stream(conn, pool_name, method, params, version="1.0"):
    """A streaming call: returns the list of JSON-RPC responses of its
    server-sent events, read until the server ends the stream."""
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if version is not None:
        headers["A2A-Version"] = version
    body = {"jsonrpc": "2.0", "id": 9, "method": method, "params": params}
    conn.request("POST", "/a2a/" + pool_name, body=json.dumps(body).encode(), headers=headers)
    r = conn.getresponse()
    assert r.status == 200, r.status
    assert r.getheader("Content-Type") == "text/event-stream", r.getheader("Content-Type")
    text = r.read().decode()  # to the end of the stream: the server closes it at the terminal state
    out = []
    for block in text.split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            out.append(json.loads(block[6:]))
    return out


def err_code(resp):
    return resp.get("error", {}).get("code")


def rpc_loaded(conn, pool_name, method, params, key=None):
    """rpc, or None while the server answers 503 (tasks still being read
    back from its session store after a start)."""
    headers = {"A2A-Version": "1.0"}
    if key:
        headers["Authorization"] = "Bearer " + key
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    st, r, resp = post(conn, "/a2a/" + pool_name, body, headers)
    if st == 503 and r.getheader("Retry-After"):
        return None
    assert st == 200, (st, resp)
    return resp


def subscribe(conn, pool_name, task_id):
    """SubscribeToTask, its first event read: (response, first result);
    the response's read() has the rest, to the stream's end."""
    body = {"jsonrpc": "2.0", "id": 9, "method": "SubscribeToTask", "params": {"id": task_id}}
    conn.request("POST", "/a2a/" + pool_name, body=json.dumps(body).encode(),
                 headers={"A2A-Version": "1.0", "Content-Type": "application/json"})
    r = conn.getresponse()
    assert (r.status, r.getheader("Content-Type")) == (200, "text/event-stream"), r.status
    first = b""
    while not first.endswith(b"\n\n"):
        line = r.readline()
        assert line, "the stream ended before its first event"
        first += line
    return r, json.loads(first.decode()[6:])["result"]


def rest_of(r):
    """The results of the events left in a stream, to its end."""
    return [json.loads(b[6:])["result"] for b in r.read().decode().split("\n\n") if b.strip()]


class Shared(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="apa2a-files-")
        pools = {"main": pool(workers=2, sessions=True),
                 "tight": pool(messageQueueSize=0, overflow="reject"),
                 "slow": pool(timeout=300, retryOnTimeout=False),
                 "bad": pool(agent="a2aagent:BadCardAgent"),
                 "conv": pool(workers=2, sessions=True, sessionBusy="reject"),
                 "brk": pool(breakerFailureThreshold=2, breakerResetTimeout=600000),
                 "m": pool(agent="a2aagent:A2AMessageAgent"),
                 "am": pool(agent="a2aagent:AsyncA2AMessageAgent"),
                 "only": pool(agent="a2aagent:A2AOnlyAgent"),
                 "plain": dict(pool(), a2a=False)}
        if greenlet_supported():  # gevent workers cannot run under AddressSanitizer
            pools["gev"] = pool(workerModel="gevent")
        cls.s = HTTPServer({"defaultPool": "main", "pools": pools, "a2aMaxWatchers": 4}).start()
        wait_for(lambda: all(p["available"] == p["poolSize"] for p in cls.s.stats()["pools"].values()),
                 what="every pool ready")

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        shutil.rmtree(cls.d, ignore_errors=True)

    def get(self, path, headers=None):
        c = self.s.conn()
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r, body

    def gate(self, name):
        return os.path.join(self.d, name)

    def stream_in_background(self, text):
        """SendStreamingMessage(text) on a thread of its own; its events
        land in out["evs"] once the stream ends: (thread, out)."""
        import threading
        out = {}

        def run():
            c = self.s.conn()
            out["evs"] = stream(c, "main", "SendStreamingMessage", {"message": msg(text)})
            c.close()
        th = threading.Thread(target=run)
        th.start()
        return th, out

    # ---- the Agent Card ----

    def test_card_from_the_agent_with_caching_headers_and_304(self):
        r, body = self.get("/.well-known/agent-card.json")
        self.assertEqual(r.status, 200, body)
        card = json.loads(body)
        self.assertEqual(card["name"], "Test A2A agent")
        self.assertEqual(card["description"], "answers test messages")
        self.assertEqual(card["skills"], [{"id": "echo", "name": "Echo", "description": "echoes the parts",
                                           "tags": ["test", "echo"]}])
        self.assertEqual(card["defaultInputModes"], ["text/plain", "application/json"])
        self.assertEqual(card["capabilities"]["pushNotifications"], False)
        self.assertEqual(card["capabilities"]["streaming"], True)
        self.assertEqual(card["url"], "http://127.0.0.1:%d/a2a/main" % self.s.port)
        self.assertEqual(card["supportedInterfaces"][0]["protocolBinding"], "JSONRPC")
        self.assertEqual(card["supportedInterfaces"][0]["protocolVersion"], "1.0")
        self.assertIn("max-age=", r.getheader("Cache-Control"))
        etag = r.getheader("ETag")
        self.assertTrue(etag and etag.startswith('"'), etag)
        r2, body2 = self.get("/a2a/main/.well-known/agent-card.json", {"If-None-Match": etag})
        self.assertEqual((r2.status, body2), (304, ""))
        r3, _ = self.get("/a2a/main/.well-known/agent-card.json", {"If-None-Match": '"other"'})
        self.assertEqual(r3.status, 200)

    def test_card_defaults_and_a_refused_agent_card(self):
        r, body = self.get("/a2a/bad/.well-known/agent-card.json")
        self.assertEqual(r.status, 200, body)
        card = json.loads(body)
        self.assertEqual(card["name"], "bad")
        self.assertEqual(card["skills"][0]["id"], "bad")
        self.assertIn("its agent's card is refused", self.s.log())
        r, body = self.get("/a2a/plain/.well-known/agent-card.json")
        self.assertEqual(r.status, 404, body)
        c = self.s.conn()
        st, _, _ = post(c, "/a2a/plain", {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}})
        self.assertEqual(st, 404)
        st, h, _ = post(c, "/a2a/main/.well-known/agent-card.json", {})
        self.assertEqual(st, 405)
        c.close()

    # ---- SendMessage, GetTask ----

    def test_send_message_blocking_v1_and_get_task_history(self):
        c = self.s.conn()
        resp = rpc(c, "main", "SendMessage", {"message": msg("echo", contextId="conv-1")}, rid="a")
        self.assertEqual(resp["id"], "a")
        task = resp["result"]["task"]
        self.assertEqual(task["status"]["state"], "TASK_STATE_COMPLETED", task)
        self.assertEqual(task["contextId"], "conv-1")
        data = task["artifacts"][0]["parts"][0]["data"]
        self.assertEqual(data, {"parts": [{"text": "echo"}], "contextId": "conv-1", "taskId": task["id"]})
        got = rpc(c, "main", "GetTask", {"id": task["id"], "historyLength": 0})["result"]
        self.assertEqual(got["status"]["state"], "TASK_STATE_COMPLETED")
        self.assertNotIn("history", got)
        got = rpc(c, "main", "GetTask", {"id": task["id"]})["result"]
        self.assertEqual(got["history"][0]["parts"], [{"text": "echo"}])
        self.assertEqual(got["history"][0]["taskId"], task["id"])
        c.close()

    def test_v03_names_and_states_without_a_header(self):
        c = self.s.conn()
        resp = rpc(c, "main", "message/send", {"message": msg03("hello")}, version=None)
        task = resp["result"]
        self.assertEqual((task["kind"], task["status"]["state"]), ("task", "completed"), task)
        self.assertEqual(task["artifacts"][0]["parts"], [{"kind": "text", "text": "hello back"}])
        got = rpc(c, "main", "tasks/get", {"id": task["id"]}, version=None)["result"]
        self.assertEqual(got["status"]["state"], "completed")
        self.assertEqual(err_code(rpc(c, "main", "SendMessage", {"message": msg("hello")}, version=None)), -32601)
        self.assertEqual(err_code(rpc(c, "main", "message/send", {"message": msg("hello")}, version="1.0")), -32601)
        self.assertEqual(err_code(rpc(c, "main", "GetTask", {"id": task["id"]}, version="9.9")), -32009)
        c.close()

    def test_return_immediately_then_get_task_completes(self):
        c = self.s.conn()
        f = self.gate("imm")
        task = rpc(c, "main", "SendMessage", {"message": msg("wait:" + f),
                                              "configuration": {"returnImmediately": True}})["result"]["task"]
        self.assertIn(task["status"]["state"], ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"), task)
        self.assertEqual(rpc(c, "main", "GetTask", {"id": task["id"]})["result"]["status"]["state"],
                         "TASK_STATE_WORKING")
        open(f, "w").close()
        wait_for(lambda: rpc(c, "main", "GetTask", {"id": task["id"]})["result"]["status"]["state"] ==
                 "TASK_STATE_COMPLETED", what="the task completed")
        f2 = self.gate("imm03")
        t03 = rpc(c, "main", "message/send", {"message": msg03("wait:" + f2), "configuration": {"blocking": False}},
                  version=None)["result"]
        self.assertIn(t03["status"]["state"], ("submitted", "working"), t03)
        open(f2, "w").close()
        wait_for(lambda: rpc(c, "main", "tasks/get", {"id": t03["id"]}, version=None)["result"]["status"]["state"]
                 == "completed", what="the 0.3 task completed")
        c.close()

    # ---- CancelTask ----

    def test_cancel_a_running_task_then_a_terminal_one(self):
        c = self.s.conn()
        f = self.gate("cancel")
        task = rpc(c, "main", "SendMessage", {"message": msg("wait:" + f),
                                              "configuration": {"returnImmediately": True}})["result"]["task"]
        wait_for(lambda: self.s.stats()["pools"]["main"]["busy"] >= 1, what="the task running")
        res = rpc(c, "main", "CancelTask", {"id": task["id"]})["result"]
        self.assertEqual(res["status"]["state"], "TASK_STATE_CANCELED", res)
        self.assertEqual(rpc(c, "main", "GetTask", {"id": task["id"]})["result"]["status"]["state"],
                         "TASK_STATE_CANCELED")
        again = rpc(c, "main", "CancelTask", {"id": task["id"]})
        self.assertEqual(err_code(again), -32002, again)
        done = rpc(c, "main", "SendMessage", {"message": msg("hello")})["result"]["task"]
        self.assertEqual(err_code(rpc(c, "main", "CancelTask", {"id": done["id"]})), -32002)
        self.assertEqual(err_code(rpc(c, "main", "CancelTask", {"id": "no-such-task"})), -32001)
        open(f, "w").close()
        c.close()

    # ---- task states from the pool's outcomes ----

    def status_text(self, task):
        return task["status"]["message"]["parts"][0]["text"]

    def test_failed_states_carry_the_error(self):
        c = self.s.conn()
        t = rpc(c, "main", "SendMessage", {"message": msg("fail")})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_FAILED", t)
        self.assertTrue(self.status_text(t).startswith("agent_error: "), t)
        self.assertEqual(t["status"]["message"]["role"], "ROLE_AGENT")
        t = rpc(c, "main", "SendMessage", {"message": msg("crash")})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_FAILED", t)
        self.assertTrue(self.status_text(t).startswith("worker_crashed: "), t)
        t = rpc(c, "slow", "SendMessage", {"message": msg("wait:" + self.gate("never"))})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_FAILED", t)
        self.assertTrue(self.status_text(t).startswith("timeout: "), t)
        t = rpc(c, "main", "message/send", {"message": msg03("fail")}, version=None)["result"]
        self.assertEqual(t["status"]["state"], "failed", t)
        self.assertEqual(t["status"]["message"]["parts"][0]["kind"], "text")
        c.close()

    def test_circuit_open_is_rejected(self):
        c = self.s.conn()
        for _ in range(2):
            t = rpc(c, "brk", "SendMessage", {"message": msg("fail")})["result"]["task"]
            self.assertEqual(t["status"]["state"], "TASK_STATE_FAILED", t)
        t = rpc(c, "brk", "SendMessage", {"message": msg("hello")})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_REJECTED", t)
        self.assertTrue(self.status_text(t).startswith("circuit_open: "), t)
        c.close()

    def test_queue_full_is_rejected(self):
        c = self.s.conn()
        f = self.gate("tight")
        busy = rpc(c, "tight", "SendMessage", {"message": msg("wait:" + f),
                                               "configuration": {"returnImmediately": True}})["result"]["task"]
        wait_for(lambda: self.s.stats()["pools"]["tight"]["busy"] == 1, what="the tight pool busy")
        t = rpc(c, "tight", "SendMessage", {"message": msg("hello")})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_REJECTED", t)
        self.assertTrue(self.status_text(t).startswith("queue_full: "), t)
        open(f, "w").close()
        wait_for(lambda: rpc(c, "tight", "GetTask", {"id": busy["id"]})["result"]["status"]["state"] ==
                 "TASK_STATE_COMPLETED", what="the first task completed")
        c.close()

    def test_context_id_is_the_session(self):
        # sessionBusy "reject": a second message of a context whose first
        # still runs is refused, one of another context runs
        c = self.s.conn()
        f = self.gate("conv")
        first = rpc(c, "conv", "SendMessage", {"message": msg("wait:" + f, contextId="c1"),
                                               "configuration": {"returnImmediately": True}})["result"]["task"]
        wait_for(lambda: self.s.stats()["pools"]["conv"]["busy"] == 1, what="the first message running")
        t = rpc(c, "conv", "SendMessage", {"message": msg("hello", contextId="c1")})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_REJECTED", t)
        self.assertTrue(self.status_text(t).startswith("session_busy: "), t)
        t = rpc(c, "conv", "SendMessage", {"message": msg("hello", contextId="c2")})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_COMPLETED", t)
        open(f, "w").close()
        wait_for(lambda: rpc(c, "conv", "GetTask", {"id": first["id"]})["result"]["status"]["state"] ==
                 "TASK_STATE_COMPLETED", what="the first completed")
        c.close()

    # ---- streams ----

    def test_send_streaming_message_v1_task_then_chunks_then_final_status(self):
        c = self.s.conn()
        evs = stream(c, "main", "SendStreamingMessage", {"message": msg("tokens:3")})
        self.assertTrue(all(e["id"] == 9 and e["jsonrpc"] == "2.0" for e in evs), evs)
        res = [e["result"] for e in evs]
        task = res[0]["task"]
        self.assertIn(task["status"]["state"], ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING"), res)
        arts = [r["artifactUpdate"] for r in res[1:4]]
        self.assertEqual([a["artifact"]["parts"] for a in arts], [[{"text": "t0"}], [{"text": "t1"}], [{"text": "t2"}]])
        self.assertEqual([a["append"] for a in arts], [False, True, True])
        self.assertEqual([a["lastChunk"] for a in arts], [False, False, False])
        self.assertTrue(all(a["taskId"] == task["id"] for a in arts))
        last = res[4]["artifactUpdate"]
        self.assertEqual((last["artifact"]["parts"], last["lastChunk"]), ([{"data": {"tokens": 3}}], True))
        self.assertEqual(res[5]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED")
        self.assertEqual(len(res), 6, res)
        got = rpc(c, "main", "GetTask", {"id": task["id"]})["result"]
        self.assertEqual(got["status"]["state"], "TASK_STATE_COMPLETED")
        c.close()

    def test_kept_stream_chunks_are_bounded(self):
        # 256 KiB of chunk JSON per turn: 3 chunks of 64 KiB are kept, the 4th and 5th are not
        c = self.s.conn()
        evs = stream(c, "main", "SendStreamingMessage", {"message": msg("big:5")})
        self.assertEqual(len([e for e in evs if e["result"].get("artifactUpdate", {}).get("artifact", {})
                              .get("artifactId") == "stream"]), 5)  # the stream itself gets every chunk
        got = rpc(c, "main", "GetTask", {"id": evs[0]["result"]["task"]["id"]})["result"]
        art = got["artifacts"][0]
        self.assertEqual((art["artifactId"], art["metadata"]), ("stream", {"truncated": True}))
        self.assertEqual([p["text"][:2] for p in art["parts"]], ["aa", "bb", "cc"])
        self.assertIn("its stream passed 262144 bytes", self.s.log())
        c.close()

    def test_message_stream_v03_kinds_and_a_failed_stream(self):
        c = self.s.conn()
        res = [e["result"] for e in stream(c, "main", "message/stream", {"message": msg03("tokens:2")}, version=None)]
        self.assertEqual([r["kind"] for r in res], ["task", "artifact-update", "artifact-update", "artifact-update",
                                                    "status-update"], res)
        self.assertEqual(res[1]["artifact"]["parts"], [{"kind": "text", "text": "t0"}])
        self.assertEqual((res[-1]["status"]["state"], res[-1]["final"]), ("completed", True))
        res = [e["result"] for e in stream(c, "main", "SendStreamingMessage", {"message": msg("fail")})]
        self.assertEqual(res[-1]["statusUpdate"]["status"]["state"], "TASK_STATE_FAILED", res)
        self.assertEqual(len(res), 2, res)
        c.close()

    def test_cancel_ends_a_stream_canceled(self):
        f = self.gate("streamcancel")
        th, out = self.stream_in_background("wait:" + f)
        c = self.s.conn()
        tid = wait_for(lambda: next((t["id"] for t in rpc(c, "main", "ListTasks", {})["result"]["tasks"]
                                     if t["status"]["state"] == "TASK_STATE_WORKING" and
                                     t["history"][0]["parts"][0]["text"] == "wait:" + f), None),
                       what="the streaming task listed")
        self.assertEqual(rpc(c, "main", "CancelTask", {"id": tid})["result"]["status"]["state"],
                         "TASK_STATE_CANCELED")
        th.join(60)
        open(f, "w").close()
        res = [e["result"] for e in out["evs"]]
        self.assertEqual(res[-1]["statusUpdate"]["status"]["state"], "TASK_STATE_CANCELED", res)
        c.close()

    def test_subscribe_to_task_sends_the_task_first_then_its_outcome(self):
        c = self.s.conn()
        f = self.gate("subscribe")
        t = rpc(c, "main", "SendMessage", {"message": msg("wait:" + f),
                                           "configuration": {"returnImmediately": True}})["result"]["task"]
        c2 = self.s.conn()
        body = {"jsonrpc": "2.0", "id": 9, "method": "SubscribeToTask", "params": {"id": t["id"]}}
        c2.request("POST", "/a2a/main", body=json.dumps(body).encode(),
                   headers={"A2A-Version": "1.0", "Content-Type": "application/json"})
        r = c2.getresponse()
        self.assertEqual((r.status, r.getheader("Content-Type")), (200, "text/event-stream"))
        first = b""
        while not first.endswith(b"\n\n"):
            first += r.readline()
        res = [json.loads(first.decode()[6:])["result"]]
        self.assertEqual(res[0]["task"]["id"], t["id"], res)
        self.assertEqual(res[0]["task"]["status"]["state"], "TASK_STATE_WORKING")
        open(f, "w").close()
        rest = r.read().decode()
        res += [json.loads(b[6:])["result"] for b in rest.split("\n\n") if b.strip()]
        self.assertEqual(res[1]["artifactUpdate"]["artifact"]["parts"], [{"text": "done"}], res)
        self.assertEqual(res[2]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED", res)
        self.assertEqual(len(res), 3, res)
        c2.close()
        # a terminal task: its outcome is GetTask's
        self.assertEqual(err_code(rpc(c, "main", "tasks/resubscribe", {"id": t["id"]}, version=None)), -32004)
        self.assertEqual(err_code(rpc(c, "main", "SubscribeToTask", {"id": "nope"})), -32001)
        c.close()

    # ---- input required ----

    def test_require_input_then_the_next_message_continues_the_task(self):
        c = self.s.conn()
        t = rpc(c, "main", "SendMessage", {"message": msg("ask:which size?", contextId="shop-1")})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_INPUT_REQUIRED", t)
        self.assertEqual(t["status"]["message"]["parts"], [{"text": "which size?"}])
        self.assertEqual(t["status"]["message"]["role"], "ROLE_AGENT")
        self.assertNotIn("artifacts", t)  # the handler's return value is not the answer
        got = rpc(c, "main", "GetTask", {"id": t["id"]})["result"]
        self.assertEqual(got["status"]["state"], "TASK_STATE_INPUT_REQUIRED")
        wrong = rpc(c, "main", "SendMessage", {"message": msg("echo", taskId=t["id"], contextId="other")})
        self.assertEqual(err_code(wrong), -32602, wrong)
        # the next message with its taskId: the same task, the same context (session), the handler sees it
        done = rpc(c, "main", "SendMessage", {"message": msg("echo", taskId=t["id"])})["result"]["task"]
        self.assertEqual((done["id"], done["contextId"]), (t["id"], "shop-1"))
        self.assertEqual(done["status"]["state"], "TASK_STATE_COMPLETED", done)
        self.assertEqual(done["artifacts"][-1]["parts"][0]["data"],
                         {"parts": [{"text": "echo"}], "contextId": "shop-1", "taskId": t["id"]})
        hist = done["history"]
        self.assertEqual([(m["role"], m["parts"]) for m in hist],
                         [("user", [{"text": "ask:which size?"}]), ("ROLE_AGENT", [{"text": "which size?"}]),
                          ("user", [{"text": "echo"}])], hist)
        self.assertEqual(len(rpc(c, "main", "GetTask", {"id": t["id"], "historyLength": 1})["result"]["history"]), 1)
        # a message for the (now terminal) task is the spec's error
        again = rpc(c, "main", "SendMessage", {"message": msg("echo", taskId=t["id"])})
        self.assertEqual(err_code(again), -32004, again)
        c.close()

    def test_a_pretty_printed_body_reaches_the_agent_as_sent(self):
        """The body is read in place (no tree): a pretty-printed one goes
        to the worker on one line, its strings as sent (escapes, line
        breaks, quotes, non-ASCII), a member name written with an escape
        is that member (contextId), and the id is echoed as written."""
        c = self.s.conn()
        parts = [{"text": "echo"}, {"text": "a\nb \"q\" \u00e9 \u2028 \\ end", "metadata": {"k": [1, {"x": None}]}}]
        body = json.dumps({"jsonrpc": "2.0", "id": "r\n1", "method": "SendMessage",
                           "params": {"message": msg("echo", contextId="ctx-pretty", parts=parts)}}, indent=2)
        body = body.replace('"contextId"', '"context\\u0049d"')
        self.assertIn("\n", body)
        st, _, resp = post(c, "/a2a/main", body.encode(), {"A2A-Version": "1.0"})
        self.assertEqual(st, 200, resp)
        self.assertEqual(resp["id"], "r\n1", resp)
        t = resp["result"]["task"]
        self.assertEqual((t["status"]["state"], t["contextId"]), ("TASK_STATE_COMPLETED", "ctx-pretty"), t)
        self.assertEqual(t["artifacts"][0]["parts"][0]["data"],
                         {"parts": parts, "contextId": "ctx-pretty", "taskId": t["id"]}, t)
        self.assertEqual(t["history"][0]["parts"], parts, t)
        c.close()

    def test_subscribe_to_a_task_waiting_for_input_streams_its_next_turn(self):
        """Input-required is not terminal: a subscriber gets the Task (with
        the prompt) at once, then the turn the next message starts, to
        its end."""
        c = self.s.conn()
        t = rpc(c, "main", "SendMessage", {"message": msg("ask:colour?")})["result"]["task"]
        self.assertEqual(t["status"]["state"], "TASK_STATE_INPUT_REQUIRED", t)
        c2 = self.s.conn()
        r, first = subscribe(c2, "main", t["id"])
        self.assertEqual((first["task"]["id"], first["task"]["status"]["state"]),
                         (t["id"], "TASK_STATE_INPUT_REQUIRED"), first)
        self.assertEqual(first["task"]["status"]["message"]["parts"], [{"text": "colour?"}])
        done = rpc(c, "main", "SendMessage", {"message": msg("echo", taskId=t["id"])})["result"]["task"]
        self.assertEqual(done["status"]["state"], "TASK_STATE_COMPLETED", done)
        res = rest_of(r)
        self.assertEqual(res[-1]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED", res)
        self.assertEqual(res[0]["artifactUpdate"]["artifact"]["parts"][0]["data"]["parts"], [{"text": "echo"}], res)
        c2.close()
        c.close()

    def test_input_required_v03_and_a_stream_ends_there(self):
        c = self.s.conn()
        t = rpc(c, "main", "message/send", {"message": msg03("ask:name?")}, version=None)["result"]
        self.assertEqual(t["status"]["state"], "input-required", t)
        self.assertEqual(t["status"]["message"]["parts"], [{"kind": "text", "text": "name?"}])
        res = [e["result"] for e in stream(c, "main", "message/stream", {"message": msg03("hello", taskId=t["id"])},
                                           version=None)]
        self.assertEqual((res[0]["id"], res[-1]["status"]["state"]), (t["id"], "completed"), res)
        # a stream ends at input-required as at a terminal state (0.3: final)
        res = [e["result"] for e in stream(c, "main", "message/stream", {"message": msg03("askstream:more?")},
                                           version=None)]
        self.assertEqual([r["kind"] for r in res], ["task", "artifact-update", "status-update"], res)
        self.assertEqual((res[-1]["status"]["state"], res[-1]["final"]), ("input-required", True))
        self.assertEqual(res[-1]["status"]["message"]["parts"], [{"kind": "text", "text": "more?"}])
        tid = res[0]["id"]
        res = [e["result"] for e in stream(c, "main", "SendStreamingMessage",
                                           {"message": msg("tokens:2", taskId=tid)})]
        self.assertEqual(res[0]["task"]["id"], tid)
        self.assertEqual([r["artifactUpdate"]["artifact"]["parts"] for r in res[1:3]], [[{"text": "t0"}],
                                                                                       [{"text": "t1"}]])
        self.assertEqual(res[-1]["statusUpdate"]["status"]["state"], "TASK_STATE_COMPLETED")
        c.close()

    def test_require_input_in_every_worker_model_and_handle_a2a_message(self):
        c = self.s.conn()
        models = [("m", {"data": {"question": "Q"}}), ("am", {"data": {"question": "Q"}}),
                  ("only", {"data": {"question": "Q"}})] + ([("gev", {"text": "Q"})] if greenlet_supported() else [])
        for name, prompt in models:
            t = rpc(c, name, "SendMessage", {"message": msg("ask:Q")})["result"]["task"]
            self.assertEqual((t["status"]["state"], t["status"]["message"]["parts"]),
                             ("TASK_STATE_INPUT_REQUIRED", [prompt]), (name, t))
            if name == "gev":
                continue
            done = rpc(c, name, "SendMessage", {"message": msg("who", taskId=t["id"])})["result"]["task"]
            self.assertEqual(done["artifacts"][0]["parts"][0]["data"],
                             {"handler": "handle_a2a_message", "taskId": t["id"], "attempt": 1, "text": "who"},
                             (name, done))
        # a generator handle_a2a_message streams
        res = [e["result"] for e in stream(c, "m", "SendStreamingMessage", {"message": msg("gen")})]
        self.assertEqual(res[1]["artifactUpdate"]["artifact"]["parts"], [{"text": "g0"}], res)
        self.assertEqual(res[2]["artifactUpdate"]["artifact"]["parts"], [{"text": "gen done"}], res)
        c.close()
        # other types still go to handle_message; an agent with handle_a2a_message only refuses them
        with self.s.client() as sc:
            for name in ("m", "am"):
                resp = sc.request("x.y", {}, pool=name)
                self.assertEqual(resp["result"], {"handler": "handle_message", "type": "x.y"}, resp)
            resp = sc.request("x.y", {}, pool="only")
            self.assertEqual(resp["error"]["code"], "agent_error", resp)
            self.assertIn("handle_a2a_message only", resp["error"]["message"])
            # a socket client sees the same turn marked inputRequired
            resp = sc.request("a2a.message", {"parts": [{"text": "ask:why?"}], "taskId": "t", "contextId": "c"},
                              pool="main", session="sock-1")
            self.assertEqual((resp["ok"], resp.get("inputRequired"), resp["result"]), (True, True, "why?"), resp)
            # the task records' key space in the session store is not a session's
            resp = sc.request("a2a.message", {"parts": [{"text": "hello"}]}, pool="main", session="a2a:task:x")
            self.assertEqual(resp["error"]["code"], "bad_request", resp)
            self.assertIn("are the server's", resp["error"]["message"])

    # ---- several streams on one task ----

    def sub_stream(self, tid):
        """A SubscribeToTask stream on its own connection: (conn, response,
        its first event's result)."""
        c2 = self.s.conn()
        body = {"jsonrpc": "2.0", "id": 9, "method": "SubscribeToTask", "params": {"id": tid}}
        c2.request("POST", "/a2a/main", body=json.dumps(body).encode(),
                   headers={"A2A-Version": "1.0", "Content-Type": "application/json"})
        r = c2.getresponse()
        self.assertEqual((r.status, r.getheader("Content-Type")), (200, "text/event-stream"))
        first = b""
        while not first.endswith(b"\n\n"):
            first += r.readline()
        return c2, r, json.loads(first.decode()[6:])["result"]

    def test_several_streams_on_one_task_get_the_same_events(self):
        f = self.gate("several")
        th, out = self.stream_in_background("slowtokens:3:" + f)
        c = self.s.conn()
        tid = wait_for(lambda: next((t["id"] for t in rpc(c, "main", "ListTasks", {})["result"]["tasks"]
                                     if t["history"][0]["parts"][0]["text"] == "slowtokens:3:" + f and
                                     len(t.get("artifacts", [{}])[0].get("parts", [])) == 2), None),
                       what="the streaming task with two chunks")
        subs = [self.sub_stream(tid) for _ in range(2)]
        for _, _, first in subs:  # the Task first, with the chunks streamed so far
            self.assertEqual(first["task"]["id"], tid)
            self.assertEqual(first["task"]["artifacts"][0]["parts"], [{"text": "t0"}, {"text": "t1"}], first)
        # a watcher that leaves does not disturb the others
        gone, _, _ = self.sub_stream(tid)
        closed = self.s.stats()["http"]["clientClosed"]
        gone.close()
        wait_for(lambda: self.s.stats()["http"]["clientClosed"] > closed, what="the leaving watcher seen")
        subs.append(self.sub_stream(tid))  # the stream, 3 subscribers: a2aMaxWatchers (4)
        full = rpc(c, "main", "SubscribeToTask", {"id": tid})
        self.assertEqual(err_code(full), -32004, full)
        self.assertIn("a2aMaxWatchers", full["error"]["message"])
        open(f, "w").close()
        th.join(60)
        tail = [e["result"] for e in out["evs"]][3:]  # after the Task, t0 and t1
        self.assertEqual([list(r)[0] for r in tail], ["artifactUpdate", "artifactUpdate", "statusUpdate"], tail)
        self.assertEqual(tail[0]["artifactUpdate"]["artifact"]["parts"], [{"text": "t2"}])
        for c2, r, _ in subs:
            rest = r.read().decode()
            got = [json.loads(b[6:])["result"] for b in rest.split("\n\n") if b.strip()]
            for g in got:
                g.get("statusUpdate", {}).get("status", {}).pop("timestamp", None)
            for t in tail:
                t.get("statusUpdate", {}).get("status", {}).pop("timestamp", None)
            self.assertEqual(got, tail)
            c2.close()
        # the chunks are kept: GetTask shows what the stream built
        got = rpc(c, "main", "GetTask", {"id": tid})["result"]
        self.assertEqual(got["artifacts"][0], {"artifactId": "stream", "name": "stream",
                                               "parts": [{"text": "t0"}, {"text": "t1"}, {"text": "t2"}]})
        self.assertEqual(got["artifacts"][1]["parts"], [{"data": {"tokens": 3}}])
        c.close()

    def test_a_caller_that_leaves_does_not_end_its_task(self):
        import socket
        c = self.s.conn()
        for method in ("SendMessage", "SendStreamingMessage"):
            f = self.gate("leave-" + method)
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                               "params": {"message": msg("wait:" + f)}}).encode()
            raw = socket.create_connection(("127.0.0.1", self.s.port))
            raw.sendall(b"POST /a2a/main HTTP/1.1\r\nHost: x\r\nA2A-Version: 1.0\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body)
            tid = wait_for(lambda: next((t["id"] for t in rpc(c, "main", "ListTasks", {})["result"]["tasks"]
                                         if t["history"][0]["parts"][0]["text"] == "wait:" + f), None),
                           what="the task listed")
            raw.close()
            wait_for(lambda: self.s.stats()["http"]["clientClosed"] >= 1, what="the close seen")
            open(f, "w").close()
            wait_for(lambda: rpc(c, "main", "GetTask", {"id": tid})["result"]["status"]["state"] ==
                     "TASK_STATE_COMPLETED", what="the task completed after its caller left")
        c.close()

    # ---- the load generator's raw-body mode (bench/a2a) ----

    def test_agentpool_bench_drives_send_message_and_judges_jsonrpc_results(self):
        from test_bench import run_bench
        send = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": msg03("hello")}})
        target = ["--tcp", "127.0.0.1:%d" % self.s.port, "--proto", "http", "--path", "/a2a/main", "--requests", 40,
                  "--conns", 2, "--seconds", 120]
        c = self.s.conn()
        before = rpc(c, "main", "ListTasks", {"status": "TASK_STATE_COMPLETED"})["result"]["totalSize"]
        rc, r, err = run_bench(*target, "--body", send, "--expect", "jsonrpc")
        self.assertEqual((rc, r["requests"]["ok"], r["requests"]["errors"]), (0, 40, 0), (err, r))
        after = rpc(c, "main", "ListTasks", {"status": "TASK_STATE_COMPLETED"})["result"]["totalSize"]
        self.assertGreaterEqual(after, before + 40)  # each ran as a task
        c.close()
        # an answer that is a JSON-RPC error is not ok, though its HTTP status is 200
        nope = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "nope"}})
        rc, r, err = run_bench(*target, "--body", nope, "--expect", "jsonrpc")
        self.assertEqual((r["requests"]["ok"], r["errors"]), (0, {"jsonrpc_error": 40}), (err, r))
        rc, r, err = run_bench(*target, "--body", nope)  # without --expect: judged by the status only
        self.assertEqual(r["requests"]["ok"], 40, (err, r))
        rc, _, err = run_bench("--unix", "/tmp/x.sock", "--body", "{}", expect_json=False)
        self.assertEqual(rc, 2)
        self.assertIn("--body and --expect need --proto http", err)

    # ---- JSON-RPC errors, each by a real cause ----

    def test_jsonrpc_errors(self):
        c = self.s.conn()
        st, _, resp = post(c, "/a2a/main", b"{not json", {"A2A-Version": "1.0"})
        self.assertEqual((st, err_code(resp), resp["id"]), (200, -32700, None), resp)
        st, _, resp = post(c, "/a2a/main", {"jsonrpc": "1.0", "id": 3, "method": "GetTask", "params": {}},
                           {"A2A-Version": "1.0"})
        self.assertEqual((err_code(resp), resp["id"]), (-32600, 3), resp)
        st, _, resp = post(c, "/a2a/main", {"jsonrpc": "2.0", "id": [1], "method": "GetTask", "params": {}},
                           {"A2A-Version": "1.0"})
        self.assertEqual(err_code(resp), -32600, resp)
        self.assertEqual(err_code(rpc(c, "main", "NoSuchMethod", {})), -32601)
        self.assertEqual(err_code(rpc(c, "main", "SendMessage", {})), -32602)
        self.assertEqual(err_code(rpc(c, "main", "GetTask", {"id": 5})), -32602)
        # arrays where objects are wanted: no element is taken for a member of the name it holds
        self.assertEqual(err_code(rpc(c, "main", "SendMessage", {"parts": 1, "message": ["parts", [{"text": "echo"}]]})),
                         -32602)
        self.assertEqual(err_code(rpc(c, "main", "SendMessage", {"message": msg("echo"),
                                                                "configuration": ["returnImmediately", True]})), -32602)
        self.assertEqual(err_code(rpc(c, "main", "ListTasks", {"pageSize": 101})), -32602)
        bad = rpc(c, "main", "ListTasks", {"status": "TASK_STATE_DONE"})
        self.assertEqual(err_code(bad), -32602, bad)
        self.assertIn("not a task state", bad["error"]["message"])
        self.assertEqual(err_code(rpc(c, "main", "tasks/list", {"status": "finished"}, version=None)), -32602)
        self.assertEqual(rpc(c, "main", "ListTasks", {"status": "TASK_STATE_COMPLETED"})["result"]["tasks"][0]
                         ["status"]["state"], "TASK_STATE_COMPLETED")
        self.assertEqual(err_code(rpc(c, "main", "GetTask", {"id": "nope"})), -32001)
        self.assertEqual(err_code(rpc(c, "main", "CreateTaskPushNotificationConfig", {"taskId": "x"})), -32003)
        self.assertEqual(err_code(rpc(c, "main", "tasks/pushNotificationConfig/set", {}, version=None)), -32003)
        done = rpc(c, "main", "SendMessage", {"message": msg("hello")})["result"]["task"]
        cont = rpc(c, "main", "SendMessage", {"message": msg("hello", taskId=done["id"])})
        self.assertEqual(err_code(cont), -32004, cont)  # a terminal task cannot be restarted
        self.assertIn("terminal", cont["error"]["message"])
        self.assertEqual(err_code(rpc(c, "main", "SendMessage", {"message": msg("hello", taskId="nope")})), -32001)
        png = rpc(c, "main", "SendMessage", {"message": msg("hello"),
                                             "configuration": {"acceptedOutputModes": ["image/png"]}})
        self.assertEqual(err_code(png), -32005, png)
        self.assertEqual(err_code(rpc(c, "main", "GetExtendedAgentCard", {})), -32007)
        c.close()


class Keys(unittest.TestCase):
    """API keys: the Bearer key is checked as for /v1/messages and names
    the owner of the tasks (ListTasks and GetTask see only the caller's)."""

    def test_list_tasks_paging_and_ownership(self):
        d = tempfile.mkdtemp(prefix="apa2akeys-")
        self.addCleanup(shutil.rmtree, d, True)
        keys = os.path.join(d, "keys.jsonl")
        with open(keys, "w") as f:
            for kid, secret in (("alice", "s3cret-a"), ("bob", "s3cret-b")):
                f.write(json.dumps({"id": kid, "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                                    "pools": "*"}) + "\n")
        os.chmod(keys, 0o600)
        with HTTPServer({"httpAuth": "keys", "apiKeysFile": keys,
                         "pools": {"default": pool(workers=1)}}) as s:
            c = s.conn()
            st, h, _ = post(c, "/a2a/default", {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}})
            self.assertEqual(st, 401)
            ids = [rpc(c, "default", "SendMessage", {"message": msg("hello")}, key="s3cret-a")["result"]["task"]["id"]
                   for _ in range(3)]
            bobs = rpc(c, "default", "SendMessage", {"message": msg("hello")}, key="s3cret-b")["result"]["task"]
            page = rpc(c, "default", "ListTasks", {"pageSize": 2}, key="s3cret-a")["result"]
            self.assertEqual([t["id"] for t in page["tasks"]], [ids[2], ids[1]], page)
            self.assertEqual(page["totalSize"], 3)
            self.assertNotEqual(page["nextPageToken"], "")
            page2 = rpc(c, "default", "ListTasks", {"pageSize": 2, "pageToken": page["nextPageToken"]},
                        key="s3cret-a")["result"]
            self.assertEqual([t["id"] for t in page2["tasks"]], [ids[0]], page2)
            self.assertEqual(page2["nextPageToken"], "")
            mine = rpc(c, "default", "ListTasks", {}, key="s3cret-b")["result"]
            self.assertEqual([t["id"] for t in mine["tasks"]], [bobs["id"]])
            self.assertEqual(err_code(rpc(c, "default", "GetTask", {"id": ids[0]}, key="s3cret-b")), -32001)
            self.assertEqual(err_code(rpc(c, "default", "CancelTask", {"id": ids[0]}, key="s3cret-b")), -32001)
            self.assertEqual(err_code(rpc(c, "default", "ListTasks", {"pageToken": "x"}, key="s3cret-a")), -32602)
            c.close()
            self.assertNotIn("s3cret", s.log())


class Restart(unittest.TestCase):
    """Tasks kept in the pool's session store (SQLite, and Redis) survive a
    restart of agentpoold: GetTask, ListTasks (newest first, the
    caller's only), the kept stream chunks, and an input-required task
    continued after it."""

    def test_tasks_survive_a_restart_with_a_sqlite_store(self):
        d = tempfile.mkdtemp(prefix="apa2astore-")
        self.addCleanup(shutil.rmtree, d, True)
        self.restart_keeps_tasks(d, "sqlite:" + os.path.join(d, "s.db"))

    def test_tasks_survive_a_restart_with_a_redis_store(self):
        from test_session_redis import Redis
        d = tempfile.mkdtemp(prefix="apa2astore-")
        self.addCleanup(shutil.rmtree, d, True)
        with Redis() as r:
            self.restart_keeps_tasks(d, r.spec())

    def test_a_task_not_read_back_yet_is_503_not_task_not_found(self):
        """While the store cannot give the tasks back (here a redis-server
        stopped with SIGSTOP when a reload adds the pool), a lookup that
        finds no task answers 503 with Retry-After, not TaskNotFound, and
        ListTasks does not answer a partial list; the reading is tried
        again until the store answers, then the task is there."""
        from test_session_redis import Redis
        with Redis() as red:
            late = pool(sessions=True, sessionStore=red.spec())
            with HTTPServer({"pools": {"default": pool(), "late": late}}) as s:
                c = s.conn()
                done = rpc(c, "late", "SendMessage", {"message": msg("hello")})["result"]["task"]
                c.close()
            with HTTPServer({"pools": {"default": pool()}}) as s:
                c = s.conn()
                cfgpath = os.path.join(s.tmp.name, "config.json")
                with open(cfgpath) as f:
                    cfg = json.load(f)
                cfg["pools"]["late"] = late
                with open(cfgpath, "w") as f:
                    json.dump(cfg, f)
                red.freeze(True)
                try:
                    with s.client() as cl:
                        self.assertEqual(cl.call("pool.reload")["pools"]["late"]["status"], "added")
                    for method, params in (("GetTask", {"id": done["id"]}), ("ListTasks", {}),
                                           ("CancelTask", {"id": done["id"]}),
                                           ("SendMessage", {"message": msg("echo", taskId=done["id"])})):
                        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                        st, resp, got = post(c, "/a2a/late", body, {"A2A-Version": "1.0"})
                        self.assertEqual((st, resp.getheader("Retry-After")), (503, "1"), (method, got))
                        self.assertEqual(err_code(got), -32603, got)
                    wait_for(lambda: "could not all be read back from the session store yet" in s.log(),
                             what="the failed reading logged")
                finally:
                    red.freeze(False)
                got = wait_for(lambda: (rpc_loaded(c, "late", "GetTask", {"id": done["id"]}) or {}).get("result"),
                               what="the task read back once the store answers")
                self.assertEqual(got["status"]["state"], "TASK_STATE_COMPLETED")
                self.assertEqual(err_code(rpc(c, "late", "GetTask", {"id": "no-such"})), -32001)
                c.close()

    def test_a_pool_removed_while_its_tasks_are_read_back(self):
        """A reload removes a pool whose task records are being read back
        from a store that does not answer: once while the reading waits to
        be tried again, once with it in flight.  The loader goes with the
        pool (no lookup answers 503 for it after), and agentpoold stops
        cleanly (exit 0: under ASan, no leak and no use after free)."""
        from test_session_redis import Redis
        with Redis() as red:
            late = pool(sessions=True, sessionStore=red.spec())
            with HTTPServer({"pools": {"default": pool(), "late": late}}) as s:
                c = s.conn()
                rpc(c, "late", "SendMessage", {"message": msg("hello")})
                c.close()
            s = HTTPServer({"pools": {"default": pool()}})
            with s:
                cfgpath = os.path.join(s.tmp.name, "config.json")
                with open(cfgpath) as f:
                    base = json.load(f)

                def reload_with(pools, what):
                    with open(cfgpath, "w") as f:
                        json.dump(dict(base, pools=pools), f)
                    with s.client() as cl:
                        cl.call("pool.reload")
                    wait_for(lambda: s.log().count("pool late stopped and removed") >= what[0] and
                             s.log().count("pool late: session state in") >= what[1], what="the reload done")

                red.freeze(True)
                try:
                    reload_with(dict(base["pools"], late=late), (0, 1))
                    wait_for(lambda: "could not all be read back from the session store yet" in s.log(),
                             what="the reading failed, to be tried again")
                    reload_with(base["pools"], (1, 1))  # removed while the loader waits
                    reload_with(dict(base["pools"], late=late), (1, 2))
                    reload_with(base["pools"], (2, 2))  # removed with its listing in flight
                finally:
                    red.freeze(False)
                c = s.conn()
                self.assertEqual(err_code(rpc(c, "default", "GetTask", {"id": "no-such"})), -32001)
                c.close()
                self.assertEqual(s.stop(), 0, s.log())

    def test_a_foreign_key_under_the_task_prefix_does_not_end_the_reading(self):
        """A key the server did not write, under the task records' prefix
        and too long for a task id (written straight into the SQLite
        file), sorted before the real records: it is skipped with a
        warning and the records after it are still read back."""
        import sqlite3
        import time
        d = tempfile.mkdtemp(prefix="apa2aforeign-")
        self.addCleanup(shutil.rmtree, d, True)
        db = os.path.join(d, "s.db")
        cfg = {"pools": {"default": pool(sessions=True, sessionStore="sqlite:" + db)}}
        with HTTPServer(cfg) as s:
            c = s.conn()
            done = rpc(c, "default", "SendMessage", {"message": msg("hello")})["result"]["task"]
            c.close()
        con = sqlite3.connect(db)
        con.execute("INSERT INTO agentpool_sessions(pool, key, state, updated) VALUES (?, ?, ?, ?)",
                    ("default", b"a2a:task:" + b"0" * 60, b"{}", int(time.time() * 1000)))
        con.commit()
        con.close()
        with HTTPServer(cfg) as s:
            c = s.conn()
            got = wait_for(lambda: (rpc_loaded(c, "default", "GetTask", {"id": done["id"]}) or {}).get("result"),
                           what="the task after the foreign key read back")
            self.assertEqual(got["status"]["state"], "TASK_STATE_COMPLETED")
            self.assertIn("names no task: skipped", s.log())
            c.close()

    def restart_keeps_tasks(self, d, store):
        keys = os.path.join(d, "keys.jsonl")
        with open(keys, "w") as f:
            for kid, secret in (("alice", "s3cret-a"), ("bob", "s3cret-b")):
                f.write(json.dumps({"id": kid, "sha256": hashlib.sha256(secret.encode()).hexdigest(),
                                    "pools": "*"}) + "\n")
        os.chmod(keys, 0o600)
        cfg = {"httpAuth": "keys", "apiKeysFile": keys,
               "pools": {"default": pool(sessions=True, sessionStore=store)}}

        def rpc(conn, pool_name, method, params, key="s3cret-a"):
            return globals()["rpc"](conn, pool_name, method, params, key=key)

        def stream(conn, pool_name, method, params):
            conn.putrequest("POST", "/a2a/" + pool_name)
            body = json.dumps({"jsonrpc": "2.0", "id": 9, "method": method, "params": params}).encode()
            for h, v in (("A2A-Version", "1.0"), ("Content-Type", "application/json"),
                         ("Authorization", "Bearer s3cret-a"), ("Content-Length", str(len(body)))):
                conn.putheader(h, v)
            conn.endheaders(body)
            text = conn.getresponse().read().decode()
            return [json.loads(b[6:]) for b in text.split("\n\n") if b.strip()]
        with HTTPServer(cfg) as s:
            c = s.conn()
            done = rpc(c, "default", "SendMessage", {"message": msg("hello")})["result"]["task"]
            asked = rpc(c, "default", "SendMessage", {"message": msg("ask:size?", contextId="keep-1")})["result"]["task"]
            self.assertEqual(asked["status"]["state"], "TASK_STATE_INPUT_REQUIRED")
            streamed = stream(c, "default", "SendStreamingMessage", {"message": msg("tokens:2")})[0]["result"]["task"]
            failed = rpc(c, "default", "SendMessage", {"message": msg("fail")})["result"]["task"]
            c.close()
        with HTTPServer(cfg) as s:
            c = s.conn()
            got = wait_for(lambda: (rpc_loaded(c, "default", "GetTask", {"id": done["id"]}, "s3cret-a") or
                                    {}).get("result"), what="the completed task read back from the store")
            self.assertEqual(got["status"]["state"], "TASK_STATE_COMPLETED")
            self.assertEqual(got["artifacts"][0]["parts"], [{"text": "hello back"}])
            self.assertEqual(got["history"][0]["parts"], [{"text": "hello"}])
            wait_for(lambda: rpc_loaded(c, "default", "ListTasks", {}, "s3cret-a"), what="every task read back")
            listed = rpc(c, "default", "ListTasks", {})["result"]["tasks"]
            self.assertEqual([t["id"] for t in listed], [failed["id"], streamed["id"], asked["id"], done["id"]])
            self.assertEqual(listed[0]["status"]["state"], "TASK_STATE_FAILED")
            self.assertTrue(listed[0]["status"]["message"]["parts"][0]["text"].startswith("agent_error: "))
            self.assertEqual(listed[1]["artifacts"][0]["parts"], [{"text": "t0"}, {"text": "t1"}])
            self.assertEqual(listed[2]["status"]["message"]["parts"], [{"text": "size?"}])
            cont = rpc(c, "default", "SendMessage", {"message": msg("echo", taskId=asked["id"])})["result"]["task"]
            self.assertEqual((cont["status"]["state"], cont["contextId"]), ("TASK_STATE_COMPLETED", "keep-1"), cont)
            self.assertEqual(len(cont["history"]), 3)
            self.assertIn("A2A tasks read back from the session store", s.log())
            # the owner came back with each task: another key sees none of them
            self.assertEqual(rpc(c, "default", "ListTasks", {}, key="s3cret-b")["result"]["tasks"], [])
            self.assertEqual(err_code(rpc(c, "default", "GetTask", {"id": done["id"]}, key="s3cret-b")), -32001)
            c.close()


class Bounds(unittest.TestCase):
    def test_a_stream_subscribed_to_a_task_waiting_for_input_ends_when_the_task_expires(self):
        with HTTPServer({"a2aTaskTtl": 1000, "pools": {"default": pool()}}) as s:
            c = s.conn()
            t = rpc(c, "default", "SendMessage", {"message": msg("ask:anyone?")})["result"]["task"]
            c2 = s.conn()
            r, first = subscribe(c2, "default", t["id"])
            self.assertEqual(first["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED")
            # a watched task is swept too (the sweep runs at each A2A request)
            wait_for(lambda: err_code(rpc(c, "default", "GetTask", {"id": t["id"]})) == -32001,
                     what="the task waiting for input swept after a2aTaskTtl, subscriber and all")
            res = rest_of(r)
            self.assertEqual(len(res), 1, res)
            self.assertEqual(res[0]["statusUpdate"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED", res)
            self.assertEqual(res[0]["statusUpdate"]["status"]["message"]["parts"], [{"text": "anyone?"}])
            c2.close()
            c.close()

    def test_a_subscribed_stream_ends_at_expiry_with_no_other_request(self):
        """The sweep also runs on the tick: a stream subscribed to a task
        waiting for input ends when the task expires though no other A2A
        request comes (it stayed open for good before)."""
        with HTTPServer({"a2aTaskTtl": 1000, "pools": {"default": pool()}}) as s:
            c = s.conn()
            t = rpc(c, "default", "SendMessage", {"message": msg("ask:anyone?")})["result"]["task"]
            c.close()
            c2 = s.conn()
            r, first = subscribe(c2, "default", t["id"])
            self.assertEqual(first["task"]["status"]["state"], "TASK_STATE_INPUT_REQUIRED")
            res = rest_of(r)  # to the stream's end: nothing else is asked of the server
            self.assertEqual([x["statusUpdate"]["status"]["state"] for x in res], ["TASK_STATE_INPUT_REQUIRED"])
            c2.close()

    def test_a_terminal_task_goes_after_a2a_task_ttl(self):
        with HTTPServer({"a2aTaskTtl": 1000, "pools": {"default": pool()}}) as s:
            c = s.conn()
            t = rpc(c, "default", "SendMessage", {"message": msg("hello")})["result"]["task"]
            self.assertEqual(rpc(c, "default", "GetTask", {"id": t["id"]})["result"]["id"], t["id"])
            wait_for(lambda: err_code(rpc(c, "default", "GetTask", {"id": t["id"]})) == -32001,
                     what="the task swept after a2aTaskTtl")
            c.close()

    def test_a2a_max_tasks_all_live_refuses_then_terminal_ones_go(self):
        d = tempfile.mkdtemp(prefix="apa2amax-")
        self.addCleanup(shutil.rmtree, d, True)
        f = os.path.join(d, "go")
        with HTTPServer({"a2aMaxTasks": 2, "pools": {"default": pool(workers=2)}}) as s:
            c = s.conn()
            live = [rpc(c, "default", "SendMessage", {"message": msg("wait:" + f),
                                                      "configuration": {"returnImmediately": True}})
                    ["result"]["task"]["id"] for _ in range(2)]
            full = rpc(c, "default", "SendMessage", {"message": msg("hello")})
            self.assertEqual(err_code(full), -32603, full)
            self.assertIn("a2aMaxTasks", full["error"]["message"])
            open(f, "w").close()
            wait_for(lambda: all(rpc(c, "default", "GetTask", {"id": i})["result"]["status"]["state"] ==
                                 "TASK_STATE_COMPLETED" for i in live), what="both tasks completed")
            t = rpc(c, "default", "SendMessage", {"message": msg("hello")})["result"]["task"]
            self.assertEqual(t["status"]["state"], "TASK_STATE_COMPLETED")
            self.assertEqual(err_code(rpc(c, "default", "GetTask", {"id": live[0]})), -32001)  # the oldest went
            c.close()


if __name__ == "__main__":
    main()
