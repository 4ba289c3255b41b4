# SPDX-License-Identifier: BSD-2-Clause
"""test_admin.py - who may administer: adminUids/adminGids and `forbidden`.

What docs/protocol.md (Master requests) and docs/operations.md (Who may
administer) promise, through the real server started as root (the file is
skipped, exit 77, when not root): a second user, created here with
useradd (once; removed at the end when this file created it) and run with
setpriv, is allowed on the socket but is not an administrator, so each
admin request (pool.scale, pool.reload, pool.dlq.list/remove/purge,
pool.history, pool.stats with detailed) is answered `forbidden` with the
exact message, on a connection that stays usable, and changes nothing
(the pool keeps its size), while pool.ping, pool.health and plain
pool.stats succeed for it; root succeeds for all of them; the refusals
are counted in errors.forbidden; adminUids naming the user (resolved at
start) makes it an administrator, and a reload that sets adminGids to its
group alone does too; agentpoolctl says what would let the user in and
exits 1.
"""
import json
import os
import pwd
import subprocess
import sys
import unittest

if os.geteuid() != 0:
    print("SKIP: test_admin.py needs root (it runs clients as a second user)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (  # noqa: E402
    AGENTPOOLCTL, DEADLINE, Server, main, server_stats, wait_for,
    ensure_test_user, remove_test_users)

USER = "apadmtest"
CREATED = []

ADMIN = [("pool.scale", {"workers": 3}), ("pool.reload", None), ("pool.dlq.list", None),
         ("pool.dlq.remove", {"ids": [1]}), ("pool.dlq.purge", None), ("pool.history", None),
         ("pool.stats", {"detailed": True})]
OPEN = [("pool.ping", None), ("pool.health", None), ("pool.stats", None), ("pool.stats", {"detailed": False})]

# Sends each request of argv[2] (a JSON list of [type, data]) on one
# connection, one at a time, and prints the answers as a JSON list.
CLIENT = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(%d)
s.connect(sys.argv[1])
f = s.makefile("rb")
out = []
for i, (t, d) in enumerate(json.loads(sys.argv[2])):
    req = {"id": i, "type": t}
    if d is not None:
        req["data"] = d
    s.sendall(json.dumps(req).encode() + b"\n")
    out.append(json.loads(f.readline()))
print(json.dumps(out))
""" % int(DEADLINE)


def setUpModule():
    ensure_test_user(USER, CREATED)


def tearDownModule():
    remove_test_users(CREATED)


def ids():
    pw = pwd.getpwnam(USER)
    return pw.pw_uid, pw.pw_gid


def as_user(argv):
    uid, gid = ids()
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups"] + argv


def requests_as(path, reqs, user=True):
    argv = ["/usr/bin/python3", "-c", CLIENT, path, json.dumps(reqs)]
    r = subprocess.run(as_user(argv) if user else argv, capture_output=True, text=True, timeout=DEADLINE + 10)
    if r.returncode != 0:
        raise AssertionError("client failed: %s" % r.stderr)
    return json.loads(r.stdout)


def open_server(config=None):
    srv = Server(workers=2, config=dict({"socketMode": "0666", "maxWorkers": 3}, **(config or {})))
    os.chmod(srv.tmp.name, 0o755)  # the second user must reach the socket
    return srv


def forbidden_message(type_, detailed=False):
    uid, gid = ids()
    return ("%s%s is for administrators: uid %d (gid %d) is in neither adminUids nor adminGids"
            % (type_, " with detailed" if detailed else "", uid, gid))


class Admin(unittest.TestCase):
    def test_second_user_is_forbidden_admin_requests_and_allowed_the_open_ones(self):
        with open_server() as srv:
            answers = requests_as(srv.path, ADMIN + OPEN)
            for (t, d), a in zip(ADMIN, answers):
                self.assertEqual(a["error"], {"code": "forbidden",
                                              "message": forbidden_message(t, bool(d and d.get("detailed")))},
                                 (t, a))
            for (t, d), a in zip(OPEN, answers[len(ADMIN):]):
                self.assertTrue(a["ok"], (t, a))
            self.assertNotIn("workers", answers[-1]["result"])
            st = server_stats(srv)
            self.assertEqual(st["errors"]["forbidden"], len(ADMIN))
            self.assertEqual(st["total"], 2, "a forbidden pool.scale changed the pool")

    def test_second_user_may_not_subscribe_to_events(self):
        # docs/events.md: events show pids, exit statuses and other
        # clients' message ids; pool.unsubscribe (its own only) is open
        with open_server() as srv:
            a, u = requests_as(srv.path, [("pool.subscribe", {"topics": ["#"]}), ("pool.unsubscribe", None)])
            self.assertEqual(a["error"], {"code": "forbidden", "message": forbidden_message("pool.subscribe")})
            self.assertEqual(u["result"], {"unsubscribed": False, "delivered": 0})
            self.assertEqual(server_stats(srv)["events"]["subscribers"], 0)

    def test_root_may_do_everything(self):
        with open_server() as srv:
            reqs = ADMIN[2:] + OPEN
            answers = requests_as(srv.path, reqs, user=False)
            for (t, _), a in zip(reqs, answers):
                self.assertTrue(a["ok"], (t, a))
            self.assertIn("workers", answers[len(ADMIN) - 3]["result"])
            with srv.client() as c:
                self.assertEqual(c.call("pool.reload")["replaced"], 2)
                self.assertEqual(c.call("pool.scale", {"workers": 3})["workers"], 3)
            self.assertEqual(server_stats(srv)["errors"]["forbidden"], 0)

    def test_admin_uids_and_a_reload_to_admin_gids(self):
        uid, gid = ids()
        with open_server({"adminUids": [USER]}) as srv:
            answers = requests_as(srv.path, [("pool.history", None), ("pool.stats", {"detailed": True})])
            self.assertTrue(all(a["ok"] for a in answers), answers)
            # Root is no longer implicit: the list is exactly who may.
            a = requests_as(srv.path, [("pool.history", None)], user=False)[0]
            self.assertEqual(a["error"]["code"], "forbidden", a)
            # A reload that names only the group, by number.
            cfg = os.path.join(srv.tmp.name, "config.json")
            with open(cfg) as f:
                conf = json.load(f)
            del conf["adminUids"]
            conf["adminGids"] = [str(gid)]
            with open(cfg, "w") as f:
                json.dump(conf, f)
            a = requests_as(srv.path, [("pool.reload", None)])[0]
            self.assertTrue(a["ok"], a)
            a = requests_as(srv.path, [("pool.history", None)])[0]
            self.assertTrue(a["ok"], a)

    def test_agentpoolctl_says_what_is_missing(self):
        with open_server() as srv:
            r = subprocess.run(as_user([AGENTPOOLCTL, "--socket", srv.path, "scale", "3"]), capture_output=True,
                               text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("forbidden: " + forbidden_message("pool.scale"), r.stderr)
            self.assertIn("needs an administrator of agentpoold", r.stderr)
            r = subprocess.run(as_user([AGENTPOOLCTL, "--socket", srv.path, "health"]), capture_output=True,
                               text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 0, r.stderr)
            wait_for(lambda: server_stats(srv)["total"] == 2, what="the pool to keep its size")
            # top falls back to the plain stats: the pool, without worker rows
            r = subprocess.run(as_user([AGENTPOOLCTL, "--socket", srv.path, "top", "--once"]), capture_output=True,
                               text=True, timeout=DEADLINE)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("pool ready", r.stdout)
            self.assertIn("(worker rows need an administrator of agentpoold: adminUids/adminGids)", r.stdout)


if __name__ == "__main__":
    main()
