# SPDX-License-Identifier: BSD-2-Clause
"""test_logs.py - the log file, SIGUSR1, rate limiting and the access log.

What docs/operations.md ("Logs") promises, through the real agentpoold
with real Python workers: --log-file gets the master's and the workers'
lines (nothing is left on stderr); after a rename and SIGUSR1 the master
writes to a new file of the same name while the renamed one keeps what
came before (the access log too); a reopen that fails keeps the old file
and says why; a file that cannot be opened at start stops the server
(exit 1, the reason on stderr).  A flood from one call site (too_large
lines) shows at most the burst, then one "(N similar lines suppressed
...)" line, from the tick when the window ends and at exit, and what is
shown plus what is reported suppressed is exactly what happened.  The
access log has exactly one line per answered request (ok, agent_error,
worker_crashed, bad_request, long ids cut, odd types escaped; pool.*
requests not logged) with the documented fields, in text or JSON lines.
--log-format json makes every line of the log JSON; --log-level warn
hides info lines, debug shows debug lines.  No timing assertion: every
wait polls a condition until a generous deadline.
"""
import json
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DEADLINE, SRCDIR, Server, main, wait_for  # noqa: E402

AGENTS_DIR = os.path.join(SRCDIR, "tests", "integration", "agents")
LIFE = "life:LifeAgent"
ECHO = "pyagents.examples.echo:EchoAgent"
BURST = 100  # docs/operations.md: 100 lines per call site per 10 s (or 2 x maxWorkers)

ACCESS_TEXT = re.compile(
    r'^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) id=(?P<id>.*) type=(?P<type>".*"|-) uid=(?P<uid>\d+) '
    r'worker=(?P<worker>\S+) wait_ms=(?P<wait>\d+\.\d{3}) run_ms=(?P<run>\d+\.\d{3}|-) '
    r'attempt=(?P<attempt>\d+) outcome=(?P<outcome>[a-z_]+)$')
SUPPRESSED = re.compile(r'\((\d+) similar lines? suppressed in the last \d+ s: "(.*)"\)$')


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except FileNotFoundError:
        return ""


def lines_of(path):
    return [ln for ln in read(path).split("\n") if ln]


def wait_lines(path, n, what):
    """Waits until path has at least n lines; returns them."""
    return wait_for(lambda: len(lines_of(path)) >= n and lines_of(path), what=what)


