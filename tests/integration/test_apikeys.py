#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""test_apikeys.py - API keys, per-key limits and usage accounting on the
Unix socket, against the real agentpoold with real Python workers.

A request with "key" is checked against apiKeysFile: an unknown key, or a
prefix of a real one, is unauthorized; a key without the pool's right is
forbidden; maxInFlight, ratePerMinute and tokensPerMinute refuse it
rate_limited with retryAfterMs.  The file is reread on SIGHUP (a
world-readable or bad file keeps the old keys; at start it refuses the
start).  ctx.usage() reports are checked in the handler and accounted per
pool, type and key in the master, across a worker's recycle, with the
handler's CPU time, in pool.stats, Prometheus and `agentpoolctl usage`.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLCTL, AGENTPOOLD, DEADLINE, Gate, SRCDIR, Server, main, wait_for  # noqa: E402

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")
SYNC = "usageagent:UsageAgent"
ASYNC = "usageagent:AsyncUsageAgent"


def key_line(kid, secret, pools="*", **limits):
    d = {"id": kid, "sha256": hashlib.sha256(secret.encode()).hexdigest(), "pools": pools}
    d.update(limits)
    return json.dumps(d)


def write_keys(path, lines, mode=0o600):
    with open(path, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    os.chmod(path, mode)


def free_port():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class KeysServer(Server):
    """A Server whose apiKeysFile is keys.jsonl in its temporary directory,
    written before it starts."""

    def __init__(self, lines, agent=SYNC, workers=1, config=None, args=(), mode=0o600, **kw):
        super().__init__(agent=agent, workers=workers, config=config,
                         args=["--python-path", AGENTS] + list(args), **kw)
        self.keys = os.path.join(self.tmp.name, "keys.jsonl")
        write_keys(self.keys, lines, mode)
        self.args += ["--api-keys-file", self.keys]

    def usage_rows(self, c):
        return c.stats()["usage"]["rows"]


def row(rows, **match):
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


class KeyChecks(unittest.TestCase):
    def test_unknown_prefix_forbidden_and_good_keys(self):
        cfg = {"pools": {"a": {"agent": SYNC, "minWorkers": 1, "maxWorkers": 1},
                         "b": {"agent": SYNC, "minWorkers": 1, "maxWorkers": 1}}}
        lines = [key_line("alpha", "s3cret-alpha-0123", pools=["a"]), key_line("all", "s3cret-all", pools="*")]
        with KeysServer(lines, config=cfg) as s, s.client() as c:
            ok = c.request("t", {}, pool="a", key="s3cret-alpha-0123")
            self.assertTrue(ok["ok"], ok)
            self.assertTrue(c.request("t", {}, pool="b", key="s3cret-all")["ok"])
            # without a key: unmetered, as before keys existed
            self.assertTrue(c.request("t", {}, pool="b")["ok"])
            for bad in ("nope", "s3cret-alpha-012", "s3cret-alpha-01234", "S3CRET-ALPHA-0123"):
                r = c.request("t", {}, pool="a", key=bad)
                self.assertEqual(r["error"], {"code": "unauthorized", "message": "unknown API key"}, bad)
            r = c.request("t", {}, pool="b", key="s3cret-alpha-0123")
            self.assertEqual(r["error"]["code"], "forbidden")
            self.assertEqual(r["error"]["message"], "API key alpha may not use pool b")
            for bad, why in ((5, "key must be a non-empty string: an API key"),
                             ("", "key must be a non-empty string: an API key"),
                             ("x" * 257, "key longer than 256 bytes")):
                r = c.request("t", {}, pool="a", key=bad)
                self.assertEqual(r["error"], {"code": "bad_request", "message": why})
            rows = s.usage_rows(c)
            self.assertEqual(row(rows, pool="a", key="none", type="t")["errors"], {"unauthorized": 4})
            self.assertEqual(row(rows, pool="b", key="alpha")["errors"], {"forbidden": 1})
            self.assertEqual(row(rows, pool="a", key="alpha")["ok"], 1)
            self.assertNotIn("s3cret", s.log())

    def test_the_secret_is_hashed_not_compared_as_text(self):
        """A key line holds the SHA-256 of the secret: sending the hash
        itself as the key is unauthorized."""
        digest = hashlib.sha256(b"the-secret").hexdigest()
        with KeysServer([key_line("k", "the-secret")]) as s, s.client() as c:
            self.assertTrue(c.request("t", {}, key="the-secret")["ok"])
            self.assertEqual(c.request("t", {}, key=digest)["error"]["code"], "unauthorized")


class Limits(unittest.TestCase):
    def test_max_in_flight(self):
        with KeysServer([key_line("k", "sk", maxInFlight=2)], workers=3) as s, s.client() as c, \
                Gate(s.tmp.name) as gate:
            c.send({"id": 1, "type": "t", "data": {"gate": gate.path}, "key": "sk"})
            c.send({"id": 2, "type": "t", "data": {"gate": gate.path}, "key": "sk"})
            wait_for(lambda: c.stats()["inFlight"] == 2, what="two messages running")
            r = c.request("t", {}, key="sk", id=3)
            self.assertEqual(r["error"]["code"], "rate_limited")
            self.assertEqual(r["error"]["message"], "API key k has 2 messages in flight (maxInFlight 2)")
            self.assertGreater(r["error"]["retryAfterMs"], 0)
            # another caller, without a key, is not held back
            with s.client() as c2:
                r = c2.request("t", {})
            self.assertTrue(r["ok"], r)
            gate.release()
            self.assertEqual(sorted(c.recv()["id"] for _ in range(2)), [1, 2])
            self.assertTrue(c.request("t", {}, key="sk")["ok"])

    def test_rate_per_minute(self):
        with KeysServer([key_line("k", "sk", ratePerMinute=2)]) as s, s.client() as c:
            self.assertTrue(c.request("t", {}, key="sk")["ok"])
            self.assertTrue(c.request("t", {}, key="sk")["ok"])
            r = c.request("t", {}, key="sk")
            self.assertEqual(r["error"]["code"], "rate_limited")
            self.assertIn("ratePerMinute (2)", r["error"]["message"])
            self.assertTrue(0 < r["error"]["retryAfterMs"] <= 30000, r)

    def test_tokens_per_minute(self):
        with KeysServer([key_line("k", "sk", tokensPerMinute=10), key_line("k2", "sk2", tokensPerMinute=10)]) as s, \
                s.client() as c:
            # a message may report more than the budget: it is charged after
            # the fact, and the key waits until the bucket refills
            self.assertTrue(c.request("t", {"usage": {"tokens_in": 600, "tokens_out": 400}}, key="sk")["ok"])
            r = c.request("t", {}, key="sk")
            self.assertEqual(r["error"]["code"], "rate_limited")
            self.assertEqual(r["error"]["message"], "API key k used its tokensPerMinute (10)")
            self.assertGreater(r["error"]["retryAfterMs"], 60000)
            self.assertTrue(c.request("t", {}, key="sk2")["ok"])  # per key


class KeysFile(unittest.TestCase):
    def test_sighup_rereads_and_a_bad_file_keeps_the_old_keys(self):
        with KeysServer([key_line("a", "sa")]) as s, s.client() as c:
            self.assertEqual(c.request("t", {}, key="sb")["error"]["code"], "unauthorized")
            write_keys(s.keys, [key_line("a", "sa"), key_line("b", "sb")])
            s.signal(signal.SIGHUP)
            wait_for(lambda: c.request("t", {}, key="sb")["ok"], what="the new key after SIGHUP")
            # world-readable: refused, the keys in use stay
            write_keys(s.keys, [key_line("c", "sc")], mode=0o644)
            s.signal(signal.SIGHUP)
            wait_for(lambda: c.stats()["usage"]["apiKeysReloadFailures"] == 1, what="the refused reread")
            self.assertIn("readable by others (mode 644): refused", s.log())
            self.assertTrue(c.request("t", {}, key="sb")["ok"])
            self.assertEqual(c.request("t", {}, key="sc")["error"]["code"], "unauthorized")
            # a bad line: file:line: why
            write_keys(s.keys, [key_line("c", "sc"), '{"id": "d", "sha256": "00", "pools": "*"}'])
            s.signal(signal.SIGHUP)
            wait_for(lambda: c.stats()["usage"]["apiKeysReloadFailures"] == 2, what="the second refused reread")
            self.assertIn("keys.jsonl:2: sha256 must be the secret's SHA-256 as 64 hex digits", s.log())
            self.assertTrue(c.request("t", {}, key="sb")["ok"])

    def start_refused(self, prepare):
        s = KeysServer([key_line("a", "sa")], wait_ready=False)
        try:
            prepare(s)
            s.start()
            self.assertEqual(s.wait_exit(), 1)
            return s.log()
        finally:
            s.close()

    def test_start_refused_world_readable(self):
        log = self.start_refused(lambda s: os.chmod(s.keys, 0o604))
        self.assertIn("keys.jsonl: readable by others (mode 604): refused; chmod o-r it", log)

    def test_start_refused_symlink(self):
        def link(s):
            real = s.keys + ".real"
            os.rename(s.keys, real)
            os.symlink(real, s.keys)
        log = self.start_refused(link)
        self.assertIn("is a symbolic link", log)

    def test_start_refused_bad_lines(self):
        for text, why in (('{"id": "a"}', "keys.jsonl:3: sha256 is missing"),
                          ('{"id": "a", "sha256": "%s", "pools": "*", "maxInflight": 3}' % ("0" * 64),
                           'keys.jsonl:3: unknown member "maxInflight"'),
                          (key_line("a", "other"), "keys.jsonl: key id a is given twice"),
                          ("[1]", "keys.jsonl:3: not a JSON object")):
            def prepare(s, text=text):
                write_keys(s.keys, [key_line("a", "sa"), "# a comment", text])
            self.assertIn(why, self.start_refused(prepare))


class Usage(unittest.TestCase):
    def test_usage_accumulates_across_a_recycle(self):
        with KeysServer([key_line("k", "sk")], args=["--max-messages-per-worker", "3", "--recycle-jitter", "0"]) as s, \
                s.client() as c:
            sent = []

            def one():
                r = c.request("gen", {"usage": {"tokens_in": 10, "tokens_out": 3, "cost": 0.25, "calls": 1},
                                      "spin_ms": 2}, key="sk")
                self.assertTrue(r["ok"], r)
                sent.append(r["result"]["pid"])
                return len(set(sent)) > 1
            wait_for(one, what="a message answered by the recycled worker's replacement")
            n = len(sent)
            r = row(s.usage_rows(c), key="k", type="gen")
            self.assertEqual((r["requests"], r["ok"], r["tokensIn"], r["tokensOut"], r["cost"], r["other"]),
                             (n, n, 10 * n, 3 * n, 0.25 * n, {"calls": n}))
            self.assertEqual(r["cpuMessages"], n)
            self.assertGreaterEqual(r["cpuSeconds"], n * 0.002)  # each spun 2 ms of CPU at least
            self.assertEqual(r["runMessages"], n)

    def test_ctx_usage_validation(self):
        with KeysServer([]) as s, s.client() as c:
            for usage, exc, text in (({"tokens_in": "12"}, "TypeError", "usage tokens_in must be a number, not str"),
                                     ({"tokens_in": 1.5}, "TypeError", "usage tokens_in must be an integer"),
                                     ({"cost": -1}, "ValueError", "must be a finite number >= 0"),
                                     ({"cost": True}, "TypeError", "not bool"),
                                     ({"n%d" % i: 1 for i in range(17)}, "ValueError", "more than 16 names"),
                                     ({"x" * 65: 1}, "ValueError", "1 to 64 characters")):
                r = c.request("v", {"usage": usage})
                self.assertEqual(r["error"]["exception"], exc, r)
                self.assertIn(text, r["error"]["message"])
            self.assertTrue(c.request("v", {"usage": {"tokens_in": 5}, "usage_twice": True})["ok"])
            r = row(s.usage_rows(c), key="none", type="v")
            self.assertEqual((r["tokensIn"], r["other"], r["errors"]), (10, {}, {"agent_error": 6}))

    def test_async_model_measures_cpu_per_message(self):
        with KeysServer([key_line("k", "sk")], agent=ASYNC) as s, s.client() as c:
            self.assertTrue(c.request("a", {"usage": {"tokens_out": 9}, "spin_ms": 5}, key="sk")["ok"])
            r = row(s.usage_rows(c), key="k", type="a")
            self.assertEqual((r["tokensOut"], r["cpuMessages"]), (9, 1))
            self.assertGreaterEqual(r["cpuSeconds"], 0.005)

    def test_prometheus_and_agentpoolctl(self):
        port = free_port()
        with KeysServer([key_line("k", "sk")], args=["--metrics-listen", "127.0.0.1:%d" % port]) as s, \
                s.client() as c:
            self.assertTrue(c.request("p", {"usage": {"tokens_in": 7, "tokens_out": 2, "cost": 0.5}}, key="sk")["ok"])
            self.assertTrue(c.request("p", {})["ok"])
            text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=DEADLINE).read().decode()
            for line in ('agentpool_usage_tokens_total{pool="default",type="p",key="k",direction="in"} 7',
                         'agentpool_usage_tokens_total{pool="default",type="p",key="k",direction="out"} 2',
                         'agentpool_usage_cost_total{pool="default",type="p",key="k"} 0.5',
                         'agentpool_usage_requests_total{pool="default",type="p",key="none",outcome="ok"} 1',
                         'agentpool_message_cpu_seconds_count{pool="default",type="p",key="k"} 1'):
                self.assertIn(line + "\n", text)
            self.assertIn("# TYPE agentpool_message_cpu_seconds histogram", text)
            out = subprocess.run([AGENTPOOLCTL, "-s", s.path, "usage"], capture_output=True, text=True,
                                 timeout=DEADLINE)
            self.assertEqual(out.returncode, 0, out.stderr)
            lines = out.stdout.splitlines()
            self.assertEqual(lines[0].split(), ["key", "requests", "ok", "errors", "tokens-in", "tokens-out", "cost",
                                                "cpu-s"])
            self.assertEqual(lines[1].split()[:7], ["k", "1", "1", "-", "7", "2", "0.5"])
            self.assertEqual(lines[2].split()[:3], ["none", "1", "1"])
            out = subprocess.run([AGENTPOOLCTL, "-s", s.path, "usage", "--by", "type", "--json"], capture_output=True,
                                 text=True, timeout=DEADLINE)
            got = json.loads(out.stdout)
            self.assertEqual([(g["type"], g["requests"], g["tokensIn"]) for g in got], [("p", 2, 7)])
            out = subprocess.run([AGENTPOOLCTL, "-s", s.path, "usage", "--by", "nope"], capture_output=True,
                                 text=True, timeout=DEADLINE)
            self.assertEqual(out.returncode, 2)


