# SPDX-License-Identifier: BSD-2-Clause
"""test_install.py - what `make install` installs works on its own, away
from the tree it was built from.

The source tree is copied to a temporary directory, configured with
--prefix in that directory, built and installed (`make install`); then the
copied source and build trees are moved away, and a decoy pyagents package
that fails on import is put where the source tree was.  The installed
agentpoold, with the installed agentpool-worker, serves a round trip
through the installed agentpoolctl; an agent reports its sys.path and
where pyagents came from: the operator's pythonPath first, pyagents from
the installed package directory, and no entry naming the build-time
source tree (an installed worker once put it ahead of the standard
library); the installed pyagents.client talks to that server.  The man pages and the bash completion are where `make install`
promises.  Slow (it builds the whole tree once more): nothing here
depends on how long that takes.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DEADLINE, SRCDIR, main, wait_process_ready  # noqa: E402

BUILD_DEADLINE = max(DEADLINE, 1200)

REPORT_AGENT = '''
import sys
import pyagents
from pyagents import Agent


class ReportAgent(Agent):
    def handle_message(self, type, data):
        return {"path": list(sys.path), "pyagents": pyagents.__file__}
'''


def copy_tree(src, dst):
    def ignore(d, names):
        # Build trees (any directory with a config.status), caches, dot files.
        skip = {".git", "__pycache__", "autom4te.cache"}
        return [n for n in names if n in skip or (d == src and n.startswith("."))
                or os.path.exists(os.path.join(d, n, "config.status"))]
    shutil.copytree(src, dst, ignore=ignore, symlinks=True)


class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="aptest-install-")
        t = cls.tmp.name
        cls.src, cls.build, cls.prefix = (os.path.join(t, n) for n in ("src", "build", "inst"))
        copy_tree(SRCDIR, cls.src)
        os.mkdir(cls.build)

        def sh(argv, cwd):
            r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=BUILD_DEADLINE)
            if r.returncode != 0:
                raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(argv), r.returncode,
                                                                  r.stdout[-4000:], r.stderr[-4000:]))
        sh([os.path.join(cls.src, "configure"), "-q", "--prefix=" + cls.prefix], cls.build)
        sh(["make", "-s", "-j%d" % (os.cpu_count() or 2), "install"], cls.build)
        # The trees it was built from go away; a decoy stands where the source was.
        os.rename(cls.src, os.path.join(t, "src-moved"))
        os.rename(cls.build, os.path.join(t, "build-moved"))
        os.makedirs(os.path.join(cls.src, "pyagents"))
        with open(os.path.join(cls.src, "pyagents", "__init__.py"), "w") as f:
            f.write("raise ImportError('the build-time source tree was imported')\n")
        cls.agents = os.path.join(t, "agents")
        os.mkdir(cls.agents)
        with open(os.path.join(cls.agents, "report.py"), "w") as f:
            f.write(REPORT_AGENT)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def bin(self, name):
        return os.path.join(self.prefix, "bin", name)

    def test_installed_binaries_serve_without_the_source_tree(self):
        sock = os.path.join(self.tmp.name, "ap.sock")
        logpath = os.path.join(self.tmp.name, "agentpoold.log")
        env = dict(os.environ)
        for k in ("PYTHONPATH", "AGENTPOOL_SOCKET"):
            env.pop(k, None)
        with open(logpath, "wb") as logf:
            proc = subprocess.Popen([self.bin("agentpoold"), "--socket", sock, "--agent", "report:ReportAgent",
                                     "--python-path", self.agents, "--min-workers", "1", "--max-workers", "1"],
                                    stdout=logf, stderr=subprocess.STDOUT, env=env)
        try:
            wait_process_ready(proc, sock, lambda: open(logpath, errors="replace").read(),
                               what="the installed agentpoold to be ready")
            r = subprocess.run([self.bin("agentpoolctl"), "--socket", sock, "send", "report", "{}"],
                               capture_output=True, text=True, timeout=DEADLINE, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            answer = json.loads(r.stdout)
            self.assertTrue(answer["ok"], answer)
            report = answer["result"]
            self.assertEqual(report["path"][0], self.agents)
            self.assertEqual(os.path.dirname(os.path.dirname(report["pyagents"])),
                             os.path.join(self.prefix, "share", "agentpool", "python"))
            self.assertEqual([p for p in report["path"] if p.startswith(self.src)], [])
            self.assertEqual([p for p in report["path"] if p.startswith(SRCDIR)], [])
            # pyagents.client is installed with the rest, and works from there.
            pydir = os.path.join(self.prefix, "share", "agentpool", "python")
            code = ("import sys, json; sys.path.insert(0, %r); import pyagents.client as pc; "
                    "print(json.dumps([pc.__file__, pc.Client(%r).send('report', {})['pyagents']]))" % (pydir, sock))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE,
                               env=env, cwd=self.tmp.name)
            self.assertEqual(r.returncode, 0, r.stderr)
            client_file, agent_pyagents = json.loads(r.stdout)
            self.assertEqual(client_file, os.path.join(pydir, "pyagents", "client", "__init__.py"))
            self.assertEqual(agent_pyagents, report["pyagents"])
        finally:
            proc.terminate()
            proc.wait(DEADLINE)

    def test_man_pages_and_completion_are_installed(self):
        man = os.path.join(self.prefix, "share", "man")
        for page in ("man8/agentpoold.8", "man1/agentpoolctl.1"):
            self.assertTrue(os.path.isfile(os.path.join(man, page)), page)
        comp = os.path.join(self.prefix, "share", "bash-completion", "completions", "agentpoolctl")
        self.assertTrue(os.path.isfile(comp), comp)


if __name__ == "__main__":
    main()
