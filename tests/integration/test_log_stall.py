# SPDX-License-Identifier: BSD-2-Clause
"""test_log_stall.py - the master never blocks on its log.

agentpoold runs with stdout and stderr on a pipe of 4 KiB that the test
does not read.  An agent prints about 1 MB to its stderr, which the master
relays into its log: far more than the pipe and the log's buffer
(256 KiB) hold.  The master must keep serving: the printing message is
answered, and every one of many requests after it is answered while the
pipe is still full; pool.stats counts the lines it dropped
(logWriteDropped) and /metrics shows the same counter.  Then the test
reads the pipe: what was kept arrives whole, one line says how many were
dropped, and new lines (a marker printed by the agent) come through
again.  Before this change the master blocked in write(2) and the first
print was never answered (the test then fails at its deadline).  No
timing assertion: every wait polls a condition until a generous deadline.
"""
import fcntl
import json
import os
import re
import select
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DEADLINE, SRCDIR, Server, main, wait_for, wait_stats  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")


class PipeServer(Server):
    """A Server whose stdout and stderr are one pipe the test reads only
    when it says so."""

    def start(self):
        r, w = os.pipe()
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
        self.pipe_r = r
        self.seen = b""
        env = dict(os.environ)
        env.pop("AGENTPOOL_SOCKET", None)
        self.logf = open(self.logpath, "wb")  # unused; stop() closes it
        self.proc = subprocess.Popen(self.argv(), stdout=w, stderr=w, env=env)
        os.close(w)
        self.wait_until_ready()
        return self

    def drain(self):
        """Reads what the pipe holds now, without waiting."""
        while select.select([self.pipe_r], [], [], 0)[0]:
            chunk = os.read(self.pipe_r, 65536)
            if not chunk:
                break
            self.seen += chunk
        return self.seen

    def log(self):
        return self.drain().decode("utf-8", "replace")

    def close(self):
        # Keep reading while it stops, so its exit flush never waits.
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(15)
            wait_for(lambda: (self.drain(), self.proc.poll() is not None)[1], what="agentpoold to exit")
        self.drain()
        os.close(self.pipe_r)
        super().close()


def metric(path, name, log):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(DEADLINE)
    s.connect(path)
    s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
    body = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        body += d
    s.close()
    m = re.search(r'^%s\{log="%s"\} (\d+)$' % (name, log), body.decode(), re.M)
    return int(m.group(1)) if m else None


class LogStall(unittest.TestCase):
    def test_a_log_pipe_nobody_reads_never_stalls_the_pool(self):
        s = PipeServer(agent="noisy:NoisyAgent", workers=2)
        msock = os.path.join(s.tmp.name, "metrics.sock")
        s.args = ["--python-path", AGENTS_DIR, "--worker-log-rate", "0"]
        s.config = {"metricsListen": "unix:" + msock}
        with s:
            with s.client() as c:
                # ~1 MB of agent output into the master's log, the pipe unread
                r = c.request("print", {"text": "stalled " + "y" * 480, "n": 2000, "stream": "stderr"})
                self.assertTrue(r["ok"], r)
                # the master still answers everything while the pipe stays full
                answers = c.pipeline([{"id": i, "type": "whoami", "data": {}} for i in range(200)])
                self.assertEqual(len(answers), 200)
                self.assertTrue(all(a["ok"] for a in answers.values()), list(answers.values())[:3])
                st = wait_stats(s, lambda st: st["logWriteDropped"] > 0, what="dropped log lines counted")
                dropped = st["logWriteDropped"]
                self.assertEqual(st["accessLogDropped"], 0)
                self.assertGreaterEqual(metric(msock, "agentpool_log_write_dropped_total", "master"), dropped)
                self.assertEqual(metric(msock, "agentpool_log_write_dropped_total", "access"), 0)
                # read the pipe: what was kept comes whole, then the count
                wait_for(lambda: "log output: " in s.log(), what="the dropped-lines report")
                log = s.log()
                m = re.search(r"WARN  \[master \d+\] log output: (\d+) lines dropped \(the log could not take them\)",
                              log)
                self.assertIsNotNone(m, log[-2000:])
                self.assertGreaterEqual(int(m.group(1)), 1)
                before = log[:m.start()]  # everything kept was written before the report
                relayed = [ln for ln in before.split("\n") if "stderr: stalled " in ln]
                self.assertGreater(len(relayed), 0)
                for ln in relayed:
                    self.assertTrue(ln.endswith("stalled " + "y" * 480), ln[:200])
                # logging resumes
                r = c.request("print", {"text": "after the stall", "stream": "stderr"})
                self.assertTrue(r["ok"], r)
                wait_for(lambda: "stderr: after the stall" in s.log(), what="logging to resume")
                answers = c.pipeline([{"id": i, "type": "whoami", "data": {}} for i in range(20)])
                self.assertTrue(all(a["ok"] for a in answers.values()))


if __name__ == "__main__":
    main()
