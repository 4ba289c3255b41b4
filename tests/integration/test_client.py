# SPDX-License-Identifier: BSD-2-Clause
"""test_client.py - pyagents.client against the real agentpoold.

Every error code the server produces reaches the caller as its class
(bad_request, too_large, queue_full, timeout, worker_crashed with its
attempts and exit status, agent_error with the remote class, cancelled,
circuit_open with retry_after, shutting_down, too_many_connections);
10,000 concurrent requests through one AsyncClient on one connection;
threads sharing one Client on one connection; a stream's chunks and
result, and leaving its loop early cancels it on the server; a server
that goes away fails the request in flight with ConnectionLost(sent=True)
(never a hang), a missing server is ConnectionLost(sent=False), and the
client reconnects by itself (to a restarted server, and after the server
closed an idle connection); send_with_retry gets through a full queue and
an open breaker; pip installs the client from pyproject.toml offline;
a gevent agent calls the same server through Client
while its one worker serves the nested request.  Waits are conditions
polled until a deadline, never durations.
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DEADLINE, SRCDIR, Gate, Server, main, server_stats,  # noqa: E402
                     skip_without_greenlet_support, wait_for, wait_stats)
sys.path.insert(0, SRCDIR)
from pyagents.client import (AgentError, AgentpoolError, AsyncClient, BadRequest, Cancelled,  # noqa: E402
                             CircuitOpen, Client, ConnectionLost, QueueFull, ShuttingDown, Timeout,
                             TooLarge, TooManyConnections, WorkerCrashed)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
GATE = "pyagents.examples.gate:GateAgent"

try:
    import gevent  # noqa: F401
    HAVE_GEVENT = True
except ImportError:
    HAVE_GEVENT = False


def accepted(server):
    return server_stats(server)["connectionsTotal"]["accepted"]


def in_thread(fn, *a, **kw):
    """Runs fn in a thread; returns (thread, box) where box holds
    "result" or "error" once it ended."""
    box = {}

    def run():
        try:
            box["result"] = fn(*a, **kw)
        except BaseException as e:  # noqa: B902 - handed to the test
            box["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


class ErrorCodes(unittest.TestCase):
    def test_bad_request_and_agent_error(self):
        with Server(agent="pyagents.examples.raising:RaiseAgent", workers=1) as s, Client(s.path) as c:
            with self.assertRaises(BadRequest) as cm:
                c.send("pool.nope")
            self.assertEqual(cm.exception.code, "bad_request")
            self.assertIn("unknown pool request type", cm.exception.message)
            self.assertFalse(cm.exception.response["ok"])
            with self.assertRaises(AgentError) as cm:
                c.send("x", {"message": "kaboom"})
            self.assertEqual(cm.exception.exception, "ValueError")
            self.assertEqual(cm.exception.message, "kaboom")
            self.assertIsInstance(cm.exception, AgentpoolError)

    def test_too_large_goes_to_the_request_that_was_too_large(self):
        with Server(workers=1, config={"maxMessageBytes": 4096}) as s, Client(s.path) as c:
            small = c.submit("echo", "s" * 100)
            with self.assertRaises(TooLarge) as cm:
                c.send("echo", "x" * 10000)
            self.assertEqual(cm.exception.code, "too_large")
            self.assertEqual(small.wait(), "s" * 100)
            self.assertEqual(c.send("echo", 1), 1)  # the connection stays usable

    def test_queue_full_timeout_and_cancelled(self):
        with tempfile.TemporaryDirectory() as d, \
                Server(agent=GATE, workers=1, config={"overflow": "reject", "messageQueueSize": 1}) as s, \
                Client(s.path) as c:
            gate = Gate(d)
            held = c.submit("gate", gate.data(1))
            wait_stats(s, lambda st: st["inFlight"] == 1, "the gate message to run")
            queued = c.submit("gate", gate.data(2))
            wait_stats(s, lambda st: st["queue"]["depth"] == 1, "the second to be queued")
            with self.assertRaises(QueueFull):
                c.send("gate", gate.data(3))
            self.assertEqual(c.cancel(queued), "queued")
            with self.assertRaises(Cancelled):
                queued.wait()
            self.assertEqual(c.cancel(queued), "unknown")
            with self.assertRaises(Timeout) as cm:
                c.send("gate", gate.data(4), timeout=0.05)  # queued behind the held one
            self.assertEqual(cm.exception.code, "timeout")
            gate.release()
            self.assertEqual(held.wait(), {"released": True, "seq": 1})

    def test_worker_crashed_carries_attempts_and_exit_status(self):
        with Server(agent="pyagents.examples.crash:CrashAgent", workers=1,
                    args=["--max-retries", "1", "--retry-delay", "10"]) as s, Client(s.path) as c:
            with self.assertRaises(WorkerCrashed) as cm:
                c.send("boom", {"code": 3})
            self.assertEqual(cm.exception.attempts, 2)
            self.assertEqual(cm.exception.exit_status, 3)
            self.assertIsNone(cm.exception.signal)
            self.assertFalse(cm.exception.partial)

    def test_circuit_open_carries_retry_after(self):
        with Server(agent="pyagents.examples.raising:RaiseAgent", workers=1,
                    args=["--breaker-failure-threshold", "1", "--breaker-reset-timeout", "60000"]) as s, \
                Client(s.path) as c:
            with self.assertRaises(AgentError):
                c.send("t")
            with self.assertRaises(CircuitOpen) as cm:
                c.send("t")
            self.assertGreater(cm.exception.retry_after, 0)
            self.assertEqual(cm.exception.retry_after, cm.exception.retry_after_ms / 1000.0)

    def test_shutting_down(self):
        with tempfile.TemporaryDirectory() as d, \
                Server(agent=GATE, workers=1, args=["--shutdown-timeout", "60000"]) as s, Client(s.path) as c:
            gate = Gate(d)
            held = c.submit("gate", gate.data(1))
            wait_stats(s, lambda st: st["inFlight"] == 1, "the gate message to run")
            s.signal(signal.SIGTERM)
            wait_for(lambda: "shutting down (SIGTERM)" in s.log(), what="the server to start draining")
            with self.assertRaises(ShuttingDown):
                c.send("gate", gate.data(2))
            gate.release()
            self.assertEqual(held.wait()["seq"], 1)

    def test_too_many_connections(self):
        with Server(workers=1, config={"maxConnections": 1}) as s, s.client() as holder:
            holder.call("pool.ping")
            with self.assertRaises(TooManyConnections):
                Client(s.path).send("echo", 1)


class Concurrency(unittest.TestCase):
    def test_ten_thousand_concurrent_requests_through_one_async_client(self):
        with Server(workers=2) as s:
            before = accepted(s)

            async def run():
                async with AsyncClient(s.path) as ac:
                    return await asyncio.gather(*[ac.send("echo", {"i": i}) for i in range(10000)])
            results = asyncio.run(run())
            self.assertEqual(results, [{"i": i} for i in range(10000)])
            self.assertEqual(accepted(s) - before, 2)  # the client's one, and accepted()'s own

    def test_threads_share_one_client_and_one_connection(self):
        with Server(workers=2) as s, Client(s.path) as c:
            before = accepted(s)
            errors = []

            def worker(t):
                for i in range(200):
                    v = {"t": t, "i": i}
                    if c.send("echo", v) != v:
                        errors.append(v)
            threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(DEADLINE)
            self.assertEqual(errors, [])
            self.assertEqual(accepted(s) - before, 2)


class Streams(unittest.TestCase):
    def server(self, agent, model):
        return Server(agent=agent, workers=1,
                      args=["--python-path", AGENTS_DIR, "--worker-model", model, "--concurrency", "8"])

    def test_stream_iterates_chunks_then_sets_result(self):
        with self.server("pyagents.examples.tokens:TokensAgent", "sync") as s, Client(s.path) as c:
            st = c.stream("tokens", {"n": 5, "size": 4})
            self.assertEqual(list(st), ["t0xx", "t1xx", "t2xx", "t3xx", "t4xx"])
            self.assertEqual(st.result, {"chunks": 5})

    def test_breaking_out_of_a_stream_cancels_it(self):
        with tempfile.TemporaryDirectory() as d, \
                self.server("streamer:AsyncStreamer", "async") as s, Client(s.path) as c:
            marker = os.path.join(d, "marker")
            got = []
            for chunk in c.stream("forever", {"ms": 5, "marker": marker}):
                got.append(chunk)
                if len(got) == 3:
                    break
            self.assertEqual(got, ["c0", "c1", "c2"])
            wait_for(lambda: os.path.exists(marker), what="the handler's finally block")
            with open(marker) as f:
                self.assertEqual(f.read(), "CancelledError")
            self.assertEqual(server_stats(s)["messages"]["cancels"]["running"], 1)
            self.assertEqual(c.send("pool.ping")["pong"], True)

    def test_async_stream_and_cancel_on_break(self):
        with tempfile.TemporaryDirectory() as d, self.server("streamer:AsyncStreamer", "async") as s:
            marker = os.path.join(d, "marker")

            async def run():
                async with AsyncClient(s.path) as ac:
                    got = []
                    async with await ac.stream("forever", {"ms": 5, "marker": marker}) as st:
                        async for chunk in st:
                            got.append(chunk)
                            if len(got) == 2:
                                break
                    return got, await ac.ping()
            got, pong = asyncio.run(run())
            self.assertEqual(got, ["c0", "c1"])
            self.assertTrue(pong["pong"])
            wait_for(lambda: os.path.exists(marker), what="the handler's finally block")
            self.assertEqual(server_stats(s)["messages"]["cancels"]["running"], 1)


class Reconnect(unittest.TestCase):
    def test_no_server_is_not_sent(self):
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaises(ConnectionLost) as cm:
                Client(os.path.join(d, "none.sock")).send("echo", 1)
            self.assertFalse(cm.exception.sent)

    def test_server_gone_fails_in_flight_then_client_reconnects(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ap.sock")
            gate = Gate(d)
            s = Server(agent=GATE, workers=1, socket_path=path).start()
            try:
                with Client(path) as c:
                    held = c.submit("gate", gate.data(1))
                    wait_stats(s, lambda st: st["inFlight"] == 1, "the gate message to run")
                    s.stop(signal.SIGKILL)
                    with self.assertRaises(ConnectionLost) as cm:
                        held.wait()
                    self.assertTrue(cm.exception.sent)
                    s.close()
                    os.unlink(path)
                    s = Server(workers=1, socket_path=path).start()
                    self.assertEqual(c.send("echo", 7), 7)
            finally:
                s.close()

    def test_reconnects_after_the_server_closed_an_idle_connection(self):
        with Server(workers=1, config={"idleConnectionTimeout": 200}) as s, Client(s.path) as c:
            self.assertEqual(c.send("echo", 1), 1)
            wait_stats(s, lambda st: st["connectionsTotal"]["idleClosed"] >= 1, "the idle close")
            self.assertEqual(c.send("echo", 2), 2)

            async def run():
                async with AsyncClient(s.path) as ac:
                    first = await ac.send("echo", 3)
                    n = server_stats(s)["connectionsTotal"]["idleClosed"]
                    while server_stats(s)["connectionsTotal"]["idleClosed"] == n:
                        await asyncio.sleep(0.01)
                    return first, await ac.send("echo", 4)
            self.assertEqual(asyncio.run(run()), (3, 4))


class Retries(unittest.TestCase):
    def test_send_with_retry_gets_through_a_full_queue(self):
        with tempfile.TemporaryDirectory() as d, \
                Server(agent=GATE, workers=1, config={"overflow": "reject", "messageQueueSize": 1}) as s, \
                Client(s.path) as c:
            gate = Gate(d)
            held = c.submit("gate", gate.data(1))
            wait_stats(s, lambda st: st["inFlight"] == 1, "the gate message to run")
            queued = c.submit("gate", gate.data(2))
            wait_stats(s, lambda st: st["queue"]["depth"] == 1, "the second to be queued")
            t, box = in_thread(c.send_with_retry, "gate", gate.data(3), max_retries=1000, backoff=0.01,
                               max_backoff=0.05)
            wait_stats(s, lambda st: st["queue"]["rejected"] >= 2, "two queue_full refusals")
            gate.release()
            t.join(DEADLINE)
            self.assertEqual(box, {"result": {"released": True, "seq": 3}})
            self.assertEqual(held.wait()["seq"], 1)
            self.assertEqual(queued.wait()["seq"], 2)

    def test_send_with_retry_waits_out_an_open_breaker(self):
        with tempfile.TemporaryDirectory() as d, \
                Server(agent=GATE, workers=1, args=["--breaker-failure-threshold", "1",
                                                    "--breaker-reset-timeout", "300"]) as s, \
                Client(s.path) as c:
            gate = Gate(d)
            gate.release()
            with self.assertRaises(AgentError):
                c.send("gate", {})  # no file: ValueError, which opens the breaker
            with self.assertRaises(CircuitOpen):
                c.send("gate", gate.data(1))
            self.assertEqual(c.send_with_retry("gate", gate.data(2), max_retries=100, backoff=0.01),
                             {"released": True, "seq": 2})
            self.assertGreaterEqual(server_stats(s)["breakers"]["gate"]["rejected"], 2)

    def test_lost_answer_is_resent_only_when_idempotent(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "ap.sock")
            gate = Gate(d)
            for idempotent in (False, True):
                s = Server(agent=GATE, workers=1, socket_path=path).start()
                with Client(path) as c:
                    t, box = in_thread(c.send_with_retry, "gate", gate.data(1), idempotent=idempotent,
                                       max_retries=100000, backoff=0.01, max_backoff=0.05)
                    wait_stats(s, lambda st: st["inFlight"] == 1, "the gate message to run")
                    s.stop(signal.SIGKILL)
                    if idempotent:
                        s.close()
                        os.unlink(path)
                        s = Server(workers=1, socket_path=path).start()
                        t.join(DEADLINE)
                        self.assertEqual(box, {"result": gate.data(1)})  # echo answered the resend
                    else:
                        t.join(DEADLINE)
                        self.assertIsInstance(box.get("error"), ConnectionLost)
                        self.assertTrue(box["error"].sent)
                s.close()
                if os.path.exists(path):
                    os.unlink(path)


class Packaging(unittest.TestCase):
    def test_pip_installs_the_client_from_the_tree(self):
        """pyproject.toml builds offline with the system setuptools (no
        PyPI, no build isolation) into a wheel holding pyagents and
        pyagents.client, which works from where pip put it."""
        try:
            import setuptools  # noqa: F401
            import wheel  # noqa: F401
        except ImportError:
            self.skipTest("python3-setuptools / python3-wheel not installed")
        with tempfile.TemporaryDirectory() as d, Server(workers=1) as s:
            src, target = os.path.join(d, "src"), os.path.join(d, "site")
            os.makedirs(os.path.join(src, "docs"))
            shutil.copy(os.path.join(SRCDIR, "pyproject.toml"), src)
            shutil.copy(os.path.join(SRCDIR, "docs", "client.md"), os.path.join(src, "docs"))
            shutil.copytree(os.path.join(SRCDIR, "pyagents"), os.path.join(src, "pyagents"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                                "--no-index", "--target", target, src], capture_output=True, text=True,
                               timeout=max(DEADLINE, 300), cwd=d)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])
            code = ("import sys, json; sys.path.insert(0, %r); import pyagents.client as pc; "
                    "print(json.dumps([pc.__file__, pc.Client(%r).send('echo', [1, 2])]))" % (target, s.path))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE, cwd=d)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout), [os.path.join(target, "pyagents", "client", "__init__.py"),
                                                    [1, 2]])
            self.assertFalse(os.path.exists(os.path.join(target, "pyagents", "examples")))


@unittest.skipUnless(HAVE_GEVENT, "gevent is not installed")
class Gevent(unittest.TestCase):
    @skip_without_greenlet_support
    def test_a_gevent_agent_calls_the_same_server_through_client(self):
        with Server(agent="gevagent:GeventAgent", workers=1,
                    args=["--python-path", AGENTS_DIR, "--worker-model", "gevent", "--concurrency", "20"]) as s, \
                Client(s.path) as c:
            pid = s.worker_pids()[0]
            calls = [c.submit("call", {"socket": s.path, "type": "whoami"}) for _ in range(10)]
            for r in calls:
                got = r.wait()
                # the one worker answered the nested request while its
                # caller's greenlet waited on the socket
                self.assertEqual(got["pid"], pid)
                self.assertEqual(got["answer"]["pid"], pid)


if __name__ == "__main__":
    main()
