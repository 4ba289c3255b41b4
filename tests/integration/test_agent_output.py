# SPDX-License-Identifier: BSD-2-Clause
"""test_agent_output.py - what agent code writes reaches agentpoold's log.

Through the real agentpoold with real Python workers (agents/noisy.py),
what docs/operations.md ("Agent output") promises: print() and Python
logging from an agent appear in the master's log once, whole, with the
worker id and pid (stdout at info, stderr at warn, a logging record at its
own level); the worker's own log lines are relayed as they are; lines of
two workers never mix, even when each line arrives in many writes; a line
longer than a log line comes in numbered parts; a last line without a
newline is logged when its worker dies, before the line saying how it
died; the JSON log format carries the text as a JSON string; an agent that
floods its output keeps its worker and its answers while the master drops
what is over workerLogRate and counts it (pool.stats, /metrics, a
'dropped' warning); and respawning workers leaks no descriptor in the
master.  Conditions are polled until generous deadlines; no duration is
asserted.
"""
import json
import os
import re
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, main, wait_for  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
AGENT = "noisy:NoisyAgent"
# one log line: time, level, the master's role and pid, then the worker's output
LINE = re.compile(r"^\S+ (DEBUG|INFO |WARN |ERROR|CRIT ) \[master \d+\] "
                  r"(worker-\d+) \(pid (\d+)\) (stdout|stderr)( \(part \d+(?:, last)?\))?: (.*)$")
TEXT_MAX = 4096 - 128  # agent text per log line (pool/workers/wout.c WOUT_TEXT_MAX)


def noisy_server(workers=1, config=None, args=(), agent=AGENT):
    return Server(agent=agent, workers=workers, config=config,
                  args=["--python-path", AGENTS_DIR, "--max-restarts", "100"] + list(args))


def output_lines(log, needle):
    """(level, worker, pid, stream, part, text) of each output line whose
    text contains needle."""
    out = []
    for ln in log.splitlines():
        m = LINE.match(ln)
        if m and needle in m.group(6):
            out.append((m.group(1).strip(), m.group(2), int(m.group(3)), m.group(4), m.group(5) or "", m.group(6)))
    return out


def wait_lines(s, needle, n):
    """Waits until n output lines contain needle; returns them."""
    return wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(output_lines(s.log(), needle)),
                    what="%d output line(s) with %r in the log" % (n, needle))


