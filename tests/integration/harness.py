# SPDX-License-Identifier: BSD-2-Clause
"""harness.py - start the real agentpoold with real Python workers, talk to it.

Every integration test uses this: Server starts build/agentpoold on a
temporary socket with the given settings and waits (generous deadline,
never a timing assertion) until pool.ping says "ready"; Client speaks the
NDJSON protocol.  Nothing here sleeps for a fixed time to make a test
pass: wait_for() polls a condition until a deadline.
"""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

BUILDDIR = os.environ.get("AP_BUILDDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SRCDIR = os.environ.get("AP_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
AGENTPOOLD = os.path.join(BUILDDIR, "agentpoold")
AGENTPOOLCTL = os.path.join(BUILDDIR, "agentpoolctl")
DEADLINE = float(os.environ.get("AP_TEST_DEADLINE", "60"))


def wait_for(pred, timeout=DEADLINE, interval=0.01, what="condition"):
    """Polls pred() until it returns a truthy value; returns it.  Fails the
    test (AssertionError) when the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Client:
    """One connection.  send() writes lines; recv() reads one response."""

    def __init__(self, path, timeout=DEADLINE):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""
        self.next_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def recv_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def recv(self):
        return json.loads(self.recv_line())

    def request(self, type_, data=None, **extra):
        rid = extra.pop("id", None)
        if rid is None:
            rid = "r%d" % self.next_id
            self.next_id += 1
        req = {"id": rid, "type": type_}
        if data is not None:
            req["data"] = data
        req.update(extra)
        self.send(req)
        resp = self.recv()
        assert resp["id"] == rid, "answer for %r while waiting for %r" % (resp["id"], rid)
        return resp

    def call(self, type_, data=None):
        """request() that must succeed; returns the result."""
        resp = self.request(type_, data)
        assert resp["ok"], resp
        return resp["result"]

    def pipeline(self, requests):
        """Sends every request at once, returns {id: response}; each id must
        be answered exactly once."""
        payload = b"".join(json.dumps(r).encode() + b"\n" for r in requests)
        sender = _Sender(self.sock, payload)
        sender.start()
        out = {}
        for _ in range(len(requests)):
            r = self.recv()
            key = json.dumps(r["id"])
            assert key not in out, "id %s answered twice" % key
            out[key] = r
        sender.join()
        return out

    def stats(self, detailed=False):
        return self.call("pool.stats", {"detailed": True} if detailed else None)


class _Sender:
    """Writes a big payload from a thread so reading can go on meanwhile."""

    def __init__(self, sock, payload):
        import threading
        self.sock, self.payload = sock, payload
        self.t = threading.Thread(target=self.run, daemon=True)
        self.err = None

    def start(self):
        self.t.start()

    def run(self):
        try:
            self.sock.sendall(self.payload)
        except OSError as e:  # pragma: no cover - reported by join()
            self.err = e

    def join(self):
        self.t.join()
        if self.err:
            raise self.err


class Server:
    """A real agentpoold.  Use as a context manager or call start()/stop()."""

    def __init__(self, agent="pyagents.examples.echo:EchoAgent", workers=2, config=None,
                 args=(), env=None, wait_ready=True, socket_path=None, bare=False):
        """socket_path: serve this path instead of one in the temporary
        directory.  bare: the command line is agentpoold followed by args
        only (no --socket, --agent, --min-workers, --config): the test
        names the socket itself, by flag or $AGENTPOOL_SOCKET."""
        self.tmp = tempfile.TemporaryDirectory(prefix="aptest-")
        self.path = socket_path or os.path.join(self.tmp.name, "ap.sock")
        self.bare = bare
        self.logpath = os.path.join(self.tmp.name, "agentpoold.log")
        self.agent, self.workers, self.config = agent, workers, config
        self.args, self.env, self.wait_ready = list(args), env, wait_ready
        self.proc = None

    def argv(self):
        if self.bare:
            return [AGENTPOOLD] + self.args
        argv = [AGENTPOOLD, "--socket", self.path, "--agent", self.agent,
                "--min-workers", str(self.workers)]
        # A fixed pool unless the test is about scaling: automatic scale-up
        # (scaleUpAfter) would otherwise add workers to a test that holds
        # messages in the queue on purpose.
        if not any(a.startswith("--max-workers") for a in self.args) and \
                not (self.config and "maxWorkers" in self.config):
            argv += ["--max-workers", str(self.workers)]
        if self.config is not None:
            cfgpath = os.path.join(self.tmp.name, "config.json")
            with open(cfgpath, "w") as f:
                json.dump(self.config, f)
            argv += ["--config", cfgpath]
        return argv + self.args

    def start(self):
        env = dict(os.environ)
        env.pop("AGENTPOOL_SOCKET", None)
        if self.env:
            env.update(self.env)
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        if self.wait_ready:
            self.wait_until_ready()
        return self

    def wait_until_ready(self):
        wait_process_ready(self.proc, self.path, self.log)

    def client(self):
        return Client(self.path)

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=DEADLINE):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("agentpoold did not exit:\n" + self.log())

    def stop(self, sig=None):
        """Stops the server (SIGTERM unless told); returns its exit status.
        (The default is resolved here: in the class body `signal` is the
        method above, not the module.)"""
        if sig is None:
            sig = signal.SIGTERM
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def close(self):
        self.stop()
        self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.close()

    def worker_pids(self):
        with self.client() as c:
            return [w["pid"] for w in c.stats(detailed=True)["workers"] if w["pid"]]


def wait_process_ready(proc, sock, log, what="agentpoold to be ready", on_exit=None):
    """Waits until the agentpoold started as proc answers pool.ping on
    sock with state "ready"; if it exits first, calls on_exit(proc) (which
    may raise, e.g. SkipTest) and fails with its log (log() -> text)."""
    def ready():
        if proc.poll() is not None:
            if on_exit is not None:
                on_exit(proc)
            raise AssertionError("agentpoold exited with %s:\n%s" % (proc.returncode, log()))
        try:
            with Client(sock, timeout=5) as c:
                return c.call("pool.ping")["state"] == "ready"
        except OSError:
            return False
    wait_for(ready, what=what)


def greenlet_supported():
    """False in a sanitizer build: greenlet switches stacks by copying
    stack slices with memcpy, which AddressSanitizer reports as reads of
    the instrumented frames' redzones (greenlet has no ASan fiber
    annotations), so a gevent worker can die at a switch there.  The
    plain build runs gevent workers."""
    return "-fsanitize=address" not in (build_var("AP_CFLAGS") or "")


def skip_without_greenlet_support(test):
    """Skips a test that runs gevent workers in a sanitizer build (see
    greenlet_supported)."""
    return unittest.skipIf(not greenlet_supported(),
                           "greenlet's stack switching is not AddressSanitizer-aware")(test)


def ensure_test_user(name, created):
    """Creates the system user `name` (its own group, no home, no login
    shell) unless it exists, and appends it to `created` when this call
    made it, so remove_test_users(created) takes back only what a test
    file made.  Needs root."""
    if subprocess.run(["getent", "passwd", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin",
                        name], check=True, capture_output=True)
        created.append(name)


def remove_test_users(created):
    """Deletes the users ensure_test_user made (and their groups)."""
    while created:
        subprocess.run(["userdel", created.pop()], capture_output=True)


def children_of(pid):
    """Pids whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    out.append(int(d))
            except OSError:
                pass
    return out


