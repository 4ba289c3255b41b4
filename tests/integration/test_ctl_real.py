# SPDX-License-Identifier: BSD-2-Clause
"""test_ctl_real.py - agentpoolctl's stats, health, history, reload,
scale and dlq commands, and every exit status, against the real
agentpoold (started by harness.Server).  (top has test_ctl_top.py.)

Dead letters are made the way they happen in production: CrashAgent
kills its worker on every message (type "die", data {"code": 3}), with a
short retry delay and one retry, so each message is answered
worker_crashed and written to the dead-letter file.  Replays that must
succeed run against a second agentpoold serving the echo agent on the
SAME dead-letter file.  Every test checks the exit status and the text
printed; conditions are waited for with generous deadlines and nothing
asserts how long anything took.
"""
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLCTL, DEADLINE, Gate, Server, main, pid_gone, server_stats,  # noqa: E402
                     wait_for, wait_stats)

# the exit statuses agentpoolctl documents (ctl/ctl.h, --help, docs/operations.md)
EXIT_OK, EXIT_ANSWER_ERROR, EXIT_USAGE, EXIT_CONNECT, EXIT_EXCHANGE = 0, 1, 2, 3, 4
CRASH = "pyagents.examples.crash:CrashAgent"
ECHO = "pyagents.examples.echo:EchoAgent"
RAISE = "pyagents.examples.raising:RaiseAgent"
GATE = "pyagents.examples.gate:GateAgent"


def ctl(path, *args, env_extra=None):
    """Runs agentpoolctl -s path ARGS; returns the CompletedProcess with
    stdout and stderr decoded."""
    env = dict(os.environ)
    env.pop("AGENTPOOL_SOCKET", None)
    env.pop("COLUMNS", None)
    if env_extra:
        env.update(env_extra)
    return subprocess.run([AGENTPOOLCTL, "-s", path] + list(args), capture_output=True,
                          text=True, timeout=DEADLINE * 2, env=env)


def table(lines):
    """The rows of a table (its lines, header first) as lists of cells,
    cut at the header's column starts (columns are two spaces apart; a
    header may hold one space, as "last failure" does)."""
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    rows = []
    for line in lines:
        cells = []
        for i, s in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else None
            cells.append(line[s:end].strip())
        rows.append(cells)
    return rows


def sheet(text):
    """The summary sheet of `agentpoolctl stats` (up to its first blank
    line) as {label: value}, continuation lines joined with a space."""
    rows = text.split("\n\n")[0].rstrip("\n").split("\n")
    start = re.match(r"\S+(?: \S+)*\s{2,}", rows[0]).end()
    out, last = {}, None
    for row in rows:
        label, value = row[:start].strip(), row[start:]
        assert value[:1] != " ", "value not in the value column: %r" % row
        if label:
            out[label] = value
            last = label
        else:
            out[last] += " " + value
    return out


def section(text, title):
    """The lines of the table after "\n\n<title>:\n" in text."""
    assert "\n\n%s:\n" % title in text, text
    return text.split("\n\n%s:\n" % title)[1].split("\n\n")[0].rstrip("\n").split("\n")


def out_lines(r):
    return r.stdout.rstrip("\n").split("\n")


