# SPDX-License-Identifier: BSD-2-Clause
"""test_worker_user.py - workerUser/workerGroup: agents that cannot touch their master.

What docs/operations.md ("Privileges and access") promises, through the
real server started as root (skipped, exit 77, when not root), with two
users this test creates (useradd, removed at the end when it made them):
with `user` = aptest10m and `workerUser` = aptest10w, the master runs as
aptest10m and every worker (also a respawned one) as aptest10w in all of
real, effective and saved ids, with aptest10w's groups and no
capabilities, and agent code gets PermissionError from
os.kill(master pid, 0); `workerGroup` picks the workers' group; a reload
that changes workerUser starts the new workers as the new user, and one
naming an unknown user is refused with the old workers kept.  Without
workerUser nothing changes: the workers run as `user` and may signal
their master.  workerUser while not root (agentpoold started with
setpriv as aptest10m) is a configuration error, exit 2, and so are an
unknown workerUser, a root one, and workerGroup without workerUser.
"""
import json
import os
import pwd
import signal
import subprocess
import sys
import unittest

if os.geteuid() != 0:
    print("SKIP: test_worker_user.py needs root (it starts agentpoold as root and creates users)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (  # noqa: E402
    AGENTPOOLD, DEADLINE, SRCDIR, Server, main, proc_status, wait_for,
    ensure_test_user, remove_test_users)

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")
PROCINFO = "procinfo:ProcInfoAgent"
PYARGS = ["--python-path", AGENTS]
MASTER, AGENT = "aptest10m", "aptest10w"
NOGROUP = 65534
created = []


def setUpModule():
    for name in (MASTER, AGENT):
        ensure_test_user(name, created)


def tearDownModule():
    remove_test_users(created)


def ids(pid):
    st = proc_status(pid)
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            [int(x) for x in st["Groups"].split()], int(st["CapEff"], 16) | int(st["CapPrm"], 16))


def server(config, **kw):
    """A server whose temporary directory the master's user owns (it
    removes the socket there at exit) and others can enter."""
    base = {"socketMode": "0666"}
    base.update(config)
    srv = Server(agent=PROCINFO, workers=2, args=PYARGS, config=base, **kw)
    os.chmod(srv.tmp.name, 0o755)
    m = pwd.getpwnam(MASTER)
    os.chown(srv.tmp.name, m.pw_uid, m.pw_gid)
    return srv


def rewrite_config(srv, **changes):
    srv.config.update(changes)
    with open(os.path.join(srv.tmp.name, "config.json"), "w") as f:
        json.dump(srv.config, f)


def ready_pids(srv):
    """Pids of the workers that are ready or busy (switched and serving)."""
    with srv.client() as c:
        return [w["pid"] for w in c.stats(detailed=True)["workers"] if w["state"] in ("ready", "busy")]


