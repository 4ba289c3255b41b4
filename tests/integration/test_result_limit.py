# SPDX-License-Identifier: BSD-2-Clause
"""test_result_limit.py - maxResultBytes through the real server.

A result whose JSON is longer than maxResultBytes is answered agent_error
"result too large (N bytes, limit M)", with no `exception` member (the
agent raised nothing), and the same worker process answers the next
message: a sync agent, an async one (with messages of both kinds in
flight together), and the default limit, maxMessageBytes.  A result of
exactly the limit, and one just under, pass whole.  The worker refuses
before sending; the master refuses too, for a worker that sends one
anyway: here a wrapper (workerBinary) starts the real worker with the
frame limit instead of the master's, and the client still gets the same
answer while the worker keeps serving.
"""
import os
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILDDIR, Server, main, server_stats  # noqa: E402

AGENTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agents")
SYNC = "bigresult:BigResultAgent"
ASYNC = "bigresult:AsyncBigResultAgent"
FRAME_MAX = 256 * 1024 * 1024


def big_server(agent=SYNC, args=()):
    return Server(agent=agent, workers=1, args=["--python-path", AGENTS] + list(args))


class ResultLimit(unittest.TestCase):
    def assert_too_large(self, resp, n, limit):
        self.assertFalse(resp["ok"], resp)
        self.assertEqual(resp["error"], {"code": "agent_error",
                                         "message": "result too large (%d bytes, limit %d)" % (n, limit)})

    def assert_size(self, resp, n):
        self.assertTrue(resp["ok"], resp)
        self.assertEqual(len(resp["result"]) + 2, n)

    def check_one_worker(self, srv, limit):
        """Over, at and under the limit on one worker, which stays."""
        with srv.client() as c:
            pid = c.call("who")["pid"]
            self.assert_too_large(c.request("size", {"bytes": limit + 1}), limit + 1, limit)
            self.assertEqual(c.call("who", 1), {"pid": pid, "data": 1})  # the same process serves on
            self.assert_size(c.request("size", {"bytes": limit}), limit)
            self.assert_size(c.request("size", {"bytes": limit - 1}), limit - 1)
            self.assert_too_large(c.request("size", {"bytes": 3 * limit}), 3 * limit, limit)
            self.assertEqual(c.call("who", 2), {"pid": pid, "data": 2})
        st = server_stats(srv, detailed=True)
        self.assertEqual(st["errors"]["agent_error"], 2, st)
        self.assertEqual(sum(st["errors"].values()), 2, st)
        self.assertEqual(st["types"]["size"], {"ok": 2, "errors": {"agent_error": 2}}, st)
        self.assertEqual([(w["pid"], w["generation"], w["errors"]) for w in st["workers"]], [(pid, 1, 2)], st)
        self.assertEqual(st["restarts"]["crashed"], 0, st)
        return pid

    def test_sync_agent(self):
        srv = big_server(args=["--max-result-bytes", "4096"])
        with srv:
            self.check_one_worker(srv, 4096)
            self.assertIn("result too large (4097 bytes, limit 4096); answered agent_error", srv.log())

    def test_async_agent_with_others_in_flight(self):
        srv = big_server(agent=ASYNC, args=["--max-result-bytes", "4096"])
        with srv:
            pid = self.check_one_worker(srv, 4096)
            with srv.client() as c:
                reqs = []
                for i in range(40):
                    big = i % 4 == 0
                    reqs.append({"id": i, "type": "size" if big else "who", "data": {"bytes": 5000} if big else i})
                got = c.pipeline(reqs)
            for i in range(40):
                r = got[str(i)]
                if i % 4 == 0:
                    self.assert_too_large(r, 5000, 4096)
                else:
                    self.assertEqual(r["result"], {"pid": pid, "data": i}, r)

    def test_default_is_max_message_bytes(self):
        srv = big_server(args=["--max-message-bytes", "65536"])
        with srv:
            self.check_one_worker(srv, 65536)

    def test_the_master_refuses_what_a_worker_sends_anyway(self):
        srv = big_server(args=["--max-result-bytes", "4096"])
        wrapper = os.path.join(srv.tmp.name, "lax-worker")
        with open(wrapper, "w") as f:
            # the last --max-result-bytes wins: this worker sends up to the frame limit
            f.write('#!/bin/sh\nexec "%s" "$@" --max-result-bytes %d\n'
                    % (os.path.join(BUILDDIR, "agentpool-worker"), FRAME_MAX))
        os.chmod(wrapper, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        srv.args += ["--worker-binary", wrapper]
        with srv:
            pid = self.check_one_worker(srv, 4096)
            log = srv.log()
            self.assertIn("(pid %d): a result of 4097 bytes for message" % pid, log)
            self.assertIn("is over maxResultBytes (4096); not delivered, answered agent_error", log)
            # the worker did not refuse it itself
            self.assertNotIn("result too large (4097 bytes, limit 4096); answered agent_error", log)


if __name__ == "__main__":
    main()
