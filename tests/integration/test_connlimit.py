# SPDX-License-Identifier: BSD-2-Clause
"""test_connlimit.py - connection exhaustion: per-uid quota, idle timeout, admin reserve.

What docs/operations.md (Limits) promises, through the real server started
as root (the file is skipped, exit 77, when not root), with a second user
created here with useradd (once; removed at the end when this file created
it) and run with setpriv: a uid holding maxConnectionsPerUid connections
gets its next one refused with one too_many_connections line (exact text),
counted in connectionsTotal.rejectedPerUid, while another uid still
connects and is served; a connection with nothing in flight is closed
after idleConnectionTimeout (asserted on the EOF and on
connectionsTotal.idleClosed, never on time), while one with a message in
flight is not; when the socket is full for others (maxConnections minus
adminReserveConnections), an administrator still gets in and
`agentpoolctl health` works.
"""
import json
import os
import pwd
import subprocess
import sys
import unittest

if os.geteuid() != 0:
    print("SKIP: test_connlimit.py needs root (it connects as a second user)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (  # noqa: E402
    AGENTPOOLCTL, DEADLINE, SRCDIR, Client, Gate, Server, main, wait_for,
    ensure_test_user, remove_test_users)

USER = "apconntest"
CREATED = []
AGENTS = os.path.join(SRCDIR, "tests", "integration", "agents")


def setUpModule():
    ensure_test_user(USER, CREATED)


def tearDownModule():
    remove_test_users(CREATED)


def as_user(argv):
    pw = pwd.getpwnam(USER)
    return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups"] + argv


PING = r"""
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(%d)
s.connect(sys.argv[1])
s.sendall(b'{"id":1,"type":"pool.ping"}\n')
print(s.makefile("rb").readline().decode().strip())
""" % int(DEADLINE)


def ping_as_user(path):
    r = subprocess.run(as_user(["/usr/bin/python3", "-c", PING, path]), capture_output=True, text=True,
                       timeout=DEADLINE + 10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def open_server(config, **kw):
    srv = Server(workers=1, config=dict({"socketMode": "0666"}, **config), **kw)
    os.chmod(srv.tmp.name, 0o755)  # the second user must reach the socket
    return srv


def stats_when(srv, pred):
    """pool.stats over a fresh connection once pred holds (a connection
    refused while earlier ones are still being closed is tried again)."""
    def once():
        with Client(srv.path) as c:
            c.send({"id": 1, "type": "pool.stats"})
            r = c.recv()
        return r["result"] if r["ok"] and pred(r["result"]) else None
    return wait_for(once, what="stats condition")


def refused_line(path):
    with Client(path) as c:
        r = c.recv()
        c.sock.settimeout(DEADLINE)
        assert c.sock.recv(1) == b"", "the refused connection stayed open"
    return r


class ConnLimit(unittest.TestCase):
    def test_a_uid_at_its_quota_is_refused_while_another_uid_connects(self):
        with open_server({"maxConnectionsPerUid": 2}) as srv:
            stats_when(srv, lambda s: s["connections"] == 1)  # harness connections gone
            held = [Client(srv.path), Client(srv.path)]
            try:
                for c in held:
                    self.assertTrue(c.call("pool.ping")["pong"])
                r = refused_line(srv.path)
                self.assertEqual(r, {"id": None, "ok": False, "error": {
                    "code": "too_many_connections",
                    "message": "uid 0 has maxConnectionsPerUid (2) connections already"}})
                self.assertEqual(ping_as_user(srv.path)["result"]["pong"], True)
                st = held[0].stats()
                self.assertEqual(st["connectionsTotal"]["rejectedPerUid"], 1)
                self.assertEqual(st["connectionsTotal"]["rejected"], 1)
                self.assertEqual(st["errors"]["too_many_connections"], 1)
            finally:
                for c in held:
                    c.close()

    def test_an_idle_connection_is_closed_and_counted_one_in_flight_is_not(self):
        srv = open_server({"idleConnectionTimeout": 200}, agent="observe:ObserveAgent",
                          args=["--python-path", AGENTS])
        with srv, Gate(srv.tmp.name) as gate:
            busy = Client(srv.path)
            busy.send({"id": "held", "type": "gate", "data": gate.data(1)})
            idle = Client(srv.path)
            self.assertTrue(idle.call("pool.ping")["pong"])
            with self.assertRaises(ConnectionError):
                idle.recv_line()  # EOF: closed by the server
            idle.close()
            st = stats_when(srv, lambda s: s["connectionsTotal"]["idleClosed"] >= 1)
            self.assertGreaterEqual(st["connectionsTotal"]["idleClosed"], 1)
            # The connection waiting for its answer was kept.
            gate.release()
            self.assertEqual(busy.recv()["id"], "held")
            busy.close()

    def test_the_admin_reserve_lets_an_administrator_in_on_a_full_socket(self):
        # The second user is the administrator here; root is not one.
        with open_server({"maxConnections": 4, "adminReserveConnections": 2, "adminUids": [USER]}) as srv:
            stats_when(srv, lambda s: s["connections"] == 1)
            held = [Client(srv.path), Client(srv.path)]
            try:
                for c in held:
                    self.assertTrue(c.call("pool.ping")["pong"])
                r = refused_line(srv.path)
                self.assertEqual(r["error"], {
                    "code": "too_many_connections",
                    "message": "the server has maxConnections connections already "
                               "(the last 2 are kept for administrators)"})
                h = subprocess.run(as_user([AGENTPOOLCTL, "--socket", srv.path, "health"]), capture_output=True,
                                   text=True, timeout=DEADLINE)
                self.assertEqual(h.returncode, 0, h.stdout + h.stderr)
                self.assertIn("ready", h.stdout)
                self.assertEqual(held[0].stats()["connectionsTotal"]["rejected"], 1)
            finally:
                for c in held:
                    c.close()


if __name__ == "__main__":
    main()
