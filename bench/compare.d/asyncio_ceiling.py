# SPDX-License-Identifier: BSD-2-Clause
"""The asyncio ceiling for sleep50 in bench/compare: one event loop, N
coroutines each awaiting asyncio.sleep(0.05) in a loop, no I/O at all.

What an async agent's worker can reach at best with N messages in flight
on its loop: asyncio wakes a timer up to a millisecond late (the epoll
timeout is rounded up to whole milliseconds), so the mean sleep is above
50 ms and the share of Little's law below 100% before any IPC.

Usage: asyncio_ceiling.py --seconds S N...   (one JSON object)
Per N: sleeps done, mean / p50 / p99 of the measured sleep (ms), and the
share of Little's law one loop reaches (0.05 / mean).
"""

import argparse
import asyncio
import json
import sys
import time


async def _sleeper(stop, lat):
    while time.monotonic() < stop:
        t = time.monotonic()
        await asyncio.sleep(0.05)
        lat.append(time.monotonic() - t)


async def _run(n, seconds):
    lat = []
    stop = time.monotonic() + seconds
    await asyncio.gather(*(_sleeper(stop, lat) for _ in range(n)))
    lat.sort()
    mean = sum(lat) / len(lat)
    return {"sleeps": len(lat), "mean_ms": mean * 1e3, "p50_ms": lat[len(lat) // 2] * 1e3,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, "share_of_little": 0.05 / mean}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("n", nargs="+", type=int)
    a = ap.parse_args()
    out = {"tool": "asyncio_ceiling", "python": sys.version.split()[0], "per_loop": {}}
    for n in a.n:
        out["per_loop"][str(n)] = asyncio.run(_run(n, a.seconds))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
