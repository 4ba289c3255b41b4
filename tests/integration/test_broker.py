# SPDX-License-Identifier: BSD-2-Clause
"""test_broker.py - the broker ingress: agentpoolds taking requests from a
shared Redis stream (the "broker" setting, docs/scale-out.md).

Real agentpoolds with real Python workers (tests/integration/agents/
brokeragent.py) and a real redis-server started here on a free port in a
temporary directory (test_session_redis.py's Redis: Debian's
redis-server, installed by ./bootstrap; without persistence, except for
the restart, where its append-only file keeps the streams).  The test writes entries itself with Debian's
python3-redis, exactly as docs/scale-out.md's wire says (XADD of req and
replyTo; XADD of cancel on the control stream), and reads the reply
streams.  Proved here:
 - every request answered exactly once, the stream and the group's
   pending list empty afterwards;
 - 3 agentpoolds on one stream share the work, none ever queueing an
   entry locally (each reads only its free slots);
 - kill -9 of one agentpoold mid-run: its pending entries are claimed by
   the others and answered, none twice, none lost;
 - a long message heartbeating past claimIdleMs is not claimed by another;
 - a fast sync worker's prefetch room is read for, not only its one slot;
 - an entry delivered more than maxRetries + 1 times is dead-lettered
   (answered worker_crashed without running); a poison message read
   fresh is answered worker_crashed once after its local retries;
 - Redis restarted mid-run: no loss, no duplicate; while it is down the
   stats say disconnected, the alert fires, the local socket serves;
 - a streaming request's chunks arrive in order, then its final line;
 - cancel through the control stream, of a running entry held by another
   agentpoold and of an entry not read yet;
 - the answer store: a second entry with the same idempotencyKey gets the
   same answer without running; an entry already answered (its answer key
   names it) is acknowledged without a second line; no answer is kept
   for a request without an idempotencyKey, and a claimed one that its
   first consumer answered meanwhile gets no second line (the finish's
   XACK tells);
 - entries without replyTo are acknowledged and dropped.
Nothing waits on a duration: every wait is a condition polled until a
generous deadline.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLD, DEADLINE, Server, main, server_stats, wait_for  # noqa: E402
from test_metrics import Endpoint, check_with_promtool, parse_metrics, sample  # noqa: E402
from test_session_redis import Redis as PersistentRedis  # noqa: E402

try:
    import redis
except ImportError:  # pragma: no cover - ./bootstrap installs python3-redis
    raise AssertionError("python3-redis not found: ./bootstrap installs Debian's python3-redis")

def Redis(persist=False):
    """test_session_redis.py's redis-server: no persistence, unless the test
    restarts it (then its append-only file keeps the streams)."""
    return PersistentRedis(persist=persist)


AGENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agents")
STREAM = "agentpool:default:requests"
CONTROL = "agentpool:default:control"


def broker_server(r, workers=1, concurrency=4, broker=None, config=None, agent="brokeragent:BrokerAgent", args=()):
    b = {"url": r.spec()}
    b.update(broker or {})
    cfg = {"broker": b}
    cfg.update(config or {})
    return Server(agent=agent, workers=workers, config=cfg,
                  args=["--python-path", AGENTS, "--concurrency", str(concurrency)] + list(args))


def bstats(s):
    return server_stats(s)["broker"]


class Caller:
    """A client writing entries by the wire in docs/scale-out.md."""

    def __init__(self, r):
        self.rc = redis.Redis(port=r.port, decode_responses=True)
        self.reply = "agentpool:reply:" + os.urandom(16).hex()
        self.next_id = 0

    def send(self, type_, data=None, id_=None, eid="*", **extra):
        if id_ is None:
            id_ = self.next_id
            self.next_id += 1
        req = {"id": id_, "type": type_, "data": data}
        req.update(extra)
        return id_, self.rc.xadd(STREAM, {"req": json.dumps(req), "replyTo": self.reply}, id=eid)

    def lines(self):
        return [json.loads(f["line"]) for _, f in self.rc.xrange(self.reply)]

    def finals(self):
        return [x for x in self.lines() if "ok" in x]

    def wait_finals(self, n):
        wait_for(lambda: len(self.finals()) >= n, what="%d final lines on the reply stream" % n)
        return self.finals()

    def cancel(self, eid):
        self.rc.xadd(CONTROL, {"cancel": eid, "replyTo": self.reply})

    def pending_by_consumer(self):
        try:
            return {c["name"]: int(c["pending"]) for c in self.rc.xinfo_consumers(STREAM, "agentpool")}
        except redis.ResponseError:
            return {}


def assert_exactly_once(test, finals, ids):
    got = [f["id"] for f in finals]
    test.assertEqual(len(got), len(set(got)), "an id answered twice: %r" % sorted(got))
    test.assertEqual(set(got), set(ids))


class Basics(unittest.TestCase):
    def test_every_request_answered_exactly_once_and_acknowledged(self):
        with Redis() as r, broker_server(r, workers=2) as s:
            c = Caller(r)
            ids = [c.send("echo", {"n": i})[0] for i in range(200)]
            finals = c.wait_finals(200)
            assert_exactly_once(self, finals, ids)
            for f in finals:
                self.assertTrue(f["ok"], f)
                self.assertEqual(f["result"]["data"], {"n": f["id"]})
            wait_for(lambda: bstats(s)["acked"] == 200, what="200 entries acknowledged")
            self.assertEqual(c.rc.xlen(STREAM), 0)  # XDEL with the answer
            self.assertEqual(c.rc.xpending(STREAM, "agentpool")["pending"], 0)
            st = bstats(s)
            self.assertEqual(st["state"], "connected")
            self.assertEqual((st["read"], st["answered"], st["replays"]), (200, 200, 0))
            self.assertGreater(c.rc.pttl(c.reply), 0)  # replyTtl set at each write
            self.assertEqual(c.rc.get("agentpool:default:maxlen"), "100000")

    def test_an_entry_without_reply_to_is_acknowledged_and_dropped_and_a_bad_request_answered(self):
        with Redis() as r, broker_server(r) as s:
            c = Caller(r)
            c.rc.xadd(STREAM, {"req": json.dumps({"id": 1, "type": "echo"})})
            c.rc.xadd(STREAM, {"req": "{\"id\": 2, \"data\": 1}", "replyTo": c.reply})
            f = c.wait_finals(1)[0]
            self.assertEqual((f["id"], f["ok"], f["error"]["code"]), (2, False, "bad_request"))
            wait_for(lambda: bstats(s)["badEntries"] == 1 and c.rc.xlen(STREAM) == 0,
                     what="the entry without replyTo dropped")

    def test_a_streaming_request_sends_its_chunks_in_order_then_its_final_line(self):
        with Redis() as r, broker_server(r, agent="brokeragent:BrokerStreamer") as s:
            c = Caller(r)
            c.send("stream", {"n": 50}, stream=True)
            c.wait_finals(1)
            lines = c.lines()
            self.assertEqual([x.get("seq") for x in lines[:-1]], list(range(50)))
            self.assertEqual([x["chunk"] for x in lines[:-1]], ["c%d" % i for i in range(50)])
            self.assertTrue(lines[-1]["ok"], lines[-1])
            self.assertEqual(len(lines), 51)  # nothing after the final line
            self.assertEqual(bstats(s)["chunks"], 50)


    def test_a_silent_redis_bounds_the_chunks_the_master_holds_and_none_is_lost(self):
        # no message timeout: how long Redis stays silent here is the machine's business
        with Redis() as r, broker_server(r, agent="brokeragent:BrokerStreamer", config={"timeout": 0}) as s:
            c = Caller(r)
            # the handler sends its first chunk, then the rest only once Redis is frozen (the gate):
            # the master would otherwise stream them all to Redis before the freeze lands
            n, size = 120, 64 * 1024
            gate = os.path.join(tempfile.mkdtemp(prefix="apbrokergate-"), "go")
            self.addCleanup(shutil.rmtree, os.path.dirname(gate), True)
            c.send("stream", {"n": n, "size": size, "gate": gate}, stream=True)
            wait_for(lambda: c.rc.xlen(c.reply) > 0, what="the first chunk")
            r.freeze(True)
            open(gate, "w").close()
            most = [0]
            try:
                def held_at_the_bound():
                    most[0] = max(most[0], bstats(s)["waitingBytes"])
                    return most[0] >= 4 << 20
                wait_for(held_at_the_bound, what="chunk bytes waiting for Redis reaching the 4 MiB bound")
                for _ in range(20):  # it stays there: the stream waits, the master does not grow
                    most[0] = max(most[0], bstats(s)["waitingBytes"])
            finally:
                r.freeze(False)
            self.assertLess(most[0], (4 << 20) + 2 * (size + 100))
            final = c.wait_finals(1)[0]
            self.assertTrue(final["ok"], "%r\n%r\n%s" % (final, bstats(s), s.log()[-4000:]))
            seqs, seen = [], set()
            for x in c.lines()[:-1]:  # a chunk resent after a reconnect comes again: dropped by its seq
                if x["seq"] not in seen:
                    seen.add(x["seq"])
                    seqs.append(x["seq"])
                    self.assertTrue(x["chunk"].startswith("%06d" % x["seq"]))
            self.assertEqual(seqs, list(range(n)))
            self.assertTrue(c.lines()[-1]["ok"])


class Sharing(unittest.TestCase):
    def test_three_agentpoolds_share_one_stream_each_holding_at_most_its_slots(self):
        with Redis() as r:
            servers = [broker_server(r, concurrency=2, broker={"consumer": n}) for n in "abc"]
            try:
                for s in servers:
                    s.start()
                c = Caller(r)
                ids = [c.send("sleep", {"ms": 100})[0] for _ in range(60)]
                c.wait_finals(60)
                assert_exactly_once(self, c.finals(), ids)
                reads = [bstats(s)["read"] for s in servers]
                self.assertEqual(sum(reads), 60)
                self.assertTrue(all(n > 0 for n in reads), reads)
                # 2 slots each, and an entry read only for a free one: none ever waited in a local queue
                # (without the rule the first to read would take COUNT=512 of them: all 60, 58 queued)
                self.assertEqual([server_stats(s)["queue"]["highWatermark"] for s in servers], [0, 0, 0])
            finally:
                for s in servers:
                    s.close()

    def test_a_fast_sync_worker_is_read_for_its_prefetch_room_too(self):
        # a sync worker has one slot; reading only that would cost a Redis round trip per message
        # (2.7k echo/s with 2 workers). Its prefetch room, which the pool itself fills without
        # queueing, is read for too: entries go to it, and still none waits in the local queue.
        with Redis() as r, broker_server(r, agent="pyagents.examples.echo:EchoAgent") as s:
            c = Caller(r)
            ids = [c.send("echo", {"n": i})[0] for i in range(400)]
            assert_exactly_once(self, c.wait_finals(400), ids)
            st = server_stats(s)
            self.assertGreater(st["messages"]["prefetched"], 0, st["messages"])
            self.assertEqual(st["queue"]["highWatermark"], 0)
            self.assertGreater(bstats(s)["read"], 0)

    def test_kill_9_of_one_agentpoold_mid_run_its_entries_are_claimed_and_answered_once(self):
        with Redis() as r:
            b = {"claimIdleMs": 1000, "claimIntervalMs": 100}
            servers = [broker_server(r, concurrency=4, broker=dict(b, consumer=n)) for n in "abc"]
            try:
                for s in servers:
                    s.start()
                c = Caller(r)
                ids = [c.send("sleep", {"ms": 300})[0] for _ in range(60)]
                wait_for(lambda: c.pending_by_consumer().get("a", 0) > 0, what="agentpoold a holding entries")
                victim = servers[0]
                victim.proc.kill()
                victim.proc.wait()
                finals = c.wait_finals(60)
                assert_exactly_once(self, finals, ids)
                self.assertTrue(all(f["ok"] for f in finals), [f for f in finals if not f["ok"]])
                claimed = sum(bstats(s)["claimed"] for s in servers[1:])
                self.assertGreater(claimed, 0)
                wait_for(lambda: c.rc.xlen(STREAM) == 0, what="the stream empty")
            finally:
                for s in servers:
                    s.close()

    def test_a_long_message_heartbeating_past_claim_idle_is_not_stolen(self):
        with Redis() as r, tempfile.TemporaryDirectory() as d:
            b = {"claimIdleMs": 1000, "claimIntervalMs": 50}
            servers = [broker_server(r, broker=dict(b, consumer=n)) for n in "ab"]
            try:
                for s in servers:
                    s.start()
                c = Caller(r)
                gate = os.path.join(d, "go")
                _, eid = c.send("wait", {"file": gate})
                wait_for(lambda: sum(c.pending_by_consumer().values()) == 1, what="the entry read")
                holder = [s for s in servers if bstats(s)["held"] == 1][0]
                other = [s for s in servers if s is not holder][0]
                # a heartbeat every claimIntervalMs (50 ms, under claimIdleMs / 3): 40 of them span
                # twice claimIdleMs, while the other claims every 50 ms
                wait_for(lambda: bstats(holder)["heartbeats"] >= 40, what="40 heartbeats")
                with open(gate, "w"):
                    pass
                f = c.wait_finals(1)
                self.assertEqual(f[0]["result"], "done")
                self.assertEqual(bstats(other)["claimed"], 0)
                self.assertEqual(bstats(holder)["claimed"], 0)
            finally:
                for s in servers:
                    s.close()


class DeadLetters(unittest.TestCase):
    def test_an_entry_delivered_more_than_max_retries_plus_one_times_is_dead_lettered_without_running(self):
        with Redis() as r:
            rc = redis.Redis(port=r.port, decode_responses=True)
            rc.xgroup_create(STREAM, "agentpool", id="0", mkstream=True)
            c = Caller(r)
            _, eid = c.send("crash")
            # a consumer that died holding it, after maxRetries (1) + 1 deliveries
            rc.xreadgroup("agentpool", "ghost", {STREAM: ">"}, count=1)
            rc.xclaim(STREAM, "agentpool", "ghost", 0, [eid], retrycount=2)
            with broker_server(r, config={"maxRetries": 1}, broker={"claimIdleMs": 100, "claimIntervalMs": 50}) as s:
                f = c.wait_finals(1)[0]
                self.assertEqual((f["ok"], f["error"]["code"]), (False, "worker_crashed"))
                self.assertIn("dead-lettered", f["error"]["message"])
                st = bstats(s)
                self.assertEqual((st["claimed"], st["deadLettered"]), (1, 1))
                self.assertEqual(server_stats(s)["workerEvents"]["crashed"], 0)  # never ran
                self.assertEqual(rc.xpending(STREAM, "agentpool")["pending"], 0)
                with open(s.path + ".deadletter.jsonl") as f:  # kept like a local message's last failure
                    rec = json.loads(f.readline())
                self.assertEqual((rec["id"], rec["type"], rec["attempts"]), (0, "crash", 3))

    def test_a_poison_message_read_fresh_is_answered_worker_crashed_once_after_its_retries(self):
        with Redis() as r, broker_server(r, config={"maxRetries": 1, "retryDelay": 0}) as s:
            c = Caller(r)
            c.send("crash")
            f = c.wait_finals(1)[0]
            self.assertEqual((f["ok"], f["error"]["code"]), (False, "worker_crashed"))
            wait_for(lambda: bstats(s)["acked"] == 1, what="the entry acknowledged")
            self.assertEqual(server_stats(s)["workerEvents"]["crashed"], 2)  # the first run and its retry
            self.assertEqual(len(c.finals()), 1)


class Outage(unittest.TestCase):
    def test_redis_restarted_mid_run_no_loss_no_duplicate_and_the_outage_is_told(self):
        with Redis(persist=True) as r:
            servers = [broker_server(r, concurrency=4, broker={"consumer": n, "downAlertMs": 100})
                       for n in "ab"]
            spec = "unix:" + os.path.join(servers[0].tmp.name, "metrics.sock")
            servers[0].args += ["--metrics-listen", spec]
            ep = Endpoint(spec)
            try:
                for s in servers:
                    s.start()
                c = Caller(r)
                ids = [c.send("sleep", {"ms": 200})[0] for _ in range(40)]
                wait_for(lambda: len(c.finals()) >= 5, what="some answers")
                r.stop()
                for s in servers:
                    wait_for(lambda s=s: bstats(s)["state"] == "disconnected", what="stats saying disconnected")
                    wait_for(lambda s=s: "alert broker_down" in s.log(), what="the broker_down alert")
                self.assertIn("broker_down", [a["name"] for a in server_stats(servers[0])["alerts"]])
                status, _, body = ep.get("/healthz")
                self.assertIn("broker disconnected: pool default", body)
                self.assertEqual(status, 200)  # the local socket serves
                samples = parse_metrics(ep.get("/metrics")[2])[0]
                self.assertEqual(sample(samples, "agentpool_broker_connected"), 0)
                with servers[0].client() as sc:  # the local socket keeps serving
                    a = sc.call("echo", 5)
                    self.assertEqual(a["data"], 5, a)
                r.start()
                c.rc = redis.Redis(port=r.port, decode_responses=True)
                finals = c.wait_finals(40)
                assert_exactly_once(self, finals, ids)
                for s in servers:
                    wait_for(lambda s=s: bstats(s)["state"] == "connected", what="connected again")
                self.assertGreaterEqual(sum(bstats(s)["reconnects"] for s in servers), 2)
                text = ep.get("/metrics")[2]
                check_with_promtool(self, text)
                samples = parse_metrics(text)[0]
                self.assertEqual(sample(samples, "agentpool_broker_connected"), 1)
                self.assertEqual(sample(samples, "agentpool_broker_entries_total", event="answered"),
                                 bstats(servers[0])["answered"])
                self.assertNotIn("broker disconnected", ep.get("/healthz")[2])
                wait_for(lambda: c.rc.xlen(STREAM) == 0, what="the stream empty")
            finally:
                for s in servers:
                    s.close()


class Cancel(unittest.TestCase):
    def test_cancel_through_the_control_stream_reaches_the_agentpoold_running_it(self):
        with Redis() as r, tempfile.TemporaryDirectory() as d:
            servers = [broker_server(r, broker={"consumer": n}) for n in "ab"]
            try:
                for s in servers:
                    s.start()
                c = Caller(r)
                _, eid = c.send("wait", {"file": os.path.join(d, "never")})
                wait_for(lambda: sum(bstats(s)["held"] for s in servers) == 1, what="the entry running")
                c.cancel(eid)
                f = c.wait_finals(1)[0]
                self.assertEqual((f["ok"], f["error"]["code"]), (False, "cancelled"))
                self.assertEqual(sum(bstats(s)["cancels"] for s in servers), 1)
                wait_for(lambda: c.rc.xlen(STREAM) == 0, what="the entry acknowledged")
            finally:
                for s in servers:
                    s.close()

    def test_a_cancel_that_comes_before_its_entry_is_read_answers_it_cancelled_without_running(self):
        with Redis() as r, broker_server(r) as s:
            c = Caller(r)
            eid = "9999999999999-1"
            c.cancel(eid)
            wait_for(lambda: bstats(s)["cancelsRemembered"] == 1, what="the cancel remembered")
            c.send("echo", 1, eid=eid)
            f = c.wait_finals(1)[0]
            self.assertEqual((f["ok"], f["error"]["code"]), (False, "cancelled"))
            self.assertEqual(server_stats(s)["messages"]["accepted"], 0)  # never ran


class AnswerStore(unittest.TestCase):
    def test_a_second_entry_with_the_same_idempotency_key_gets_the_same_answer_without_running(self):
        with Redis() as r, broker_server(r, workers=2) as s:
            c = Caller(r)
            c.send("echo", {"x": 1}, id_="first", idempotencyKey="k-1")
            first = c.wait_finals(1)[0]
            c2 = Caller(r)
            c2.send("echo", {"x": 1}, id_="second", idempotencyKey="k-1")
            second = c2.wait_finals(1)[0]
            self.assertEqual(second["id"], "second")
            self.assertEqual(second["result"], first["result"])
            self.assertTrue(second["replayed"])
            self.assertNotIn("replayed", first)
            self.assertEqual(bstats(s)["replays"], 1)
            self.assertEqual(server_stats(s)["messages"]["accepted"], 1)
            stored = c.rc.get("agentpool:default:answer:k-1")
            self.assertTrue(stored.split("\n", 1)[1].startswith('"ok":true'), stored)

    def test_an_entry_whose_answer_names_it_is_acknowledged_without_a_second_line(self):
        with Redis() as r:
            rc = redis.Redis(port=r.port, decode_responses=True)
            rc.xgroup_create(STREAM, "agentpool", id="0", mkstream=True)
            c = Caller(r)
            _, eid = c.send("echo", 1, idempotencyKey="k-2")
            # another consumer answered it (the key names this entry) but died before its XACK
            rc.xreadgroup("agentpool", "ghost", {STREAM: ">"}, count=1)
            rc.set("agentpool:default:answer:k-2", eid + '\n"ok":true,"result":1}')
            with broker_server(r, broker={"claimIdleMs": 100, "claimIntervalMs": 50}) as s:
                wait_for(lambda: bstats(s)["alreadyAnswered"] == 1, what="the claimed entry found answered")
                self.assertEqual(rc.xpending(STREAM, "agentpool")["pending"], 0)
                self.assertEqual(c.lines(), [])
                self.assertEqual(server_stats(s)["messages"]["accepted"], 0)


    def test_no_answer_is_kept_for_a_request_without_an_idempotency_key(self):
        with Redis() as r, broker_server(r, workers=2) as s:
            c = Caller(r)
            ids = [c.send("echo", i)[0] for i in range(20)]
            assert_exactly_once(self, c.wait_finals(20), ids)
            self.assertEqual(c.rc.keys("agentpool:default:answer:*"), [])
            self.assertEqual(bstats(s)["answered"], 20)

    def test_a_claimed_entry_answered_meanwhile_by_its_first_consumer_gets_no_second_line(self):
        # Without an idempotencyKey only the XACK of the finish tells: the
        # first consumer's finish acknowledged the entry, so this one's
        # writes nothing.
        with Redis() as r, tempfile.TemporaryDirectory() as d:
            rc = redis.Redis(port=r.port, decode_responses=True)
            rc.xgroup_create(STREAM, "agentpool", id="0", mkstream=True)
            c = Caller(r)
            go = os.path.join(d, "go")
            _, eid = c.send("wait", {"file": go}, id_="w")
            rc.xreadgroup("agentpool", "ghost", {STREAM: ">"}, count=1)  # the first consumer, slow
            with broker_server(r, broker={"claimIdleMs": 100, "claimIntervalMs": 50}) as s:
                wait_for(lambda: server_stats(s)["messages"]["accepted"] == 1, what="the claimed entry running")
                # the first consumer finishes as the finish script does: its line, XACK, XDEL
                rc.xadd(c.reply, {"line": '{"id":"w","ok":true,"result":"ghost"}'})
                self.assertEqual(rc.xack(STREAM, "agentpool", eid), 1)
                rc.xdel(STREAM, eid)
                open(go, "w").close()
                wait_for(lambda: bstats(s)["alreadyAnswered"] == 1, what="its finish finding it answered")
                self.assertEqual([f["result"] for f in c.finals()], ["ghost"])
                self.assertEqual(bstats(s)["answered"], 0)


class Settings(unittest.TestCase):
    def check(self, *args):
        return subprocess.run([AGENTPOOLD, "--check-config"] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=DEADLINE)

    def test_a_bad_broker_setting_is_refused_saying_why(self):
        with tempfile.TemporaryDirectory() as d:
            cases = [
                (["--broker", "url=redis://db.example:6379/0"],
                 "broker url 'redis://db.example:6379/0': 'db.example' is not a numeric address"),
                (["--broker", "stream=s"], "broker: url is required (url=redis://HOST:PORT/DB)"),
                ({"broker": {"url": "redis://127.0.0.1:6379/0", "claimIdleMs": 5}},
                 "broker: claimIdleMs '5' is not a whole number from 100 to 86400000"),
                ({"broker": {"url": "redis://127.0.0.1:6379/0", "group": ["a"]}},
                 "broker: group: [\"a\"] is an array, expected a string or a whole number"),
                ({"broker": 5}, "broker: 5 is a number, expected an object"),
            ]
            for args, text in cases:
                if isinstance(args, dict):
                    path = os.path.join(d, "c.json")
                    with open(path, "w") as f:
                        json.dump(args, f)
                    args = ["--config", path]
                r = self.check("--socket", os.path.join(d, "s"), *args)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn(text, r.stderr)
            r = self.check("--socket", os.path.join(d, "s"), "--broker",
                           "url=redis://127.0.0.1:6379/0,maxLength=10,claimIdleMs=500")
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_agentpoold_starts_and_serves_its_socket_before_its_redis_is_there(self):
        with Redis() as r:
            r.stop()
            with broker_server(r) as s, s.client() as sc:
                self.assertEqual(sc.call("echo", 1)["data"], 1)
                self.assertEqual(bstats(s)["state"], "disconnected")
                r.start()
                c = Caller(r)
                c.send("echo", 2)
                self.assertEqual(c.wait_finals(1)[0]["result"]["data"], 2)


if __name__ == "__main__":
    main()
