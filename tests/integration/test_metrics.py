# SPDX-License-Identifier: BSD-2-Clause
"""test_metrics.py - statistics and the HTTP endpoints, through the real server.

What docs/protocol.md (pool.stats) and docs/operations.md ("Metrics over
HTTP") promise, against a real agentpoold with real Python workers:
with --metrics-listen on a Unix socket or on 127.0.0.1:PORT, /metrics is
Prometheus text that `promtool check metrics` (Debian's prometheus
package; its absence is a failure, not a skip) accepts, every sample has
its family's HELP and TYPE, no series appears twice, and its counters are
exact for a known scenario (100 echo messages: 100 ok answers and a
duration histogram counting 100; 3 agent errors: 3; crashes by reason);
/healthz answers 200 "ready" when ready and 503 with the state when
degraded or draining; /stats is pool.stats' detailed JSON; unknown paths
are 404; requests and connections are bounded.  A non-loopback address
is refused without metricsAllowRemote.  pool.stats' new fields are
checked for consistency only: p50 <= p90 <= p99 <= max, throughput
windows that agree with the answer counts, ages that are 0 when nothing
waits.  Nothing asserts a duration or a rate's value.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLD, DEADLINE, Gate, Server, build_var, main, server_stats,  # noqa: E402
                     wait_for, wait_stats)

ECHO = "pyagents.examples.echo:EchoAgent"
RAISE = "pyagents.examples.raising:RaiseAgent"
CRASH = "pyagents.examples.crash:CrashAgent"
GATE = "pyagents.examples.gate:GateAgent"
PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Endpoint:
    """Where --metrics-listen points: "unix:/path" or "127.0.0.1:PORT"."""

    def __init__(self, spec):
        self.spec = spec

    def connection(self):
        if self.spec.startswith("unix:"):
            return _UnixHTTP(self.spec[5:], DEADLINE)
        host, port = self.spec.rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=DEADLINE)

    def raw_socket(self):
        if self.spec.startswith("unix:"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(DEADLINE)
            s.connect(self.spec[5:])
        else:
            host, port = self.spec.rsplit(":", 1)
            s = socket.create_connection((host, int(port)), timeout=DEADLINE)
        return s

    def get(self, path, method="GET"):
        """(status, headers dict with lower-case names, body text)."""
        c = self.connection()
        try:
            c.request(method, path)
            r = c.getresponse()
            body = r.read().decode("utf-8")
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()


def unescape_label(s, i):
    """Reads a quoted label value starting after its opening quote at s[i];
    returns (value, index after the closing quote)."""
    out = []
    while True:
        ch = s[i]
        if ch == "\\":
            nxt = s[i + 1]
            out.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} and {family: (type, help)}.
    Fails on a sample without HELP and TYPE, and on a series seen twice."""
    samples, families = {}, {}
    helps = {}
    for line in text.split("\n"):
        if not line:
            continue
        if line.startswith("# HELP "):
            name, _, h = line[7:].partition(" ")
            helps[name] = h
            continue
        if line.startswith("# TYPE "):
            name, _, t = line[7:].partition(" ")
            assert name in helps, "TYPE before HELP for %s" % name
            families[name] = (t, helps[name])
            continue
        assert not line.startswith("#"), line
        i = 0
        while i < len(line) and line[i] not in "{ ":
            i += 1
        name, labels = line[:i], {}
        if line[i] == "{":
            i += 1
            while line[i] != "}":
                eq = line.index("=", i)
                lname = line[i:eq]
                assert line[eq + 1] == '"', line
                value, i = unescape_label(line, eq + 2)
                labels[lname] = value
                if line[i] == ",":
                    i += 1
            i += 1
        value = line[i:].strip()
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in families and \
                    families[name[:-len(suffix)]][0] == "histogram":
                fam = name[:-len(suffix)]
        assert fam in families, "sample %s without HELP/TYPE" % name
        key = (name, frozenset(labels.items()))
        assert key not in samples, "series written twice: %s" % line
        samples[key] = float(value) if value not in ("+Inf", "-Inf", "NaN") else float(value.replace("+", ""))
    return samples, families


def sample(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def check_with_promtool(testcase, text):
    testcase.assertTrue(PROMTOOL, "promtool is missing: apt-get install prometheus (./bootstrap test installs it)")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode("utf-8"), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=DEADLINE)
    testcase.assertEqual(r.returncode, 0, "promtool check metrics:\n%s\n---\n%s" % (r.stdout.decode(), text))
    testcase.assertEqual(r.stdout.decode().strip(), "", text)


