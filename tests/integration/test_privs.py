# SPDX-License-Identifier: BSD-2-Clause
"""test_privs.py - running as root, dropping privileges, and who may connect.

What docs/operations.md ("Privileges and access") promises, through the
real server started as root (the whole file is skipped, exit 77, when
not root): with user=nobody group=nogroup the master and every worker
(also a respawned one) run with uid and gid 65534 in all of real,
effective and saved ids (/proc/PID/status) and the socket file belongs to
nobody:nogroup; numeric ids work the same; root without `user` warns;
`user` set while not root (and not that user) is a configuration error,
exit 2, while running as that user already is fine.  allowedUids /
allowedGids: a peer not allowed gets exactly one `forbidden` line, then
EOF; it is counted in pool.stats (connectionsTotal.refusedPeers) and
/metrics (agentpool_connections_refused_total{reason="peer"}); uid 0 is
allowed only when listed; a primary gid in allowedGids lets a peer in; a
reload that changes the lists applies them, and looks their names up
itself (the next accept looks nothing up); names that do not resolve
are configuration errors, at start and at a reload.  Clients with other ids are subprocesses
started with subprocess's user=/group=.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import unittest

if os.geteuid() != 0:
    print("SKIP: test_privs.py needs root (it drops to nobody and connects as other users)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLD, DEADLINE, SRCDIR, Server, main, proc_status, server_stats,  # noqa: E402
                     wait_for)

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")
PROCINFO = "procinfo:ProcInfoAgent"
PYARGS = ["--python-path", AGENTS]
NOBODY = 65534
FORBIDDEN = {"id": None, "ok": False,
             "error": {"code": "forbidden", "message": "uid 65534 is not allowed on this socket"}}

# Connects, sends one request, prints every line it gets until EOF as JSON.
CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(%d)
s.connect(sys.argv[1])
s.sendall(b'{"id":"c1","type":"echo","data":{"hello":1}}\n')
buf = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    if buf.count(b"\n") >= 1 and sys.argv[2] == "one":
        break
print(json.dumps([json.loads(l) for l in buf.split(b"\n") if l]))
""" % int(DEADLINE)


def client_as(path, uid, gid, until="eof"):
    """Runs CLIENT as uid:gid (no supplementary groups); returns the lines."""
    r = subprocess.run(["/usr/bin/python3", "-c", CLIENT, path, until], user=uid, group=gid, extra_groups=[],
                       capture_output=True, text=True, timeout=DEADLINE + 10)
    if r.returncode != 0:
        raise AssertionError("client as %d:%d failed: %s" % (uid, gid, r.stderr))
    return json.loads(r.stdout)


def ids(pid):
    st = proc_status(pid)
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            [int(x) for x in st["Groups"].split()])


def prepare(srv, mode=0o755, owner=None):
    """The temporary directory must let nobody in (and, when it is the
    owner, remove the socket at exit)."""
    os.chmod(srv.tmp.name, mode)
    if owner is not None:
        os.chown(srv.tmp.name, owner, owner)
    return srv


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=DEADLINE)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def metrics_text(path):
    conn = _UnixHTTP(path)
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    assert r.status == 200, body
    return body


