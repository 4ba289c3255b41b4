# SPDX-License-Identifier: BSD-2-Clause
"""test_a2a_js.py - agentpoold's A2A server used by a client nobody here
wrote: the official JavaScript SDK, @a2a-js/sdk (docs/a2a.md).

./bootstrap test installs the SDK with npm into build/a2a-js when node >= 20
and npm are there (the SDK needs node >= 20; Debian 12's own nodejs is 18:
then this test says so and skips).  tests/integration/a2a_js/client.mjs runs
under node against a real agentpoold whose default pool is an A2A server
(tests/integration/agents/a2aagent.py) and reports what it saw.  Proved:
the SDK discovers the Agent Card and picks its JSON-RPC interface, a
blocking SendMessage completes with the handler's result as the artifact, a
SendStreamingMessage streams the Task, one artifact update per token
(append after the first), the result as the last chunk and the completed
status, GetTask and ListTasks find the task, CancelTask cancels a
running task (CANCELED), and a task that asked for input
(ctx.require_input: INPUT_REQUIRED with its prompt) is continued by the
next message carrying its taskId (the same task and context, COMPLETED).  The SDK speaks the 1.0 names (A2A-Version 1.0).
"""
import json
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BUILDDIR, DEADLINE, SRCDIR, main  # noqa: E402
from test_a2a import pool  # noqa: E402
from test_http import HTTPServer  # noqa: E402

SDK_DIR = os.path.join(BUILDDIR, "a2a-js")

# TaskState numbers of the SDK (its proto enum): submitted 1, working 2,
# completed 3, failed 4, canceled 5, input required 6
WORKING, COMPLETED, CANCELED, INPUT_REQUIRED = 2, 3, 5, 6


def node_major():
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True)
    try:
        return int(out.stdout.strip().lstrip("v").split(".")[0])
    except ValueError:
        return None


class JavaScriptSDK(unittest.TestCase):
    def setUp(self):
        major = node_major()
        if major is None or major < 20 or shutil.which("npm") is None:
            self.skipTest("@a2a-js/sdk needs node >= 20 and npm; this machine has %s (Debian 12's nodejs is 18)"
                          % ("node %d" % major if major else "no node"))
        self.assertTrue(os.path.isdir(os.path.join(SDK_DIR, "node_modules", "@a2a-js", "sdk")),
                        "node >= 20 is here but %s has no @a2a-js/sdk: ./bootstrap test installs it" % SDK_DIR)

    def test_the_official_sdk_sends_streams_gets_lists_cancels_and_continues(self):
        script = os.path.join(SDK_DIR, "client.mjs")  # beside node_modules, so its imports resolve
        shutil.copy(os.path.join(SRCDIR, "tests", "integration", "a2a_js", "client.mjs"), script)
        with HTTPServer({"pools": {"default": pool(workers=2)}}) as s:
            gate = os.path.join(s.tmpdir, "gate")
            try:
                out = subprocess.run(["node", script, "http://127.0.0.1:%d" % s.port, gate], capture_output=True,
                                     text=True, timeout=DEADLINE, cwd=SDK_DIR)
            finally:
                open(gate, "w").close()
            self.assertEqual(out.returncode, 0, out.stderr + s.log())
            got = json.loads(out.stdout.strip().splitlines()[-1])
        self.assertEqual(got["send"]["state"], COMPLETED, got)
        self.assertEqual(got["send"]["artifact"], "hello back")
        self.assertEqual(got["stream"][0], ["task", WORKING])
        self.assertEqual(got["stream"][1:4], [["artifact", "t0", False, False], ["artifact", "t1", True, False],
                                              ["artifact", "t2", True, False]])
        self.assertEqual(got["stream"][4][0], "artifact")
        self.assertTrue(got["stream"][4][3], "the result is the last chunk")
        self.assertEqual(got["stream"][-1], ["status", COMPLETED])
        self.assertEqual(got["get"], {"id": got["send"]["id"], "state": COMPLETED})
        self.assertIn(got["send"]["id"], got["list"])
        self.assertEqual(got["cancel"]["after"], CANCELED, got)
        self.assertEqual(got["input"], {"asked": INPUT_REQUIRED, "prompt": "which size?", "id": got["input"]["id"],
                                        "same": True, "after": COMPLETED, "history": 3}, got)


if __name__ == "__main__":
    main()
