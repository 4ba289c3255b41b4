# SPDX-License-Identifier: BSD-2-Clause
"""test_opsfiles.py - the operations files agentpool ships work with the
tools that read them.

docs/logrotate/agentpoold goes through `logrotate -d` (no `error:` line)
and signals the unit that docs/systemd/ really ships (it once named
agentpool.service, which does not exist).  docs/systemd/agentpool.sysusers
creates the agentpool user and group the service runs as
(`systemd-sysusers --root`), docs/systemd/agentpool.tmpfiles makes
/run/agentpool, /var/lib/agentpool and /var/log/agentpool with that owner
and the modes the units' comments promise (`systemd-tmpfiles --root`), and
the unit files agree with them: the socket's group is the group the
sysusers file creates, the directory the socket binds in is one tmpfiles
makes (so a client of that group reaches it before the service starts),
and the dead-letter file of the sample config lives in the StateDirectory.
Each tool is skipped, with the reason, only when it is not installed.
The unit's MemoryDenyWriteExecute=yes is tried for real: the pool runs
under the kernel's equivalent (PR_SET_MDWE) and serves.
"""
import configparser
import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLD, DEADLINE, SRCDIR, Client, main, wait_process_ready  # noqa: E402

SYSTEMD = os.path.join(SRCDIR, "docs", "systemd")
LOGROTATE = os.path.join(SRCDIR, "docs", "logrotate", "agentpoold")
SAMPLE = os.path.join(SRCDIR, "docs", "agentpool.sample.json")


def unit(name):
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.optionxform = str
    with open(os.path.join(SYSTEMD, name)) as f:
        cp.read_string(f.read())
    return cp


def need(tool):
    path = shutil.which(tool)
    if path is None:
        raise unittest.SkipTest("%s is not installed" % tool)
    return path


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE)


class Logrotate(unittest.TestCase):
    def test_signals_the_unit_that_is_shipped(self):
        with open(LOGROTATE) as f:
            text = f.read()
        units = re.findall(r"--signal=USR1\s+(\S+)", text)
        self.assertEqual(len(units), 1, text)
        self.assertTrue(os.path.exists(os.path.join(SYSTEMD, units[0])),
                        "logrotate signals %s, which docs/systemd does not ship" % units[0])
        self.assertIn("--kill-whom=main", text)

    def test_logrotate_reads_it_without_errors(self):
        tool = need("logrotate")
        with tempfile.TemporaryDirectory(prefix="aptest-lr-") as d:
            logs = os.path.join(d, "log")
            os.mkdir(logs, 0o700)
            for name in ("agentpoold.log", "access.log"):
                with open(os.path.join(logs, name), "w") as f:
                    f.write("a line\n")
            with open(LOGROTATE) as f:
                text = f.read()
            # Run as whoever runs the suite, on a copy in a temporary directory.
            me = "%s %s" % (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)
            text = text.replace("/var/log/agentpool", logs).replace("agentpool agentpool", me)
            conf = os.path.join(d, "agentpoold")
            with open(conf, "w") as f:
                f.write(text)
            r = run([tool, "-d", "-f", "-s", os.path.join(d, "state"), conf])
            out = r.stdout + r.stderr
            self.assertEqual(r.returncode, 0, out)
            self.assertNotIn("error:", out)
            self.assertIn("rotating pattern: %s/*.log" % logs, out)
            self.assertIn("running postrotate script", out)
            # A broken copy is reported, so the check above can fail.
            with open(conf, "w") as f:
                f.write(text.replace("daily", "dayly"))
            r = run([tool, "-d", "-s", os.path.join(d, "state"), conf])
            self.assertIn("error:", r.stdout + r.stderr)


def sysusers_into(test, root):
    """Runs systemd-sysusers with our sysusers.d file into the empty root."""
    tool = need("systemd-sysusers")
    os.mkdir(os.path.join(root, "etc"))
    r = run([tool, "--root=" + root, os.path.join(SYSTEMD, "agentpool.sysusers")])
    test.assertEqual(r.returncode, 0, r.stderr)


class SysusersTmpfiles(unittest.TestCase):
    def test_sysusers_creates_the_user_and_group_the_units_use(self):
        svc = unit("agentpoold.service")["Service"]
        sock = unit("agentpoold.socket")["Socket"]
        with tempfile.TemporaryDirectory(prefix="aptest-sysusers-") as root:
            sysusers_into(self, root)
            with open(os.path.join(root, "etc", "passwd")) as f:
                users = {l.split(":")[0]: l.split(":") for l in f.read().splitlines()}
            with open(os.path.join(root, "etc", "group")) as f:
                groups = [l.split(":")[0] for l in f.read().splitlines()]
            self.assertIn(svc["User"], users)
            self.assertIn(svc["Group"], groups)
            self.assertIn(sock["SocketUser"], users)
            self.assertIn(sock["SocketGroup"], groups)
            self.assertEqual(users[svc["User"]][6], "/usr/sbin/nologin")
            self.assertLess(int(users[svc["User"]][2]), 1000, "a system user")

    def test_tmpfiles_makes_the_directories_with_owner_and_mode(self):
        tool = need("systemd-tmpfiles")
        svc = unit("agentpoold.service")["Service"]
        sock = unit("agentpoold.socket")["Socket"]
        with tempfile.TemporaryDirectory(prefix="aptest-tmpfiles-") as root:
            sysusers_into(self, root)
            r = run([tool, "--root=" + root, "--create", os.path.join(SYSTEMD, "agentpool.tmpfiles")])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(root, "etc", "passwd")) as f:
                uid = [int(l.split(":")[2]) for l in f if l.startswith(svc["User"] + ":")][0]

            def check(path, mode):
                st = os.stat(root + path)
                self.assertTrue(stat.S_ISDIR(st.st_mode), path)
                self.assertEqual(st.st_uid, uid, path)
                self.assertEqual(stat.S_IMODE(st.st_mode), mode, path)

            # The socket's directory: the service's RuntimeDirectory, with the
            # same mode, so RuntimeDirectory= changes nothing when it starts
            # (it would chown the socket file if the owner differed), and
            # group-searchable, so the socket's group reaches it.
            sockdir = os.path.dirname(sock["ListenStream"])
            self.assertEqual(sockdir, "/run/" + svc["RuntimeDirectory"])
            check(sockdir, int(svc["RuntimeDirectoryMode"], 8))
            self.assertTrue(int(svc["RuntimeDirectoryMode"], 8) & 0o010)
            check("/var/lib/" + svc["StateDirectory"], int(svc["StateDirectoryMode"], 8))
            check("/var/log/" + svc["LogsDirectory"], int(svc["LogsDirectoryMode"], 8))