def build_var(name):
    """A variable from the build dir's Makefile, i.e. what configure
    decided (JEMALLOC_DEFS, AP_CFLAGS, PACKAGE_VERSION); None if absent."""
    try:
        with open(os.path.join(BUILDDIR, "Makefile")) as f:
            for line in f:
                if line.startswith(name + " ="):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def pid_gone(pid):
    """True when process pid has exited (no such process, or a zombie
    nobody has reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def proc_status(pid):
    """/proc/<pid>/status as a dict of field -> text."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def raw_member(line, key):
    """The raw bytes of the top-level member `key` of the JSON object in
    `line` (bytes), exactly as the server wrote them; None when absent.
    Lets a test compare what came back byte for byte (ids)."""
    text = line.decode("utf-8")
    dec = json.JSONDecoder()
    ws = " \t\r\n"
    i = 0
    while text[i] in ws:
        i += 1
    assert text[i] == "{", "not an object: %r" % line[:80]
    i += 1
    while True:
        while text[i] in ws:
            i += 1
        if text[i] == "}":
            return None
        name, i = json.decoder.scanstring(text, i + 1)
        while text[i] in ws:
            i += 1
        assert text[i] == ":", "bad object: %r" % line[:80]
        i += 1
        while text[i] in ws:
            i += 1
        _, end = dec.raw_decode(text, i)
        if name == key:
            return text[i:end].encode("utf-8")
        i = end
        while text[i] in ws:
            i += 1
        if text[i] == ",":
            i += 1