class WorkerUser(unittest.TestCase):
    def setUp(self):
        self.m, self.w = pwd.getpwnam(MASTER), pwd.getpwnam(AGENT)

    def check_workers(self, srv, uid, gid):
        pids = srv.worker_pids()
        self.assertEqual(len(pids), 2)
        for pid in pids:
            self.assertEqual(ids(pid), ([uid] * 4, [gid] * 4, [gid], 0))
        with srv.client() as c:
            view = c.call("view")
            self.assertEqual((view["uid"], view["gid"], view["groups"]), ([uid] * 3, [gid] * 3, [gid]))
            return pids, c.call("signal_master")

    def test_agents_cannot_signal_their_master(self):
        with server({"user": MASTER, "workerUser": AGENT}) as srv:
            m, w = self.m, self.w
            self.assertEqual(ids(srv.proc.pid)[:3], ([m.pw_uid] * 4, [m.pw_gid] * 4, [m.pw_gid]))
            pids, sig = self.check_workers(srv, w.pw_uid, w.pw_gid)
            self.assertEqual(sig, {"master": srv.proc.pid, "error": "PermissionError"})
            self.assertIn("workers run as workerUser %s (uid %d, gid %d)" % (AGENT, w.pw_uid, w.pw_gid), srv.log())
            # A respawned worker switches too (the master signals it across uids).
            os.kill(pids[0], signal.SIGKILL)
            # Ready, not just forked: a worker is listed from its fork on,
            # and its ids change only between fork and exec.
            wait_for(lambda: len(set(ready_pids(srv)) - set(pids)) == 1 and len(ready_pids(srv)) == 2,
                     what="the respawned worker to be ready")
            self.check_workers(srv, w.pw_uid, w.pw_gid)
            self.assertEqual(srv.stop(), 0, srv.log())
            self.assertFalse(os.path.exists(srv.path), "the socket file was left behind")

    def test_worker_group(self):
        with server({"user": MASTER, "workerUser": str(self.w.pw_uid), "workerGroup": "nogroup"}) as srv:
            _, sig = self.check_workers(srv, self.w.pw_uid, NOGROUP)
            self.assertEqual(sig["error"], "PermissionError")

    def test_without_worker_user_nothing_changes(self):
        with server({"user": MASTER}) as srv:
            _, sig = self.check_workers(srv, self.m.pw_uid, self.m.pw_gid)
            self.assertEqual(sig, {"master": srv.proc.pid, "error": None})

    def test_a_reload_switches_new_workers_and_refuses_unknown_names(self):
        with server({"user": MASTER, "workerUser": AGENT}) as srv:
            rewrite_config(srv, workerUser="aptest-no-such-user")
            with srv.client() as c:
                r = c.request("pool.reload")
            self.assertFalse(r["ok"], r)
            self.assertEqual(r["error"]["code"], "bad_request", r)
            self.assertIn('workerUser: "aptest-no-such-user" is neither a number nor a known user',
                          r["error"]["message"])
            self.check_workers(srv, self.w.pw_uid, self.w.pw_gid)
            rewrite_config(srv, workerUser="nobody", workerGroup="nogroup")
            with srv.client() as c:
                self.assertEqual(c.call("pool.reload")["replaced"], 2)
            _, sig = self.check_workers(srv, 65534, NOGROUP)
            self.assertEqual(sig["error"], "PermissionError")
            self.assertIn("reload: workerUser resolved: nobody (uid 65534, gid 65534)", srv.log())

    def test_not_root_is_a_configuration_error(self):
        srv = server({"workerUser": AGENT}, wait_ready=False)
        try:
            r = subprocess.run(["setpriv", "--reuid", MASTER, "--regid", MASTER, "--clear-groups"] + srv.argv(),
                               capture_output=True, text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("workerUser: agentpoold runs as uid %d gid %d, not root, so it cannot start its workers "
                          "as %s (uid %d, gid %d); start it as root or remove workerUser/workerGroup"
                          % (self.m.pw_uid, self.m.pw_gid, AGENT, self.w.pw_uid, self.w.pw_gid), r.stderr)
            self.assertFalse(os.path.exists(srv.path))
        finally:
            srv.close()

    def test_bad_settings_are_configuration_errors(self):
        for args, why in ((["--worker-user", "aptest-no-such-user"], 'workerUser: "aptest-no-such-user" is neither'),
                          (["--worker-user", AGENT, "--worker-group", "aptest-no-such-group"],
                           'workerGroup: "aptest-no-such-group" is neither'),
                          (["--worker-group", "nogroup"], 'workerGroup: "nogroup" needs workerUser'),
                          (["--worker-user", "root"], 'workerUser: "root" is root (uid 0)')):
            with self.subTest(args=args):
                for check in ([], ["--check-config"]):
                    r = subprocess.run([AGENTPOOLD] + check + args + ["--socket", "/nonexistent/x.sock"],
                                       capture_output=True, text=True, timeout=DEADLINE)
                    self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                    self.assertIn(why, r.stderr)


if __name__ == "__main__":
    main()