class UntrustedUsageFrames(unittest.TestCase):
    """The worker runs agent code, which can write to the master link: a
    USAGE frame is checked like a client's line."""

    def test_a_usage_frame_that_is_not_numbers_is_dropped_and_counted(self):
        with KeysServer([], agent="rogue:RogueAgent") as s, s.client() as c:
            for text, why in (('{"tokens_in": "7"}', "a value that is not a finite number >= 0"),
                              ('{"tokens_in": 1.5}', "tokens that are not an integer below 2^53"),
                              ('{"a-b": 1}', "a bad name"), ("[1, 2]", "not a JSON object"), ("{]", "not JSON")):
                r = c.request("usage_frame", {"json": text})
                self.assertTrue(r["ok"], r)  # the message itself is answered as usual
                self.assertIn("usage frame for message", s.log())
                self.assertIn("dropped: " + why, s.log())
            st = c.stats()["usage"]
            self.assertEqual(st["framesRefused"], 5)
            self.assertEqual(row(st["rows"], type="usage_frame")["tokensIn"], 0)

    def test_a_usage_frame_over_its_bound_is_a_protocol_error(self):
        with KeysServer([], agent="rogue:RogueAgent", args=["--max-retries", "0"]) as s, s.client() as c:
            pid = c.stats(detailed=True)["workers"][0]["pid"]
            r = c.request("usage_frame", {"json": '{"x": %s}' % ("1" * 5000)})
            self.assertEqual(r["error"]["code"], "worker_crashed", r)
            self.assertIn("worker-0 (pid %d): USAGE frame while busy (a usage frame over its bound); killing it" % pid,
                          s.log())


if __name__ == "__main__":
    main()