class LogFile(unittest.TestCase):
    def test_log_file_gets_every_line(self):
        s = Server(workers=1)
        log = os.path.join(s.tmp.name, "pool.log")
        s.args = ["--log-file", log]
        with s:
            wait_for(lambda: "[master " in read(log) and "ready: 1 workers" in read(log), what="ready in the log file")
            # the worker's own lines reach the same file
            wait_for(lambda: re.search(r"\[worker-0 \d+\] ready: agent", read(log)), what="a worker line")
            self.assertEqual(os.stat(log).st_mode & 0o777, 0o640 & ~current_umask())
            self.assertEqual(s.stop(), 0)
            self.assertIn("exited (status 0)", read(log))
            self.assertNotIn("[master ", s.log(), "master lines still went to stderr")
            self.assertNotIn("[worker-", s.log(), "worker lines still went to stderr")

    def test_rename_and_sigusr1_start_new_files_and_old_ones_keep_what_came_before(self):
        s = Server(workers=1)
        log = os.path.join(s.tmp.name, "pool.log")
        acc = os.path.join(s.tmp.name, "access.log")
        s.args = ["--log-file", log, "--access-log", acc]
        with s:
            with s.client() as c:
                c.call("echo", {"n": 1})
                c.send_raw(b"not json before\n")
                self.assertFalse(c.recv()["ok"])
            wait_for(lambda: "bad request" in read(log), what="the bad request logged")
            wait_lines(acc, 2, "two access lines")
            os.rename(log, log + ".1")
            os.rename(acc, acc + ".1")
            s.signal(signal.SIGUSR1)
            wait_for(lambda: "SIGUSR1: log file %s reopened, access log %s reopened" % (log, acc) in read(log),
                     what="the reopen logged in the new file")
            with s.client() as c:
                c.call("echo", {"n": 2})
                c.send_raw(b"not json after\n")
                self.assertFalse(c.recv()["ok"])
            wait_for(lambda: "bad request" in read(log), what="the second bad request in the new file")
            new_acc = wait_lines(acc, 2, "two access lines in the new access log")
            old_log, new_log = read(log + ".1"), read(log)
            self.assertIn("ready: 1 workers", old_log)
            self.assertEqual(old_log.count("bad request"), 1)
            self.assertNotIn("SIGUSR1", old_log)
            self.assertNotIn("ready: 1 workers", new_log)
            self.assertEqual(new_log.count("bad request"), 1)
            old_acc = lines_of(acc + ".1")
            self.assertEqual([ACCESS_TEXT.match(l).group("outcome") for l in old_acc], ["ok", "bad_request"])
            self.assertEqual([ACCESS_TEXT.match(l).group("outcome") for l in new_acc], ["ok", "bad_request"])
            self.assertEqual(os.stat(acc).st_mode & 0o777, 0o640 & ~current_umask())

    def test_a_reopen_that_fails_keeps_the_old_file(self):
        s = Server(workers=1)
        d = os.path.join(s.tmp.name, "logs")
        os.mkdir(d)
        s.args = ["--log-file", os.path.join(d, "pool.log")]
        with s:
            os.rename(d, d + ".gone")  # the path cannot be opened any more
            s.signal(signal.SIGUSR1)
            old = os.path.join(d + ".gone", "pool.log")
            wait_for(lambda: "could not reopen the log file: open(%s/pool.log): No such file or directory; "
                             "still writing to the old one" % d in read(old), what="the failed reopen logged")
            wait_for(lambda: "SIGUSR1: log file %s/pool.log kept (reopen failed)" % d in read(old),
                     what="the summary line")
            with s.client() as c:
                self.assertEqual(c.call("echo", {"still": "serving"}), {"still": "serving"})
            s.stop()
            self.assertIn("exited (status 0)", read(old))

    def test_sigusr1_without_log_files_is_harmless(self):
        with Server(workers=1) as s:
            s.signal(signal.SIGUSR1)
            wait_for(lambda: "SIGUSR1: log file (stderr), access log (off)" in s.log(), what="the SIGUSR1 line")
            with s.client() as c:
                self.assertEqual(c.call("echo", 5), 5)

    def test_a_file_that_cannot_be_opened_stops_the_start(self):
        for flag, key in (("--log-file", "logFile"), ("--access-log", "accessLog")):
            s = Server(workers=1, wait_ready=False)
            bad = os.path.join(s.tmp.name, "no-such-dir", "x.log")
            s.args = [flag, bad]
            with s:
                self.assertEqual(s.wait_exit(), 1, s.log())
                self.assertIn("%s: open(%s): No such file or directory" % (key, bad), s.log())
                self.assertFalse(os.path.exists(s.path), "the socket was left behind")


def current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