def check_histogram(testcase, samples, name, count):
    buckets = sorted(((float(dict(k[1])["le"].replace("+", "")), v) for k, v in samples.items()
                      if k[0] == name + "_bucket"), key=lambda t: t[0])
    testcase.assertGreater(len(buckets), 5, name)
    testcase.assertEqual(buckets[-1][0], float("inf"))
    counts = [v for _, v in buckets]
    testcase.assertEqual(counts, sorted(counts), "%s buckets are not cumulative: %s" % (name, buckets))
    testcase.assertEqual(counts[-1], count)
    testcase.assertEqual(sample(samples, name + "_count"), count)
    testcase.assertGreaterEqual(sample(samples, name + "_sum"), 0)


def check_summary(testcase, s, what):
    testcase.assertLessEqual(s["p50"], s["p90"], (what, s))
    testcase.assertLessEqual(s["p90"], s["p99"], (what, s))
    testcase.assertLessEqual(s["p99"], s["max"], (what, s))
    testcase.assertGreaterEqual(s["p50"], 0, (what, s))


def metrics_server(agent=ECHO, workers=2, listen=None, args=(), **kw):
    srv = Server(agent=agent, workers=workers, args=list(args), **kw)
    spec = listen or "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
    srv.args += ["--metrics-listen", spec]
    return srv, Endpoint(spec)


