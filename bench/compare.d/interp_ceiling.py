# SPDX-License-Identifier: BSD-2-Clause
"""The interpreter ceiling of bench/compare: the handler alone, in a loop.

For each payload size it builds the data agentpool-bench sends
({"p":"xxx..."}), then, in one process and a tight loop, does what a
worker must do per message minus all I/O: decode the JSON bytes, call the
handler, encode the answer to bytes. Two handlers:

  agent: pyagents.examples.echo:EchoAgent.handle_message("echo", data),
         on the data member only (what agentpool's worker receives);
  wsgi:  bench/compare.d/app.py's WSGI app on the whole request body,
         with a minimal environ (what the HTTP peers run per request).

Usage: interp_ceiling.py --seconds S PAYLOAD_BYTES...   (one JSON object)
Per handler and size: iterations, wall and CPU (process_time) time per
message in ns. S is split over the cases; each runs at least 3 rounds
and reports the fastest round's wall and CPU time (the least disturbed
by other load on a shared machine), and the median round's wall time.
"""

import argparse
import io
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _round(fn, n):
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _measure(fn, budget_s):
    n = 1
    while True:  # calibrate: a round of about budget/5
        wall, _ = _round(fn, n)
        if wall >= budget_s / 20 or n >= 1 << 24:
            break
        n *= 2
    per_round = max(1, int(n * (budget_s / 5) / max(wall, 1e-9)))
    walls, cpus = [], []
    deadline = time.perf_counter() + budget_s
    while len(walls) < 3 or time.perf_counter() < deadline:
        wall, cpu = _round(fn, per_round)
        walls.append(wall)
        cpus.append(cpu)
    return {"iterations": per_round, "rounds": len(walls),
            "wall_ns_per_msg": min(walls) / per_round * 1e9, "cpu_ns_per_msg": min(cpus) / per_round * 1e9,
            "wall_ns_per_msg_median": sorted(walls)[len(walls) // 2] / per_round * 1e9}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("sizes", nargs="+", type=int)
    a = ap.parse_args()
    from pyagents.examples.echo import EchoAgent
    import app as wsgi_mod

    agent = EchoAgent()
    out = {"tool": "interp_ceiling", "python": sys.version.split()[0], "executable": sys.executable,
           "agent": {}, "wsgi": {}}
    budget = a.seconds / (2 * len(a.sizes))
    for size in a.sizes:
        data = ('{"p":"' + "x" * size + '"}').encode()
        body = b'{"id":1                   ,"type":"echo","data":' + data + b"}"
        loads, dumps, handle = json.loads, json.dumps, agent.handle_message

        def agent_once():
            return dumps(handle("echo", loads(data))).encode()

        def start_response(status, headers):
            return None

        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/echo", "CONTENT_LENGTH": str(len(body)),
                   "CONTENT_TYPE": "application/json"}

        def wsgi_once():
            environ["wsgi.input"] = io.BytesIO(body)
            return b"".join(wsgi_mod.app(environ, start_response))

        assert json.loads(agent_once()) == json.loads(data)
        assert json.loads(wsgi_once()) == json.loads(body)
        out["agent"][str(size)] = _measure(agent_once, budget)
        out["wsgi"][str(size)] = _measure(wsgi_once, budget)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
