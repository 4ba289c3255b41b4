# SPDX-License-Identifier: BSD-2-Clause
"""test_ptrace.py - an agent cannot ptrace its master or read its environment.

Issue 10, point 7, through the real agentpoold: a worker running the spy
agent (tests/integration/agents/spy.py) tries PTRACE_ATTACH on its master
and to read /proc/<master>/environ, where a secret sits that the `env`
allow-list keeps from workers.  Both must fail (EPERM, EACCES) when
master and workers share a uid: the master started as that user directly
(the shipped unit's User=agentpool), and root with `user` set.  The
second user is created here with useradd (removed at the end when this
file created it).  The master's view of its workers still works (RSS
sampled from their /proc).  Skipped (exit 77) when not root; the test
is skipped for sanitizer builds, which keep the master dumpable for
LeakSanitizer.
"""
import os
import pwd
import subprocess
import sys
import unittest

if os.geteuid() != 0:
    print("SKIP: test_ptrace.py needs root (it runs agentpoold as a second user)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SRCDIR, Server, build_var, main, ensure_test_user, remove_test_users  # noqa: E402

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")
USER = "aptest-ptrace"
SECRET = "AP_TEST_SECRET=kept-from-workers-4711"
_created = []


def setUpModule():
    ensure_test_user(USER, _created)


def tearDownModule():
    remove_test_users(_created)


@unittest.skipIf("-fsanitize=address" in (build_var("AP_CFLAGS") or ""),
                 "sanitizer builds keep the master dumpable (LeakSanitizer)")
class NoPtrace(unittest.TestCase):
    def server(self):
        pw = pwd.getpwnam(USER)
        srv = Server(agent="spy:SpyAgent", workers=1, wait_ready=False,
                     config={"user": USER, "env": ["PATH"]}, args=["--python-path", AGENTS],
                     env={SECRET.split("=")[0]: SECRET.split("=")[1]})
        os.chown(srv.tmp.name, pw.pw_uid, pw.pw_gid)
        os.chmod(srv.tmp.name, 0o755)
        return srv, pw

    def check(self, srv, pw):
        srv.wait_until_ready()
        with srv.client() as c:
            master = c.call("pool.stats")["pid"]
            view = c.call("spy")
        self.assertEqual(view["master"], master)
        with open("/proc/%d/status" % master) as f:
            uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
        self.assertEqual(uids, [str(pw.pw_uid)] * 4)  # the same uid as the worker: the case at hand
        self.assertEqual(view["ptrace"], "EPERM", view)
        self.assertEqual((view["environ"], view["environError"]), (None, "EACCES"), view)
        # The master still reads its workers' /proc (RSS).
        with srv.client() as c:
            workers = c.stats(detailed=True)["workers"]
        self.assertGreater(workers[0]["rssBytes"], 0, workers)

    def test_master_started_as_the_service_user(self):
        srv, pw = self.server()
        try:
            env = dict(os.environ)
            env.pop("AGENTPOOL_SOCKET", None)
            env[SECRET.split("=")[0]] = SECRET.split("=")[1]
            srv.logf = open(srv.logpath, "wb")
            srv.proc = subprocess.Popen(srv.argv(), stdout=srv.logf, stderr=subprocess.STDOUT, env=env,
                                        user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            self.check(srv, pw)
        finally:
            srv.close()

    def test_root_with_user(self):
        srv, pw = self.server()
        try:
            srv.start()
            self.check(srv, pw)
        finally:
            srv.close()


if __name__ == "__main__":
    main()