class Metrics(unittest.TestCase):
    def test_100_echo_messages_over_a_unix_socket(self):
        srv, ep = metrics_server()
        with srv:
            t0 = time.monotonic()
            with srv.client() as c:
                got = c.pipeline([{"id": i, "type": "echo", "data": {"i": i}} for i in range(100)])
            self.assertTrue(all(r["ok"] for r in got.values()))
            status, headers, text = ep.get("/metrics")
            self.assertEqual(status, 200, text)
            self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
            check_with_promtool(self, text)
            samples, families = parse_metrics(text)
            for fam, typ in [("agentpool_up", "gauge"), ("agentpool_messages_total", "counter"),
                             ("agentpool_message_duration_seconds", "histogram"),
                             ("agentpool_queue_wait_seconds", "histogram"), ("agentpool_queue_depth", "gauge"),
                             ("agentpool_queue_capacity", "gauge"), ("agentpool_queue_rejected_total", "counter"),
                             ("agentpool_workers", "gauge"), ("agentpool_worker_restarts_total", "counter"),
                             ("agentpool_worker_rss_bytes", "gauge"), ("agentpool_connections", "gauge"),
                             ("agentpool_dead_letters", "gauge")]:
                self.assertEqual(families.get(fam, (None,))[0], typ, fam)
            self.assertNotIn("agentpool_breaker_state", families)  # breakers are off
            self.assertEqual(sample(samples, "agentpool_up"), 1)
            self.assertEqual(sample(samples, "agentpool_ready"), 1)
            self.assertEqual(sample(samples, "agentpool_messages_total", type="echo", outcome="ok"), 100)
            check_histogram(self, samples, "agentpool_message_duration_seconds", 100)
            check_histogram(self, samples, "agentpool_queue_wait_seconds", 100)
            self.assertEqual(sample(samples, "agentpool_queue_depth"), 0)
            self.assertEqual(sample(samples, "agentpool_queue_capacity"), 1024)
            self.assertEqual(sample(samples, "agentpool_queue_rejected_total"), 0)
            self.assertEqual(sample(samples, "agentpool_workers", state="ready"), 2)
            self.assertEqual(sample(samples, "agentpool_workers", state="busy"), 0)
            self.assertEqual(sample(samples, "agentpool_worker_restarts_total", reason="crashed"), 0)
            self.assertEqual(sample(samples, "agentpool_dead_letters"), 0)
            # Per-worker series are keyed by slot; the pid is only on the info metric.
            rss = {dict(k[1])["slot"] for k in samples if k[0] == "agentpool_worker_rss_bytes"}
            self.assertEqual(rss, {"0", "1"})
            pids = {dict(k[1])["slot"]: int(dict(k[1])["pid"]) for k in samples if k[0] == "agentpool_worker_info"}
            self.assertEqual(sorted(pids.values()), sorted(srv.worker_pids()))
            self.assertEqual([k for k in samples if "pid" in dict(k[1]) and k[0] != "agentpool_worker_info"], [])
            # The per-type handler histogram counts the 100 answers.
            echo = {(k[0], frozenset(x for x in k[1] if x[0] != "type")): v for k, v in samples.items()
                    if k[0].startswith("agentpool_handler_duration_seconds") and dict(k[1]).get("type") == "echo"}
            check_histogram(self, echo, "agentpool_handler_duration_seconds", 100)
            self.assertEqual(sample(samples, "agentpool_handler_duration_seconds_count", type="echo"), 100)

            # pool.stats over the protocol agrees
            st = server_stats(srv, detailed=True)
            elapsed = time.monotonic() - t0
            self.assertEqual(st["types"]["echo"], {"ok": 100, "errors": {}})
            self.assertEqual(st["types"]["other"], {"ok": 0, "errors": {}})
            check_summary(self, st["latency"], "latency")
            check_summary(self, st["queueWait"], "queueWait")
            self.assertGreater(st["latency"]["max"], 0)
            self.assertLessEqual(st["latency"]["samples"], 100)
            self.assertLessEqual(st["queueWait"]["samples"], 100)
            self.assertEqual(st["oldestQueuedAge"], 0)
            tp = st["throughput"]
            n1, n10, n60 = round(tp["1s"]), round(tp["10s"] * 10), round(tp["60s"] * 60)
            self.assertLessEqual(n1, n10)
            self.assertLessEqual(n10, n60)
            self.assertLessEqual(n60, 100)
            if elapsed < 45:
                # every answer is younger than both windows
                self.assertEqual(n60, 100, st)
                self.assertEqual(st["latency"]["samples"], 100, st)
                self.assertEqual(st["queueWait"]["samples"], 100, st)
            mem = st["memory"]
            if "HAVE_JEMALLOC" in (build_var("JEMALLOC_DEFS") or ""):
                self.assertGreater(mem["allocated"], 0, mem)
                self.assertGreater(mem["resident"], 0, mem)
            else:
                self.assertEqual(mem, {"allocated": 0, "resident": 0})
            wall = time.time() * 1000
            for w in st["workers"]:
                self.assertLessEqual(w["startedAt"], wall + 1000, w)
                self.assertGreater(w["startedAt"], wall - 3600 * 1000, w)
                self.assertIsNotNone(w["lastMessageAt"], w)  # round-robin: both served
                self.assertGreaterEqual(w["lastMessageAt"], w["startedAt"], w)
            self.assertEqual(sum(w["messagesProcessed"] for w in st["workers"]), 100)

            # the socket file goes with the server
            path = ep.spec[5:]
            self.assertTrue(os.path.exists(path))
            self.assertEqual(srv.stop(), 0)
            self.assertFalse(os.path.exists(path))

    def test_agent_errors_over_tcp_and_the_other_endpoints(self):
        port = free_port()
        srv, ep = metrics_server(agent=RAISE, listen="127.0.0.1:%d" % port)
        with srv:
            self.assertIn("metrics endpoint on 127.0.0.1:%d" % port, srv.log())
            with srv.client() as c:
                for i in range(3):
                    r = c.request("boom", {"message": "no %d" % i})
                    self.assertEqual(r["error"]["code"], "agent_error", r)
            status, _, text = ep.get("/metrics")
            self.assertEqual(status, 200)
            check_with_promtool(self, text)
            samples, _ = parse_metrics(text)
            self.assertEqual(sample(samples, "agentpool_messages_total", type="boom", outcome="agent_error"), 3)
            self.assertEqual(sample(samples, "agentpool_messages_total", type="boom", outcome="ok"), 0)
            check_histogram(self, samples, "agentpool_message_duration_seconds", 3)
            # agent_error answers are the handler's too.
            self.assertEqual(sample(samples, "agentpool_handler_duration_seconds_count", type="boom"), 3)

            status, headers, body = ep.get("/stats")
            self.assertEqual(status, 200)
            self.assertEqual(headers["content-type"], "application/json")
            st = json.loads(body)
            self.assertEqual(st["errors"]["agent_error"], 3)
            self.assertEqual(st["types"]["boom"], {"ok": 0, "errors": {"agent_error": 3}})
            self.assertEqual(len(st["workers"]), 2)
            self.assertEqual(sum(w["errors"] for w in st["workers"]), 3)
            for w in st["workers"]:
                for key in ("startedAt", "lastMessageAt", "generation", "rssBytes", "state", "pid"):
                    self.assertIn(key, w)
            status, headers, body = ep.get("/healthz")
            self.assertEqual((status, body), (200, "ready\n"))
            self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
            self.assertEqual(ep.get("/healthz?probe=1")[0], 200)
            self.assertEqual(ep.get("/healthz", method="HEAD")[0], 200)
            status, _, body = ep.get("/nope")
            self.assertEqual(status, 404, body)
            self.assertEqual(ep.get("/")[0], 404)
            self.assertEqual(ep.get("/metrics/")[0], 404)
            self.assertNotEqual(ep.get("/metrics", method="POST")[0], 200)
            self.assertNotEqual(ep.get("/metrics", method="DELETE")[0], 200)
            # the pool was not touched by any of it
            self.assertEqual(server_stats(srv)["messages"]["accepted"], 3)

    def test_healthz_503_when_degraded(self):
        srv, ep = metrics_server(agent=CRASH, workers=2, args=["--max-restarts", "1", "--retry-delay", "10"])
        with srv:
            self.assertEqual(ep.get("/healthz")[0], 200)
            with srv.client() as c:
                for i in range(2):
                    r = c.request("boom", {"code": 1}, retry=False)
                    self.assertEqual(r["error"]["code"], "worker_crashed", r)
            st = wait_stats(srv, lambda st: st["state"] == "degraded", what="degraded")
            status, _, body = ep.get("/healthz")
            self.assertEqual((status, body), (503, "degraded\n"), st)
            with srv.client() as c:
                self.assertEqual(c.call("pool.health")["status"], "degraded")
            samples, _ = parse_metrics(ep.get("/metrics")[2])
            self.assertEqual(sample(samples, "agentpool_ready"), 0)
            self.assertEqual(sample(samples, "agentpool_worker_restarts_total", reason="crashed"), 2)
            self.assertEqual(sample(samples, "agentpool_messages_total", type="boom", outcome="worker_crashed"), 2)

    def test_healthz_503_while_draining(self):
        srv, ep = metrics_server(agent=GATE, workers=1)
        with srv, Gate(srv.tmp.name) as gate, srv.client() as c:
            c.send({"id": 1, "type": "hold", "data": gate.data(1)})
            wait_stats(srv, lambda st: st["inFlight"] == 1, what="the message to run")
            srv.signal(signal.SIGTERM)
            wait_for(lambda: ep.get("/healthz")[2] == "draining\n", what="/healthz to say draining")
            self.assertEqual(ep.get("/healthz")[0], 503)
            gate.release()
            self.assertTrue(c.recv()["ok"])
            self.assertEqual(srv.wait_exit(), 0)

    def test_oldest_queued_age_and_queue_wait(self):
        srv, ep = metrics_server(agent=GATE, workers=1)
        with srv, Gate(srv.tmp.name) as gate, srv.client() as c:
            c.send({"id": 1, "type": "hold", "data": gate.data(1)})
            c.send({"id": 2, "type": "hold", "data": gate.data(2)})
            st = wait_stats(srv, lambda st: st["queue"]["depth"] == 1 and st["oldestQueuedAge"] >= 1,
                            what="a queued message that has waited")
            self.assertLessEqual(st["oldestQueuedAge"], st["uptime"])
            samples, _ = parse_metrics(ep.get("/metrics")[2])
            self.assertEqual(sample(samples, "agentpool_queue_depth"), 1)
            self.assertEqual(sample(samples, "agentpool_in_flight"), 1)
            gate.release()
            self.assertEqual(sorted(c.recv()["id"] for _ in range(2)), [1, 2])
            st = server_stats(srv)
            self.assertEqual(st["oldestQueuedAge"], 0)
            self.assertEqual(st["queueWait"]["samples"], 2)
            check_summary(self, st["queueWait"], "queueWait")
            # the queued message waited at least as long as it was seen waiting
            self.assertGreaterEqual(st["queueWait"]["max"], 1)
            self.assertLessEqual(st["queueWait"]["max"], st["latency"]["max"])

    def test_counters_survive_recycling_and_types_are_bounded(self):
        srv, ep = metrics_server(args=["--max-messages-per-worker", "10", "--max-tracked-types", "2",
                                       "--recycle-jitter", "0"])
        with srv:
            with srv.client() as c:
                for i in range(40):
                    self.assertTrue(c.request("echo", i)["ok"])
                for t in ("a", "b", "c", "d", "c"):
                    self.assertTrue(c.request(t, 1)["ok"])
            def recycled():
                st = server_stats(srv, detailed=True)
                serving = [w for w in st["workers"] if w["state"] in ("ready", "busy")]
                return len(serving) == 2 and all(w["generation"] > 1 for w in serving) and \
                    st["restarts"]["recycled"] >= 2 and st
            st = wait_for(recycled, what="both workers recycled and the old processes gone")
            self.assertEqual(set(st["types"]), {"other", "echo", "a"})
            self.assertEqual(st["types"]["echo"]["ok"], 40)
            self.assertEqual(st["types"]["a"]["ok"], 1)
            self.assertEqual(st["types"]["other"]["ok"], 4)  # b, c, d, c
            samples, _ = parse_metrics(ep.get("/metrics")[2])
            self.assertEqual(sample(samples, "agentpool_messages_total", type="echo", outcome="ok"), 40)
            self.assertEqual(sample(samples, "agentpool_messages_total", type="other", outcome="ok"), 4)
            self.assertEqual(sample(samples, "agentpool_message_duration_seconds_count"), 45)
            self.assertGreaterEqual(sample(samples, "agentpool_worker_restarts_total", reason="recycled"), 2)
            # Recycling started new processes but no new series: still one per slot.
            self.assertEqual({dict(k[1])["slot"] for k in samples if k[0] == "agentpool_worker_rss_bytes"},
                             {"0", "1"})

    def test_process_metrics_and_build_info(self):
        srv, ep = metrics_server()
        with srv:
            samples, families = parse_metrics(ep.get("/metrics")[2])
            for fam, typ in [("process_cpu_seconds_total", "counter"), ("process_resident_memory_bytes", "gauge"),
                             ("process_virtual_memory_bytes", "gauge"), ("process_open_fds", "gauge"),
                             ("process_max_fds", "gauge"), ("process_start_time_seconds", "gauge"),
                             ("agentpool_build_info", "gauge"), ("agentpool_worker_info", "gauge")]:
                self.assertEqual(families.get(fam, (None,))[0], typ, fam)
            pid = srv.proc.pid
            with open("/proc/%d/limits" % pid) as f:
                soft = [l.split()[3] for l in f if l.startswith("Max open files")][0]
            self.assertEqual(sample(samples, "process_max_fds"), int(soft))
            fds = len(os.listdir("/proc/%d/fd" % pid))
            self.assertGreater(sample(samples, "process_open_fds"), 0)
            self.assertLessEqual(abs(sample(samples, "process_open_fds") - fds), 4)
            self.assertGreater(sample(samples, "process_resident_memory_bytes"), 0)
            self.assertGreaterEqual(sample(samples, "process_cpu_seconds_total"), 0)
            self.assertEqual(sample(samples, "process_start_time_seconds"),
                             sample(samples, "agentpool_start_time_seconds"))
            info = [dict(k[1]) for k in samples if k[0] == "agentpool_build_info"]
            self.assertEqual(len(info), 1)
            version = subprocess.run([AGENTPOOLD, "--version"], capture_output=True, text=True).stdout.split()[1]
            self.assertEqual(info[0]["version"], version)
            st = server_stats(srv, detailed=True)
            worker_python = {w.get("python") for w in st["workers"]} - {None}
            self.assertTrue(info[0]["python"] and info[0]["libevent"], info)
            for full in worker_python:
                self.assertTrue(full.startswith(info[0]["python"] + "."), (full, info))

    def test_label_values_are_escaped(self):
        srv, ep = metrics_server()
        weird = 'q"uo\\te\nnew \u00e9 }{,='
        with srv:
            with srv.client() as c:
                self.assertTrue(c.request(weird, 1)["ok"])
            text = ep.get("/metrics")[2]
            check_with_promtool(self, text)
            samples, _ = parse_metrics(text)
            self.assertEqual(sample(samples, "agentpool_messages_total", type=weird, outcome="ok"), 1)
            self.assertEqual(server_stats(srv)["types"][weird]["ok"], 1)

    def test_breaker_states_are_exported(self):
        srv, ep = metrics_server(agent=RAISE, args=["--breaker-failure-threshold", "2"])
        with srv:
            with srv.client() as c:
                for _ in range(2):
                    self.assertEqual(c.request("flaky", 1)["error"]["code"], "agent_error")
                self.assertEqual(c.request("flaky", 1)["error"]["code"], "circuit_open")
            text = ep.get("/metrics")[2]
            check_with_promtool(self, text)
            samples, families = parse_metrics(text)
            self.assertEqual(families["agentpool_breaker_state"][0], "gauge")
            self.assertEqual(sample(samples, "agentpool_breaker_state", type="flaky"), 1)
            self.assertEqual(sample(samples, "agentpool_messages_total", type="flaky", outcome="circuit_open"), 1)
            self.assertEqual(sample(samples, "agentpool_messages_total", type="flaky", outcome="agent_error"), 2)