def write_dead_letters(path, records):
    """Writes a dead-letter file by hand, in agentpoold's format: records
    is a list of (type, data) as raw JSON text; dlqIds count from 1."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        for n, (type_json, data_json) in enumerate(records, 1):
            f.write('{"dlqId":%d,"time":"2026-01-02T03:04:05.678Z","id":"f-%d","type":%s,'
                    '"data":%s,"attempts":1,"failures":[{"time":"2026-01-02T03:04:05.678Z",'
                    '"worker":"worker-0","pid":1,"reason":"made by the test"}]}\n'
                    % (n, n, type_json, data_json))


def local_iso(ms, tz):
    """What agentpoolctl prints for wall-clock ms in timezone tz."""
    t = datetime.datetime.fromtimestamp(ms / 1000, tz)
    off = t.utcoffset()
    mins = int(off.total_seconds()) // 60
    sign = "-" if mins < 0 else "+"
    mins = abs(mins)
    return "%s.%03d%s%02d:%02d" % (t.strftime("%Y-%m-%dT%H:%M:%S"), ms % 1000, sign,
                                   mins // 60, mins % 60)


class CtlRealTestCase(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(AGENTPOOLCTL, os.X_OK), "%s not built" % AGENTPOOLCTL)
        self.tmp = tempfile.TemporaryDirectory(prefix="apctl-real-")
        self.addCleanup(self.tmp.cleanup)
        self.dlq_path = os.path.join(self.tmp.name, "dead.jsonl")

    def server(self, agent=CRASH, args=(), workers=2):
        """A started agentpoold on this test's dead-letter file, stopped at
        the end of the test."""
        s = Server(agent=agent, workers=workers,
                   args=["--dead-letter-file", self.dlq_path] + list(args))
        s.start()
        self.addCleanup(s.close)
        return s

    def crash_server(self, args=()):
        return self.server(CRASH, ["--retry-delay", "10", "--max-retries", "1",
                                   "--max-restarts", "1000"] + list(args))

    def make_dead_letters(self, srv, n=2):
        """Sends n messages that crash their worker; returns their ids once
        each was answered worker_crashed (and so is in the file)."""
        ids = ["job-%d" % i for i in range(n)]
        with srv.client() as c:
            answers = c.pipeline([{"id": i, "type": "die", "data": {"code": 3}} for i in ids])
        for i in ids:
            a = answers[json.dumps(i)]
            self.assertFalse(a["ok"], a)
            self.assertEqual(a["error"]["code"], "worker_crashed", a)
        return ids

    def dlq_records(self, srv):
        with srv.client() as c:
            res = c.call("pool.dlq.list", {"offset": 0, "limit": 1000})
        self.assertEqual(res["total"], len(res["records"]))
        return res["records"]


class TestDlqList(CtlRealTestCase):
    def test_dlq_list_shows_each_dead_letter_in_a_table_with_a_total_line(self):
        srv = self.crash_server()
        ids = self.make_dead_letters(srv)
        r = ctl(srv.path, "dlq", "list")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        lines = out_lines(r)
        self.assertEqual(lines[-1], "2 dead letters in %s" % self.dlq_path)
        rows = table(lines[:-1])
        self.assertEqual(rows[0], ["dlqId", "time", "id", "type", "attempts", "last failure"])
        self.assertEqual(len(rows), 3, r.stdout)
        self.assertEqual(sorted(row[0] for row in rows[1:]), ["1", "2"])
        self.assertEqual(sorted(row[2] for row in rows[1:]), sorted(ids))
        for row in rows[1:]:
            self.assertEqual(row[3], "die")
            self.assertEqual(row[4], "2")  # the first attempt and one retry
            self.assertRegex(row[5], r"^worker-\d+ \(pid \d+\) exited with status 3 while running "
                                     r"this message$")

    def test_dlq_list_shows_times_in_local_time_with_the_utc_offset(self):
        srv = self.crash_server()
        self.make_dead_letters(srv, 1)
        rec = self.dlq_records(srv)[0]
        when = datetime.datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc)
        ms = int(when.timestamp() * 1000 + 0.5)
        # POSIX TZ strings need no tz database: UTC-05:30 is "XYZ+5:30".
        tz = datetime.timezone(datetime.timedelta(hours=-5, minutes=-30))
        r = ctl(srv.path, "dlq", "list", env_extra={"TZ": "XYZ+5:30"})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        cell = table(out_lines(r)[:-1])[1][1]
        self.assertEqual(cell, local_iso(ms, tz))
        self.assertTrue(cell.endswith("-05:30"), r.stdout)

    def test_dlq_list_json_prints_each_record_as_stored_one_per_line(self):
        srv = self.crash_server()
        self.make_dead_letters(srv)
        r = ctl(srv.path, "dlq", "list", "--json")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        lines = r.stdout.split("\n")
        self.assertEqual(lines[-1], "", "every record ends in a newline")
        with open(self.dlq_path) as f:
            stored = f.read().split("\n")
        self.assertEqual(lines, stored)
        self.assertEqual([json.loads(l) for l in lines[:-1]], self.dlq_records(srv))

    def test_dlq_list_offset_and_limit_choose_the_records_and_the_total_says_so(self):
        srv = self.crash_server()
        self.make_dead_letters(srv, 3)
        r = ctl(srv.path, "dlq", "list", "--offset", "1", "--limit", "1")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        rows = table(out_lines(r)[:-1])
        self.assertEqual([row[0] for row in rows[1:]], ["2"])
        self.assertTrue(r.stdout.endswith("3 dead letters in %s; showing 2-2\n" % self.dlq_path),
                        r.stdout)
        r = ctl(srv.path, "dlq", "list", "--json", "--offset", "2")
        self.assertEqual([json.loads(l)["dlqId"] for l in r.stdout.splitlines()], [3])
        r = ctl(srv.path, "dlq", "list", "--offset", "3")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout, "3 dead letters in %s; none from offset 3\n" % self.dlq_path)

    def test_dlq_list_cuts_the_last_failure_to_fit_COLUMNS(self):
        srv = self.crash_server()
        self.make_dead_letters(srv, 1)
        r = ctl(srv.path, "dlq", "list", env_extra={"COLUMNS": "90"})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        row = r.stdout.split("\n")[1]
        self.assertLessEqual(len(row), 90, r.stdout)
        self.assertTrue(row.endswith("..."), r.stdout)
        self.assertIn(" worker-", row)

    def test_dlq_list_of_an_empty_file_prints_only_the_total(self):
        srv = self.server(ECHO)
        r = ctl(srv.path, "dlq", "list")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "0 dead letters in %s\n" % self.dlq_path))
        r = ctl(srv.path, "dlq", "list", "--json")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, ""))


class TestDlqReplay(CtlRealTestCase):
    def crash_then_echo(self, n=2):
        """Makes n dead letters on a crashing pool, stops it, and returns an
        echo pool serving the same dead-letter file."""
        crash = self.crash_server()
        ids = self.make_dead_letters(crash, n)
        self.assertEqual(crash.stop(), 0)
        return self.server(ECHO), ids

    def test_dlq_replay_to_a_working_agent_removes_every_dead_letter(self):
        srv, _ = self.crash_then_echo(2)
        r = ctl(srv.path, "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_OK, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "replayed 2: 2 ok (removed), 0 failed (kept)\n")
        self.assertEqual(self.dlq_records(srv), [])
        r = ctl(srv.path, "dlq", "list")
        self.assertEqual(r.stdout, "0 dead letters in %s\n" % self.dlq_path)
        with srv.client() as c:
            st = c.stats()
        # the replays were ordinary messages, answered by the echo agent
        self.assertEqual(st["totalMessagesProcessed"], 2, st)

    def test_dlq_replay_sends_each_type_and_data_unchanged_under_a_replay_id(self):
        crash = self.crash_server()
        data = '{"code": 3, "big": 12345678901234567890, "x": 1.50}'
        with crash.client() as c:
            c.send_raw(b'{"id":"odd","type":"die","data":' + data.encode() + b'}\n')
            self.assertEqual(c.recv()["error"]["code"], "worker_crashed")
        crash.stop()
        # the records keep the client's bytes; a replay to a crashing pool
        # writes a new record from what the replay sent
        crash2 = self.crash_server()
        r = ctl(crash2.path, "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stdout + r.stderr)
        with open(self.dlq_path) as f:
            recs = [json.loads(l) for l in f]
        self.assertEqual([rec["id"] for rec in recs], ["odd", "replay-1"])
        with open(self.dlq_path) as f:
            raw = f.read()
        self.assertEqual(raw.count('"data":' + data), 2, raw)

    def test_dlq_replay_of_messages_that_still_crash_keeps_them_and_exits_1(self):
        srv = self.crash_server()
        self.make_dead_letters(srv, 2)
        r = ctl(srv.path, "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stdout + r.stderr)
        lines = r.stdout.rstrip("\n").split("\n")
        self.assertEqual(sorted(lines[:2]), ["failed: dlqId 1 (type die): worker_crashed",
                                             "failed: dlqId 2 (type die): worker_crashed"])
        self.assertEqual(lines[2], "replayed 2: 0 ok (removed), 2 failed (kept)")
        self.assertIn("dead-lettered each again as a new record", lines[3])
        # the old records are kept, and each failed replay is a new record
        recs = self.dlq_records(srv)
        self.assertEqual([rec["dlqId"] for rec in recs], [1, 2, 3, 4])
        self.assertEqual(sorted(rec["id"] for rec in recs[2:]), ["replay-1", "replay-2"])

    def test_dlq_replay_by_id_replays_and_removes_only_that_dead_letter(self):
        srv, _ = self.crash_then_echo(3)
        r = ctl(srv.path, "dlq", "replay", "--id", "2")
        self.assertEqual(r.returncode, EXIT_OK, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "replayed 1: 1 ok (removed), 0 failed (kept)\n")
        self.assertEqual([rec["dlqId"] for rec in self.dlq_records(srv)], [1, 3])

    def test_dlq_replay_of_an_unknown_id_exits_1_naming_it(self):
        srv, _ = self.crash_then_echo(1)
        r = ctl(srv.path, "dlq", "replay", "--id", "99")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR)
        self.assertIn("agentpoolctl: dlq replay: no dead letter has dlqId 99", r.stderr)
        self.assertEqual(len(self.dlq_records(srv)), 1)

    def test_dlq_replay_of_an_empty_file_replays_nothing_and_exits_0(self):
        srv = self.server(ECHO)
        r = ctl(srv.path, "dlq", "replay")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "replayed 0: 0 ok (removed), 0 failed (kept)\n"))

    def test_dlq_replay_pages_through_hundreds_keeping_exactly_the_failures(self):
        # Made by hand (250 crashes would only be slow): every 7th record
        # asks agent.metrics of a worker that does not exist, which the
        # master answers bad_request, so pages mix removals and keeps and
        # each next page's offset has to account for both.
        records = []
        for n in range(1, 251):
            if n % 7 == 0:
                records.append(('"agent.metrics"', '{"worker":"worker-99"}'))
            else:
                records.append(('"echo"', '{"n":%d}' % n))
        write_dead_letters(self.dlq_path, records)
        srv = self.server(ECHO)
        r = ctl(srv.path, "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        failing = [n for n in range(1, 251) if n % 7 == 0]
        lines = out_lines(r)
        self.assertEqual(lines[-1], "replayed 250: %d ok (removed), %d failed (kept)"
                         % (250 - len(failing), len(failing)))
        self.assertEqual(sorted(lines[:-1]), sorted(
            "failed: dlqId %d (type agent.metrics): bad_request" % n for n in failing))
        self.assertEqual([rec["dlqId"] for rec in self.dlq_records(srv)], failing)

    def test_dlq_replay_never_sends_a_pool_request(self):
        write_dead_letters(self.dlq_path, [('"pool.dlq.purge"', 'null'), ('"echo"', '1')])
        srv = self.server(ECHO)
        r = ctl(srv.path, "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        self.assertEqual(out_lines(r), ["failed: dlqId 1 (type pool.dlq.purge): not_replayable",
                                        "replayed 2: 1 ok (removed), 1 failed (kept)"])
        self.assertEqual([rec["dlqId"] for rec in self.dlq_records(srv)], [1])

    def test_dlq_replay_without_a_server_exits_3(self):
        r = ctl(os.path.join(self.tmp.name, "nobody.sock"), "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_CONNECT)
        self.assertIn("cannot connect to", r.stderr)


class TestDlqPurge(CtlRealTestCase):
    def test_dlq_purge_with_yes_deletes_every_dead_letter(self):
        srv = self.crash_server()
        self.make_dead_letters(srv, 2)
        r = ctl(srv.path, "dlq", "purge", "--yes")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "purged 2\n"), r.stderr)
        self.assertEqual(self.dlq_records(srv), [])
        r = ctl(srv.path, "dlq", "purge", "--yes")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "purged 0\n"), r.stderr)

    def test_dlq_purge_without_yes_exits_2_and_deletes_nothing(self):
        srv = self.crash_server()
        self.make_dead_letters(srv, 1)
        r = ctl(srv.path, "dlq", "purge")
        self.assertEqual(r.returncode, EXIT_USAGE)
        self.assertEqual(r.stdout, "")
        self.assertIn("add --yes", r.stderr)
        self.assertEqual(len(self.dlq_records(srv)), 1)


class TestHealth(CtlRealTestCase):
    def test_health_of_a_ready_pool_prints_ready_and_exits_0(self):
        srv = self.server(ECHO)
        r = ctl(srv.path, "health")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "ready: 2/2 workers healthy\n"), r.stderr)
        r = ctl(srv.path, "health", "--json")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"status": "ready", "healthy": 2, "workers": 2,
                                                "backoff": False, "backoffSlots": [], "restartsInWindow": 0,
                                                "codeDrift": 0, "deadLettersHeld": 0})

    def test_health_pool_names_the_pool_and_an_unknown_one_exits_1(self):
        srv = self.server(ECHO)
        r = ctl(srv.path, "health", "--pool", "default")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "pool default: ready: 2/2 workers healthy\n"), r.stderr)
        for args in (["health"], ["stats"], ["history"], ["scale", "2"], ["dlq", "list"]):
            r = ctl(srv.path, *args, "--pool", "nope")
            self.assertEqual((r.returncode, r.stdout), (EXIT_ANSWER_ERROR, ""), args)
            self.assertIn('failed: bad_request: unknown pool "nope": the pools are default', r.stderr)

    def test_health_of_a_pool_in_restart_backoff_prints_degraded_and_exits_1(self):
        srv = self.server(CRASH, ["--max-restarts", "1"])
        with srv.client() as c:
            answers = c.pipeline([{"id": i, "type": "die", "data": {"code": 3}, "retry": False}
                                  for i in ("a", "b")])
            self.assertEqual({a["error"]["code"] for a in answers.values()}, {"worker_crashed"})

            def degraded():
                return c.call("pool.health")["status"] == "degraded"
            wait_for(degraded, what='pool.health status "degraded"')
        r = ctl(srv.path, "health")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"^degraded: [0-2]/2 workers healthy; backoff: yes; "
                                   r"restarts in window: [2-9]\d*(; in restart backoff: worker-\d \(.*\))?\n$")
        r = ctl(srv.path, "health", "--json")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR)
        h = json.loads(r.stdout)
        self.assertEqual((h["status"], h["backoff"]), ("degraded", True))

    def test_health_without_a_server_exits_3(self):
        r = ctl(os.path.join(self.tmp.name, "nobody.sock"), "health")
        self.assertEqual(r.returncode, EXIT_CONNECT)
        self.assertEqual(r.stdout, "")
        self.assertIn("cannot connect to", r.stderr)


class TestHistory(CtlRealTestCase):
    def test_history_lists_each_crash_with_its_reason_and_exit_status(self):
        srv = self.crash_server()
        self.make_dead_letters(srv, 2)  # 2 messages x 2 attempts: 4 crashes
        with srv.client() as c:
            hist = c.call("pool.history")["history"]
        self.assertEqual(len(hist), 4, hist)
        r = ctl(srv.path, "history", env_extra={"TZ": "UTC"})
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        rows = table(out_lines(r))
        self.assertEqual(rows[0], ["time", "worker", "generation", "pid", "reason", "exit"])
        utc = datetime.timezone.utc
        self.assertEqual(rows[1:], [[local_iso(h["time"], utc), h["worker"], str(h["generation"]),
                                     str(h["pid"]), "crashed", "status 3"] for h in hist])

    def test_history_names_the_signal_that_killed_a_worker(self):
        srv = self.server(ECHO)
        pid = srv.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: pid_gone(pid), what="the worker to die")
        with srv.client() as c:
            wait_for(lambda: c.call("pool.history")["history"], what="the death in pool.history")
        r = ctl(srv.path, "history")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        rows = table(out_lines(r))
        self.assertEqual(len(rows), 2, r.stdout)
        self.assertEqual(rows[1][3:], [str(pid), "crashed", "signal SIGKILL"])

    def test_history_json_is_the_pool_history_result(self):
        srv = self.crash_server()
        self.make_dead_letters(srv, 1)
        with srv.client() as c:
            expected = c.call("pool.history")
        r = ctl(srv.path, "history", "--json")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout), expected)

    def test_history_of_a_pool_without_worker_ends_says_so(self):
        srv = self.server(ECHO)
        r = ctl(srv.path, "history")
        self.assertEqual((r.returncode, r.stdout),
                         (EXIT_OK, "no worker has ended (of those agentpoold remembers)\n"))


def words(name):
    """A member name as agentpoolctl writes it in its sheet: camelCase
    split into lower-case words, snake_case kept."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: " " + m.group(1), name).lower()


