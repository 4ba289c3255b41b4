# SPDX-License-Identifier: BSD-2-Clause
"""apframe - speak agentpool's master <-> worker frame protocol from Python.

Tests use it to drive a real ``agentpool-worker`` the way agentpoold does:
a SOCK_STREAM socketpair whose worker end is the child's fd 3, frames of
a 16-byte little-endian header (struct ``<IBBHQ``: len, kind, flags, aux,
id) followed by ``len`` payload bytes.  See include/ap_frame.h.

    with apframe.Worker("pyagents.examples.echo:EchoAgent") as w:
        ready = w.wait_ready()              # the READY payload, as a dict
        frame = w.call("echo", b'{"a":1}')  # send a REQUEST, get its answer
        assert frame.kind == apframe.RESULT and frame.json() == {"a": 1}

Stdlib only; no timing assumptions (every wait has a generous deadline
and fails loudly with what was seen so far).
"""

import collections
import json
import os
import select
import socket
import struct
import subprocess
import tempfile
import time

HEADER = struct.Struct("<IBBHQ")
HDR_SIZE = HEADER.size  # 16
MAX_PAYLOAD = 256 * 1024 * 1024

READY = 1
START_FAILED = 2
REQUEST = 3
RESULT = 4
ERROR = 5
STOP = 6
CANCEL = 7
PING = 8
PONG = 9
CHUNK = 10
CREDIT = 11
EVENT = 12
STATE = 13
CHECKPOINT = 14

# REQUEST flags (AP_FRAME_REQ_*) and the STATE flag
REQ_META = 0x01
REQ_SESSION = 0x02
REQ_RESUME = 0x04
STATE_SAVE = 0x01
USAGE = 15

KIND_NAMES = {
    READY: "READY",
    START_FAILED: "START_FAILED",
    REQUEST: "REQUEST",
    RESULT: "RESULT",
    ERROR: "ERROR",
    STOP: "STOP",
    CANCEL: "CANCEL",
    PING: "PING",
    PONG: "PONG",
    CHUNK: "CHUNK",
    CREDIT: "CREDIT",
    EVENT: "EVENT",
    STATE: "STATE",
    CHECKPOINT: "CHECKPOINT",
    USAGE: "USAGE",
}

EXIT_START_FAILED = 3
WORKER_FD = 3
DEFAULT_TIMEOUT = 60.0


class Frame(collections.namedtuple("Frame", "kind flags aux id payload")):
    """One decoded frame; payload is bytes."""

    def json(self):
        """The payload parsed as JSON (None when empty)."""
        return json.loads(self.payload) if self.payload else None

    def text(self):
        return self.payload.decode("utf-8", "replace")

    def __repr__(self):
        p = self.payload if len(self.payload) <= 200 else self.payload[:200] + b"..."
        return "Frame(%s id=%d aux=%d payload=%r)" % (KIND_NAMES.get(self.kind, self.kind), self.id, self.aux, p)