def vm_rss_kb(pid):
    """VmRSS of pid in kB (from /proc/<pid>/status)."""
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


class Gate:
    """A file the gate agents wait for: gate.data(seq) is the data of a
    message held until gate.release() creates the file."""

    def __init__(self, directory, name="gate"):
        self.path = os.path.join(directory, name)

    def data(self, seq, **extra):
        d = {"file": self.path, "seq": seq}
        d.update(extra)
        return d

    def release(self):
        with open(self.path, "w"):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        # released on the way out, so a failed test does not leave messages
        # held for the server's shutdownTimeout
        self.release()


class SlowHTTPServer:
    """A small asyncio HTTP server on 127.0.0.1 (its own thread and loop)
    for agents that wait on the network.  GET /delay/N answers after N ms;
    GET /gate answers once release() is called (or the server stops).
    Every answer is "200 OK" with body "ok <path>", Connection: close.
    `current` counts requests being served now, `peak` the most at once,
    `served` the answers sent, `dropped` the clients that went away
    before their answer (a cancelled fetch)."""

    def __init__(self):
        self.current = self.peak = self.served = self.dropped = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def _count(self, field, n):
        with self._lock:
            setattr(self, field, getattr(self, field) + n)
            if field == "current" and self.current > self.peak:
                self.peak = self.current

    async def _serve(self, reader, writer):
        self._count("current", 1)
        try:
            line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            path = line.split(b" ")[1].decode() if line.count(b" ") >= 2 else "/"
            waiter = asyncio.ensure_future(self._wait(path))
            gone = asyncio.ensure_future(reader.read(1))  # the client closing early
            done, _ = await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                waiter.cancel()
                self._count("dropped", 1)
                return
            gone.cancel()
            body = ("ok " + path).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            self._count("served", 1)
        except (ConnectionError, asyncio.IncompleteReadError):
            self._count("dropped", 1)
        finally:
            self._count("current", -1)
            writer.close()

    async def _wait(self, path):
        if path.startswith("/delay/"):
            await asyncio.sleep(int(path.split("/")[2]) / 1000.0)
        elif path == "/gate":
            await self._gate.wait()

    def _run(self):
        self.loop = asyncio.new_event_loop()
        self._gate = asyncio.Event()
        srv = self.loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024, limit=65536))
        self.port = srv.sockets[0].getsockname()[1]
        self._srv = srv
        self._ready.set()
        self.loop.run_forever()
        srv.close()
        self.loop.run_until_complete(srv.wait_closed())
        self.loop.close()

    def start(self):
        self._thread.start()
        self._ready.wait(DEADLINE)
        return self

    def release(self):
        """Answers every /gate request, now and from now on."""
        self.loop.call_soon_threadsafe(self._gate.set)

    def stop(self):
        self.release()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(DEADLINE)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def server_stats(server, detailed=False):
    """pool.stats over a fresh connection (which counts in `connections`
    while it is open)."""
    with server.client() as c:
        return c.stats(detailed)


def wait_stats(server, pred, what="stats condition", timeout=DEADLINE):
    """Polls pool.stats until pred(stats) holds; returns those stats."""
    last = [None]

    def check():
        last[0] = server_stats(server)
        return pred(last[0])
    try:
        wait_for(check, timeout=timeout, interval=0.02, what=what)
    except AssertionError as e:
        raise AssertionError("%s; last stats: %s" % (e, json.dumps(last[0])))
    return last[0]


def full_backlog_socket(test):
    """The path of a Unix socket whose listener never accepts and whose
    backlog is full, so that a connect() to it waits (non-blocking: fails
    with EAGAIN) for as long as the test runs.  The listener, the
    connections that fill the backlog and the directory go at the test's
    clean-up."""
    d = tempfile.mkdtemp(prefix="apstuck-", dir="/tmp")
    test.addCleanup(shutil.rmtree, d, True)
    path = os.path.join(d, "stuck.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    test.addCleanup(listener.close)
    listener.bind(path)
    listener.listen(0)  # never accepts
    for _ in range(100):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        test.addCleanup(c.close)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            return path
    raise AssertionError("the backlog of %s never filled (100 connections queued)" % path)


def main():
    unittest.main(verbosity=2)
