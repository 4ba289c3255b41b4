# SPDX-License-Identifier: BSD-2-Clause
"""test_streams.py - streaming answers, through the real agentpoold.

Real Python workers in each model (sync generators, gevent greenlets,
asyncio async generators: pyagents.examples.tokens and
agents/streamer.py): with "stream": true the client gets chunk lines
{"id", "chunk", "seq"} in order and exactly one final line; without it one
answer {"chunks": [...], "return": ...}, refused agent_error past
maxMessageBytes; ctx.emit streams like a generator.  Flow control: a
client that stops reading its stream keeps the master's buffers (and RSS)
to about the stream's window while another stream of the same worker
runs to its end.  The pool's promises: a worker that dies before the
first chunk is retried, after it the answer is worker_crashed with
"partial" and "chunks" (and so is the dead letter); a deadline mid-stream
ends it timeout after the chunks sent and cancels the handler; a client
that leaves cancels its stream; an idle stream gets heartbeats with
streamHeartbeatMs.  Nothing waits on a duration: every wait is a
condition polled until a generous deadline.
"""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SRCDIR, Server, main, skip_without_greenlet_support, vm_rss_kb,  # noqa: E402
                     wait_for)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")

try:
    import gevent  # noqa: F401
    HAVE_GEVENT = True
except ImportError:
    HAVE_GEVENT = False


def token(i, size):
    t = "t%d" % i
    return t + "x" * (size - len(t)) if size > len(t) else t


def read_stream(c, rid):
    """Reads the lines of request rid up to its final one: (chunks, heartbeats, final)."""
    chunks, beats = [], 0
    while True:
        r = c.recv()
        assert r["id"] == rid, "a line for %r while reading %r: %r" % (r["id"], rid, r)
        if "chunk" in r:
            assert r["seq"] == len(chunks), "seq %r after %d chunks" % (r["seq"], len(chunks))
            assert set(r) == {"id", "chunk", "seq"}, r
            chunks.append(r["chunk"])
        elif r.get("heartbeat") is True:
            assert set(r) == {"id", "heartbeat"}, r
            beats += 1
        else:
            assert "ok" in r, r
            return chunks, beats, r


def assert_nothing_more(test, c):
    """The next line on c is the answer to a pool.ping sent now: nothing
    else was written after the stream's final line."""
    c.send({"id": "after", "type": "pool.ping"})
    test.assertEqual(c.recv()["id"], "after")


def read(path):
    with open(path) as f:
        return f.read()


def stats(s):
    with s.client() as c:
        return c.stats()


