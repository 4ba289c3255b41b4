"""test_ctl_real.py - agentpoolctl's health, history and dlq commands
against the real agentpoold (started by harness.Server).

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
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLCTL, DEADLINE, Server, main, pid_gone, wait_for  # noqa: E402

EXIT_OK, EXIT_ANSWER_ERROR, EXIT_NO_EXCHANGE, EXIT_USAGE = 0, 1, 2, 64
CRASH = "pyagents.examples.crash:CrashAgent"
ECHO = "pyagents.examples.echo:EchoAgent"


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

    def test_dlq_replay_without_a_server_exits_2(self):
        r = ctl(os.path.join(self.tmp.name, "nobody.sock"), "dlq", "replay")
        self.assertEqual(r.returncode, EXIT_NO_EXCHANGE)
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

    def test_dlq_purge_without_yes_exits_64_and_deletes_nothing(self):
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
                                                "backoff": False, "restartsInWindow": 0})

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
                                   r"restarts in window: [2-9]\d*\n$")
        r = ctl(srv.path, "health", "--json")
        self.assertEqual(r.returncode, EXIT_ANSWER_ERROR)
        h = json.loads(r.stdout)
        self.assertEqual((h["status"], h["backoff"]), ("degraded", True))

    def test_health_without_a_server_exits_2(self):
        r = ctl(os.path.join(self.tmp.name, "nobody.sock"), "health")
        self.assertEqual(r.returncode, EXIT_NO_EXCHANGE)
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


if __name__ == "__main__":
    main()
