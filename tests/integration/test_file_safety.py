# SPDX-License-Identifier: BSD-2-Clause
"""test_file_safety.py - what root creates and opens before the drop cannot be turned on other files.

Issue 10's file attacks, each through the real agentpoold started as root
with `user` set to a second user (created here with useradd, removed at
the end when this file created it) who owns the directories involved, as
docs/operations.md asks:

- the socket path swapped for a symbolic link to a root-only 0600 file
  the moment the socket appears (a racing attacker running as the
  service user, with setpriv): the target keeps its owner and mode, on
  every one of several starts, for the protocol socket and a `unix:`
  metricsListen socket alike.
- a symbolic link, or a hard link, planted at the path of `logFile`,
  `accessLog` or the dead-letter file, pointing at a root-only file: the
  server refuses to start with one line naming the file (the dead-letter
  file, never fatal, is refused and logged, and a dead letter does not
  reach the target), and the target is untouched.
- dead letters in root + `user` mode: the file root creates is handed to
  the user (fchown on the descriptor), so pool.dlq.list and purge work
  after the drop; a roll to `.1` that fails (a directory the user cannot
  write) appends past deadLetterMaxBytes and drops no record (counted in
  rollErrors); a record the file cannot take at all is held in memory,
  reported by pool.health and pool.stats, and written once the file can
  be opened.

The whole file is skipped (exit 77) when not root.
"""
import os
import pwd
import subprocess
import sys
import tempfile
import unittest

if os.geteuid() != 0:
    print("SKIP: test_file_safety.py needs root (it starts agentpoold as root with user set)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (  # noqa: E402
    DEADLINE, SRCDIR, Server, main, wait_for, wait_stats,
    ensure_test_user, remove_test_users)

AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")

ATTACKER = "aptest-secf"
_created = []


def setUpModule():
    ensure_test_user(ATTACKER, _created)


def tearDownModule():
    remove_test_users(_created)


def attacker_ids():
    pw = pwd.getpwnam(ATTACKER)
    return pw.pw_uid, pw.pw_gid