class RateLimit(unittest.TestCase):
    def flood(self, s, n):
        """n too_large lines on one connection, each answered too_large."""
        with s.client() as c:
            c.send_raw(b"".join(b'{"id":%d,"type":"echo","data":"%s"}\n' % (i, b"x" * 100) for i in range(n)))
            for _ in range(n):
                r = c.recv()
                self.assertEqual(r["error"]["code"], "too_large", r)

    def counts(self, log):
        """Lines shown for the too_large call sites, and the suppressed
        counts reported for them."""
        shown = reported = reports = 0
        for ln in log.split("\n"):
            m = SUPPRESSED.search(ln)
            if m:
                self.assertIn("maxMessageBytes", m.group(2), ln)
                reported += int(m.group(1))
                reports += 1
            elif re.search(r"client-\d+: line (of \d+ bytes is over|longer than) maxMessageBytes", ln):
                shown += 1
        return shown, reported, reports

    def test_a_flood_from_one_call_site_is_cut_and_counted(self):
        s = Server(workers=1)
        log = os.path.join(s.tmp.name, "pool.log")
        s.args = ["--log-file", log, "--max-message-bytes", "64"]
        with s:
            self.flood(s, 500)
            # the window ends and the tick reports what was cut
            wait_for(lambda: self.counts(read(log))[2] >= 1, what="a suppressed report from the tick")
            shown, reported, _ = self.counts(read(log))
            self.assertLessEqual(shown, 2 * BURST)   # two call sites at most
            self.assertGreater(reported, 0)
            self.assertEqual(shown + reported, 500, read(log)[-2000:])
            # a second flood in the next window: cut again, reported at exit
            self.flood(s, 300)
            s.stop()
            shown, reported, reports = self.counts(read(log))
            self.assertEqual(shown + reported, 800)
            self.assertLessEqual(shown, 4 * BURST)
            self.assertGreaterEqual(reports, 2)
            # lifecycle lines are not touched
            text = read(log)
            self.assertIn("worker-0 ready", text)
            self.assertIn("stopping 1 worker", text)
            self.assertIn("exited (status 0)", text)


