# SPDX-License-Identifier: BSD-2-Clause
"""agentpoolctl send --stream against a fake agentpoold that streams.

The real server's streams come from other work (issue 13), so these
tests run the real agentpoolctl against a fake written here that speaks
the wire contract of docs/protocol.md for streams: for a request with
"stream": true, chunk lines {"id":ID,"chunk":VALUE,"seq":N}, heartbeat
lines {"id":ID,"heartbeat":true}, then one final answer; and pool.cancel
{"id": X} answered {"found": "running"|"unknown"}, the cancelled request
then getting its own final line with code "cancelled".  What the fake
streams is told by the request's data: the chunk values as raw JSON text
(so byte-for-byte output can be checked), where heartbeats go, whether to
hold the final answer until a cancel, and whether to answer a cancel's
request at all.  Every test checks exit status and output exactly; none
asserts how long anything took.
"""

import json
import signal
import subprocess
import threading
import time
import unittest

from harness import full_backlog_socket
from test_ctl import (CTL, EXIT_ANSWER_ERROR, EXIT_OK, EXIT_USAGE, RUN_TIMEOUT, CtlTestCase,
                      FakeServer, dumps, run)

EXIT_INTERRUPTED = 130


class StreamFakeServer(FakeServer):
    """FakeServer plus streams and pool.cancel, one thread per stream.

    A request with "stream": true streams what its data says:
      raw:        chunk values as JSON text, sent as they are written
      heartbeats: indexes before which chunk a heartbeat line goes
                  (len(raw) for one after the last chunk)
      gap:        seconds between chunks
      hold:       after the chunks, keep the final answer until cancelled
      final:      "ok" (result {"n": chunks sent}) or "fail" (agent_error)
      beat:       while holding, and after a cancel that gets no final
                  line, heartbeats every 50 ms
    pool.cancel of a running stream answers {"found": "running"} and the
    stream ends with a "cancelled" final line (unless the server was made
    with final_on_cancel=False: then that line never comes); of anything
    else {"found": "unknown"}.  Each cancel's data id is kept in
    self.cancels, each raw request line in self.requests."""

    def __init__(self, final_on_cancel=True):
        self.final_on_cancel = final_on_cancel
        self.cancels = []
        self.cancel_seen = threading.Event()
        super().__init__()

    def _stream(self, conn, wlock, req, cancelled, running, rid_text):
        rid = req["id"]
        d = req.get("data") or {}
        raw, hbs = d.get("raw", []), set(d.get("heartbeats", []))
        sent = 0

        def send(line):
            with wlock:
                conn.sendall(line.encode() + b"\n")

        try:
            for i, value in enumerate(raw + [None]):
                if i in hbs:
                    send('{"id":%s,"heartbeat":true}' % rid_text)
                if value is None or cancelled.is_set():
                    break
                send('{"id":%s,"chunk":%s,"seq":%d}' % (rid_text, value, i))
                sent += 1
                if cancelled.wait(d.get("gap", 0)):
                    break
            if d.get("hold") and not cancelled.is_set():
                while not cancelled.wait(0.05) and not self.stop.is_set():
                    if d.get("beat"):
                        send('{"id":%s,"heartbeat":true}' % rid_text)
            with self.lock:
                running.pop(rid, None)
            if cancelled.is_set():
                while not self.final_on_cancel and d.get("beat") and not self.stop.wait(0.05):
                    send('{"id":%s,"heartbeat":true}' % rid_text)
                if self.final_on_cancel:
                    send(dumps({"id": rid, "ok": False,
                                "error": {"code": "cancelled", "message": "cancelled by the client"}}))
            elif d.get("final") == "fail":
                send(dumps({"id": rid, "ok": False,
                            "error": {"code": "agent_error", "message": "boom after %d" % sent}}))
            else:
                send(dumps({"id": rid, "ok": True, "result": {"n": sent}}))
        except OSError:
            pass

    def _serve(self, conn):
        buf, wlock, running = b"", threading.Lock(), {}
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                lines = buf.split(b"\n")
                buf = lines.pop()
                for line in lines:
                    with self.lock:
                        self.requests.append(line)
                    req = json.loads(line)
                    if req.get("type") == "pool.cancel":
                        target = (req.get("data") or {}).get("id")
                        with self.lock:
                            self.cancels.append(target)
                            ev = running.get(target)
                        found = "running" if ev is not None else "unknown"
                        with wlock:
                            conn.sendall(dumps({"id": req["id"], "ok": True,
                                                "result": {"found": found}}).encode() + b"\n")
                        self.cancel_seen.set()
                        if ev is not None:
                            ev.set()
                    elif req.get("stream") is True:
                        ev = threading.Event()
                        with self.lock:
                            running[req["id"]] = ev
                        rid_text = json.dumps(req["id"], separators=(",", ":"))
                        threading.Thread(target=self._stream, daemon=True,
                                         args=(conn, wlock, req, ev, running, rid_text)).start()
                    else:
                        with wlock:
                            conn.sendall(dumps(self.answer(line)).encode() + b"\n")
        except OSError:
            pass
        finally:
            # the stream threads may still write: leave the socket to them
            # until the test's server is closed
            self.stop.wait()
            conn.close()


