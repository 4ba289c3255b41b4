# SPDX-License-Identifier: BSD-2-Clause
"""bench/compare's tokens workload, run for real at its smallest.

`bench/compare --quick --workloads tokens` against this build's
agentpoold (and agentpool-gevent where gevent is installed), with 1.5 s
points (a paced stream lasts about 1 s: a shorter point measures no
stream from its start) and no sanity runs, retries or package installs: it must start the
servers with the tokens agents, drive them with agentpool-bench --stream,
and write a JSON and a markdown report holding, per server, one stream's
chunks, the 256 paced streams with the chunk rate the agents produce,
time to first chunk, the master's CPU per chunk and per echo message
from the same run, and the two tokens targets.  The figures themselves
are the machine's weather: only their presence, their consistency with
each other and the counts that do not depend on load (chunks per stream,
streams, commands) are checked.
"""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILDDIR, SRCDIR, greenlet_supported

COMPARE = os.path.join(SRCDIR, "bench", "compare")
RUN_TIMEOUT = 600  # only so that a hang fails instead of blocking make check

try:
    import gevent  # noqa: F401
    HAVE_GEVENT = greenlet_supported()  # not in a sanitizer build (harness.greenlet_supported)
except ImportError:
    HAVE_GEVENT = False


class TokensWorkload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="apcmp-test-")
        cls.servers = ["agentpool"] + (["agentpool-gevent"] if HAVE_GEVENT else [])
        argv = ["/usr/bin/python3", COMPARE, "--quick", "--workloads", "tokens", "--no-install", "--no-sanity",
                "--retry-budget", "0", "--seconds", "1.5", "--warmup", "0.1", "--sched", "same",
                "--build-dir", BUILDDIR, "--out", cls.out]
        if HAVE_GEVENT:
            argv += ["--peers", "agentpool-gevent"]
        cls.proc = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        files = glob.glob(os.path.join(cls.out, "*.json"))
        cls.results = None
        if len(files) == 1:
            with open(files[0]) as f:
                cls.results = json.load(f)
            with open(files[0][:-len(".json")] + ".md") as f:
                cls.md = f.read()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr[-3000:])
        self.assertIsNotNone(self.results, "no JSON report in %s: %s" % (self.out, self.proc.stderr[-2000:]))

    def points(self, server):
        return {p["variant"]: p for p in self.results["points"] if p["server"] == server}

    def test_every_tokens_point_ran_without_error(self):
        self.assertEqual(sorted({p["server"] for p in self.results["points"]}), sorted(self.servers))
        for server in self.servers:
            pts = self.points(server)
            self.assertEqual(sorted(pts), ["echo-rate", "echo-ref", "one-stream", "streams"], server)
            for v, p in pts.items():
                self.assertIsNone(p.get("error"), (server, v, p.get("error")))
                self.assertEqual(p["exit_status"], 0, (server, v))

    def test_streams_are_driven_with_the_tokens_agent(self):
        for server in self.servers:
            pts = self.points(server)
            for v in ("one-stream", "streams"):
                p = pts[v]
                cmd = p["command"]
                self.assertIn("--stream", cmd)
                self.assertEqual(cmd[cmd.index("--type") + 1], "tokens")
                self.assertEqual(json.loads(cmd[cmd.index("--data") + 1]), p["tokens"])
                st = p["result"]["stream"]
                # every measured stream ended ok with all its chunks
                self.assertEqual(p["result"]["requests"]["errors"], 0, (server, v, p["result"]["errors"]))
                self.assertEqual(st["chunks"], p["result"]["requests"]["ok"] * p["tokens"]["n"], (server, v, st))
                self.assertGreater(st["first_chunk_us"]["count"], 0, (server, v, p["result"]))
                # the master sent at least what the client counted (it also sent the warm-up's)
                self.assertGreaterEqual(p["agentpool"]["chunks"], st["chunks"])
                self.assertIsNotNone(p["agentpool"]["master_cpu_us_per_chunk"])
            self.assertEqual((pts["streams"]["conns"], pts["streams"]["depth"]), (256, 1))
            self.assertGreater(pts["streams"]["tokens"]["ms"], 0)
            self.assertEqual(pts["echo-ref"]["kind"], "echo")
            self.assertIsNotNone(pts["echo-ref"]["agentpool"]["master_cpu_us_per_msg"])
            # echo at the paced streams' chunk rate over as many connections, open loop
            er = pts["echo-rate"]
            self.assertEqual((er["kind"], er["conns"]), ("echo", 256))
            self.assertEqual(er["command"][er["command"].index("--rate") + 1], "%.0f" % er["rate"])
            n, ms = pts["streams"]["tokens"]["n"], pts["streams"]["tokens"]["ms"]
            self.assertEqual(er["rate"], round(256 * n / ((n - 1) * ms / 1000.0)))
            self.assertIsNotNone(er["agentpool"]["master_cpu_us_per_msg"])
            agent = "GeventTokensAgent" if server == "agentpool-gevent" else "AsyncTokensAgent"
            starts = self.results["servers"][server]["starts"]
            self.assertIn("pyagents.examples.tokens:" + agent, starts[0]["command"])
            self.assertEqual(starts[0]["command"][starts[0]["command"].index("--min-workers") + 1], "2")

    def test_summary_targets_and_markdown(self):
        s = self.results["summary"]["by_mode"]["same"]
        for server in self.servers:
            t = s["tokens"][server]
            pts = self.points(server)
            n, ms = pts["streams"]["tokens"]["n"], pts["streams"]["tokens"]["ms"]
            self.assertAlmostEqual(t["agents_chunks_per_s"], 256 * n / ((n - 1) * ms / 1000.0))
            self.assertAlmostEqual(t["streams_share"], t["streams_chunks_per_s"] / t["agents_chunks_per_s"])
            self.assertAlmostEqual(t["chunk_over_echo"],
                                   max(t["one_stream_master_cpu_us_per_chunk"], t["streams_master_cpu_us_per_chunk"])
                                   / t["echo_master_cpu_us_per_msg"])
            for key in ("one_stream_chunks_per_s", "first_chunk_p50_ms", "first_chunk_p99_ms"):
                self.assertIsNotNone(t[key], key)
            model = "gevent" if server == "agentpool-gevent" else "async"
            names = {x["target"]: x for x in s["targets"]}
            share = names["tokens, 256 streams over 2 workers (%s): chunks/s vs what the agents produce" % model]
            cpu = names["tokens (%s): master CPU per chunk vs per echo message at 32 conns, closed loop" % model]
            same = [x for k, x in names.items()
                    if k.startswith("tokens (%s): master CPU per paced chunk vs per echo message at the same rate" % model)]
            self.assertEqual(len(same), 1, names.keys())
            self.assertAlmostEqual(t["paced_chunk_over_echo_same_rate"],
                                   t["streams_master_cpu_us_per_chunk"] / t["echo_rate_master_cpu_us_per_msg"])
            self.assertEqual(same[0]["status"] == "met", t["paced_chunk_over_echo_same_rate"] <= 0.5)
            self.assertIn(share["status"], ("met", "MISSED"))
            self.assertIn(cpu["status"], ("met", "MISSED"))
            self.assertEqual(share["status"] == "met", t["streams_share"] >= 0.95)
            self.assertEqual(cpu["status"] == "met", t["chunk_over_echo"] <= 0.5)
        self.assertIn("## tokens: streamed answers", self.md)
        self.assertIn("No peer streams NDJSON", self.md)
        self.assertIn("- load, tokens: `", self.md)


if __name__ == "__main__":
    unittest.main(verbosity=2)
