# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.sync - Client: the blocking, thread-safe client.

One connection shared by every thread: requests are written whole under
a lock (pipelined, never waiting for each other's answers) and a reader
thread hands each answer to the thread waiting for its id.  Only socket,
threading, queue and time are used, so gevent's monkey-patching turns
the reader into a greenlet and every wait into a greenlet wait.

Connection states: none -> open -> dead (reader saw EOF or an error, a
write failed, or close()).  A dead connection fails every request it
held with ConnectionLost(sent=True) at once; the next request opens a
new one.

The transport is the connection object: _Connection here for a Unix
socket, sync_broker.BrokerConnection for a redis:// target (loaded only
then); both offer submit, forget, fire_cancel, cancel, kill and close,
and everything above them (Request, Stream, Client) is the same.
"""
import itertools
import queue
import socket
import threading
import time

from . import broker, wire
from .common import CONNECT_TIMEOUT, PoolCalls, default_path, local_deadline
from .errors import ConnectionLost, Timeout
from .retry import retry_delay

LOST = "lost"
READ_SIZE = 1 << 16


class _Waiter:
    """Where the reader puts one request's lines (gevent-safe queue)."""

    def __init__(self):
        self.q = queue.Queue()

    def deliver(self, kind, msg):
        self.q.put((kind, msg))

    def fail(self, exc):
        self.q.put((LOST, exc))


class _Discard:
    """The waiter of a fire-and-forget request (pool.cancel on close)."""

    def deliver(self, kind, msg):
        pass

    def fail(self, exc):
        pass


class _Connection:
    def __init__(self, path, connect_timeout):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(connect_timeout)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            raise ConnectionLost("cannot connect to %s: %s" % (path, e), sent=False) from None
        sock.settimeout(None)
        self.path = path
        self.sock = sock
        self.lock = threading.Lock()     # pending, ids, dead
        self.wlock = threading.Lock()    # whole lines on the socket
        self.pending = wire.Pending()
        self.ids = itertools.count(1)
        self.dead = None                 # why, once dead
        self.refused = None              # a too_many_connections / forbidden line's error
        self.reader = threading.Thread(target=self._read, name="agentpool-client-reader", daemon=True)
        self.reader.start()

    def submit(self, waiter, make_line, pool=None):
        """Registers waiter under a new id, writes make_line(id); returns
        the id.  ConnectionLost(sent=False) when the line was not written
        whole.  (pool: the line names it already.)"""
        with self.lock:
            if self.refused is not None:
                raise self.refused
            if self.dead:
                raise ConnectionLost("connection to %s lost: %s" % (self.path, self.dead), sent=False)
            rid = next(self.ids)
            line = make_line(rid)
            self.pending.add(rid, waiter, len(line))
        try:
            with self.wlock:
                self.sock.sendall(line)
        except OSError as e:
            with self.lock:
                self.pending.discard(rid)
            self.kill("write failed: %s" % e)
            raise ConnectionLost("request not sent to %s: %s" % (self.path, e), sent=False) from None
        return rid

    def forget(self, rid):
        with self.lock:
            self.pending.discard(rid)

    def fire_cancel(self, rid):
        """Sends pool.cancel for rid without waiting for its answer."""
        self.forget(rid)
        try:
            self.submit(_Discard(), lambda cid: wire.encode_request(cid, "pool.cancel", {"id": rid}))
        except ConnectionLost:
            pass  # the server cancels a gone connection's requests itself

    def cancel(self, rid):
        """pool.cancel for rid, waited for: what the server found."""
        if self.dead:
            return "unknown"
        waiter = _Waiter()
        try:
            cid = self.submit(waiter, lambda c: wire.encode_request(c, "pool.cancel", {"id": rid}))
        except ConnectionLost:
            return "unknown"
        return Request(self, cid, waiter, None).wait()["found"]

    def close(self):
        self.kill("client closed")
        if self.reader is not threading.current_thread():
            self.reader.join(5)

    def _read(self):
        buf = bytearray()
        why = "server closed the connection"
        try:
            while self.refused is None:
                data = self.sock.recv(READ_SIZE)
                if not data:
                    break
                buf += data
                if b"\n" not in data:
                    continue
                lines = buf.split(b"\n")
                buf = bytearray(lines.pop())
                for line in lines:
                    msg = wire.decode_line(line)
                    if msg is None:
                        continue
                    if wire.refusal(msg) is not None:
                        self.refused = wire.refusal(msg)
                        why = "refused: " + self.refused.message
                        break
                    with self.lock:
                        routes = self.pending.route(msg)
                    for waiter, kind, m in routes:
                        waiter.deliver(kind, m)
        except OSError as e:
            why = "read failed: %s" % e
        finally:
            self.kill(why)
            self.sock.close()

    def kill(self, why):
        """Marks the connection dead and fails what it held (once)."""
        with self.lock:
            if self.dead:
                return
            self.dead = why
            waiters = self.pending.take_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for w in waiters:
            if self.refused is not None:
                w.fail(self.refused)
                continue
            w.fail(ConnectionLost("connection to %s lost before the answer: %s" % (self.path, why),
                                  sent=True))


