# SPDX-License-Identifier: BSD-2-Clause
"""test_leak.py - the worker leaks nothing per message.

One worker; agent.metrics naming it reports the interpreter's
allocated_blocks (sys.getallocatedblocks) and the process's rss_bytes.
After a warm-up (caches, free lists, buffers at their working size), a
pipelined run of RUN messages over several connections must leave both
almost where they were: a leak of one object per message would add RUN
blocks, so the bound (MAX_BLOCKS) is two orders of magnitude below it.
Done for a sync agent (echo) and an async one (AsyncSleepAgent, ms 0,
--concurrency 64).  The measured numbers are printed (to the test's log).
AP_LEAK_WARMUP / AP_LEAK_MESSAGES override the counts for experiments.
"""
import json
import os
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DEADLINE, Server, main  # noqa: E402

WARMUP = int(os.environ.get("AP_LEAK_WARMUP", "20000"))
RUN = int(os.environ.get("AP_LEAK_MESSAGES", "200000"))
CONNECTIONS = 4
MAX_BLOCKS = 2000
MAX_RSS = 4 * 1024 * 1024


def blast(path, total, type_, data, conns=CONNECTIONS):
    """Sends `total` requests pipelined over `conns` connections (a writer
    and a reader thread each) and checks that every id is answered exactly
    once, ok.  Returns the number of answers."""
    per = [total // conns + (1 if k < total % conns else 0) for k in range(conns)]
    errors, counts = [], [0] * conns
    data_json = json.dumps(data, separators=(",", ":"))

    def one(k):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(DEADLINE * 2)
            s.connect(path)
            payload = "".join('{"id":%d,"type":"%s","data":%s}\n' % (i, type_, data_json)
                              for i in range(per[k])).encode()
            w = threading.Thread(target=s.sendall, args=(payload,), daemon=True)
            w.start()
            seen = bytearray(per[k])
            n, buf = 0, b""
            while n < per[k]:
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("server closed after %d answers" % n)
                buf += chunk
                lines = buf.split(b"\n")
                buf = lines.pop()
                for ln in lines:
                    r = json.loads(ln)
                    if r.get("ok") is not True:
                        raise AssertionError("error answer: %r" % r)
                    i = r["id"]
                    if seen[i]:
                        raise AssertionError("id %d answered twice" % i)
                    seen[i] = 1
                    n += 1
            w.join()
            s.close()
            counts[k] = n
        except Exception as e:  # reported by the caller
            errors.append("connection %d: %r" % (k, e))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise AssertionError("; ".join(errors))
    return sum(counts)


class Leak(unittest.TestCase):
    def check_no_leak(self, label, agent, type_, data, args=()):
        # no recycling during the run: the same process must be measured
        with Server(agent=agent, workers=1, args=list(args) + ["--max-messages-per-worker", "0"]) as s, \
                s.client() as c:
            def metrics():
                return c.call("agent.metrics", {"worker": "worker-0"})
            self.assertEqual(blast(s.path, WARMUP, type_, data), WARMUP)
            m0 = metrics()
            self.assertEqual(blast(s.path, RUN, type_, data), RUN)
            m1 = metrics()
            st = c.stats(detailed=True)
        blocks = m1["allocated_blocks"] - m0["allocated_blocks"]
        rss = m1["rss_bytes"] - m0["rss_bytes"]
        print("\n%s: %d messages: allocated_blocks %d -> %d (%+d), rss_bytes %d -> %d (%+.1f KiB)" % (
            label, RUN, m0["allocated_blocks"], m1["allocated_blocks"], blocks,
            m0["rss_bytes"], m1["rss_bytes"], rss / 1024.0), file=sys.stderr)
        self.assertEqual(m1["pid"], m0["pid"], "the worker was replaced during the run")
        self.assertEqual(m1["messages_received"] - m0["messages_received"], RUN + 1)
        self.assertEqual(st["workers"][0]["generation"], 1)
        self.assertEqual(st["workerEvents"]["crashed"], 0)
        self.assertGreater(m0["allocated_blocks"], 0)
        self.assertGreater(m0["rss_bytes"], 0)
        self.assertLess(blocks, MAX_BLOCKS, "%s: allocated blocks grew by %d over %d messages" % (label, blocks, RUN))
        self.assertLess(rss, MAX_RSS, "%s: RSS grew by %d bytes over %d messages" % (label, rss, RUN))

    def test_sync_echo_worker_leaks_nothing_per_message(self):
        self.check_no_leak("sync echo", "pyagents.examples.echo:EchoAgent", "echo",
                           {"text": "hello", "n": [1, 2.5, True, None], "nested": {"k": "v"}})

    def test_async_worker_leaks_nothing_per_message(self):
        self.check_no_leak("async sleep(0)", "pyagents.examples.sleep:AsyncSleepAgent", "sleep", {"ms": 0},
                           args=["--concurrency", "64"])


if __name__ == "__main__":
    main()
