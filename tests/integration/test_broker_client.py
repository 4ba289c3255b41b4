# SPDX-License-Identifier: BSD-2-Clause
"""test_broker_client.py - pyagents.client and agentpool-bench through the
broker (redis:// targets, issue 20, docs/client.md, Through a broker).

A real redis-server (Debian's, a free port, started here) and real
agentpoolds with real Python workers taking work from one pool stream
(--broker url=...).  Proved here, for Client and AsyncClient alike:
 - answers: requests added through Redis come back with their own
   results, spread over two agentpoolds, 2,000 at once from one
   AsyncClient;
 - errors: an agent's exception is AgentError with the remote class, a
   bad request BadRequest, as over the socket; pool.ping is answered,
   pool.reload (an administrator's) is Forbidden;
 - streams: chunks in order, then the final result;
 - cancel: a request cancelled through the control stream while it
   waits in the stream is answered Cancelled and never runs; leaving a stream early cancels it
   where it runs;
 - retry: the client's Redis connections killed while its request runs
   (ConnectionLost(sent=True)); send_with_retry resends it with its
   idempotency key and gets the one answer of the one run;
 - QueueFull: a pool stream at its broker.maxLength refuses the add;
   AsyncClient adds the requests of one loop turn with one call of the
   add script, each line refused on its own;
 - the reply stream has a TTL while in use and is gone after close();
 - no Redis: ConnectionLost(sent=False);
 - agentpool-bench --redis drives the same load, every answer matched,
   adds the lines it writes in one turn with one call of the add script
   (each line refused on its own when the stream is full), and refuses
   bad broker targets with exact reasons;
 - agentpoolctl --socket redis://... send and send --stream print the
   answer lines as from the socket, with the same exit statuses; a full
   stream is queue_full (status 1); Ctrl-C cancels a stream where it runs
   (status 130, the final line `cancelled`).
Waits are conditions polled until a deadline, never durations.
"""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLCTL, BUILDDIR, DEADLINE, SRCDIR, Gate, Server, main, server_stats, wait_for  # noqa: E402
from test_session_redis import Redis  # noqa: E402
sys.path.insert(0, SRCDIR)
from pyagents.client import (AgentError, AsyncClient, BadRequest, Cancelled, Client,  # noqa: E402
                             ConnectionLost, Forbidden, QueueFull)

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
GATE = "pyagents.examples.gate:GateAgent"
GATELOG = "aptest_agents:GateLogAgent"  # appends data["seq"] to data["log"] per run
BENCH = os.path.join(BUILDDIR, "agentpool-bench")

import redis as redispy  # noqa: E402  (python3-redis, installed by ./bootstrap)


def broker_server(r, agent="pyagents.examples.echo:EchoAgent", workers=1, opts="", args=()):
    spec = "url=" + r.spec() + ("," + opts if opts else "")
    return Server(agent=agent, workers=workers, args=["--broker", spec] + list(args))


def handled(server):
    return server_stats(server)["messages"]["answeredOk"]


def runs(log):
    """The seqs GateLogAgent logged, one line per run."""
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [int(x) for x in f.read().split()]


def reply_keys(r):
    return sorted(k.decode() for k in redispy.Redis(port=r.port).keys("agentpool:reply:*"))


class BrokerCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.redis = Redis().start()

    @classmethod
    def tearDownClass(cls):
        cls.redis.close()

    def setUp(self):
        self.r = redispy.Redis(port=self.redis.port)
        self.r.flushall()
        self.url = self.redis.spec()