class Models:
    """Each model's tests; subclasses set MODEL and the agents."""
    MODEL = None
    TOKENS = None
    STREAMER = None

    def server(self, agent=None, args=(), **kw):
        return Server(agent=agent or self.TOKENS, workers=kw.pop("workers", 1),
                      args=["--python-path", AGENTS_DIR, "--worker-model", self.MODEL, "--concurrency", "8",
                            "--retry-delay", "10"] + list(args), **kw)

    def returned(self, value):
        """What the handler's return value becomes: an async generator has none."""
        return None if self.MODEL == "async" else value

    def test_chunks_in_order_then_exactly_one_final_line(self):
        with self.server() as s, s.client() as c:
            for typ in ("tokens", "emit"):
                c.send({"id": typ, "type": typ, "data": {"n": 50, "size": 16}, "stream": True})
                chunks, beats, final = read_stream(c, typ)
                self.assertEqual(chunks, [token(i, 16) for i in range(50)], typ)
                self.assertEqual(beats, 0)
                want = {"chunks": 50} if typ == "emit" else self.returned({"chunks": 50})
                self.assertEqual(final, {"id": typ, "ok": True, "result": want})
                assert_nothing_more(self, c)
            st = c.stats()["streams"]
            self.assertEqual((st["open"], st["total"], st["chunksSent"], st["ended"]["ok"]), (0, 2, 100, 2), st)
            self.assertEqual(st["chunkBytesSent"], 100 * 18)  # each chunk a JSON string of 16 characters

    def test_without_stream_the_chunks_are_collected_in_one_answer(self):
        with self.server() as s, s.client() as c:
            for extra in ({}, {"stream": False}):
                r = c.request("tokens", {"n": 5, "size": 4}, **extra)
                self.assertEqual(r["result"], {"chunks": [token(i, 4) for i in range(5)],
                                               "return": self.returned({"chunks": 5})})
            r = c.request("emit", {"n": 0})  # a plain def that emitted nothing did not stream
            self.assertEqual(r["result"], {"chunks": 0})
            r = c.request("tokens", {"n": 0})  # a generator streams, even with no chunk
            self.assertEqual(r["result"], {"chunks": [], "return": self.returned({"chunks": 0})})
            assert_nothing_more(self, c)
            st = c.stats()["streams"]
            self.assertEqual((st["chunksSent"], st["chunksCollected"]), (0, 10), st)

    def test_collected_answer_over_max_message_bytes_is_refused(self):
        with self.server(args=["--max-message-bytes", "4096"]) as s, s.client() as c:
            r = c.request("tokens", {"n": 100, "size": 100})
            self.assertFalse(r["ok"])
            self.assertEqual(r["error"]["code"], "agent_error")
            self.assertEqual(r["error"]["message"], "stream too large to collect; send stream: true")
            c.send({"id": "s", "type": "tokens", "data": {"n": 100, "size": 100}, "stream": True})
            chunks, _, final = read_stream(c, "s")
            self.assertEqual(len(chunks), 100)
            self.assertTrue(final["ok"], final)

    def test_credit_comes_back_once_per_half_window_not_per_chunk(self):
        """500 paced chunks of 10 JSON bytes each (each its own write to the
        client): with a 1 KiB window the worker gets a CREDIT per 512 bytes
        read at most, so 5,000 bytes take at most 10 frames; within half of
        the 256 KiB default it gets none.  (Per chunk it would be ~500.)"""
        for window, most in ((1024, 5000 // 512), (256 * 1024, 0)):
            with self.server(args=["--stream-window-bytes", str(window)]) as s, s.client() as c:
                c.send({"id": "p", "type": "tokens", "data": {"n": 500, "size": 8, "ms": 1}, "stream": True})
                chunks, _, final = read_stream(c, "p")
                self.assertEqual(len(chunks), 500)
                self.assertTrue(final["ok"], final)
                got = c.request("agent.metrics", {"worker": "worker-0"})["result"]["stream_credits"]
                self.assertLessEqual(got, most, "window %d" % window)
                if window < 5000:
                    self.assertGreaterEqual(got, (5000 - window) // 1024, "the stream needed credit to end")

    def test_a_slow_reader_holds_only_its_own_window(self):
        """Client A stops reading a stream of 3000 x 64 KiB chunks (196 MB).
        The master buffers at most about a window of it, and (async, gevent)
        another stream on the same worker runs to its end meanwhile."""
        window = 256 * 1024
        with self.server(args=["--stream-window-bytes", str(window)]) as s, s.client() as a:
            base_kb = vm_rss_kb(s.proc.pid)
            a.send({"id": "slow", "type": "tokens", "data": {"n": 3000, "size": 65536}, "stream": True})
            wait_for(lambda: stats(s)["streams"]["chunksSent"] > 0, what="the slow stream's first chunk")
            if self.MODEL != "sync":
                with s.client() as b:
                    b.send({"id": "fast", "type": "tokens", "data": {"n": 300, "size": 100}, "stream": True})
                    chunks, _, final = read_stream(b, "fast")
                    self.assertEqual(len(chunks), 300)
                    self.assertTrue(final["ok"], final)
            # the slow stream has stopped: its chunk count holds still over many looks
            last = [None, 0]

            def still():
                n = stats(s)["streams"]["chunksSent"]
                last[1] = last[1] + 1 if n == last[0] else 0
                last[0] = n
                return last[1] >= 20
            wait_for(still, what="the slow stream to stop")
            st = stats(s)
            self.assertLess(st["streams"]["chunksSent"] - (300 if self.MODEL != "sync" else 0), 3000 // 4, st)
            self.assertLess(st["buffered"]["highWatermark"], window + 2 * 65600 + (1 << 20), st["buffered"])
            self.assertLess(vm_rss_kb(s.proc.pid) - base_kb, 64 * 1024)
            self.assertEqual(st["streams"]["open"], 1)
            # reading again, the rest comes, in order
            chunks, _, final = read_stream(a, "slow")
            self.assertEqual(len(chunks), 3000)
            self.assertEqual(chunks[2999], token(2999, 65536))
            self.assertTrue(final["ok"], final)
            self.assertLess(stats(s)["buffered"]["highWatermark"], window + 2 * 65600 + (1 << 20))

    def test_worker_dying_before_the_first_chunk_is_retried(self):
        with self.server(agent=self.STREAMER) as s, s.client() as c:
            c.send({"id": "x", "type": "crash_before", "data": {}, "stream": True})
            chunks, _, final = read_stream(c, "x")
            self.assertEqual(chunks, ["a", "b"])
            self.assertEqual(final, {"id": "x", "ok": True, "result": self.returned("retried")})
            self.assertGreaterEqual(c.stats()["messages"]["retried"], 1)

    def test_worker_dying_after_chunks_is_partial_and_not_retried(self):
        with self.server(agent=self.STREAMER) as s, s.client() as c, tempfile.TemporaryDirectory() as d:
            gate = os.path.join(d, "gate")
            c.send({"id": "x", "type": "crash_after", "data": {"k": 3, "file": gate}, "stream": True})
            for i in range(3):
                self.assertEqual(c.recv(), {"id": "x", "chunk": "k%d" % i, "seq": i})
            open(gate, "w").close()
            _, _, final = read_stream(c, "x")
            self.assertFalse(final["ok"])
            err = final["error"]
            self.assertEqual((err["code"], err["partial"], err["chunks"], err["attempts"]),
                             ("worker_crashed", True, 3, 1), err)
            st = c.stats()
            self.assertEqual(st["messages"]["retried"], 0)
            self.assertEqual(st["streams"]["ended"]["worker_crashed"], 1)
            dlq = s.path + ".deadletter.jsonl"
            with open(dlq) as f:
                recs = [json.loads(line) for line in f]
            self.assertEqual(len(recs), 1)
            self.assertEqual((recs[0]["id"], recs[0]["partial"], recs[0]["chunks"]), ("x", True, 3), recs[0])
            # without "stream": true nothing reached the client: retried as before
            with tempfile.TemporaryDirectory() as d2:
                open(os.path.join(d2, "gate"), "w").close()
                r = c.request("crash_after", {"k": 2, "file": os.path.join(d2, "gate")}, retry=False)
                self.assertEqual(r["error"]["code"], "worker_crashed")
                self.assertNotIn("partial", r["error"])

    def test_deadline_mid_stream_ends_it_timeout_after_the_chunks(self):
        with self.server(agent=self.STREAMER) as s, s.client() as c, tempfile.TemporaryDirectory() as d:
            marker = os.path.join(d, "marker")
            c.send({"id": "x", "type": "forever", "timeoutMs": 300, "stream": True,
                    "data": {"file": os.path.join(d, "never"), "marker": marker}})
            chunks, _, final = read_stream(c, "x")
            self.assertEqual(chunks, ["c0"])
            self.assertEqual(final["error"]["code"], "timeout", final)
            assert_nothing_more(self, c)
            if self.MODEL != "sync":  # a sync worker is killed; a task or greenlet is cancelled
                wait_for(lambda: os.path.exists(marker), what="the handler's finally block")
                self.assertIn(read(marker), ("CancelledError", "GreenletExit", "GeneratorExit"))
            wait_for(lambda: stats(s)["streams"]["open"] == 0, what="the stream to end")
            self.assertEqual(stats(s)["streams"]["ended"]["timeout"], 1)
            c.send({"id": "y", "type": "crash_before", "data": {}, "stream": True})
            self.assertEqual(read_stream(c, "y")[0], ["a", "b"])  # the pool serves on

    def test_retry_on_timeout_never_reruns_a_stream_with_chunks_sent(self):
        with self.server(agent=self.STREAMER, args=["--retry-on-timeout"]) as s, s.client() as c, \
                tempfile.TemporaryDirectory() as d:
            c.send({"id": "x", "type": "forever", "timeoutMs": 300, "stream": True,
                    "data": {"file": os.path.join(d, "never")}})
            chunks, _, final = read_stream(c, "x")  # a rerun would send c0 (seq 0) again
            self.assertEqual((chunks, final["error"]["code"]), (["c0"], "timeout"), final)
            assert_nothing_more(self, c)
            self.assertEqual(c.stats()["messages"]["retried"], 0)

    def test_disconnect_mid_stream_cancels_it(self):
        with self.server(agent=self.STREAMER) as s, tempfile.TemporaryDirectory() as d:
            marker = os.path.join(d, "marker")
            with s.client() as c:
                c.send({"id": "x", "type": "forever", "stream": True, "data": {"ms": 5, "marker": marker}})
                for i in range(3):
                    self.assertEqual(c.recv()["chunk"], "c%d" % i)
            wait_for(lambda: os.path.exists(marker), what="the handler's finally block")
            self.assertIn(read(marker), ("CancelledError", "GreenletExit", "GeneratorExit"))
            wait_for(lambda: stats(s)["streams"]["open"] == 0, what="the stream to end")
            self.assertEqual(stats(s)["streams"]["ended"]["cancelled"], 1)
            with s.client() as c:
                c.send({"id": "y", "type": "crash_before", "data": {}, "stream": True})
                self.assertEqual(read_stream(c, "y")[0], ["a", "b"])
                self.assertEqual(c.stats()["workerEvents"]["crashed"], 1)  # crash_before's; none for the cancel

    def test_pool_cancel_stops_a_running_stream(self):
        with self.server(agent=self.STREAMER) as s, s.client() as c, tempfile.TemporaryDirectory() as d:
            marker = os.path.join(d, "marker")
            c.send({"id": "x", "type": "forever", "stream": True, "data": {"ms": 5, "marker": marker}})
            for i in range(2):
                self.assertEqual(c.recv()["chunk"], "c%d" % i)
            c.send({"id": "c", "type": "pool.cancel", "data": {"id": "x"}})
            got = {}
            while len(got) < 2:  # chunks may still come before the two answers
                r = c.recv()
                if "chunk" not in r:
                    got[r["id"]] = r
            self.assertEqual(got["c"]["result"], {"found": "running"})
            self.assertEqual(got["x"]["error"]["code"], "cancelled", got["x"])
            wait_for(lambda: os.path.exists(marker), what="the handler's finally block")
            self.assertIn(read(marker), ("CancelledError", "GreenletExit", "GeneratorExit"))
            assert_nothing_more(self, c)
            self.assertEqual(c.stats()["streams"]["ended"]["cancelled"], 1)

    def test_idle_stream_gets_heartbeats(self):
        with self.server(agent=self.STREAMER, args=["--stream-heartbeat-ms", "50"]) as s, s.client() as c, \
                tempfile.TemporaryDirectory() as d:
            gate = os.path.join(d, "gate")
            c.send({"id": "x", "type": "quiet", "stream": True, "data": {"file": gate}})
            for _ in range(2):
                self.assertEqual(c.recv(), {"id": "x", "heartbeat": True})
            open(gate, "w").close()
            chunks, _, final = read_stream(c, "x")
            self.assertEqual(chunks, ["late"])
            self.assertEqual(final["result"], self.returned("done"))
            self.assertGreaterEqual(c.stats()["streams"]["heartbeats"], 2)
            # a message without "stream": true gets none
            c.send({"id": "y", "type": "quiet", "data": {"file": gate}})
            self.assertEqual(c.recv()["id"], "y")


class Sync(Models, unittest.TestCase):
    MODEL = "sync"
    TOKENS = "pyagents.examples.tokens:TokensAgent"
    STREAMER = "streamer:SyncStreamer"


class Async(Models, unittest.TestCase):
    MODEL = "async"
    TOKENS = "pyagents.examples.tokens:AsyncTokensAgent"
    STREAMER = "streamer:AsyncStreamer"


@unittest.skipUnless(HAVE_GEVENT, "gevent is not installed")
@skip_without_greenlet_support
class Gevent(Models, unittest.TestCase):
    MODEL = "gevent"
    TOKENS = "pyagents.examples.tokens:GeventTokensAgent"
    STREAMER = "streamer:GeventStreamer"


class Counters(unittest.TestCase):
    def test_prometheus_counters_and_access_log_chunk_counts(self):
        from test_metrics import check_with_promtool, metrics_server, parse_metrics, sample
        with tempfile.TemporaryDirectory() as d:
            access = os.path.join(d, "access.log")
            srv, ep = metrics_server(agent="pyagents.examples.tokens:AsyncTokensAgent", workers=1,
                                     args=["--worker-model", "async", "--access-log", access])
            with srv, srv.client() as c:
                c.send({"id": "s", "type": "tokens", "data": {"n": 7, "size": 4}, "stream": True})
                self.assertEqual(len(read_stream(c, "s")[0]), 7)
                self.assertTrue(c.request("tokens", {"n": 3})["ok"])  # collected
                self.assertTrue(c.request("echo-less", None)["error"])  # not a stream: no chunks field
                status, _, text = ep.get("/metrics")
                self.assertEqual(status, 200)
                check_with_promtool(self, text)
                samples, families = parse_metrics(text)
                self.assertEqual(families["agentpool_stream_chunks_total"][0], "counter")
                self.assertEqual(families["agentpool_streams_open"][0], "gauge")
                self.assertEqual(sample(samples, "agentpool_stream_chunks_total", outcome="sent"), 7)
                self.assertEqual(sample(samples, "agentpool_stream_chunks_total", outcome="collected"), 3)
                self.assertEqual(sample(samples, "agentpool_stream_chunk_bytes_total"), 7 * 6)
                self.assertEqual(sample(samples, "agentpool_streams_ended_total", code="ok"), 2)
                self.assertEqual(sample(samples, "agentpool_streams_open"), 0)
            with open(access) as f:
                lines = f.read().splitlines()
            self.assertEqual(len(lines), 3, lines)
            self.assertTrue(lines[0].endswith(" outcome=ok chunks=7"), lines[0])
            self.assertTrue(lines[1].endswith(" outcome=ok chunks=3"), lines[1])
            self.assertNotIn("chunks=", lines[2])


class Requests(unittest.TestCase):
    def test_stream_must_be_a_boolean(self):
        with Server(workers=1) as s, s.client() as c:
            for bad in (1, "true", None, [], {}):
                r = c.request("echo", {"x": 1}, stream=bad)
                self.assertEqual(r["error"], {"code": "bad_request", "message": "stream must be true or false"})
            # an echo agent that does not stream: "stream": true changes nothing but the stats
            r = c.request("echo", {"x": 1}, stream=True)
            self.assertEqual(r, {"id": r["id"], "ok": True, "result": {"x": 1}})
            r = c.request("echo", {"x": 1}, stream=False)
            self.assertTrue(r["ok"])


if __name__ == "__main__":
    main()
