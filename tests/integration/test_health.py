# SPDX-License-Identifier: BSD-2-Clause
"""test_health.py - one meaning of "healthy", seen through every reader.

A worker is healthy when it takes messages and answered its last
heartbeat (docs/protocol.md, pool.health).  Here the workers stop
answering heartbeats for real: they are frozen with SIGSTOP, so the
master's PINGs go unanswered and each worker's missedBeats grows
(maxMissedBeats is high, so nobody is replaced).  Once every frozen
worker has missed a beat, pool.health, pool.ping, pool.stats (its state,
its count and each worker's `healthy`), /healthz, the agentpool_ready and
agentpool_workers_healthy metrics and the no_healthy_worker alert must
all tell the same story: one frozen worker of two leaves the pool ready
with one healthy worker; both frozen make it degraded with none.  After
SIGCONT they agree again on ready with two.  Waits are on conditions
only: the frozen state is stable (the workers cannot answer), and the
readings while workers answer are waited for as agreement (a live
worker may be late for one beat on a loaded machine).
"""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, main, server_stats, wait_for  # noqa: E402
from test_metrics import Endpoint, check_with_promtool, parse_metrics, sample  # noqa: E402


def health_server():
    srv = Server(workers=2, args=["--health-check-interval", "200", "--max-missed-beats", "1000"])
    spec = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
    srv.args += ["--metrics-listen", spec]
    return srv, Endpoint(spec)


class OneMeaning(unittest.TestCase):
    def readings(self, srv, ep):
        """What every reader says: {reader: (status, healthy count)}."""
        with srv.client() as c:
            h = c.call("pool.health")
            ping = c.call("pool.ping")
        st = server_stats(srv, detailed=True)
        status, _, body = ep.get("/healthz")
        text = ep.get("/metrics")[2]
        check_with_promtool(self, text)
        samples, families = parse_metrics(text)
        self.assertEqual(families["agentpool_workers_healthy"][0], "gauge")
        ready = sample(samples, "agentpool_ready")
        per_worker = sum(1 for w in st["workers"] if w["healthy"])
        return {
            "pool.health": (h["status"], h["healthy"]),
            "pool.ping": (ping["state"], None),
            "pool.stats": (st["state"], st["healthy"]),
            "pool.stats workers": (None, per_worker),
            "/healthz": (body.strip(), None),
            "/healthz status": ({200: "ready", 503: "not ready"}[status], None),
            "agentpool_ready": ({1: "ready", 0: "not ready"}[ready], None),
            "agentpool_workers_healthy": (None, sample(samples, "agentpool_workers_healthy")),
        }

    @staticmethod
    def want(status, healthy):
        ready = "ready" if status == "ready" else "not ready"
        return {
            "pool.health": (status, healthy),
            "pool.ping": (status, None),
            "pool.stats": (status, healthy),
            "pool.stats workers": (None, healthy),
            "/healthz": (status, None),
            "/healthz status": (ready, None),
            "agentpool_ready": (ready, None),
            "agentpool_workers_healthy": (None, healthy),
        }

    def agree_on(self, srv, ep, status, healthy):
        """Waits until every reader says `status` with `healthy` workers
        (one reading of all of them at once); a reader that disagrees for
        good fails the test with the last readings."""
        want = self.want(status, healthy)
        last = [None]

        def agreed():
            last[0] = self.readings(srv, ep)
            return last[0] == want
        try:
            wait_for(agreed, what="every reader to say %s with %d healthy" % (status, healthy))
        except AssertionError:
            self.assertEqual(last[0], want)
            raise

    def test_missed_heartbeats_are_unhealthy_everywhere(self):
        srv, ep = health_server()
        with srv:
            pids = sorted(srv.worker_pids())
            self.assertEqual(len(pids), 2)
            frozen = []

            def missed(*which):
                ws = {w["pid"]: w for w in server_stats(srv, detailed=True)["workers"]}
                return all(ws[p]["missedBeats"] >= 1 and ws[p]["state"] in ("ready", "busy") for p in which)
            try:
                self.agree_on(srv, ep, "ready", 2)
                # one of two frozen: still ready, one healthy
                os.kill(pids[0], signal.SIGSTOP)
                frozen.append(pids[0])
                wait_for(lambda: missed(pids[0]), what="the first frozen worker to miss a beat")
                self.agree_on(srv, ep, "ready", 1)
                # both frozen: both still take messages, but none is healthy
                os.kill(pids[1], signal.SIGSTOP)
                frozen.append(pids[1])
                wait_for(lambda: missed(pids[0], pids[1]), what="both frozen workers to miss a beat")
                st = server_stats(srv, detailed=True)
                self.assertEqual(sorted(w["pid"] for w in st["workers"]), pids, st)
                self.assertEqual([w["healthy"] for w in st["workers"]], [False, False], st)
                self.assertEqual(st["available"] + st["busy"], 2, st)  # taking messages all the same
                # frozen workers cannot answer: this reading is stable
                self.assertEqual(self.readings(srv, ep), self.want("degraded", 0))
                wait_for(lambda: "no_healthy_worker" in {a["name"] for a in server_stats(srv)["alerts"]},
                         what="the no_healthy_worker alert")
            finally:
                for pid in frozen:
                    os.kill(pid, signal.SIGCONT)
            # answering again: every reader agrees on ready with two
            self.agree_on(srv, ep, "ready", 2)
            self.assertEqual(sorted(srv.worker_pids()), pids)  # nobody was replaced
            with srv.client() as c:
                self.assertTrue(c.request("echo", {"after": "thaw"})["ok"])


if __name__ == "__main__":
    main()