def listed(obj):
    """How the sheet lists the members of obj: "name value, ...";
    booleans as yes/no."""
    def v(x):
        return ("yes" if x else "no") if isinstance(x, bool) else str(x)
    return ", ".join("%s %s" % (words(k), v(x)) for k, x in obj.items())


def cells_of(rows):
    """A table's rows as lists of cells, cut at the header's column
    starts (headers may hold single spaces)."""
    header = rows[0]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    return [[row[a:b].strip() for a, b in zip(starts, starts[1:] + [None])] for row in rows]


# Top-level members of pool.stats that the sheet shows under its own
# labels (ctl/cmd_stats.c, stats_known); every other member appears as a
# line labelled with its name as words, or as a table.
SHEET_KNOWN = {
    "state", "pid", "uptime", "strategy", "overflow", "allocator", "total", "available", "busy",
    "healthy", "slots", "inFlight", "averageWorkerAge", "oldestWorker", "workerEvents", "restarts",
    "queue", "oldestQueuedAge", "connections", "connectionsTotal", "throughput", "latency",
    "queueWait", "totalMessagesProcessed", "messages", "errors", "deadLetters", "memory", "types",
    "breakers", "workers", "alerts"}


class TestStats(CtlRealTestCase):
    def test_stats_sheet_shows_what_pool_stats_says(self):
        srv = self.server(ECHO)
        with srv.client() as c:
            answers = c.pipeline([{"id": i, "type": "echo", "data": i} for i in range(20)])
            self.assertTrue(all(a["ok"] for a in answers.values()))
            self.assertEqual(c.request("pool.nope")["error"]["code"], "bad_request")
        st = server_stats(srv)
        r = ctl(srv.path, "stats")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        sh = sheet(r.stdout)
        self.assertRegex(sh["pool"], r"^ready, pid %d, up \d" % st["pid"])
        self.assertTrue(sh["settings"].startswith("strategy %s, overflow %s, allocator %s"
                                                  % (st["strategy"], st["overflow"], st["allocator"])),
                        sh["settings"])
        self.assertEqual(sh["workers"], "2 total: 2 ready")
        self.assertEqual(sh["serving"], "available 2, busy 0, healthy 2, in flight 0 of 2 slots")
        self.assertRegex(sh["worker age"], r"^average \S+, oldest \S+$")
        self.assertEqual(sh["worker events"], listed(st["workerEvents"]))
        self.assertEqual(sh["restarts"], listed(st["restarts"]))
        q = dict(st["queue"])
        depth, cap = q.pop("depth"), q.pop("capacity")
        self.assertEqual(sh["queue"], "%d of %d, %s, oldest queued 0ms" % (depth, cap, listed(q)))
        conns = dict(st["connectionsTotal"])
        conns["accepted"] += 1  # agentpoolctl's own
        self.assertEqual(sh["connections"], "1 open, " + listed(conns))
        self.assertRegex(sh["throughput"], r"^\d+\.\d/s over 1s, \d+\.\d/s over 10s, \d+\.\d/s over 60s$")
        # only the 20 messages are in the window (pool.* requests are not messages)
        for label in ("latency", "queue wait"):
            self.assertRegex(sh[label], r"^p50 [0-9.]+(us|ms|s), p90 [0-9.]+(us|ms|s), p99 [0-9.]+(us|ms|s), "
                                        r"max [0-9.]+(us|ms|s), 20 samples in the last minute$")
        self.assertTrue(sh["messages"].startswith("processed 20, accepted 20, answered ok "), sh["messages"])
        for k in st["messages"]:  # (a unit the value shows leaves the name)
            self.assertIn(re.sub(r" (bytes|ms)$", "", words(k)) + " ", sh["messages"])
        self.assertEqual(sh["errors"], "bad_request 1, every other code 0")
        self.assertEqual(sh["dead letters"], "0 in %s, write errors 0, held 0, held dropped 0, roll errors 0" % self.dlq_path)
        if st["memory"]["allocated"] > 0:
            self.assertRegex(sh["master memory"], r"^allocated [0-9.]+ (B|KiB|MiB|GiB), resident [0-9.]+ "
                                                  r"(B|KiB|MiB|GiB)$")
        else:
            self.assertTrue(sh["master memory"].startswith("unknown"), sh["master memory"])
        # every other member of the answer has a line or a table of its own
        for k, v in st.items():
            if k in SHEET_KNOWN:
                continue
            if isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
                self.assertIn("\n\n%s:\n" % words(k), r.stdout)
            else:
                self.assertIn(words(k), sh, "%s is not shown" % k)
        rows = cells_of(section(r.stdout, "answers by type"))
        self.assertEqual(rows[0], ["type", "ok", "errors"])
        self.assertIn(["echo", "20", "0"], rows[1:])
        self.assertNotIn("\n\nworkers:\n", r.stdout)

    def test_stats_json_prints_the_answer_to_what_was_asked(self):
        srv = self.server(ECHO)
        r = ctl(srv.path, "stats", "--json")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        got = json.loads(r.stdout)
        self.assertEqual(set(got), set(server_stats(srv)))
        self.assertNotIn("workers", got)
        r = ctl(srv.path, "stats", "--json", "--detailed")
        got = json.loads(r.stdout)
        self.assertEqual([w["id"] for w in got["workers"]], ["worker-0", "worker-1"])

    def test_stats_detailed_has_one_row_per_worker_matching_pool_stats(self):
        srv = self.server(ECHO)
        with srv.client() as c:
            c.pipeline([{"id": i, "type": "echo", "data": i} for i in range(10)])
        st = server_stats(srv, detailed=True)
        r = ctl(srv.path, "stats", "--detailed")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        rows = cells_of(section(r.stdout, "workers"))
        self.assertEqual(rows[0][:14], ["id", "pid", "state", "healthy", "in-flight", "messages", "errors",
                                        "RSS", "generation", "age", "last message", "missed beats",
                                        "async", "recycling"])
        self.assertEqual(len(rows), 3, r.stdout)
        for row, w in zip(rows[1:], st["workers"]):
            cell = dict(zip(rows[0], row))
            self.assertEqual((cell["id"], cell["pid"], cell["state"], cell["healthy"]),
                             (w["id"], str(w["pid"]), "ready", "yes"))
            self.assertEqual(cell["in-flight"], "0/1")
            self.assertEqual(cell["messages"], str(w["messagesProcessed"]))
            self.assertEqual((cell["errors"], cell["generation"]), ("0", "1"))
            self.assertRegex(cell["RSS"], r"^[0-9.]+ (B|KiB|MiB|GiB)$")
            self.assertRegex(cell["age"], r"^[0-9.]+(ms|s)|\d+m\d\ds$")
            self.assertRegex(cell["last message"], r"^(never|[0-9.]+(us|ms|s) ago|\d+m\d\ds ago)$")
            # structured members (the agent's health() answer, its metrics)
            # one per line under the table
            for k, v in w.items():
                if isinstance(v, dict):
                    details = section(r.stdout, "worker details")
                    for sub in v:
                        self.assertTrue(any(re.match(r"^%s +%s\.%s  " % (w["id"], k, sub), d) for d in details),
                                        "%s.%s of %s missing:\n%s" % (k, sub, w["id"], r.stdout))
        self.assertEqual(sum(int(row[5]) for row in rows[1:]), 10)

    def test_stats_counts_agent_errors_exactly(self):
        srv = self.server(RAISE, workers=1)
        with srv.client() as c:
            for i in range(3):
                self.assertEqual(c.request("t", {"message": "no"})["error"]["code"], "agent_error")
        r = ctl(srv.path, "stats", "--detailed")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(sheet(r.stdout)["errors"], "agent_error 3, every other code 0")
        self.assertIn(["t", "0", "agent_error 3"], cells_of(section(r.stdout, "answers by type")))
        rows = cells_of(section(r.stdout, "workers"))
        self.assertEqual(dict(zip(rows[0], rows[1]))["errors"], "3")