class StreamTestCase(CtlTestCase):
    def stream_server(self, **kw):
        s = StreamFakeServer(**kw)
        self.servers.append(s)
        return s


class TestSendStream(StreamTestCase):
    def test_stream_prints_each_chunk_value_then_the_final_answer(self):
        srv = self.stream_server()
        raw = ['"t\\u00e9"', '{"a": [1, 2]}', "1.50", "12345678901234567890", "null"]
        data = dumps({"raw": raw, "heartbeats": [0, 2, 5]})
        r = self.ctl(srv, "send", "--stream", "tokens", data)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        # the values byte for byte, heartbeats not shown, then the answer as received
        self.assertEqual(r.stdout.decode().splitlines(),
                         raw + ['{"id":1,"ok":true,"result":{"n":5}}'])
        self.assertEqual(r.stderr, b"")
        self.assertEqual(srv.requests, [b'{"id":1,"type":"tokens","data":' + data.encode() +
                                        b',"stream":true}'])

    def test_raw_prints_every_line_as_received(self):
        srv = self.stream_server()
        data = dumps({"raw": ['"a"', "[1, 2]"], "heartbeats": [1, 2]})
        r = self.ctl(srv, "send", "--stream", "--raw", "tokens", data)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout.decode().splitlines(), [
            '{"id":1,"chunk":"a","seq":0}',
            '{"id":1,"heartbeat":true}',
            '{"id":1,"chunk":[1, 2],"seq":1}',
            '{"id":1,"heartbeat":true}',
            '{"id":1,"ok":true,"result":{"n":2}}'])

    def test_an_error_after_chunks_exits_1_with_the_chunks_printed(self):
        srv = self.stream_server()
        r = self.ctl(srv, "send", "--stream", "tokens", dumps({"raw": ["1", "2"], "final": "fail"}))
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        self.assertEqual(r.stdout.decode().splitlines(), [
            "1", "2", '{"id":1,"ok":false,"error":{"code":"agent_error","message":"boom after 2"}}'])

    def test_a_stream_without_chunks_prints_only_the_answer(self):
        srv = self.stream_server()
        r = self.ctl(srv, "send", "--stream", "tokens", dumps({"heartbeats": [0]}))
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout, b'{"id":1,"ok":true,"result":{"n":0}}\n')

    def test_stdin_mode_counts_only_final_answers(self):
        # streamed requests piped through `send`: chunk and heartbeat lines
        # pass through as received and are not taken for answers
        srv = self.stream_server()
        reqs = [{"id": "s%d" % i, "type": "tokens", "stream": True,
                 "data": {"raw": [str(j) for j in range(i + 2)], "heartbeats": [1], "gap": 0.01}}
                for i in range(3)]
        inp = "".join(dumps(q) + "\n" for q in reqs).encode()
        r = run(["-s", srv.path, "send"], input=inp)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        lines = [json.loads(x) for x in r.stdout.decode().splitlines()]
        self.assertEqual(len([x for x in lines if "ok" in x]), 3)
        self.assertEqual(len([x for x in lines if "chunk" in x]), 2 + 3 + 4)
        self.assertEqual(len([x for x in lines if "heartbeat" in x]), 3)
        self.assertTrue(all(x["ok"] for x in lines if "ok" in x))

    def test_usage_errors(self):
        for args, text in ((["send", "--raw", "echo"], "--raw goes with --stream"),
                           (["send", "--stream"], "send --stream: TYPE missing"),
                           (["ping", "--stream"], "ping does not take --stream"),
                           (["stats", "--raw"], "stats does not take --raw")):
            r = run(args)
            self.assertEqual(r.returncode, EXIT_USAGE, (args, r.stderr))
            self.assertIn(text.encode(), r.stderr)

    def test_help_documents_stream_and_exit_130(self):
        text = run(["--help"]).stdout.decode()
        for needle in ("send --stream [--raw] TYPE [DATA]", "--stream", "--raw",
                       "\n 130  send --stream: interrupted by Ctrl-C"):
            self.assertIn(needle, text)