class Drop(unittest.TestCase):
    def check_dropped(self, srv):
        self.assertEqual(ids(srv.proc.pid), ([NOBODY] * 4, [NOBODY] * 4, [NOBODY]))
        pids = srv.worker_pids()
        self.assertEqual(len(pids), 2)
        for pid in pids:
            self.assertEqual(ids(pid), ([NOBODY] * 4, [NOBODY] * 4, [NOBODY]))
        st = os.stat(srv.path)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777), (NOBODY, NOBODY, 0o660))
        with srv.client() as c:
            view = c.call("view")
        self.assertEqual((view["uid"], view["gid"], view["groups"]), ([NOBODY] * 3, [NOBODY] * 3, [NOBODY]))
        return pids

    def test_user_and_group_by_name(self):
        srv = prepare(Server(agent=PROCINFO, workers=2, args=PYARGS,
                             config={"user": "nobody", "group": "nogroup", "socketMode": "0660"}), owner=NOBODY)
        with srv:
            pids = self.check_dropped(srv)
            self.assertIn("dropped privileges to nobody (uid 65534, gid 65534), 1 group", srv.log())
            self.assertNotIn("running as root without user", srv.log())
            # A worker respawned after the drop is not root either.
            os.kill(pids[0], signal.SIGKILL)
            wait_for(lambda: len(set(srv.worker_pids()) - set(pids)) == 1, what="the respawned worker")
            new = (set(srv.worker_pids()) - set(pids)).pop()
            self.assertEqual(ids(new)[0], [NOBODY] * 4)
            self.assertEqual(srv.stop(), 0, srv.log())
            self.assertFalse(os.path.exists(srv.path), "the socket file was left behind")

    def test_numeric_user_and_group(self):
        srv = prepare(Server(agent=PROCINFO, workers=2, args=PYARGS + ["--user", "65534", "--group", "65534",
                                                                       "--socket-mode", "0660"]), owner=NOBODY)
        with srv:
            self.check_dropped(srv)

    def test_root_without_user_warns_that_workers_run_as_root(self):
        with Server(agent=PROCINFO, workers=1, args=PYARGS) as srv:
            self.assertIn("running as root without user: the workers run as root too", srv.log())
            self.assertEqual(procinfo_uid(srv), [0, 0, 0])

    def test_user_set_but_not_root_is_a_configuration_error(self):
        srv = prepare(Server(agent=PROCINFO, workers=1, args=PYARGS + ["--user", "daemon"], wait_ready=False),
                      owner=NOBODY)
        try:
            r = subprocess.run(srv.argv(), user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True,
                               text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("user: agentpoold runs as uid 65534 gid 65534, not root, so it cannot become daemon "
                          "(uid 1, gid 1)", r.stderr)
            self.assertFalse(os.path.exists(srv.path))
        finally:
            srv.close()

    def test_already_that_user_is_fine(self):
        srv = prepare(Server(agent=PROCINFO, workers=1, args=PYARGS + ["--user", "nobody"], wait_ready=False),
                      owner=NOBODY)
        try:
            srv.logf = open(srv.logpath, "wb")
            srv.proc = subprocess.Popen(srv.argv(), stdout=srv.logf, stderr=subprocess.STDOUT, user=NOBODY,
                                        group=NOBODY, extra_groups=[])
            srv.wait_until_ready()
            self.assertEqual(procinfo_uid(srv), [NOBODY] * 3)
            self.assertNotIn("dropped privileges", srv.log())
        finally:
            srv.close()

    def test_unknown_names_are_configuration_errors(self):
        for args, why in ((["--user", "aptest-no-such-user"], 'user: "aptest-no-such-user" is neither'),
                          (["--user", "nobody", "--group", "aptest-no-such-group"],
                           'group: "aptest-no-such-group" is neither'),
                          (["--group", "nogroup"], 'group: "nogroup" needs user'),
                          (["--user", "root"], "is root (uid 0), which is no drop"),
                          (["--allowed-uids", "0,aptest-no-such-user"], 'allowedUids: "aptest-no-such-user"'),
                          (["--allowed-gids", "aptest-no-such-group"], 'allowedGids: "aptest-no-such-group"')):
            with self.subTest(args=args):
                for check in ([], ["--check-config"]):
                    r = subprocess.run([AGENTPOOLD] + check + args + ["--socket", "/nonexistent/x.sock"],
                                       capture_output=True, text=True, timeout=DEADLINE)
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn(why, r.stderr)


def procinfo_uid(srv):
    with srv.client() as c:
        return c.call("view")["uid"]


class PeerCheck(unittest.TestCase):
    def server(self, wait_ready=True, **cfg):
        base = {"socketMode": "0666"}
        base.update(cfg)
        srv = prepare(Server(agent=PROCINFO, workers=1, args=PYARGS, config=base, wait_ready=wait_ready))
        base["metricsListen"] = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
        srv.config = base
        return srv

    def test_uid_not_allowed_is_told_closed_and_counted(self):
        with self.server(allowedUids=[0]) as srv:
            lines = client_as(srv.path, NOBODY, NOBODY)
            self.assertEqual(lines, [FORBIDDEN])  # one line, then EOF
            st = server_stats(srv)
            self.assertEqual(st["connectionsTotal"]["refusedPeers"], 1)
            self.assertIn('agentpool_connections_refused_total{reason="peer"} 1\n',
                          metrics_text(os.path.join(srv.tmp.name, "metrics.sock")))
            self.assertRegex(srv.log(), r"refused a connection from pid \d+ uid 65534 gid 65534: not in "
                                        r"allowedUids/allowedGids \(1 refused so far\)")
            # Root is allowed because it is listed, and gets answers.
            with srv.client() as c:
                self.assertEqual(c.call("view")["uid"], [0, 0, 0])
            self.assertEqual(client_as(srv.path, 0, 0, until="one")[0]["ok"], True)
            self.assertEqual(server_stats(srv)["connectionsTotal"]["refusedPeers"], 1)

    def test_root_is_not_implicitly_allowed(self):
        with self.server(allowedUids=["nobody"], wait_ready=False) as srv:
            wait_for(lambda: "ready: 1 workers" in srv.log(), what="ready (root cannot ask)")
            with srv.client() as c:
                self.assertEqual(c.recv(), {"id": None, "ok": False, "error": {
                    "code": "forbidden", "message": "uid 0 is not allowed on this socket"}})
            ok = client_as(srv.path, NOBODY, NOBODY, until="one")
            self.assertEqual(ok[0]["id"], "c1")
            self.assertTrue(ok[0]["ok"], ok)
            self.assertEqual(ok[0]["result"]["uid"], [0, 0, 0])  # the workers still run as root
            srv.stop()
            self.assertIn("refused a connection from pid", srv.log())

    def test_primary_gid_in_allowed_gids_lets_a_peer_in(self):
        with self.server(allowedUids=[0], allowedGids=["nogroup"]) as srv:
            ok = client_as(srv.path, NOBODY, NOBODY, until="one")
            self.assertTrue(ok[0]["ok"], ok)
            # Same uid, another primary group: refused.
            self.assertEqual(client_as(srv.path, NOBODY, 1), [FORBIDDEN])
            self.assertEqual(server_stats(srv)["connectionsTotal"]["refusedPeers"], 1)

    def test_a_reload_applies_changed_lists(self):
        with self.server(allowedUids=[0]) as srv:
            self.assertEqual(client_as(srv.path, NOBODY, NOBODY), [FORBIDDEN])
            cfgpath = os.path.join(srv.tmp.name, "config.json")
            srv.config["allowedUids"] = [0, NOBODY]
            with open(cfgpath, "w") as f:
                json.dump(srv.config, f)
            with srv.client() as c:
                self.assertEqual(c.call("pool.reload")["replaced"], 1)
            ok = client_as(srv.path, NOBODY, NOBODY, until="one")
            self.assertTrue(ok[0]["ok"], ok)
            self.assertIn("allowedUids/allowedGids changed: 2 uids, 0 gids", srv.log())
            self.assertEqual(server_stats(srv)["connectionsTotal"]["refusedPeers"], 1)

    def test_a_reload_resolves_names_itself_not_the_next_accept(self):
        # SIGHUP, and no connection at all until the names are resolved:
        # the lookups happen at the reload (before this change they ran
        # at the next accept, so this line never came without one).
        with self.server(allowedUids=[0]) as srv:
            cfgpath = os.path.join(srv.tmp.name, "config.json")
            srv.config["allowedUids"] = ["root", "nobody"]
            srv.config["allowedGids"] = ["nogroup"]
            with open(cfgpath, "w") as f:
                json.dump(srv.config, f)
            srv.signal(signal.SIGHUP)
            wait_for(lambda: "reload: allowedUids/allowedGids resolved: 2 uids, 1 gid" in srv.log(),
                     what="the names resolved by the reload")
            wait_for(lambda: "reload finished: 1 worker replaced" in srv.log(), what="the reload to finish")
            ok = client_as(srv.path, NOBODY, NOBODY, until="one")
            self.assertTrue(ok[0]["ok"], ok)
            self.assertIn("allowedUids/allowedGids changed: 2 uids, 1 gid", srv.log())

    def test_a_reload_naming_an_unknown_user_is_refused_and_the_running_lists_stay(self):
        with self.server(allowedUids=[0]) as srv:
            cfgpath = os.path.join(srv.tmp.name, "config.json")
            srv.config["allowedUids"] = ["nosuchuserxyz"]
            with open(cfgpath, "w") as f:
                json.dump(srv.config, f)
            with srv.client() as c:
                r = c.request("pool.reload")
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "bad_request", r)
            self.assertIn("nosuchuserxyz", r["error"]["message"])
            self.assertIn("reload (pool.reload) aborted", srv.log())
            # still refused: the running list ([0]) is in force
            self.assertEqual(client_as(srv.path, NOBODY, NOBODY), [FORBIDDEN])

    def test_without_lists_everyone_socket_mode_lets_in_is_served(self):
        with self.server() as srv:
            ok = client_as(srv.path, NOBODY, NOBODY, until="one")
            self.assertTrue(ok[0]["ok"], ok)
            self.assertEqual(server_stats(srv)["connectionsTotal"]["refusedPeers"], 0)


if __name__ == "__main__":
    main()