class Output(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # a burst no test here reaches: nothing may be dropped
        cls.s = noisy_server(workers=2, config={"workerLogBurst": 1000000}).start()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()

    def setUp(self):
        # a test here kills a worker: start each with both serving
        def both_ready():
            with self.s.client() as c:
                ws = c.stats(detailed=True)["workers"]
            return len(ws) == 2 and all(w["state"] == "ready" for w in ws)
        wait_for(both_ready, what="both workers ready")

    def test_print_and_logging_reach_the_log_once_whole_with_worker_and_level(self):
        with self.s.client() as c:
            # (type, data, needle, level, stream, the text logged)
            cases = [
                ("print", {"text": "tok-out hello, world"}, "tok-out", "INFO", "stdout", "tok-out hello, world"),
                ("print", {"text": "tok-stderr line", "stream": "stderr"}, "tok-stderr", "WARN", "stderr",
                 "tok-stderr line"),
                ("log", {"level": "info", "msg": "tok-info record", "logger": "noisy.mod"}, "tok-info", "INFO",
                 "stderr", "INFO noisy.mod: tok-info record"),
                ("log", {"level": "warning", "msg": "tok-warn record"}, "tok-warn", "WARN", "stderr",
                 "WARNING noisy: tok-warn record"),
                ("log", {"level": "error", "msg": "tok-error record"}, "tok-error", "ERROR", "stderr",
                 "ERROR noisy: tok-error record"),
            ]
            # below the log level (info): never written
            c.call("log", {"level": "debug", "msg": "tok-debug record"})
            who = [c.call(t, d) for t, d, _, _, _, _ in cases]
            for (t, d, needle, level, stream, text), w in zip(cases, who):
                lines = wait_lines(self.s, needle, 1)
                self.assertEqual(lines, [(level, w["worker"], w["pid"], stream, "", text)], self.s.log())
            # the debug record was written (if at all) before the lines seen above
            self.assertEqual(output_lines(self.s.log(), "tok-debug"), [])
        log = self.s.log()
        # the workers' own lines are relayed as they are, not as their stderr
        ready = [ln for ln in log.splitlines() if "ready: agent noisy:NoisyAgent" in ln]
        self.assertGreaterEqual(len(ready), 2, log)  # one per process (another test kills one)
        for ln in ready:
            self.assertRegex(ln, r"^\S+ INFO  \[worker-\d \d+\] ready: agent noisy:NoisyAgent ")

    def test_two_workers_writing_long_lines_in_pieces_never_mix(self):
        n, length = 100, 3000
        lines = {tag: "%s:" % tag + tag * length for tag in ("A", "B")}
        reqs = [{"id": tag, "type": "pieces", "data": {"line": lines[tag], "chunk": 100, "n": n}}
                for tag in ("A", "B")]
        with self.s.client() as c:
            answers = c.pipeline(reqs)
        workers = {tag: answers[json.dumps(tag)]["result"] for tag in ("A", "B")}
        self.assertNotEqual(workers["A"]["pid"], workers["B"]["pid"], answers)

        def both():
            log = self.s.log()
            got = {tag: output_lines(log, "%s:%s" % (tag, tag)) for tag in ("A", "B")}
            return got if all(len(v) >= n for v in got.values()) else None
        got = wait_for(both, what="%d long lines of each worker in the log" % n)
        for tag in ("A", "B"):
            self.assertEqual(len(got[tag]), n)
            for level, worker, pid, stream, part, text in got[tag]:
                self.assertEqual((level, worker, pid, stream, part), ("INFO", workers[tag]["worker"],
                                                                      workers[tag]["pid"], "stdout", ""))
                self.assertEqual(text, lines[tag])
        # and no log line holds a piece of both
        mixed = [ln for ln in self.s.log().splitlines() if "AAAAAAAAAA" in ln and "BBBBBBBBBB" in ln]
        self.assertEqual(mixed, [])

    def test_a_line_longer_than_a_log_line_comes_in_numbered_parts(self):
        text = "tok-long:" + "".join("%05d," % i for i in range(2000))  # 12009 characters
        with self.s.client() as c:
            w = c.call("print", {"text": text})
        parts = wait_for(lambda: (lambda ls: ls if ls and ls[-1][4].endswith("last)") else None)(
            [l for l in output_lines(self.s.log(), "") if l[2] == w["pid"] and l[4]]),
            what="the last part of the long line")
        self.assertEqual([p[4] for p in parts], [" (part 1)", " (part 2)", " (part 3)", " (part 4, last)"])
        for p in parts:
            self.assertEqual(p[:4], ("INFO", w["worker"], w["pid"], "stdout"))
            self.assertLessEqual(len(p[5]), TEXT_MAX)
        self.assertEqual("".join(p[5] for p in parts), text)

    def test_a_last_line_without_newline_is_logged_before_its_worker_death(self):
        with self.s.client() as c:
            r = c.request("partial", {"text": "tok-partial no newline"}, retry=False)
        self.assertEqual(r["error"]["code"], "worker_crashed", r)
        pid = int(re.search(r"pid (\d+)", r["error"]["message"]).group(1))
        died = re.compile(r"worker-\d \(pid %d\) exited with status 7" % pid)
        wait_for(lambda: died.search(self.s.log()), what="the death of pid %d in the log" % pid)
        log = self.s.log().splitlines()
        at = [i for i, ln in enumerate(log) if "tok-partial" in ln]
        self.assertEqual(len(at), 1, "\n".join(log))
        self.assertRegex(log[at[0]], r"INFO  \[master \d+\] worker-\d \(pid %d\) stdout: tok-partial no newline$"
                         % pid)
        death = [i for i, ln in enumerate(log) if died.search(ln)][0]
        self.assertLess(at[0], death, "\n".join(log))


class AgentLoggingConfig(unittest.TestCase):
    def test_an_agent_that_configures_logging_itself_replaces_the_default(self):
        with noisy_server(workers=1) as s:
            with s.client() as c:
                w = c.call("basic", {"format": "CUSTOM|%(levelname)s|%(name)s|%(message)s"})
                c.call("log", {"level": "info", "msg": "tok-custom"})
            lines = wait_lines(s, "tok-custom", 1)
            # its format, once: the default handler is no longer used
            self.assertEqual(lines, [("WARN", w["worker"], w["pid"], "stderr", "", "CUSTOM|INFO|noisy|tok-custom")])
            self.assertNotIn("INFO noisy: tok-custom", s.log())


class JsonFormat(unittest.TestCase):
    def test_output_is_a_json_string_and_every_line_is_json(self):
        text = 'tok-json say "hi" \\ back \u00e9\u4e16 \x1b[1m esc\ttab'
        with noisy_server(workers=1, args=["--log-format", "json"]) as s:
            with s.client() as c:
                w = c.call("print", {"text": text})
            want = "%s (pid %d) stdout: %s" % (w["worker"], w["pid"], text.replace("\x1b", "?"))

            def found():
                recs = [json.loads(ln) for ln in s.log().splitlines() if ln.strip()]
                return [r for r in recs if "tok-json" in r["msg"]] or None
            recs = wait_for(found, what="the JSON line of the print")
            self.assertEqual(len(recs), 1, recs)
            self.assertEqual(recs[0]["msg"], want)
            self.assertEqual((recs[0]["level"], recs[0]["role"]), ("info", "master"))
            # the worker's own lines, relayed, are JSON too (json.loads above
            # parsed every line) and keep their role
            roles = {json.loads(ln)["role"] for ln in s.log().splitlines() if ln.strip()}
            self.assertIn(w["worker"], roles)


class Flood(unittest.TestCase):
    def test_a_flooding_agent_keeps_its_worker_and_its_drops_are_counted(self):
        n = 100000
        # async: its loop answers while the flood thread prints
        s = noisy_server(workers=1, agent="noisy:AsyncNoisyAgent")
        msock = os.path.join(s.tmp.name, "metrics.sock")
        s.config = {"metricsListen": "unix:" + msock}  # workerLogRate 100/s, burst 1000: the defaults
        with s:
            done = os.path.join(s.tmp.name, "flood.done")
            with s.client() as c:
                pid = c.call("flood", {"n": n, "done": done})["pid"]
                # the worker keeps answering while (or after) its thread floods
                for _ in range(20):
                    self.assertEqual(c.call("whoami")["pid"], pid)
                wait_for(lambda: os.path.exists(done), what="the flood to finish")
                self.assertEqual(c.call("whoami")["pid"], pid)
            flood = re.compile(r"\] worker-0 \(pid %d\) stdout: flood \d+$" % pid, re.M)
            summary = re.compile(r"WARN  \[master \d+\] worker-0 \(pid %d\): dropped (\d+) lines? of output "
                                 r"\(rate limit: workerLogRate 100/s, workerLogBurst 1000\)" % pid)

            def settled():
                # every line was logged or dropped, and every drop reported
                with s.client() as c:
                    st = c.stats(detailed=True)
                log = s.log()
                logged = len(flood.findall(log))
                reported = sum(int(x) for x in summary.findall(log))
                dropped = st["logLinesDropped"]
                return (st, logged) if logged + dropped == n and reported == dropped else None
            st, logged = wait_for(settled, what="all %d flood lines logged or dropped and reported" % n)
            self.assertGreater(st["logLinesDropped"], 0)
            self.assertGreaterEqual(logged, 900)  # about the burst, at least
            [w] = st["workers"]
            self.assertEqual((w["pid"], w["generation"], w["state"]), (pid, 1, "ready"))
            self.assertEqual(w["logLinesDropped"], st["logLinesDropped"])
            self.assertEqual(st["workerEvents"]["crashed"], 0)
            self.assertEqual(st["workerEvents"]["killedStuck"], 0)
            # /metrics says the same
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as m:
                m.connect(msock)
                m.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                body = b""
                while True:
                    chunk = m.recv(65536)
                    if not chunk:
                        break
                    body += chunk
            self.assertIn('\nagentpool_worker_log_lines_dropped_total{worker="worker-0"} %d\n'
                          % st["logLinesDropped"], body.decode())


class Descriptors(unittest.TestCase):
    def test_respawning_workers_leaks_no_descriptor_in_the_master(self):
        def fds(s):
            return sorted(os.listdir("/proc/%d/fd" % s.proc.pid), key=int)

        with noisy_server(workers=2) as s:
            with s.client() as c:
                def pids_if_ready():
                    ws = c.stats(detailed=True)["workers"]
                    ok = len(ws) == 2 and all(w["state"] == "ready" for w in ws)
                    return ok and [w["pid"] for w in ws]
                wait_for(pids_if_ready, what="both workers ready")
                before = fds(s)
                for i in range(6):
                    if i % 2:
                        old = pids_if_ready()[0]
                        os.kill(old, signal.SIGKILL)
                    else:  # dies with output still in its pipe
                        r = c.request("partial", {"text": "tok-fd-%d" % i}, retry=False)
                        self.assertEqual(r["error"]["code"], "worker_crashed")
                        old = int(re.search(r"pid (\d+)", r["error"]["message"]).group(1))
                    wait_for(lambda: (lambda p: p and old not in p)(pids_if_ready()),
                             what="pid %d to be replaced" % old)
                after = fds(s)
                self.assertEqual(len(before), len(after), "fds before %s, after %s" % (before, after))
            for i in range(0, 6, 2):
                self.assertEqual(len(output_lines(s.log(), "tok-fd-%d" % i)), 1, s.log())


if __name__ == "__main__":
    main()
