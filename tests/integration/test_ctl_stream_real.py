# SPDX-License-Identifier: BSD-2-Clause
"""test_ctl_stream_real.py - agentpoolctl send --stream and its Ctrl-C
against the real agentpoold, in each worker model.

test_ctl_stream.py checks ctl's side byte for byte against a fake server;
this one checks that the whole path holds with real workers running
pyagents.examples.tokens: ctl prints the chunks of a long stream as they
come; on SIGINT (what Ctrl-C sends) it sends pool.cancel, the server finds
the request running (messages.cancels.running goes up by one), ctl prints
the `cancelled` final answer after the chunks and exits 130; and the
worker that ran the stream is the same process afterwards and serves the
next request.  gevent is skipped where it is not installed.  Every wait
is a condition with a generous deadline; nothing asserts a duration.
"""
import json
import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AGENTPOOLCTL, DEADLINE, Server, main, server_stats,  # noqa: E402
                     skip_without_greenlet_support)

try:
    import gevent  # noqa: F401
    HAVE_GEVENT = True
except ImportError:
    HAVE_GEVENT = False

EXIT_INTERRUPTED = 130
# a stream far longer than the test: 100,000 chunks 20 ms apart (over half an hour)
LONG = {"n": 100000, "size": 8, "ms": 20}


def token(i, size):
    t = "t%d" % i
    return t + "x" * (size - len(t)) if size > len(t) else t


class Models:
    """The test for each model; subclasses set MODEL and TOKENS."""
    MODEL = None
    TOKENS = None

    def test_ctrl_c_cancels_the_running_stream_and_the_worker_serves_on(self):
        with Server(agent=self.TOKENS, workers=1,
                    args=["--worker-model", self.MODEL, "--concurrency", "8"]) as s:
            before = server_stats(s)
            pids = s.worker_pids()
            env = dict(os.environ)
            env.pop("AGENTPOOL_SOCKET", None)
            p = subprocess.Popen([AGENTPOOLCTL, "-s", s.path, "send", "--stream", "tokens", json.dumps(LONG)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            self.addCleanup(lambda: p.poll() is None and p.kill())
            first = [p.stdout.readline() for _ in range(3)]
            self.assertEqual(first, [('"%s"\n' % token(i, 8)).encode() for i in range(3)])
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=DEADLINE)
            self.assertEqual(p.returncode, EXIT_INTERRUPTED, err)
            self.assertEqual(err, b"agentpoolctl: interrupted: pool.cancel found the request running\n")
            lines = (b"".join(first) + out).decode().splitlines()
            # every chunk in order, then the cancelled answer, nothing else
            self.assertEqual(lines[:-1], ['"%s"' % token(i, 8) for i in range(len(lines) - 1)])
            final = json.loads(lines[-1])
            self.assertEqual((final["id"], final["ok"], final["error"]["code"]), (1, False, "cancelled"), final)
            after = server_stats(s)
            self.assertEqual(after["messages"]["cancels"]["running"],
                             before["messages"]["cancels"]["running"] + 1, after["messages"])
            self.assertEqual(after["streams"]["ended"].get("cancelled", 0), 1, after["streams"])
            # the same worker process, serving the next request
            with s.client() as c:
                r = c.request("tokens", {"n": 3, "size": 4})
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["result"]["chunks"], [token(i, 4) for i in range(3)])
            self.assertEqual(s.worker_pids(), pids)
            self.assertEqual(server_stats(s)["workerEvents"]["spawned"], before["workerEvents"]["spawned"])


class Sync(Models, unittest.TestCase):
    MODEL = "sync"
    TOKENS = "pyagents.examples.tokens:TokensAgent"


class Async(Models, unittest.TestCase):
    MODEL = "async"
    TOKENS = "pyagents.examples.tokens:AsyncTokensAgent"


@unittest.skipUnless(HAVE_GEVENT, "gevent is not installed")
@skip_without_greenlet_support
class Gevent(Models, unittest.TestCase):
    MODEL = "gevent"
    TOKENS = "pyagents.examples.tokens:GeventTokensAgent"


if __name__ == "__main__":
    main()