def encode(kind, id=0, payload=b"", aux=0, flags=0):
    """Bytes of one frame."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    return HEADER.pack(len(payload), kind, flags, aux, id) + payload


def request(id, type, data=b""):
    """Bytes of a REQUEST: aux = byte length of type, payload = type + data JSON.

    ``data`` is raw JSON text (bytes or str); pass ``json.dumps(v)`` for a value,
    b"" for "no data" (the worker then sees None)."""
    t = type.encode("utf-8") if isinstance(type, str) else type
    d = data.encode("utf-8") if isinstance(data, str) else data
    return encode(REQUEST, id, t + d, aux=len(t))


def request_ext(id, type, data=b"", state=None, resume=None, attempt=1):
    """Bytes of a REQUEST with its meta and, when state or resume is given
    (JSON text), the ext: AP_FRAME_REQ_SESSION / AP_FRAME_REQ_RESUME, the
    payload meta, ext, type, state, resume, data (include/ap_frame.h)."""
    enc = lambda v: v.encode("utf-8") if isinstance(v, str) else v  # noqa: E731
    t, d = enc(type), enc(data)
    st, rs = enc(state or b""), enc(resume or b"")
    flags = REQ_META | (REQ_SESSION if state is not None else 0) | (REQ_RESUME if resume is not None else 0)
    body = struct.pack("<QII", 0, attempt, 0)
    if flags != REQ_META:
        body += struct.pack("<II", len(st), len(rs))
    return encode(REQUEST, id, body + t + st + rs + d, aux=len(t), flags=flags)


class FrameReader:
    """Incremental decoder: feed() bytes, then take frames with pop()."""

    def __init__(self):
        self.buf = bytearray()
        self.frames = collections.deque()

    def feed(self, data):
        self.buf += data
        off, end = 0, len(self.buf)
        while end - off >= HDR_SIZE:
            n, kind, flags, aux, id = HEADER.unpack_from(self.buf, off)
            if n > MAX_PAYLOAD:
                raise ValueError("frame too large: %d" % n)
            if end - off - HDR_SIZE < n:
                break
            self.frames.append(Frame(kind, flags, aux, id, bytes(self.buf[off + HDR_SIZE:off + HDR_SIZE + n])))
            off += HDR_SIZE + n
        del self.buf[:off]


def build_dir():
    """The build directory (AP_BUILDDIR from make check, else a guess)."""
    d = os.environ.get("AP_BUILDDIR")
    if d:
        return d
    if os.path.exists("agentpool-worker"):
        return os.getcwd()
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", ".."))


def worker_binary():
    """Path of the built agentpool-worker (top of the build dir)."""
    return os.environ.get("AP_WORKER") or os.path.join(build_dir(), "agentpool-worker")


class WorkerError(AssertionError):
    pass


class Worker:
    """A real agentpool-worker child with a socketpair on its fd 3.

    ``args`` are extra command-line arguments; ``env`` extra environment
    variables (AGENTPOOL_WORKER_ID is set from worker_id unless given).
    stderr (the worker's log) is collected in a file readable via log().
    """

    def __init__(self, agent, concurrency=None, worker_id="worker-t", args=(), env=None, binary=None,
                 python_path=(), log_level=None, pass_env=True, keep_usage=False):
        self.agent = agent
        self.worker_id = worker_id
        argv = [binary or worker_binary()]
        if worker_id is not None:
            argv += ["--id", worker_id]
        if agent is not None:
            argv += ["--agent", agent]
        if concurrency is not None:
            argv += ["--concurrency", str(concurrency)]
        for p in python_path:
            argv += ["--python-path", p]
        if log_level:
            argv += ["--log-level", log_level]
        argv += list(args)
        self.argv = argv
        e = dict(os.environ) if pass_env else {}
        if worker_id is not None:
            e["AGENTPOOL_WORKER_ID"] = worker_id
        e.update(env or {})
        self.env = e
        self.sock = None
        self.proc = None
        self.reader = FrameReader()
        self.pending = collections.deque()  # frames received but not yet taken
        # USAGE frames (one per message: its CPU time, what ctx.usage
        # reported) are set aside here unless keep_usage, so tests about
        # answers see the frames they always saw
        self.keep_usage = keep_usage
        self.usage = []
        self._next_id = 1000
        self._log = None

    # -- process ------------------------------------------------------------

    def start(self):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._log = tempfile.TemporaryFile()
        cfd = child.fileno()

        def to_fd3():
            os.dup2(cfd, WORKER_FD)

        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                pass_fds=(WORKER_FD,), preexec_fn=to_fd3, env=self.env, close_fds=True)
        finally:
            child.close()
        self.sock = parent
        return self

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        """The worker's exit status (negative: killed by that signal)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise WorkerError("worker did not exit within %ss; log:\n%s" % (timeout, self.log()))

    def log(self):
        """Everything the worker wrote to stdout/stderr so far."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        data = self._log.read()
        self._log.seek(0, os.SEEK_END)
        return data.decode("utf-8", "replace")

    # -- sending ------------------------------------------------------------

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, kind, id=0, payload=b"", aux=0, flags=0):
        self.send(encode(kind, id, payload, aux, flags))

    def new_id(self):
        self._next_id += 1
        return self._next_id

    def send_request(self, type, data=b"", id=None):
        """Sends a REQUEST; returns its id.  ``data`` is raw JSON text."""
        if id is None:
            id = self.new_id()
        self.send(request(id, type, data))
        return id

    # -- receiving ----------------------------------------------------------

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("worker closed the connection; exit status %s; log:\n%s"
                           % (self.proc.poll(), self.log()))
        self.reader.feed(data)
        for f in self.reader.frames:
            (self.usage if f.kind == USAGE and not self.keep_usage else self.pending).append(f)
        self.reader.frames.clear()
        return True

    def recv(self, timeout=DEFAULT_TIMEOUT):
        """The next frame, in arrival order."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            if not self._fill(deadline):
                raise WorkerError("no frame within %ss; log:\n%s" % (timeout, self.log()))
        return self.pending.popleft()

    def recv_match(self, pred, timeout=DEFAULT_TIMEOUT):
        """The first frame (received or to come) satisfying pred; others stay queued."""
        deadline = time.monotonic() + timeout
        while True:
            for i, f in enumerate(self.pending):
                if pred(f):
                    del self.pending[i]
                    return f
            if not self._fill(deadline):
                raise WorkerError("no matching frame within %ss; queued: %r; log:\n%s"
                                  % (timeout, list(self.pending)[:10], self.log()))

    def recv_id(self, id, kinds=(RESULT, ERROR), timeout=DEFAULT_TIMEOUT):
        """The answer (RESULT or ERROR by default) to message ``id``."""
        return self.recv_match(lambda f: f.id == id and f.kind in kinds, timeout)

    def recv_n(self, n, timeout=DEFAULT_TIMEOUT):
        """The next n frames, in arrival order."""
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            while self.pending and len(out) < n:
                out.append(self.pending.popleft())
            if len(out) < n and not self._fill(deadline):
                raise WorkerError("got %d of %d frames within %ss; log:\n%s" % (len(out), n, timeout, self.log()))
        return out

    # -- conveniences -------------------------------------------------------

    def wait_ready(self, timeout=DEFAULT_TIMEOUT):
        """Waits for READY and returns its payload; fails on START_FAILED."""
        f = self.recv(timeout)
        if f.kind != READY:
            raise WorkerError("expected READY, got %r; log:\n%s" % (f, self.log()))
        return f.json()

    def call(self, type, data=b"", timeout=DEFAULT_TIMEOUT):
        """Sends one request and returns its answer frame."""
        return self.recv_id(self.send_request(type, data), timeout=timeout)

    def call_json(self, type, value=None, timeout=DEFAULT_TIMEOUT):
        """call() with a Python value as data; returns the answer frame."""
        return self.call(type, b"" if value is None else json.dumps(value).encode(), timeout)

    def ping(self, timeout=DEFAULT_TIMEOUT):
        """Sends PING, returns the PONG frame."""
        id = self.new_id()
        self.send_frame(PING, id)
        return self.recv_id(id, kinds=(PONG,), timeout=timeout)

    def metrics(self, timeout=DEFAULT_TIMEOUT):
        f = self.call("agent.metrics", b"", timeout)
        if f.kind != RESULT:
            raise WorkerError("agent.metrics failed: %r" % (f,))
        return f.json()

    def stop(self):
        self.send_frame(STOP)

