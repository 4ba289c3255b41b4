# SPDX-License-Identifier: BSD-2-Clause
"""test_manpages.py - agentpoold(8), agentpoolctl(1) and the bash
completion say what the programs do.

Every setting `agentpoold --help` lists (its JSON key and its flag) is in
agentpoold(8)'s SETTINGS, as are its options, its signals (the README's
signal table) and its exit statuses; every command and option
`agentpoolctl --help` lists is in agentpoolctl(1) and in the completion,
with each exit status.  `mandoc -T lint` finds nothing to warn about.
The completion, loaded into bash, offers the commands, dlq's
subcommands and each command's own options.
"""
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AGENTPOOLCTL, AGENTPOOLD, DEADLINE, SRCDIR, main  # noqa: E402

MAN8 = os.path.join(SRCDIR, "man", "agentpoold.8")
MAN1 = os.path.join(SRCDIR, "man", "agentpoolctl.1")
COMPLETION = os.path.join(SRCDIR, "contrib", "bash-completion", "agentpoolctl")


def text(path):
    with open(path) as f:
        return f.read()


def help_of(prog):
    r = subprocess.run([prog, "--help"], capture_output=True, text=True, timeout=DEADLINE)
    return r.stdout + r.stderr


def section(page, name):
    m = re.search(r"^\.Sh %s\n(.*?)(?=^\.Sh |\Z)" % name, page, re.S | re.M)
    assert m, "no section %s" % name
    return m.group(1)


def ctl_options(helptext):
    return sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", helptext)))


def ctl_commands(helptext):
    cmds = helptext.split("Commands:", 1)[1].split("Options", 1)[0]
    return sorted(set(re.findall(r"^  ([a-z]+(?: [a-z]+)?)", cmds, re.M)))


class Agentpoold(unittest.TestCase):
    def test_every_setting_in_help_is_in_the_man_page(self):
        settings = section(text(MAN8), "SETTINGS")
        found = re.findall(r"^  (--[a-z0-9-]+)\s+\[(\w+)\]", help_of(AGENTPOOLD), re.M)
        self.assertGreater(len(found), 50)
        missing = [(flag, key) for flag, key in found
                   if ".It Sy %s Pq Fl \\%s" % (key, flag[1:]) not in settings]
        self.assertEqual(missing, [], "settings in --help but not in agentpoold(8)")

    def test_options_signals_and_exit_statuses(self):
        page = text(MAN8)
        for opt in ("config", "check-config", "help", "version"):
            self.assertIn("Fl Fl %s" % opt, section(page, "OPTIONS"))
        signals = section(page, "SIGNALS")
        readme = text(os.path.join(SRCDIR, "README.md"))
        table = readme.split("## Signals", 1)[1].split("\n\n", 2)[1]
        for sig in sorted(set(re.findall(r"SIG[A-Z0-9]+", table))):
            self.assertIn(sig, signals)
        statuses = section(page, "EXIT STATUS")
        for n in ("0", "1", "2"):
            self.assertIn(".It %s\n" % n, statuses)
        files = section(page, "FILES")
        for path in ("/etc/agentpool/agentpool.json", "/run/agentpool/agentpool.sock",
                     "/var/lib/agentpool/deadletter.jsonl"):
            self.assertIn(path, files)


class Agentpoolctl(unittest.TestCase):
    def test_every_command_and_option_is_in_the_man_page_and_completion(self):
        h = help_of(AGENTPOOLCTL)
        page, comp = text(MAN1), text(COMPLETION)
        cmds = ctl_commands(h)
        self.assertIn("dlq replay", cmds)
        for c in cmds:
            self.assertIn(".It Cm %s" % c, section(page, "COMMANDS"))
            for word in c.split():
                self.assertRegex(comp, r"\b%s\b" % word)
        opts = ctl_options(h)
        self.assertIn("--detailed", opts)
        for o in opts:
            self.assertIn("Fl \\%s" % o[1:], page)
            self.assertIn(o, comp)
        statuses = section(page, "EXIT STATUS")
        for n in re.findall(r"^   (\d)  ", h, re.M):
            self.assertIn(".It %s\n" % n, statuses)

    def test_bash_completes_commands_subcommands_and_options(self):
        bash = shutil.which("bash")
        if bash is None:
            self.skipTest("no bash")
        script = """
source %s
c() { COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); COMPREPLY=(); _agentpoolctl; echo "${COMPREPLY[*]}"; }
c agentpoolctl h
c agentpoolctl -s /tmp/x dlq ""
c agentpoolctl stats --d
c agentpoolctl dlq purge --y
c agentpoolctl top --o
""" % COMPLETION
        r = subprocess.run([bash, "--norc", "-c", script], capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(r.stderr, "")
        self.assertEqual(r.stdout.splitlines(), ["health history", "list replay purge", "--detailed", "--yes", "--once"])


class Lint(unittest.TestCase):
    def test_mandoc_lint_is_clean(self):
        mandoc = shutil.which("mandoc")
        if mandoc is None:
            self.skipTest("mandoc is not installed")
        for page in (MAN8, MAN1):
            r = subprocess.run([mandoc, "-T", "lint", "-W", "warning", page], capture_output=True, text=True,
                               timeout=DEADLINE)
            self.assertEqual(r.stdout + r.stderr, "", page)


if __name__ == "__main__":
    main()