class TestStatsBreakers(CtlRealTestCase):
    def test_stats_shows_an_open_breaker_and_what_it_refused(self):
        s = Server(agent=RAISE, workers=1, config={"breakerFailureThreshold": 2})
        s.start()
        self.addCleanup(s.close)
        with s.client() as c:
            codes = [c.request("t", {})["error"]["code"] for _ in range(4)]
        self.assertEqual(codes, ["agent_error", "agent_error", "circuit_open", "circuit_open"])
        r = ctl(s.path, "stats")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertIn(["t", "0", "agent_error 2, circuit_open 2"], cells_of(section(r.stdout, "answers by type")))
        rows = cells_of(section(r.stdout, "breakers"))
        self.assertEqual(rows[0], ["type", "state", "failures in window", "retry after", "opened", "rejected"])
        self.assertEqual(len(rows), 2, r.stdout)
        self.assertEqual(rows[1][:3] + rows[1][4:], ["t", "open", "2", "1", "2"])
        self.assertRegex(rows[1][3], r"^[0-9.]+(ms|s)$")
        self.assertEqual(sheet(r.stdout)["errors"], "agent_error 2, circuit_open 2, every other code 0")


class TestReload(unittest.TestCase):
    """agentpoolctl reload against a pool started from a config file that
    each test rewrites first (as test_reload.py does)."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="apctl-reload-")
        self.addCleanup(self.tmp.cleanup)
        self.cfg = os.path.join(self.tmp.name, "agentpool.json")
        self.sock = os.path.join(self.tmp.name, "s.sock")
        self.write({"agent": ECHO})
        self.server = Server(bare=True, socket_path=self.sock,
                             args=["--socket", self.sock, "--min-workers", "2", "--max-workers", "2",
                                   "--config", self.cfg]).start()
        self.addCleanup(self.server.close)

    def write(self, cfg):
        with open(self.cfg, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))

    def test_reload_replaces_every_worker_and_says_so(self):
        before = set(self.server.worker_pids())
        self.write({"agent": "pyagents.examples.whoami:WhoamiAgent"})
        r = ctl(self.sock, "reload")
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (EXIT_OK, "reloaded: 2 workers replaced, agent pyagents.examples.whoami:WhoamiAgent\n", ""))
        self.assertTrue(before.isdisjoint(self.server.worker_pids()))

    def test_reload_json_is_the_pool_reload_result(self):
        self.write({"agent": "pyagents.examples.whoami:WhoamiAgent"})
        r = ctl(self.sock, "reload", "--json")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"replaced": 2, "agent": "pyagents.examples.whoami:WhoamiAgent",
                                                "requiresRestart": []})

    def test_reload_names_the_settings_that_need_a_restart(self):
        self.write({"agent": ECHO, "historySize": 17})
        r = ctl(self.sock, "reload")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(r.stdout, "reloaded: 2 workers replaced, agent %s\n"
                                   "kept at their running value (they change only with a restart): historySize\n"
                         % ECHO)

    def test_a_reload_whose_new_code_fails_exits_1_with_the_traceback(self):
        before = set(self.server.worker_pids())
        self.write({"agent": "pyagents.examples.broken_import:Agent"})
        r = ctl(self.sock, "reload")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertTrue(r.stderr.startswith("agentpoolctl: reload failed (agent_error): reload aborted: "),
                        r.stderr)
        self.assertIn("\ntraceback of the new code, as the first new worker reported it:\n", r.stderr)
        self.assertIn("ImportError", r.stderr)
        self.assertEqual(set(self.server.worker_pids()), before)
        self.assertEqual(ctl(self.sock, "health").returncode, EXIT_OK)

    def test_a_reload_with_an_invalid_config_is_refused_with_exit_1(self):
        before = set(self.server.worker_pids())
        self.write("{\"agent\": ")
        r = ctl(self.sock, "reload")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertTrue(r.stderr.startswith("agentpoolctl: reload refused (bad_request): "), r.stderr)
        self.assertNotIn("traceback", r.stderr)
        self.assertEqual(set(self.server.worker_pids()), before)


class TestScale(CtlRealTestCase):
    def test_scale_sets_the_worker_count_within_the_limits(self):
        srv = self.server(ECHO, workers=1, args=["--max-workers", "3"])

        def total(n):
            wait_stats(srv, lambda st: st["total"] == n and st["healthy"] == n, what="%d workers" % n)
        r = ctl(srv.path, "scale", "2")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "scaled from 1 to 2 workers\n"), r.stderr)
        total(2)
        r = ctl(srv.path, "scale", "9")
        self.assertEqual((r.returncode, r.stdout),
                         (EXIT_OK, "scaled from 2 to 3 workers (9 asked for; minWorkers 1, maxWorkers 3)\n"),
                         r.stderr)
        total(3)
        r = ctl(srv.path, "scale", "3")
        self.assertEqual((r.returncode, r.stdout), (EXIT_OK, "the pool already has 3 workers\n"), r.stderr)
        r = ctl(srv.path, "scale", "0", "--json")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"requested": 0, "before": 3, "workers": 1, "clamped": True,
                                                "minWorkers": 1, "maxWorkers": 3})
        total(1)

    def test_scale_with_a_bad_count_is_a_usage_error_and_sends_nothing(self):
        srv = self.server(ECHO)
        before = server_stats(srv)["connectionsTotal"]["accepted"]
        for args in (["scale", "many"], ["scale", "-1"], ["scale"], ["scale", "1", "2"]):
            r = ctl(srv.path, *args)
            self.assertEqual(r.returncode, EXIT_USAGE, (args, r.stderr))
            self.assertEqual(r.stdout, "")
        # one more connection: the stats request below, nothing from ctl
        self.assertEqual(server_stats(srv)["connectionsTotal"]["accepted"], before + 1)
        self.assertEqual(server_stats(srv)["total"], 2)


class TestExitStatus(CtlRealTestCase):
    """Each documented exit status, produced by the real agentpoold."""

    def test_0_when_every_answer_is_ok(self):
        srv = self.server(ECHO)
        r = ctl(srv.path, "ping")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.assertRegex(r.stdout, r"^pong from %s in [0-9.]+ ms \(pool ready\)\n$" % re.escape(srv.path))
        r = ctl(srv.path, "send", "echo", '{"x": 1}')
        self.assertEqual((r.returncode, json.loads(r.stdout)["result"]), (EXIT_OK, {"x": 1}))

    def test_1_when_agentpoold_answers_with_an_error(self):
        srv = self.server(ECHO)
        r = ctl(srv.path, "send", "pool.nope")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        self.assertEqual(json.loads(r.stdout)["error"]["code"], "bad_request")
        r = ctl(srv.path, "dlq", "list", "--limit", "5000")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)  # the client pages: never too many
        srv2 = self.server(RAISE, workers=1)
        r = ctl(srv2.path, "send", "t", '{"message": "nope"}')
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR, r.stderr)
        self.assertEqual(json.loads(r.stdout)["error"]["code"], "agent_error")

    def test_2_for_usage_errors_which_send_nothing(self):
        srv = self.server(ECHO)
        before = server_stats(srv)["connectionsTotal"]["accepted"]
        for args in (["frobnicate"], ["stats", "--once"], ["top", "--interval", "0"], ["send", "echo", "{bad"],
                     ["dlq", "purge"], ["--timeout", "soon", "ping"]):
            r = ctl(srv.path, *args)
            self.assertEqual(r.returncode, EXIT_USAGE, (args, r.stderr))
            self.assertIn("Try 'agentpoolctl --help' for more information.", r.stderr)
        self.assertEqual(server_stats(srv)["connectionsTotal"]["accepted"], before + 1)

    def test_3_when_nothing_accepts_on_the_socket(self):
        srv = self.server(ECHO)
        path = srv.path
        self.assertEqual(srv.stop(), 0)  # removes its socket
        for args in (["ping"], ["stats"], ["top", "--once"], ["reload"], ["scale", "2"]):
            r = ctl(path, *args)
            self.assertEqual(r.returncode, EXIT_CONNECT, (args, r.stderr))
            self.assertEqual(r.stdout, "")
            self.assertIn("agentpoolctl: cannot connect to %s: " % path, r.stderr)
        # a socket file nobody listens on (a crashed server's)
        stale = os.path.join(self.tmp.name, "stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(stale)
        s.close()
        r = ctl(stale, "health")
        self.assertEqual(r.returncode, EXIT_CONNECT, r.stderr)
        self.assertIn("nothing accepts on it: is agentpoold running?", r.stderr)

    def test_4_when_agentpoold_stays_silent_past_the_timeout(self):
        srv = self.server(GATE, workers=1)
        with Gate(self.tmp.name) as gate:
            r = ctl(srv.path, "--timeout", "300", "send", "gate", json.dumps(gate.data(1)))
            self.assertEqual(r.returncode, EXIT_EXCHANGE, r.stdout + r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertEqual(r.stderr, "agentpoolctl: timed out: agentpoold sent nothing for 300 ms "
                                       "(1 of 1 answer missing)\n")

    def test_4_when_agentpoold_dies_before_answering(self):
        srv = self.server(GATE, workers=1)
        with Gate(self.tmp.name) as gate:
            p = subprocess.Popen([AGENTPOOLCTL, "-s", srv.path, "send", "gate", json.dumps(gate.data(1))],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                wait_stats(srv, lambda st: st["busy"] == 1, what="the gated message to hold the worker")
                srv.signal(signal.SIGKILL)
                out, err = p.communicate(timeout=DEADLINE)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        self.assertEqual(p.returncode, EXIT_EXCHANGE, out + err)
        self.assertEqual(out, "")
        self.assertRegex(err, r"^agentpoolctl: .*\(1 of 1 answer missing\)\n$")


if __name__ == "__main__":
    main()