# MemoryDenyWriteExecute=yes in the unit: the same rule as the kernel's
# PR_SET_MDWE (Linux 6.3+), which is inherited across fork and exec.  The
# launcher sets it and execs agentpoold; an agent proves the rule reached
# its worker (a writable+executable mapping is refused) and answers.
MDWE_LAUNCHER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
os.execv(sys.argv[1], sys.argv[1:])
"""
MDWE_AGENT = """
import mmap


class WxAgent:
    def handle_message(self, type, data):
        try:
            mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            return {"wx": "allowed", "echo": data}
        except OSError as e:
            return {"wx": "refused: %s" % e.strerror, "echo": data}
"""


class MemoryDenyWriteExecute(unittest.TestCase):
    def test_the_pool_serves_with_write_xor_execute_enforced(self):
        with tempfile.TemporaryDirectory(prefix="aptest-mdwe-") as d:
            with open(os.path.join(d, "wxagent.py"), "w") as f:
                f.write(MDWE_AGENT)
            launcher = os.path.join(d, "launch.py")
            with open(launcher, "w") as f:
                f.write(MDWE_LAUNCHER)
            sock = os.path.join(d, "ap.sock")
            with open(os.path.join(d, "log"), "wb") as log:
                proc = subprocess.Popen([sys.executable, launcher, AGENTPOOLD, "--socket", sock, "--agent",
                                         "wxagent:WxAgent", "--python-path", d, "--min-workers", "2",
                                         "--max-workers", "2"], stdout=log, stderr=subprocess.STDOUT)
            try:
                def no_mdwe(p):
                    if p.returncode == 77:
                        raise unittest.SkipTest("this kernel has no PR_SET_MDWE (Linux 6.3+)")
                wait_process_ready(proc, sock, lambda: open(os.path.join(d, "log"), errors="replace").read(),
                                   what="agentpoold under MDWE to be ready", on_exit=no_mdwe)
                with Client(sock) as c:
                    r = c.call("wx", {"n": 1})
                self.assertEqual(r, {"wx": "refused: Permission denied", "echo": {"n": 1}})
            finally:
                proc.terminate()
                proc.wait(DEADLINE)
            self.assertEqual(proc.returncode, 0)


class UnitsAndSample(unittest.TestCase):
    def test_hardening_settings_are_present(self):
        svc = unit("agentpoold.service")["Service"]
        self.assertEqual(svc["SystemCallFilter"], "@system-service")
        self.assertEqual(svc["MemoryDenyWriteExecute"], "yes")
        self.assertIn("AF_UNIX", svc["RestrictAddressFamilies"].split())
        self.assertEqual(svc["PrivateTmp"], "yes")

    def test_the_sample_config_puts_files_where_the_units_make_room(self):
        svc = unit("agentpoold.service")["Service"]
        sock = unit("agentpoold.socket")["Socket"]
        with open(SAMPLE) as f:
            text = f.read()
        body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
        cfg = json.loads(body)
        self.assertEqual(cfg["socket"], sock["ListenStream"])
        self.assertTrue(cfg["deadLetterFile"].startswith("/var/lib/%s/" % svc["StateDirectory"]))
        self.assertTrue(cfg["logFile"].startswith("/var/log/%s/" % svc["LogsDirectory"]))
        self.assertIn("--config /etc/agentpool/agentpool.json", svc["ExecStart"])

    def test_the_sample_config_with_its_comments_is_valid(self):
        # The settings are checked as packaged; the socket's directory
        # (/run/agentpool, made by systemd) is this machine's, so it is
        # moved to a directory that exists here.
        with tempfile.TemporaryDirectory(prefix="aptest-cfg-") as d:
            os.chmod(d, 0o777)
            r = run([AGENTPOOLD, "--check-config", "--config", SAMPLE, "--socket", os.path.join(d, "ap.sock")])
        self.assertEqual((r.returncode, r.stdout.strip()), (0, SAMPLE + ": configuration OK"), r.stderr)
        # The error points at the file as written, comment lines included.
        with tempfile.TemporaryDirectory(prefix="aptest-cfg-") as d:
            bad = os.path.join(d, "bad.json")
            with open(bad, "w") as f:
                f.write('{\n# a comment\n  "minWorkers": 2,,\n}\n')
            r = run([AGENTPOOLD, "--check-config", "--config", bad])
            self.assertEqual(r.returncode, 2)
            self.assertIn(bad + ": line 3, column 20: not valid JSON", r.stderr)

if __name__ == "__main__":
    main()
