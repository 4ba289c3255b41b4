# SPDX-License-Identifier: BSD-2-Clause
"""test_contrib.py - the Prometheus rules and the Grafana dashboard in
contrib/ fit the metrics agentpoold really exports.

contrib/prometheus/agentpool.rules.yml passes `promtool check rules`, and
`promtool test rules` runs contrib/prometheus/agentpool.rules.test.yml
(each alert fires on the series that should raise it and stays quiet on
a healthy pool).  Every metric name the rules and
contrib/grafana/agentpool.json use is one a real agentpoold's /metrics
has (after an answered message, so the families that only appear with
data are there), or a recording rule the
rules file defines (or `up`, Prometheus's own).  The dashboard shows the
subjects the docs promise.  promtool comes with Debian's prometheus
package (./bootstrap installs it): its absence is a failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DEADLINE, SRCDIR, Server, main  # noqa: E402
from test_metrics import Endpoint, parse_metrics  # noqa: E402

RULES = os.path.join(SRCDIR, "contrib", "prometheus", "agentpool.rules.yml")
RULES_TEST = os.path.join(SRCDIR, "contrib", "prometheus", "agentpool.rules.test.yml")
DASHBOARD = os.path.join(SRCDIR, "contrib", "grafana", "agentpool.json")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
NAME = re.compile(r"\b((?:agentpool|process)[_:][a-z0-9_:]*)\b")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def read(path):
    with open(path) as f:
        return f.read()


def promtool(*args):
    return subprocess.run([PROMTOOL] + list(args), capture_output=True, text=True, timeout=DEADLINE,
                          cwd=os.path.dirname(RULES))


def rule_exprs():
    """(recording rule names, every expr) of the rules file, read without
    a YAML library: `record:` and `expr:` lines, and the block after `expr: |`."""
    records, exprs = set(), []
    lines = read(RULES).splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"\s*- record: (\S+)", lines[i])
        if m:
            records.add(m.group(1))
        m = re.match(r"(\s*)expr: (.*)", lines[i])
        if m:
            if m.group(2).strip() == "|":
                block, indent = [], len(m.group(1))
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i])
                    i += 1
                exprs.append("\n".join(block))
                continue
            exprs.append(m.group(2))
        i += 1
    return records, exprs


def dashboard_exprs():
    d = json.loads(read(DASHBOARD))
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in d["templating"]["list"] if v.get("type") == "query"]
    return d, exprs


class Rules(unittest.TestCase):
    def test_promtool_check_rules(self):
        r = promtool("check", "rules", RULES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_promtool_test_rules(self):
        r = promtool("test", "rules", RULES_TEST)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("SUCCESS", r.stdout)

    def test_the_alerts_the_issue_asks_for_are_there(self):
        text = read(RULES)
        for alert in ("AgentpoolNoHealthyWorker", "AgentpoolHighErrorRate", "AgentpoolQueueNearlyFull",
                      "AgentpoolRestartBackoff", "AgentpoolDeadLettersGrowing"):
            self.assertIn("- alert: %s\n" % alert, text)
            self.assertIn("alertname: %s\n" % alert, read(RULES_TEST))


class Names(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        srv = Server(agent="pyagents.examples.raising:RaiseAgent", workers=2, args=[])
        spec = "unix:" + os.path.join(srv.tmp.name, "metrics.sock")
        srv.args += ["--metrics-listen", spec]
        with srv:
            with srv.client() as c:  # answered before request() returns
                c.request("boom", {"message": "x"})
                c.request("echo", 1)
            text = Endpoint(spec).get("/metrics")[2]
        _, families = parse_metrics(text)
        cls.families = set(families)
        cls.series = set(families)
        for f, (t, _) in families.items():
            if t == "histogram":
                cls.series |= {f + "_bucket", f + "_sum", f + "_count"}

    def unknown(self, exprs, records):
        names = set()
        for e in exprs:
            names |= set(NAME.findall(QUOTED.sub('""', e)))  # label values are not names
        return sorted(n for n in names if n not in self.series and n not in records)

    def test_rules_use_only_exported_names(self):
        records, exprs = rule_exprs()
        self.assertGreater(len(exprs), 10)
        self.assertEqual(self.unknown(exprs, records), [])

    def test_dashboard_uses_only_exported_names(self):
        d, exprs = dashboard_exprs()
        records, _ = rule_exprs()
        self.assertEqual(self.unknown(exprs, records), [])
        # And the check can fail: a name agentpoold does not export is caught.
        self.assertEqual(self.unknown(["rate(agentpool_bogus_total[5m])"], records), ["agentpool_bogus_total"])

    def test_dashboard_shows_the_promised_subjects(self):
        d, exprs = dashboard_exprs()
        joined = "\n".join(exprs)
        for needle in ("rate(agentpool_messages_total", "histogram_quantile(0.99, sum by (le) "
                       "(rate(agentpool_message_duration_seconds_bucket", "agentpool_queue_depth",
                       "sum by (state) (agentpool_workers", "agentpool_worker_restarts_total",
                       'outcome!="ok"', "agentpool_worker_rss_bytes", "agentpool_handler_duration_seconds_bucket"):
            self.assertIn(needle, joined)
        self.assertEqual(len({p["id"] for p in d["panels"]}), len(d["panels"]))


if __name__ == "__main__":
    main()