class _Call:
    """One request on one connection (base of Request and Stream)."""

    def __init__(self, conn, rid, waiter, timeout):
        self.conn, self.id, self._waiter = conn, rid, waiter
        self._deadline = None
        wait = local_deadline(timeout)
        if wait is not None:
            self._deadline = time.monotonic() + wait
        self.done = False

    def _next(self):
        """(kind, msg) of the next line for this request (heartbeats
        skipped); raises ConnectionLost, or Timeout when the server did
        not answer within the request's timeout and a grace period."""
        while True:
            left = None if self._deadline is None else max(self._deadline - time.monotonic(), 0)
            try:
                kind, msg = self._waiter.q.get(timeout=left)
            except queue.Empty:
                self.done = True
                self.conn.fire_cancel(self.id)
                raise Timeout("no answer from the server (request %d), cancelled" % self.id) from None
            if kind == LOST:
                self.done = True
                raise msg
            if kind != wire.HEARTBEAT:
                return kind, msg


class Request(_Call):
    """A request sent by Client.submit(): wait() returns its result or
    raises its error."""

    def wait(self):
        while True:
            kind, msg = self._next()
            if kind == wire.FINAL:
                self.done = True
                result, exc = wire.outcome(msg)
                if exc is not None:
                    raise exc
                return result


