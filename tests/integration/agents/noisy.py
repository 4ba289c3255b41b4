# SPDX-License-Identifier: BSD-2-Clause
"""noisy.py - an agent that writes to stdout, stderr and Python logging,
for the agent output tests (test_agent_output.py).

Served with --python-path tests/integration/agents.  A plain class (no
pyagents base): what is tested is the worker's stdio and logging set-up
and the master's reading of them.  By message type (data is an object):

  whoami    -> {"pid": ..., "worker": "worker-N"}
  print     -> writes data["text"] data.get("n", 1) times, one line each,
               to data.get("stream", "stdout") ("stdout" | "stderr")
  pieces    -> writes data["n"] lines, each data["line"] written in
               chunks of data["chunk"] characters (one write each) and then
               its newline: a line that arrives in several writes
  partial   -> writes data["text"] with no newline, then os._exit(7)
  log       -> logging.getLogger(data.get("logger", "noisy")).log(level,
               data["msg"]) with level data["level"] ("info", "warning"...)
  basic     -> logging.basicConfig(format=data["format"], level=INFO): the
               agent configuring logging itself
  flood     -> a thread prints data["n"] lines "flood <i>" in a tight loop,
               then writes data["done"] (a path); answers at once

AsyncNoisyAgent: the same, with an async handle_message, so its event loop
(which waits without holding the GIL) keeps answering while a flood
thread prints.
"""
import logging
import os
import sys
import threading

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}


def _whoami():
    return {"pid": os.getpid(), "worker": os.environ.get("AGENTPOOL_WORKER_ID")}


def _flood(n, done):
    for i in range(n):
        print("flood", i)
    tmp = done + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(n))
    os.rename(tmp, done)


class NoisyAgent:
    def handle_message(self, type, data):
        data = data if isinstance(data, dict) else {}
        if type == "print":
            f = sys.stderr if data.get("stream") == "stderr" else sys.stdout
            for _ in range(int(data.get("n", 1))):
                print(data["text"], file=f)
        elif type == "pieces":
            line, chunk = data["line"], int(data["chunk"])
            for _ in range(int(data["n"])):
                for i in range(0, len(line), chunk):
                    sys.stdout.write(line[i:i + chunk])
                    sys.stdout.flush()
                sys.stdout.write("\n")
                sys.stdout.flush()
        elif type == "partial":
            sys.stdout.write(data["text"])
            sys.stdout.flush()
            os._exit(7)
        elif type == "log":
            logging.getLogger(data.get("logger", "noisy")).log(LEVELS[data["level"]], data["msg"])
        elif type == "basic":
            logging.basicConfig(format=data["format"], level=logging.INFO)
        elif type == "flood":
            threading.Thread(target=_flood, args=(int(data["n"]), data["done"]), daemon=True).start()
        return _whoami()


class AsyncNoisyAgent(NoisyAgent):
    async def handle_message(self, type, data):
        return NoisyAgent.handle_message(self, type, data)
