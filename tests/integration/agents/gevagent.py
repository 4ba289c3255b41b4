# SPDX-License-Identifier: BSD-2-Clause
"""gevagent.py - a plain def agent for the gevent model (test_gevent.py).

Served with --python-path tests/integration/agents and --worker-model
gevent.  Written as blocking code; gevent makes the waits greenlet waits.
By message type (data is an object):
  fetch     -> pyagents.examples.fetch's handler (data["url"], data["client"])
  wait      -> creates data["started"] (if given), then waits until
               data["file"] exists (time.sleep polling, bounded); its
               finally block writes data["marker"] (if given) with the
               exception class that ended it, or "done"
  crash     -> os._exit(data.get("code", 1))
  spin      -> holds the hub without yielding for data["s"] seconds (a
               busy loop: what hubBlockedWarnMs detects)
  whoami    -> {"pid": ..., "worker": ..., "greenlet_ran": whoami messages its greenlet has run}
  sleeps    -> time.sleep's cases (test_gevent.py's Sleep): {"bridge": the
               bridge's sleep is time.sleep, "order": which of three greenlets
               sleeping 30, 10 and 20 ms ended first to last, "early": sleeps
               measured shorter than asked, "cut": what gevent.Timeout
               raised in a fourth one's time.sleep(1) among them, "timeout": what gevent.Timeout
               around time.sleep(10) raised, "after": a sleep after it
               returned, "zero": time.sleep(0), "thread": a native thread's
               time.sleep(0.001) returned, "bad": the error of time.sleep("x")}
  forksleep -> {"armed": whether this worker's time.sleep timer is still armed
               for a greenlet's 5 s sleep after a forked child slept, found
               nothing more to wait for and disarmed its own}: the worker
               blocks (no hub) while the child runs, so nothing re-arms it
  call      -> sends data["type"] (with data["data"]) to the server at
               data["socket"] through pyagents.client.Client and returns
               {"answer": its result, "pid": ...} (test_client.py: one agent
               calling another through agentpool from a gevent worker)
health() appends a line to $GEVAGENT_HEALTH_LOG (if set) at each heartbeat.
"""
import os
import time

import pyagents
from pyagents.examples.fetch import FetchAgent

WAIT_MAX = 60.0
_fetch = FetchAgent()


def write_atomically(path, text):
    """The file appears whole (a test polls for it)."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


class GeventAgent:
    def handle_message(self, type, data):
        if type == "fetch":
            return _fetch.handle_fetch(data)
        if type == "wait":
            return self.wait(data)
        if type == "crash":
            os._exit(data.get("code", 1))
        if type == "call":
            from pyagents.client import Client
            with Client(data["socket"]) as c:
                return {"answer": c.send(data["type"], data.get("data")), "pid": os.getpid()}
        if type == "sleeps":
            return self.sleeps()
        if type == "forksleep":
            return self.forksleep()
        if type == "spin":
            end = time.monotonic() + data["s"]
            n = 0
            while time.monotonic() < end:
                n += 1
            return {"spins": n}
        ctx = pyagents.context()
        import greenlet
        g = greenlet.getcurrent()
        g.ran = getattr(g, "ran", 0) + 1
        return {"pid": os.getpid(), "worker": ctx.worker, "greenlet_ran": g.ran}

    def wait(self, data):
        if data.get("started"):
            write_atomically(data["started"], str(os.getpid()))
        outcome = "done"
        try:
            end = time.monotonic() + WAIT_MAX
            while not os.path.exists(data["file"]) and time.monotonic() < end:
                time.sleep(0.005)
            return {"pid": os.getpid(), "seq": data.get("seq")}
        except BaseException as e:
            outcome = type(e).__name__
            raise
        finally:
            if data.get("marker"):
                write_atomically(data["marker"], outcome)

    def sleeps(self):
        import gevent
        from gevent import monkey
        out = {"bridge": "agentpool" in (time.sleep.__doc__ or ""), "order": [], "early": 0}

        def nap(ms):
            t = time.monotonic()
            time.sleep(ms / 1000.0)
            if time.monotonic() - t < ms / 1000.0:
                out["early"] += 1
            out["order"].append(ms)

        def cut():  # leaves the middle of the sleepers' heap early
            try:
                with gevent.Timeout(0.005):
                    time.sleep(1)
                out["cut"] = "none"
            except gevent.Timeout:
                out["cut"] = "Timeout"

        gevent.joinall([gevent.spawn(nap, 30), gevent.spawn(cut), gevent.spawn(nap, 10), gevent.spawn(nap, 20)])
        try:
            with gevent.Timeout(0.01):
                time.sleep(10)
            out["timeout"] = "none"
        except gevent.Timeout:
            out["timeout"] = "Timeout"
        out["after"] = time.sleep(0.001) is None
        out["zero"] = time.sleep(0) is None
        done = []
        monkey.get_original("_thread", "start_new_thread")(lambda: done.append(time.sleep(0.001) is None), ())
        end = time.monotonic() + WAIT_MAX
        while not done and time.monotonic() < end:
            time.sleep(0.001)
        out["thread"] = done == [True]
        try:
            time.sleep("x")
        except TypeError as e:
            out["bad"] = "TypeError"
        return out

    def forksleep(self):
        import gevent
        from gevent import monkey
        long_nap = gevent.spawn(time.sleep, 5)
        gevent.sleep(0)  # it sleeps: the timer is armed for it
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                long_nap.kill(block=False)  # the child's copy: out of the child's heap
                time.sleep(0.01)
                gevent.sleep(0)  # back to the hub: nothing left, the child disarms its timer
                os.write(w, b"x")
            finally:
                os._exit(0)
        monkey.get_original("os", "read")(r, 1)  # blocks the worker, hub and all, until the child is done
        monkey.get_original("os", "waitpid")(pid, 0)
        os.close(r)
        os.close(w)
        armed = None
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink("/proc/self/fd/" + fd) != "anon_inode:[timerfd]":
                    continue
                with open("/proc/self/fdinfo/" + fd) as f:
                    info = f.read()
            except OSError:
                continue
            if "clockid: 1\n" in info:  # CLOCK_MONOTONIC: time.sleep's (libev's own is CLOCK_REALTIME)
                value = info.split("it_value: (")[1].split(")")[0]
                armed = value.replace(" ", "") != "0,0"
        long_nap.kill()
        return {"armed": armed}

    def health(self):
        path = os.environ.get("GEVAGENT_HEALTH_LOG")
        if path:
            with open(path, "a") as f:
                f.write("beat\n")
        return True


class AsyncAgent:
    async def handle_message(self, type, data):
        return data


class AsyncBlocking:
    """async def with the classic mistake: time.sleep(data["s"]) inside
    async def holds the loop ("block"); "ok" awaits properly."""

    async def handle_message(self, type, data):
        if type == "block":
            time.sleep(data["s"])
            return {"blocked": data["s"]}
        return {"pid": os.getpid()}