class Stream(_Call):
    """Client.stream(): iterate for the chunks; .result is the final
    result once the iteration ended.  Leaving the loop early, close() or
    the with block's end sends pool.cancel."""

    result = None

    def __iter__(self):
        try:
            while not self.done:
                chunk = wire.stream_line(self, *(self._next()))
                if chunk is not wire.END:
                    yield chunk
        finally:
            if not self.done:
                self.close()

    def close(self):
        if not self.done:
            self.done = True
            self.conn.fire_cancel(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Subscription:
    """An event stream on a connection of its own (Client.subscribe):
    iterate it for the events, dicts as docs/events.md shows them; close()
    (or leaving a with block) ends it.  Iteration ends when the server
    closes the connection (ConnectionLost)."""

    def __init__(self, path, line, connect_timeout):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(connect_timeout)
        self._buf = b""
        try:
            self._sock.connect(path)
            self._sock.sendall(line)
            self.result = wire.subscribe_answer(wire.decode_line(self._readline()))
        except OSError as e:
            self._sock.close()
            raise ConnectionLost("cannot subscribe at %s: %s" % (path, e), sent=False) from None
        except Exception:
            self._sock.close()
            raise
        self._sock.settimeout(None)

    def _readline(self):
        while b"\n" not in self._buf:
            chunk = self._sock.recv(READ_SIZE)
            if not chunk:
                raise ConnectionLost("the server closed the event stream", sent=True)
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                ev = wire.event_line(wire.decode_line(self._readline()))
            except OSError as e:
                raise ConnectionLost("event stream: %s" % e, sent=True) from None
            if ev is not None:
                return ev

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Client(PoolCalls):
    """The blocking client.  Safe to share between threads (and
    greenlets): one pipelined connection, opened at the first request
    and again after it broke.  path: a Unix socket, or a broker
    "redis://HOST:PORT/DB"; pool: the pool of requests that name none."""

    def __init__(self, path=None, *, connect_timeout=CONNECT_TIMEOUT, pool=None):
        self.path = default_path(path)
        self.connect_timeout = connect_timeout
        self.pool = pool
        self._lock = threading.Lock()
        self._conn = None
        self._closed = False
        self._unclaimed = 0              # of the connections closed so far

    def _open(self):
        if broker.is_url(self.path):
            from .sync_broker import BrokerConnection
            return BrokerConnection(self.path, self.connect_timeout)
        return _Connection(self.path, self.connect_timeout)

    def _connection(self):
        with self._lock:
            if self._closed:
                raise ConnectionLost("client is closed", sent=False)
            if self._conn is None or self._conn.dead:
                self._unclaimed += self._conn.pending.unclaimed if self._conn else 0
                self._conn = self._open()
            return self._conn

    @property
    def unclaimed_answers(self):
        """Final answer lines that came for no request waiting on this
        client (an answer after a Timeout or a cancel, or a second answer
        for one request: never, by the protocol) over its connections."""
        conn = self._conn
        return self._unclaimed + (conn.pending.unclaimed if conn else 0)

    def _start(self, cls, type, data, stream, options):
        """Sends on the shared connection.  A line that could not be
        written (the server closed the connection while it was idle, and
        the reader has not seen it yet) did not reach the server: it is
        written once more on a new connection."""
        if self.pool is not None and options.get("pool") is None:
            options["pool"] = self.pool
        make = lambda rid: wire.encode_request(rid, type, data, stream=stream, **options)  # noqa: E731
        waiter = _Waiter()
        conn = self._connection()
        try:
            rid = conn.submit(waiter, make, options.get("pool"))
        except ConnectionLost as e:
            if e.sent:
                raise
            conn = self._connection()
            rid = conn.submit(waiter, make, options.get("pool"))
        return cls(conn, rid, waiter, options.get("timeout"))

    def submit(self, type, data=None, **options):
        """Sends a request; returns its Request (wait() for the answer;
        cancel() it).  options: as send()'s."""
        return self._start(Request, type, data, False, options)

    def send(self, type, data=None, *, timeout=None, pool=None, session=None, retry=None,
             idempotency_key=None):
        """Sends one request and returns its result, or raises the
        AgentpoolError subclass of its error code.  timeout (seconds) is
        sent as timeoutMs; retry=False opts out of retries after a worker
        crash; pool, session and idempotency_key are sent as "pool",
        "session" and "idempotencyKey" (see docs/client.md)."""
        return self.submit(type, data, timeout=timeout, pool=pool, session=session, retry=retry,
                           idempotency_key=idempotency_key).wait()

    def stream(self, type, data=None, **options):
        """A streaming request: iterate the returned Stream for chunks."""
        return self._start(Stream, type, data, True, options)

    def cancel(self, request):
        """Cancels a Request or Stream.  Over the socket (pool.cancel):
        "queued", "running" or "unknown" (already answered, or its
        connection is gone); through a broker: "requested" once the
        cancel is on the pool's control stream, or "unknown"."""
        if request.conn.dead:
            return "unknown"
        return request.conn.cancel(request.id)

    def subscribe(self, topics=None, since=None, critical=False, pool=None):
        """Subscribes to the lifecycle events (pool.subscribe, an admin
        request) on a dedicated connection; returns a Subscription to
        iterate.  since: ms since the epoch to replay from.  Unix socket only."""
        if broker.is_url(self.path):
            raise broker.no_events()
        return Subscription(self.path, wire.subscribe_line(topics, since, critical, pool), self.connect_timeout)

    def send_with_retry(self, type, data=None, *, max_retries=5, backoff=0.1, max_backoff=10.0,
                        idempotent=False, **options):
        """send(), retrying queue_full, circuit_open, shutting_down and a
        lost connection (docs/client.md, Retries)."""
        idem = idempotent or options.get("idempotency_key") is not None
        attempt = 0
        while True:
            try:
                return self.send(type, data, **options)
            except Exception as exc:
                attempt += 1
                delay = retry_delay(exc, attempt, max_retries=max_retries, base=backoff,
                                    cap=max_backoff, idempotent=idem)
                if delay is None:
                    raise
            time.sleep(delay)

    def close(self):
        """Closes the connection; requests in flight fail with ConnectionLost."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            self._unclaimed += conn.pending.unclaimed

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
