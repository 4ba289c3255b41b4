# SPDX-License-Identifier: BSD-2-Clause
"""test_broker_chaos.py - bench/chaos-broker at its smallest: no loss, no
duplicate through kill -9s of agentpoolds and a Redis restart.

Runs `bench/chaos-broker` (issue 20) against this build: a real
redis-server without persistence, 3 agentpoolds sharing one pool stream,
3,000 echo requests with idempotency keys through
AsyncClient("redis://...") paced at 600/s (so the chaos happens while
they are in flight, whatever the machine's speed: pacing bounds the
rate, never a result), one agentpoold killed with SIGKILL and started
again every 1.5 s, Redis killed and started again once half of them
have ended.  It must answer every request with its own data, with no
final answer that nobody waited for (duplicates 0) and none missing
(losses 0), after at least one kill and the one Redis restart; its exit
status says the same.  Throughput is printed, never judged.
"""
import json
import os
import subprocess
import unittest

from harness import BUILDDIR, SRCDIR, main

CHAOS = os.path.join(SRCDIR, "bench", "chaos-broker")
RUN_TIMEOUT = 900  # only so that a hang fails instead of blocking make check


class ChaosBroker(unittest.TestCase):
    def test_no_loss_no_duplicate_through_kills_and_a_redis_restart(self):
        proc = subprocess.run(["/usr/bin/python3", CHAOS, "--requests", "3000", "--rate", "600", "--inflight", "256",
                               "--kill-every", "1.5", "--redis-restart-at", "0.5", "--build-dir", BUILDDIR,
                               "--json"], capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertTrue(proc.stdout.strip(), proc.stderr[-3000:])
        out = json.loads(proc.stdout)
        self.assertEqual(out["sent"], 3000, out)
        self.assertEqual(out["losses"], 0, (out, proc.stderr[-3000:]))
        self.assertEqual(out["duplicates"], 0, (out, proc.stderr[-3000:]))
        self.assertEqual(out["answered"], 3000, out)
        self.assertGreaterEqual(out["kills"], 1, out)
        self.assertEqual(out["redis_restarts"], 1, out)
        self.assertIsNone(out["chaos_error"], out)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])


if __name__ == "__main__":
    main()