class Answers(BrokerCase):
    def test_sync_and_async_answers_through_two_agentpoolds(self):
        with broker_server(self.redis, workers=2) as a, broker_server(self.redis, workers=2) as b:
            with Client(self.url) as c:
                self.assertEqual([c.send("echo", {"i": i}) for i in range(50)], [{"i": i} for i in range(50)])
                reqs = [c.submit("echo", i) for i in range(200)]
                self.assertEqual([q.wait() for q in reqs], list(range(200)))

            async def run():
                async with AsyncClient(self.url) as ac:
                    return await asyncio.gather(*[ac.send("echo", {"i": i}) for i in range(2000)])
            self.assertEqual(asyncio.run(run()), [{"i": i} for i in range(2000)])
            self.assertGreater(handled(a), 0)
            self.assertGreater(handled(b), 0)
            self.assertEqual(handled(a) + handled(b), 2250)

    def test_errors_keep_their_classes(self):
        with broker_server(self.redis, agent="pyagents.examples.raising:RaiseAgent"):
            with Client(self.url) as c:
                with self.assertRaises(AgentError) as cm:
                    c.send("x", {"message": "kaboom"})
                self.assertEqual(cm.exception.exception, "ValueError")
                self.assertEqual(cm.exception.message, "kaboom")
                with self.assertRaises(BadRequest):
                    c.send("x", idempotency_key="")
                self.assertEqual(c.ping(), {"pong": True, "state": "ready"})
                with self.assertRaises(Forbidden):  # the stream's requests are not administrators'
                    c.reload()

            async def run():
                async with AsyncClient(self.url) as ac:
                    with self.assertRaises(AgentError) as cm:
                        await ac.send("x", {"message": "async kaboom"})
                    return cm.exception.message
            self.assertEqual(asyncio.run(run()), "async kaboom")

    def test_streams_come_in_order_then_the_result(self):
        with broker_server(self.redis, agent="pyagents.examples.tokens:TokensAgent"):
            with Client(self.url) as c:
                st = c.stream("tokens", {"n": 20, "size": 4})
                self.assertEqual(list(st), ["t%dxx" % i if i < 10 else "t%dx" % i for i in range(20)])
                self.assertEqual(st.result, {"chunks": 20})

            async def run():
                async with AsyncClient(self.url) as ac:
                    st = await ac.stream("tokens", {"n": 5, "size": 4})
                    return [x async for x in st], st.result
            self.assertEqual(asyncio.run(run()), (["t0xx", "t1xx", "t2xx", "t3xx", "t4xx"], {"chunks": 5}))

    def test_reply_stream_expires_while_used_and_is_deleted_at_close(self):
        with broker_server(self.redis):
            c = Client(self.url)
            self.assertEqual(c.send("echo", 1), 1)
            reply = c._conn.core.reply
            self.assertEqual(reply_keys(self.redis), [reply])
            self.assertGreater(self.r.pttl(reply), 0)  # the ingress's PEXPIRE
            c.close()
            self.assertEqual(reply_keys(self.redis), [])

            async def run():
                ac = AsyncClient(self.url)
                self.assertEqual(await ac.send("echo", 2), 2)
                name = ac._conn.core.reply
                self.assertEqual(reply_keys(self.redis), [name])
                await ac.close()
            asyncio.run(run())
            self.assertEqual(reply_keys(self.redis), [])

    def test_no_redis_is_connection_lost_not_sent(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(ConnectionLost) as cm:
            Client("redis://127.0.0.1:%d/0" % port, connect_timeout=2).send("echo", 1)
        self.assertFalse(cm.exception.sent)

        async def run():
            with self.assertRaises(ConnectionLost) as cm:
                await AsyncClient("redis://127.0.0.1:%d/0" % port, connect_timeout=2).send("echo", 1)
            return cm.exception.sent
        self.assertFalse(asyncio.run(run()))


class Refusals(BrokerCase):
    def test_queue_full_at_the_streams_max_length(self):
        with tempfile.TemporaryDirectory() as d, Gate(d) as gate, \
                broker_server(self.redis, agent=GATE, opts="maxLength=1") as s, Client(self.url) as c:
            held = c.submit("gate", gate.data(1))
            wait_for(lambda: server_stats(s)["inFlight"] == 1, what="the gate message to run")
            with self.assertRaises(QueueFull) as cm:
                c.send("gate", gate.data(2))
            self.assertEqual(cm.exception.code, "queue_full")

            async def run():
                async with AsyncClient(self.url) as ac:
                    with self.assertRaises(QueueFull):
                        await ac.send("gate", gate.data(3))
            asyncio.run(run())
            gate.release()
            self.assertEqual(held.wait(), {"released": True, "seq": 1})
            self.assertEqual(c.send("gate", gate.data(4)), {"released": True, "seq": 4})


class Cancel(BrokerCase):
    def test_a_queued_request_cancelled_through_the_control_stream_never_runs(self):
        with tempfile.TemporaryDirectory() as d, Gate(d) as gate, \
                broker_server(self.redis, agent=GATELOG, args=["--python-path", AGENTS_DIR]) as s, \
                Client(self.url) as c:
            log = os.path.join(d, "runs.log")
            held = c.submit("gate", gate.data(1, log=log))
            wait_for(lambda: server_stats(s)["inFlight"] == 1, what="the gate message to run")
            queued = c.submit("gate", gate.data(2, log=log))
            self.assertEqual(c.cancel(queued), "requested")
            # The queued entry waits in the stream (an agentpoold reads
            # only its free slots): it is read once the held one ends,
            # and answered cancelled without running.
            gate.release()
            self.assertEqual(held.wait(), {"seq": 1})
            with self.assertRaises(Cancelled):
                queued.wait()
            self.assertEqual(c.cancel(queued), "unknown")
            self.assertEqual(c.send("gate", gate.data(3, log=log)), {"seq": 3})
            self.assertEqual(runs(log), [1, 3])

    def test_async_cancel_of_a_queued_request(self):
        with tempfile.TemporaryDirectory() as d, Gate(d) as gate, \
                broker_server(self.redis, agent=GATE) as s:
            async def run():
                async with AsyncClient(self.url) as ac:
                    held = await ac.submit("gate", gate.data(1))
                    await asyncio.get_running_loop().run_in_executor(
                        None, lambda: wait_for(lambda: server_stats(s)["inFlight"] == 1, what="the gate to run"))
                    queued = await ac.submit("gate", gate.data(2))
                    self.assertEqual(await ac.cancel(queued), "requested")
                    gate.release()
                    with self.assertRaises(Cancelled):
                        await queued.wait()
                    return await held.wait()
            self.assertEqual(asyncio.run(run()), {"released": True, "seq": 1})

    def test_leaving_a_stream_early_cancels_it_where_it_runs(self):
        with tempfile.TemporaryDirectory() as d, \
                broker_server(self.redis, agent="streamer:AsyncStreamer",
                              args=["--python-path", AGENTS_DIR, "--worker-model", "async",
                                    "--concurrency", "8"]) as s, Client(self.url) as c:
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


class Retry(BrokerCase):
    def kill_client_connections(self):
        """CLIENT KILL of every Redis connection named agentpool-client."""
        n = 0
        for cl in self.r.client_list():
            if cl.get("name") == "agentpool-client":
                self.r.client_kill_filter(_id=cl["id"])
                n += 1
        return n

    def test_send_with_retry_resends_with_its_key_and_gets_the_one_answer(self):
        with tempfile.TemporaryDirectory() as d, Gate(d) as gate, \
                broker_server(self.redis, agent=GATELOG, args=["--python-path", AGENTS_DIR]) as s, \
                Client(self.url) as c:
            box = {}
            log = os.path.join(d, "runs.log")

            def call():
                try:
                    box["result"] = c.send_with_retry("gate", gate.data(1, log=log), idempotency_key="retry-1",
                                                      backoff=0.01, max_retries=50)
                except Exception as e:  # handed to the test
                    box["error"] = e
            t = threading.Thread(target=call, daemon=True)
            t.start()
            wait_for(lambda: server_stats(s)["inFlight"] == 1, what="the gate message to run")
            first = c._conn
            self.assertGreater(self.kill_client_connections(), 0)
            wait_for(lambda: first.dead, what="the client to see its connection die")
            wait_for(lambda: c._conn is not first and c._conn is not None and not c._conn.dead,
                     what="the resend on a new connection")
            gate.release()
            t.join(DEADLINE)
            self.assertEqual(box, {"result": {"seq": 1}})
            self.assertEqual(runs(log), [1])  # one run, for both entries


class Batching(BrokerCase):
    def test_async_requests_of_one_turn_are_added_with_one_call_each_refused_on_its_own(self):
        # No agentpoold: the pool's stream is full from the start.
        self.r.set("agentpool:default:maxlen", 1)
        self.r.xadd("agentpool:default:requests", {"req": "{}", "replyTo": "r"})

        async def run():
            async with AsyncClient(self.url) as ac:
                with self.assertRaises(QueueFull):  # opens the connection
                    await ac.send("echo", 0)
                self.r.config_resetstat()
                return await asyncio.gather(*[ac.send("echo", i) for i in range(1, 6)], return_exceptions=True)
        got = asyncio.run(run())
        self.assertEqual([type(g) for g in got], [QueueFull] * 5, got)
        self.assertEqual([g.code for g in got], ["queue_full"] * 5)
        self.assertEqual(self.r.info("commandstats")["cmdstat_evalsha"]["calls"], 1)
        self.assertEqual(self.r.xlen("agentpool:default:requests"), 1)


class Bench(BrokerCase):
    def test_agentpool_bench_through_the_broker(self):
        with broker_server(self.redis, workers=2):
            out = subprocess.run([BENCH, "--redis", self.url, "--conns", "2", "--depth", "8", "--requests", "300",
                                  "--json"], capture_output=True, text=True, timeout=DEADLINE)
            self.assertEqual(out.returncode, 0, out.stderr)
            rep = json.loads(out.stdout)
            self.assertEqual(rep["requests"]["ok"], 300, rep)
            self.assertEqual(rep["requests"]["errors"], 0, rep)

    def test_agentpool_bench_adds_a_turns_lines_in_one_call_each_refused_on_its_own(self):
        # No agentpoold: the pool's stream is full from the start, so every
        # line of the one add call is refused queue_full by itself.
        self.r.set("agentpool:default:maxlen", 3)
        for _ in range(3):
            self.r.xadd("agentpool:default:requests", {"req": "{}", "replyTo": "r"})
        self.r.config_resetstat()
        out = subprocess.run([BENCH, "--redis", self.url, "--conns", "1", "--depth", "8", "--requests", "8",
                              "--json"], capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(out.returncode, 0, out.stderr)
        rep = json.loads(out.stdout)
        self.assertEqual((rep["requests"]["ok"], rep["requests"]["errors"], rep["errors"]), (0, 8, {"queue_full": 8}))
        self.assertEqual(self.r.info("commandstats")["cmdstat_evalsha"]["calls"], 1)
        self.assertEqual(self.r.xlen("agentpool:default:requests"), 3)

    def test_agentpool_bench_refuses_bad_broker_targets(self):
        for args, text in ((["--redis", "http://127.0.0.1:1/0"], "expected redis://HOST[:PORT][/DB]"),
                           (["--redis", "redis://127.0.0.1:0/0"], "bad port"),
                           (["--redis", "redis://127.0.0.1:6379/x"], "bad database number"),
                           (["--redis", "redis://:6379/0"], "bad host"),
                           (["--redis", self.url, "--unix", "/tmp/x"], "--redis and --unix are exclusive"),
                           (["--redis", self.url, "--proto", "http"], "--redis needs --proto ndjson")):
            out = subprocess.run([BENCH] + args + ["--requests", "1"], capture_output=True, text=True,
                                 timeout=DEADLINE)
            self.assertEqual(out.returncode, 2, (args, out.stderr))
            self.assertIn(text, out.stderr, args)
        out = subprocess.run([BENCH, "--redis", "redis://127.0.0.1:1/0", "--requests", "1"], capture_output=True,
                             text=True, timeout=DEADLINE)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("connect to redis://127.0.0.1:1/0", out.stderr)

class Ctl(BrokerCase):
    def ctl(self, *args):
        return subprocess.run([AGENTPOOLCTL, "--socket", self.url] + list(args), capture_output=True, text=True,
                              timeout=DEADLINE)

    def test_send_and_send_stream_through_the_broker(self):
        with broker_server(self.redis, agent="pyagents.examples.tokens:TokensAgent"):
            out = self.ctl("send", "tokens", '{"n":3,"size":4}')
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(json.loads(out.stdout), {"id": 1, "ok": True, "result": {
                "chunks": ["t0xx", "t1xx", "t2xx"], "return": {"chunks": 3}}})
            out = self.ctl("send", "--stream", "tokens", '{"n":3,"size":4}')
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stdout.splitlines(), ['"t0xx"', '"t1xx"', '"t2xx"',
                                                       '{"id":1,"ok":true,"result":{"chunks":3}}'])
            out = self.ctl("send", "nope")
            self.assertEqual(out.returncode, 1)
            self.assertEqual(json.loads(out.stdout)["error"]["code"], "agent_error")
            self.assertEqual(reply_keys(self.redis), [])  # each run DELs its reply stream
        out = self.ctl("send")
        self.assertEqual(out.returncode, 2)
        self.assertIn("TYPE missing", out.stderr)

    def test_send_to_a_full_stream_is_queue_full(self):
        with tempfile.TemporaryDirectory() as d, Gate(d) as gate, \
                broker_server(self.redis, agent=GATE, opts="maxLength=1") as s, Client(self.url) as c:
            held = c.submit("gate", gate.data(1))
            wait_for(lambda: server_stats(s)["inFlight"] == 1, what="the gate message to run")
            out = self.ctl("send", "gate", json.dumps(gate.data(2)))
            self.assertEqual(out.returncode, 1)
            self.assertIn("queue_full", out.stderr)
            gate.release()
            self.assertEqual(held.wait()["seq"], 1)

    def test_ctrl_c_cancels_a_stream_where_it_runs(self):
        with tempfile.TemporaryDirectory() as d, \
                broker_server(self.redis, agent="streamer:AsyncStreamer",
                              args=["--python-path", AGENTS_DIR, "--worker-model", "async",
                                    "--concurrency", "8"]):
            marker = os.path.join(d, "marker")
            p = subprocess.Popen([AGENTPOOLCTL, "--socket", self.url, "send", "--stream", "forever",
                                  json.dumps({"ms": 5, "marker": marker})], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            self.assertEqual(p.stdout.readline().strip(), '"c0"')
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=DEADLINE)
            self.assertEqual(p.returncode, 130, err)
            self.assertEqual(json.loads(out.splitlines()[-1])["error"]["code"], "cancelled")
            wait_for(lambda: os.path.exists(marker), what="the handler's finally block")


if __name__ == "__main__":
    main()