class Bounds(unittest.TestCase):
    def test_oversized_headers_are_refused_and_the_endpoint_keeps_serving(self):
        srv, ep = metrics_server()
        with srv:
            s = ep.raw_socket()
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, BrokenPipeError):
                pass
            s.close()
            self.assertFalse(data.startswith(b"HTTP/1.1 200"), data[:200])
            self.assertEqual(ep.get("/healthz")[0], 200)

    def test_connections_beyond_the_limit_wait(self):
        srv, ep = metrics_server()
        limit = 8  # HTTPD_MAX_CONNS in pool/ops/httpd.h
        with srv:
            held = []
            for _ in range(limit):
                c = ep.connection()
                c.request("GET", "/healthz")
                r = c.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
                held.append(c)  # kept open (keep-alive)
            extra = ep.raw_socket()
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            extra.settimeout(0.5)
            with self.assertRaises(socket.timeout):
                extra.recv(100)  # not served while `limit` connections are open
            held.pop().close()
            extra.settimeout(DEADLINE)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = extra.recv(4096)
                self.assertTrue(chunk, data)
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data)
            extra.close()
            for c in held:
                c.close()


class Settings(unittest.TestCase):
    def run_ap(self, *args):
        tmp = tempfile.mkdtemp(prefix="aptest-")
        try:
            return subprocess.run([AGENTPOOLD, "--socket", os.path.join(tmp, "s"), "--min-workers", "1"] +
                                  list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=DEADLINE,
                                  universal_newlines=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_remote_address_refused_without_metrics_allow_remote(self):
        port = free_port()
        for extra in ([], ["--check-config"]):
            r = self.run_ap("--metrics-listen", "0.0.0.0:%d" % port, *extra)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("metricsListen: 0.0.0.0:%d is not a loopback address" % port, r.stderr)
            self.assertIn("metricsAllowRemote", r.stderr)
        r = self.run_ap("--metrics-listen", "0.0.0.0:%d" % port, "--metrics-allow-remote", "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_remote_address_with_metrics_allow_remote_serves_and_warns(self):
        port = free_port()
        srv = Server(args=["--metrics-listen", "0.0.0.0:%d" % port, "--metrics-allow-remote"])
        with srv:
            self.assertIn("WARN", [l for l in srv.log().splitlines() if "not a loopback address" in l][0])
            self.assertEqual(Endpoint("127.0.0.1:%d" % port).get("/healthz")[0], 200)

    def test_bad_addresses_are_refused(self):
        for spec in ("localhost:9464", "127.0.0.1", "unix:relative", "[::1]9464", "127.0.0.1:70000"):
            r = self.run_ap("--metrics-listen", spec, "--check-config")
            self.assertEqual(r.returncode, 2, (spec, r.stderr))
            self.assertIn("metricsListen: \"%s\" is not" % spec if not spec.startswith("unix:")
                          else "a unix: address needs an absolute path", r.stderr)

    def test_port_in_use_stops_the_start(self):
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        try:
            r = self.run_ap("--metrics-listen", "127.0.0.1:%d" % port)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("metricsListen 127.0.0.1:%d: bind(): Address already in use" % port, r.stderr)
        finally:
            busy.close()

    def test_off_by_default(self):
        with Server() as srv:
            self.assertNotIn("metrics endpoint", srv.log())
            self.assertEqual(os.listdir(srv.tmp.name).count("metrics.sock"), 0)


if __name__ == "__main__":
    main()
