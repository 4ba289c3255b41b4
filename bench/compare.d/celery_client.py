# SPDX-License-Identifier: BSD-2-Clause
"""The Celery load client of bench/compare: K tasks in flight, closed loop.

Usage: celery_client.py --task echo|sleep50 --inflight K --seconds S
       [--warmup W] [--payload-bytes B]
Prints one JSON object: throughput (tasks/s), latency percentiles (us),
errors, the client's own CPU time. A task is sent with apply_async and
the results of all tasks in flight are fetched with one MGET of their
result keys, as Celery's own ResultSet.get_many does, every 0.5 ms while
none has come (AsyncResult.get with many results pending on Redis pub/sub
stalled for seconds here). So latency is measured to within the poll
interval. The client is one Python process: its CPU share is reported so
a client-bound figure can be recognised.
"""

import argparse
import collections
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from celery_app import app, echo, sleep50  # noqa: E402


def _pct(sorted_us, q):
    if not sorted_us:
        return None
    i = min(len(sorted_us) - 1, max(0, int(round(q * len(sorted_us) + 0.5)) - 1))
    return sorted_us[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="echo", choices=("echo", "sleep50"))
    ap.add_argument("--inflight", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--payload-bytes", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    task = echo if a.task == "echo" else sleep50
    data = {"p": "x" * a.payload_bytes}
    backend = app.backend
    pending = {}  # result key -> (time sent, measured?)
    lat = []
    errors = collections.Counter()
    t0 = time.monotonic()
    measure_from = t0 + a.warmup
    stop_at = measure_from + a.seconds
    give_up = stop_at + a.timeout
    ru0 = None
    sent = done = warm_done = 0
    last_done = measure_from
    while True:
        now = time.monotonic()
        if ru0 is None and now >= measure_from:
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
        while now < stop_at and len(pending) < a.inflight:
            res = task.apply_async((data,))
            pending[backend.get_key_for_task(res.id)] = (now, now >= measure_from)
            sent += 1
        if not pending or now > give_up:
            break
        keys = list(pending)
        got = 0
        for key, value in zip(keys, backend.mget(keys)):
            if value is None:
                continue
            meta = backend.decode_result(value)
            if meta.get("status") not in ("SUCCESS", "FAILURE", "REVOKED"):
                continue
            got += 1
            t_sent, measured = pending.pop(key)
            backend.client.delete(key)
            t_done = time.monotonic()
            if not measured:
                warm_done += 1
                continue
            done += 1
            last_done = t_done
            if meta["status"] == "SUCCESS":
                lat.append(int((t_done - t_sent) * 1e6))
            else:
                errors[meta["status"].lower()] += 1
        if got == 0:
            time.sleep(0.0005)
    errors["outstanding"] += len(pending) if pending else 0
    if not errors["outstanding"]:
        del errors["outstanding"]
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    if ru0 is None:
        ru0 = ru1
    wall = max(1e-9, last_done - measure_from)
    lat.sort()
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    print(json.dumps({
        "tool": "celery_client", "task": a.task, "inflight": a.inflight,
        "payload_bytes": a.payload_bytes, "duration_s": wall,
        "requests": {"sent": sent, "done": done, "ok": len(lat), "errors": sum(errors.values())},
        "warmup": {"done": warm_done},
        "throughput_rps": done / wall, "ok_rps": len(lat) / wall,
        "latency_us": {"count": len(lat), "p50": _pct(lat, 0.5), "p90": _pct(lat, 0.9),
                       "p99": _pct(lat, 0.99), "p99_9": _pct(lat, 0.999),
                       "max": lat[-1] if lat else None,
                       "mean": (sum(lat) / len(lat)) if lat else None},
        "errors": dict(errors),
        "cpu": {"user_s": ru1.ru_utime - ru0.ru_utime, "sys_s": ru1.ru_stime - ru0.ru_stime,
                "utilization": cpu / wall},
    }))


if __name__ == "__main__":
    main()