class AccessLog(unittest.TestCase):
    def server(self, *extra):
        s = Server(agent=LIFE, workers=1)
        self.acc = os.path.join(s.tmp.name, "access.log")
        s.args = ["--python-path", AGENTS_DIR, "--access-log", self.acc, "--max-retries", "0"] + list(extra)
        return s

    def exchange(self, s):
        """Sends one request of each kind; returns what each expects:
        (raw id, type, worker ran, attempt, outcome)."""
        long_id = "z" * 300
        odd_type = 'we"ird\ttype'
        with s.client() as c:
            self.assertTrue(c.request("echo", {"ms": 0}, id="a")["ok"])
            self.assertEqual(c.request("raise", {}, id=2)["error"]["code"], "agent_error")
            self.assertEqual(c.request("crash", {}, id="c", retry=False)["error"]["code"], "worker_crashed")
            c.send_raw(b'{"id":"t","type":5}\n')
            self.assertEqual(c.recv()["error"]["code"], "bad_request")
            c.send_raw(b"nonsense\n")
            self.assertEqual(c.recv()["error"]["code"], "bad_request")
            self.assertTrue(c.request(odd_type, {}, id=long_id)["ok"])
            self.assertTrue(c.call("pool.ping")["pong"])   # not an access line
            c.stats()                                       # nor this
        return [('"a"', "echo", True, 1, "ok"),
                ("2", "raise", True, 1, "agent_error"),
                ('"c"', "crash", True, 1, "worker_crashed"),
                ('"t"', None, False, 0, "bad_request"),
                ("null", None, False, 0, "bad_request"),
                (long_id, odd_type, True, 1, "ok")]

    def test_text_lines_one_per_request_with_every_field(self):
        with self.server() as s:
            want = self.exchange(s)
            wait_lines(self.acc, len(want), "an access line per request")
            s.stop()
            got = lines_of(self.acc)  # after exit: nothing more was added
        self.assertEqual(len(got), len(want), got)
        for line, (rid, typ, ran, attempt, outcome) in zip(got, want):
            m = ACCESS_TEXT.match(line)
            self.assertIsNotNone(m, line)
            if len(rid) > 256:
                self.assertTrue(m.group("id").startswith('"zzzz') and m.group("id").endswith('..."'), line)
                self.assertLessEqual(len(m.group("id")), 256)
            else:
                self.assertEqual(m.group("id"), rid, line)
            if typ is None:
                self.assertEqual(m.group("type"), "-", line)
            else:  # a JSON string
                self.assertEqual(json.loads(m.group("type")), typ, line)
            self.assertEqual(int(m.group("uid")), os.getuid(), line)
            self.assertEqual(m.group("worker"), "worker-0" if ran else "-", line)
            self.assertEqual(m.group("run") != "-", ran, line)
            self.assertEqual(int(m.group("attempt")), attempt, line)
            self.assertEqual(m.group("outcome"), outcome, line)

    def test_json_lines_with_log_format_json(self):
        with self.server("--log-format", "json") as s:
            want = self.exchange(s)
            wait_lines(self.acc, len(want), "an access line per request")
            s.stop()
            got = [json.loads(l) for l in lines_of(self.acc)]
        self.assertEqual(len(got), len(want))
        for rec, (rid, typ, ran, attempt, outcome) in zip(got, want):
            self.assertEqual(set(rec), {"ts", "id", "type", "uid", "worker", "waitMs", "runMs", "attempt", "outcome"})
            self.assertRegex(rec["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            if len(rid) > 256:
                self.assertTrue(rec["id"].startswith("zzzz") and rec["id"].endswith("..."), rec)
            else:
                self.assertEqual(rec["id"], json.loads(rid))
            self.assertEqual(rec["type"], typ)
            self.assertEqual(rec["uid"], os.getuid())
            self.assertEqual(rec["worker"], "worker-0" if ran else None)
            self.assertGreaterEqual(rec["waitMs"], 0)
            if ran:
                self.assertGreaterEqual(rec["runMs"], 0)
            else:
                self.assertIsNone(rec["runMs"])
            self.assertEqual(rec["attempt"], attempt)
            self.assertEqual(rec["outcome"], outcome)

    def test_off_by_default(self):
        s = Server(workers=1)
        with s:
            with s.client() as c:
                c.call("echo", 1)
            files = sorted(os.listdir(s.tmp.name))
        self.assertFalse([f for f in files if "access" in f], files)


class FormatAndLevel(unittest.TestCase):
    def test_log_format_json_makes_every_line_json(self):
        s = Server(workers=1)
        log = os.path.join(s.tmp.name, "pool.log")
        s.args = ["--log-file", log, "--log-format", "json"]
        with s:
            with s.client() as c:
                c.send_raw(b"nonsense\n")
                c.recv()
            wait_for(lambda: "bad request" in read(log), what="the bad request logged")
            s.stop()
            recs = [json.loads(l) for l in lines_of(log)]
        self.assertGreater(len(recs), 5)
        for r in recs:
            self.assertEqual(set(r), {"ts", "level", "role", "pid", "msg"}, r)
            self.assertIn(r["level"], ("debug", "info", "warn", "error", "crit"))
        roles = {r["role"] for r in recs}
        self.assertIn("master", roles)
        self.assertIn("worker-0", roles)
        self.assertTrue(any(r["msg"].startswith("ready: 1 workers") for r in recs))

    def test_log_level_warn_hides_info_and_debug_shows_debug(self):
        s = Server(agent=LIFE, workers=1)
        log = os.path.join(s.tmp.name, "pool.log")
        s.args = ["--python-path", AGENTS_DIR, "--log-file", log, "--log-level", "warn", "--max-retries", "0"]
        with s:
            with s.client() as c:
                c.send_raw(b"nonsense\n")      # an info line: hidden
                c.recv()
                self.assertEqual(c.request("crash", {}, retry=False)["error"]["code"], "worker_crashed")
            wait_for(lambda: "exited with status 1" in read(log), what="the crash (an error line)")
            s.stop()
            text = read(log)
        self.assertNotIn(" INFO  ", text)
        self.assertNotIn("bad request", text)
        self.assertNotIn("ready: 1 workers", text)
        self.assertIn(" ERROR [master ", text)

        s = Server(workers=1)
        log = os.path.join(s.tmp.name, "pool.log")
        s.args = ["--log-file", log, "--log-level", "debug"]
        with s:
            with s.client() as c:
                c.call("echo", 1)
            wait_for(lambda: re.search(r" DEBUG \[master \d+\] client-\d+ connected", read(log)),
                     what="a debug line")
            self.assertIn(" INFO  [master ", read(log))


if __name__ == "__main__":
    main()