def as_attacker(argv, **kw):
    """argv run as the attacker, no supplementary groups (setpriv)."""
    uid, gid = attacker_ids()
    return subprocess.Popen(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups"] + argv, **kw)


class RootOnlyTarget:
    """A root-owned 0600 file in a root-owned directory: what an attacker
    wants root to chown, chmod or write to for it."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="aptest-target-")
        os.chmod(self.tmp.name, 0o755)
        self.path = os.path.join(self.tmp.name, "secret")
        with open(self.path, "w") as f:
            f.write("root only\n")
        os.chmod(self.path, 0o600)

    def assert_untouched(self, test, what, links=1):
        st = os.lstat(self.path)
        test.assertEqual((st.st_uid, st.st_gid, oct(st.st_mode & 0o7777), st.st_nlink),
                         (0, 0, oct(0o600), links), "%s: the root-only target was changed" % what)
        with open(self.path) as f:
            test.assertEqual(f.read(), "root only\n", "%s: the root-only target was written to" % what)

    def close(self):
        self.tmp.cleanup()


# Waits for `path` to become a socket, then at once renames a symbolic link
# to `target` (made beforehand, so the swap is one rename) over it; prints
# "swapped".  Runs as the service user, who owns the socket's directory.
SWAPPER = r"""
import os, stat, sys
path, target = sys.argv[1], sys.argv[2]
tmp = path + ".swap"
os.symlink(target, tmp)
lstat, S_ISSOCK = os.lstat, stat.S_ISSOCK
while True:
    try:
        if S_ISSOCK(lstat(path).st_mode):
            break
    except FileNotFoundError:
        pass
os.rename(tmp, path)
print("swapped", flush=True)
"""


class SocketSwap(unittest.TestCase):
    RUNS = 3  # per socket; bounded, and each run is checked on its own

    def attack(self, which):
        uid, gid = attacker_ids()
        target = RootOnlyTarget()
        try:
            for run in range(self.RUNS):
                srv = Server(workers=1, wait_ready=False,
                             config={"user": ATTACKER, "socketMode": "0660"})
                metrics = os.path.join(srv.tmp.name, "metrics.sock")
                if which == "metricsListen":
                    srv.config["metricsListen"] = "unix:" + metrics
                os.chown(srv.tmp.name, uid, gid)  # the service user's directory, as the docs ask
                os.chmod(srv.tmp.name, 0o755)
                victim = srv.path if which == "socket" else metrics
                swapper = as_attacker(["/usr/bin/python3", "-c", SWAPPER, victim, target.path],
                                      stdout=subprocess.PIPE, text=True)
                try:
                    srv.start()
                    # Past every chown/chmod the old code did (the drop), or exited.
                    wait_for(lambda: srv.proc.poll() is not None or "dropped privileges" in srv.log(),
                             what="agentpoold to drop its privileges or exit")
                    out, _ = swapper.communicate(timeout=DEADLINE)
                    self.assertEqual(out, "swapped\n")
                    self.assertTrue(os.path.islink(victim))
                    target.assert_untouched(self, "%s run %d" % (which, run + 1))
                finally:
                    if swapper.poll() is None:
                        swapper.kill()
                        swapper.wait()
                    srv.close()
                target.assert_untouched(self, "%s run %d, after exit" % (which, run + 1))
        finally:
            target.close()

    def test_socket_swapped_for_a_symlink_at_bind_never_redirects_root(self):
        self.attack("socket")

    def test_metrics_socket_swapped_for_a_symlink_never_redirects_root(self):
        self.attack("metricsListen")

    def test_socket_is_born_with_its_owner_and_mode(self):
        uid, gid = attacker_ids()
        srv = Server(workers=1, config={"user": ATTACKER, "socketMode": "0640"})
        metrics = os.path.join(srv.tmp.name, "metrics.sock")
        srv.config["metricsListen"] = "unix:" + metrics
        os.chown(srv.tmp.name, uid, gid)
        os.chmod(srv.tmp.name, 0o755)
        with srv:
            for p in (srv.path, metrics):
                st = os.lstat(p)
                self.assertEqual((st.st_uid, st.st_gid, oct(st.st_mode & 0o777)), (uid, gid, oct(0o640)), p)

    def test_a_socket_directory_the_user_cannot_write_is_a_clear_error(self):
        srv = Server(workers=1, wait_ready=False, config={"user": ATTACKER})
        os.chmod(srv.tmp.name, 0o755)  # root's
        try:
            srv.start()
            self.assertEqual(srv.wait_exit(), 1, srv.log())
            self.assertIn("bind(%s) as %s (uid %d, gid %d): Permission denied (the socket's directory must be "
                          "writable by user)" % ((srv.path, ATTACKER) + attacker_ids()), srv.log())
        finally:
            srv.close()


class PlantedLinks(unittest.TestCase):
    """The service user plants a link in the directory of a file root
    opens before the drop."""

    def server(self, **cfg):
        uid, gid = attacker_ids()
        conf = {"user": ATTACKER}
        conf.update(cfg)
        srv = Server(agent="life:LifeAgent", workers=1, wait_ready=False, config=conf,
                     args=["--python-path", AGENTS, "--retry-delay", "10"])
        os.chown(srv.tmp.name, uid, gid)
        os.chmod(srv.tmp.name, 0o755)
        return srv

    def plant(self, kind, at, target):
        if kind == "symlink":  # by the service user, in its own directory
            r = as_attacker(["ln", "-s", target.path, at])
            self.assertEqual(r.wait(DEADLINE), 0)
        else:  # a hard link (root makes it here: protected_hardlinks stops the user, not every system has it)
            os.link(target.path, at)

    def test_planted_link_at_log_file_or_access_log_refuses_the_start(self):
        for key in ("logFile", "accessLog"):
            for kind, why in (("symlink", "is a symbolic link: refused"),
                              ("hardlink", "has 2 links (a hard link to another file?): refused")):
                with self.subTest(key=key, kind=kind):
                    target = RootOnlyTarget()
                    srv = self.server()
                    at = os.path.join(srv.tmp.name, "planted.log")
                    srv.config[key] = at
                    try:
                        self.plant(kind, at, target)
                        srv.start()
                        self.assertEqual(srv.wait_exit(), 1, srv.log())
                        self.assertIn("%s: %s: %s\n" % (key, at, why), srv.log())
                        self.assertEqual(len(srv.log().splitlines()), 1, srv.log())  # that one line
                        target.assert_untouched(self, "%s %s" % (key, kind), links=2 if kind == "hardlink" else 1)
                    finally:
                        srv.close()
                        target.close()

    def test_planted_link_at_dead_letter_file_is_refused_and_never_written(self):
        for kind, why in (("symlink", "is a symbolic link: refused"),
                          ("hardlink", "has 2 links (a hard link to another file?): refused")):
            with self.subTest(kind=kind):
                target = RootOnlyTarget()
                srv = self.server()
                at = os.path.join(srv.tmp.name, "dead.jsonl")
                srv.config["deadLetterFile"] = at
                try:
                    self.plant(kind, at, target)
                    srv.start()
                    wait_for(lambda: srv.proc.poll() is not None or "ready: 1 workers" in srv.log(),
                             what="the server to be ready")
                    self.assertIn("dead-letter file %s: %s" % (at, why), srv.log())
                    with srv.client() as c:
                        r = c.request("crash", {"code": 3}, id="dl-1", retry=False)
                        self.assertEqual(r["error"]["code"], "worker_crashed", r)
                    target.assert_untouched(self, "deadLetterFile %s" % kind,
                                            links=2 if kind == "hardlink" else 1)
                finally:
                    srv.close()
                    target.close()


class DeadLettersAsUser(unittest.TestCase):
    def server(self, dlq_dir_owner_is_user=True, **cfg):
        uid, gid = attacker_ids()
        conf = {"user": ATTACKER}
        conf.update(cfg)
        srv = Server(agent="life:LifeAgent", workers=1, config=conf,
                     args=["--python-path", AGENTS, "--retry-delay", "10"])
        os.chown(srv.tmp.name, uid, gid)
        os.chmod(srv.tmp.name, 0o755)
        return srv

    def crash(self, c, rid, pad=0):
        r = c.request("crash", {"code": 3, "pad": "x" * pad}, id=rid, retry=False)
        self.assertEqual(r["error"]["code"], "worker_crashed", r)

    def test_the_dead_letter_file_is_handed_to_the_user_and_usable_after_the_drop(self):
        uid, gid = attacker_ids()
        with self.server() as srv, srv.client() as c:
            path = srv.path + ".deadletter.jsonl"
            st = os.stat(path)
            self.assertEqual((st.st_uid, st.st_gid, oct(st.st_mode & 0o777)), (uid, gid, oct(0o600)))
            self.crash(c, "dl-1")
            lst = c.call("pool.dlq.list")
            self.assertEqual([r["id"] for r in lst["records"]], ["dl-1"])
            self.assertEqual(c.call("pool.dlq.purge")["purged"], 1)
            self.assertEqual(c.call("pool.dlq.list")["total"], 0)
            self.assertEqual(c.stats()["deadLetters"]["writeErrors"], 0)

    def test_a_failed_roll_appends_past_the_cap_and_drops_no_record(self):
        # The file in a directory only root can write: handed over, it can be
        # appended to after the drop, but never renamed to .1.
        srv = self.server(deadLetterMaxBytes=4096)
        rootdir = os.path.join(srv.tmp.name, "rootonly")
        os.mkdir(rootdir, 0o755)
        path = os.path.join(rootdir, "dead.jsonl")
        srv.config["deadLetterFile"] = path
        with srv, srv.client() as c:
            for i in range(8):
                self.crash(c, "roll-%d" % i, pad=1000)
            st = c.stats()["deadLetters"]
            self.assertEqual((st["records"], st["writeErrors"]), (8, 0), st)  # none dropped
            self.assertEqual(st.get("held"), 0, st)
            self.assertGreaterEqual(st["rollErrors"], 1, st)
            self.assertGreater(os.path.getsize(path), 4096)
            self.assertFalse(os.path.exists(path + ".1"))
            lst = c.call("pool.dlq.list")
            self.assertEqual([r["id"] for r in lst["records"]], ["roll-%d" % i for i in range(8)])
            self.assertIn("appending past deadLetterMaxBytes (4096 bytes) instead", srv.log())

    def test_a_record_the_file_cannot_take_is_held_in_memory_and_reported(self):
        srv = self.server()
        path = os.path.join(srv.tmp.name, "dead.jsonl")
        srv.config["deadLetterFile"] = path
        target = RootOnlyTarget()
        os.symlink(target.path, path)  # refused: the file cannot be opened at all
        try:
            with srv, srv.client() as c:
                self.crash(c, "held-1")
                self.crash(c, "held-2")
                st = c.stats()["deadLetters"]
                self.assertEqual((st["held"], st["writeErrors"], st["heldDropped"]), (2, 2, 0), st)
                self.assertEqual(c.call("pool.health")["deadLettersHeld"], 2)
                self.assertIn("kept in memory until the file takes it (2 held)", srv.log())
                target.assert_untouched(self, "held dead letters")
                os.unlink(path)  # fixed: the next offer (once a second) creates the file and writes them
                wait_stats(srv, lambda s: s["deadLetters"]["held"] == 0, what="the held dead letters written")
                self.assertEqual(c.call("pool.health")["deadLettersHeld"], 0)
                lst = c.call("pool.dlq.list")
                self.assertEqual([r["id"] for r in lst["records"]], ["held-1", "held-2"])
        finally:
            target.close()


if __name__ == "__main__":
    main()