class TestSendStreamInterrupt(StreamTestCase):
    """Ctrl-C, as SIGINT sent to the running agentpoolctl."""

    def start(self, srv, *args):
        p = subprocess.Popen([CTL, "-s", srv.path] + list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        return p

    def read_lines(self, p, n):
        got = [p.stdout.readline() for _ in range(n)]
        self.assertTrue(all(x.endswith(b"\n") for x in got), got)
        return got

    def test_ctrl_c_sends_pool_cancel_waits_for_cancelled_and_exits_130(self):
        srv = self.stream_server()
        data = dumps({"raw": [str(i) for i in range(10000)], "gap": 0.02, "hold": True})
        p = self.start(srv, "send", "--stream", "tokens", data)
        first = self.read_lines(p, 2)
        self.assertEqual(first, [b"0\n", b"1\n"])
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, EXIT_INTERRUPTED, err)
        self.assertEqual(srv.cancels, [1])
        self.assertEqual(srv.requests[1], b'{"id":2,"type":"pool.cancel","data":{"id":1}}')
        lines = (b"".join(first) + out).decode().splitlines()
        # chunks in order up to the cancel, then the cancelled answer as received;
        # the pool.cancel answer is not on stdout
        self.assertEqual(lines[-1], '{"id":1,"ok":false,"error":{"code":"cancelled",'
                                    '"message":"cancelled by the client"}}')
        self.assertEqual(lines[:-1], [str(i) for i in range(len(lines) - 1)])
        self.assertEqual(err, b"agentpoolctl: interrupted: pool.cancel found the request running\n")

    def test_raw_shows_the_pool_cancel_answer_too(self):
        srv = self.stream_server()
        data = dumps({"raw": ['"x"'], "hold": True})
        p = self.start(srv, "send", "--stream", "--raw", "tokens", data)
        self.assertEqual(self.read_lines(p, 1), [b'{"id":1,"chunk":"x","seq":0}\n'])
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, EXIT_INTERRUPTED, err)
        self.assertEqual(sorted(out.decode().splitlines()), sorted([
            '{"id":2,"ok":true,"result":{"found":"running"}}',
            '{"id":1,"ok":false,"error":{"code":"cancelled","message":"cancelled by the client"}}']))

    def test_second_ctrl_c_exits_130_without_the_final_answer(self):
        srv = self.stream_server(final_on_cancel=False)
        data = dumps({"raw": ['"x"'], "hold": True})
        p = self.start(srv, "--timeout", "0", "send", "--stream", "tokens", data)
        self.read_lines(p, 1)
        p.send_signal(signal.SIGINT)
        self.assertTrue(srv.cancel_seen.wait(RUN_TIMEOUT))
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, EXIT_INTERRUPTED, err)
        self.assertEqual(out, b"")
        self.assertEqual(srv.cancels, [1])
        # the second Ctrl-C may come before or after ctl read the fake's answer to pool.cancel
        self.assertRegex(err, rb"agentpoolctl: interrupted: pool.cancel (found the request running|sent, not answered)\n")
        self.assertIn(b"interrupted again", err)

    def test_the_wait_after_ctrl_c_is_bounded_by_timeout(self):
        srv = self.stream_server(final_on_cancel=False)
        # heartbeats every 50 ms keep the connection from falling silent
        # for --timeout: the bound after Ctrl-C is what ends the wait
        data = dumps({"raw": ['"x"'], "hold": True, "beat": True})
        p = self.start(srv, "--timeout", "2000", "send", "--stream", "tokens", data)
        self.read_lines(p, 1)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, EXIT_INTERRUPTED, err)
        self.assertEqual(srv.cancels, [1])
        self.assertIn(b"no final answer within 2000 ms of the interrupt", err)

    def test_ctrl_c_while_connecting_ends_at_once(self):
        # a listener that never accepts, its backlog full: with --timeout 0
        # connect() waits for ever; Ctrl-C there has nothing to cancel and
        # must end the program as usual (killed by SIGINT)
        path = full_backlog_socket(self)
        # SIG_DFL in the child: a suite started in the background by a
        # shell without job control inherits SIGINT ignored, and then the
        # default action this test is about never happens
        p = subprocess.Popen([CTL, "-s", path, "--timeout", "0", "send", "--stream", "t"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.addCleanup(lambda: p.poll() is None and p.kill())
        time.sleep(0.3)  # lets it reach connect(); earlier, SIGINT ends it all the same
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(p.returncode, -signal.SIGINT, err)
        self.assertEqual(out, b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
