# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.aio - AsyncClient: the asyncio client.

Any number of concurrent requests share one connection: each writes its
whole line (asyncio writes never interleave) and awaits its own queue,
which one reader task fills by id.  Connection states as in the sync
client: none -> open -> dead; a dead connection fails every request it
held with ConnectionLost(sent=True), and the next request reconnects.
A task cancelled while it awaits an answer sends pool.cancel for it.

The transport is the connection object: _Connection here for a Unix
socket, aio_broker.BrokerConnection for a redis:// target (loaded only
then), with the same submit, forget, fire_cancel, cancel, kill and close.
"""
import asyncio
import collections
import itertools

from . import broker, wire
from .common import CONNECT_TIMEOUT, PoolCalls, default_path, local_deadline
from .errors import ConnectionLost, Timeout
from .retry import retry_delay

LOST = "lost"
# The longest answer line the reader accepts (the server bounds answers
# by maxResultBytes / maxMessageBytes, far below this).
LINE_LIMIT = 1 << 30


class _Waiter:
    """One request's lines, in order; get() waits for the next one (a
    deque and one future: lighter than an asyncio.Queue per request)."""

    __slots__ = ("items", "fut")

    def __init__(self):
        self.items = collections.deque()
        self.fut = None

    def deliver(self, kind, msg):
        self.items.append((kind, msg))
        if self.fut is not None and not self.fut.done():
            self.fut.set_result(None)

    def fail(self, exc):
        self.deliver(LOST, exc)

    async def get(self):
        while not self.items:
            self.fut = asyncio.get_running_loop().create_future()
            try:
                await self.fut
            finally:
                self.fut = None
        return self.items.popleft()


class _Discard:
    def deliver(self, kind, msg):
        pass

    def fail(self, exc):
        pass


class _Connection:
    def __init__(self, path, reader, writer):
        self.path, self.reader, self.writer = path, reader, writer
        self.pending = wire.Pending()
        self.ids = itertools.count(1)
        self.dead = None
        self.refused = None              # a too_many_connections / forbidden line's error
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, path, connect_timeout):
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(path, limit=LINE_LIMIT), connect_timeout)
        except (OSError, asyncio.TimeoutError) as e:
            raise ConnectionLost("cannot connect to %s: %s" % (path, e or "timed out"), sent=False) from None
        return cls(path, reader, writer)

    async def submit(self, waiter, make_line, pool=None):
        """Registers waiter under a new id and writes make_line(id) (it
        names pool already); returns the id.  ConnectionLost(sent=False) when the connection
        was already gone; a failure while the line drains is sent=True
        (it may have reached the server)."""
        if self.refused is not None:
            raise self.refused
        if self.dead or self.writer.transport.is_closing():
            self.kill(self.dead or "transport closing")
            raise ConnectionLost("connection to %s lost: %s" % (self.path, self.dead), sent=False)
        rid = next(self.ids)
        line = make_line(rid)
        self.pending.add(rid, waiter, len(line))
        self.writer.write(line)
        if self.writer.transport.is_closing():
            # The write failed at once (the peer had closed): nothing of
            # the line left this process.
            self.pending.discard(rid)
            self.kill("write failed: the server closed the connection")
            raise ConnectionLost("request not sent to %s: the server closed the connection" % self.path,
                                 sent=False)
        try:
            await self.writer.drain()
        except (OSError, RuntimeError) as e:
            self.kill("write failed: %s" % e)
        return rid

    def forget(self, rid):
        self.pending.discard(rid)

    def fire_cancel(self, rid):
        """Writes pool.cancel for rid without waiting for its answer."""
        self.forget(rid)
        if self.dead or self.writer.transport.is_closing():
            return
        cid = next(self.ids)
        line = wire.encode_request(cid, "pool.cancel", {"id": rid})
        self.pending.add(cid, _Discard(), len(line))
        self.writer.write(line)

    async def cancel(self, rid):
        """pool.cancel for rid, awaited: what the server found."""
        if self.dead:
            return "unknown"
        waiter = _Waiter()
        try:
            cid = await self.submit(waiter, lambda c: wire.encode_request(c, "pool.cancel", {"id": rid}))
        except ConnectionLost:
            return "unknown"
        return (await Request(self, cid, waiter, None).wait())["found"]

    async def _read(self):
        why = "server closed the connection"
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                msg = wire.decode_line(line)
                if msg is None:
                    continue
                if wire.refusal(msg) is not None:
                    self.refused = wire.refusal(msg)
                    why = "refused: " + self.refused.message
                    break
                for waiter, kind, m in self.pending.route(msg):
                    waiter.deliver(kind, m)
        except (OSError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError) as e:
            why = "read failed: %s" % e
        finally:
            self.kill(why)

    def kill(self, why):
        if self.dead:
            return
        self.dead = why
        for w in self.pending.take_all():
            if self.refused is not None:
                w.fail(self.refused)
                continue
            w.fail(ConnectionLost("connection to %s lost before the answer: %s" % (self.path, why),
                                  sent=True))
        self.writer.close()

    async def close(self):
        self.kill("client closed")
        if self.task is not asyncio.current_task():
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        try:
            await self.writer.wait_closed()
        except (OSError, RuntimeError):
            pass


class _Call:
    def __init__(self, conn, rid, waiter, timeout):
        self.conn, self.id, self._waiter = conn, rid, waiter
        self._wait = local_deadline(timeout)
        self._end = None
        if self._wait is not None:
            self._end = asyncio.get_running_loop().time() + self._wait
        self.done = False

    async def _next(self):
        while True:
            try:
                if self._end is None:
                    kind, msg = await self._waiter.get()
                else:
                    left = max(self._end - asyncio.get_running_loop().time(), 0)
                    kind, msg = await asyncio.wait_for(self._waiter.get(), left)
            except asyncio.TimeoutError:
                self.done = True
                self.conn.fire_cancel(self.id)
                raise Timeout("no answer from the server (request %d), cancelled" % self.id) from None
            except asyncio.CancelledError:
                if not self.done:
                    self.done = True
                    self.conn.fire_cancel(self.id)
                raise
            if kind == LOST:
                self.done = True
                raise msg
            if kind != wire.HEARTBEAT:
                return kind, msg


class Request(_Call):
    """A request sent by AsyncClient.submit(): await wait() for its result."""

    async def wait(self):
        while True:
            kind, msg = await self._next()
            if kind == wire.FINAL:
                self.done = True
                result, exc = wire.outcome(msg)
                if exc is not None:
                    raise exc
                return result


class Stream(_Call):
    """AsyncClient.stream(): `async for chunk in stream`; .result is set
    when it ends.  Leaving the loop early, aclose() or the async with
    block's end sends pool.cancel."""

    result = None

    async def __aiter__(self):
        try:
            while not self.done:
                chunk = wire.stream_line(self, *(await self._next()))
                if chunk is not wire.END:
                    yield chunk
        finally:
            if not self.done:
                self.close()

    def close(self):
        if not self.done:
            self.done = True
            self.conn.fire_cancel(self.id)

    async def aclose(self):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *a):
        self.close()


class AsyncSubscription:
    """An event stream on a connection of its own (AsyncClient.subscribe):
    `async for event in sub` (connects at the first step); aclose() ends
    it.  Iteration ends when the server closes the connection
    (ConnectionLost)."""

    def __init__(self, path, line, connect_timeout):
        self._path, self._line, self._connect_timeout = path, line, connect_timeout
        self._reader = self._writer = None
        self.result = None

    async def _open(self):
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self._path, limit=LINE_LIMIT), self._connect_timeout)
            self._writer.write(self._line)
            await self._writer.drain()
            line = await self._reader.readline()
        except (OSError, asyncio.TimeoutError) as e:
            await self.aclose()
            raise ConnectionLost("cannot subscribe at %s: %s" % (self._path, e or "timed out"), sent=False) from None
        try:
            self.result = wire.subscribe_answer(wire.decode_line(line))
        except Exception:
            await self.aclose()
            raise

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self._reader is None:
            await self._open()
        while True:
            line = await self._reader.readline()
            if not line:
                raise ConnectionLost("the server closed the event stream", sent=True)
            ev = wire.event_line(wire.decode_line(line))
            if ev is not None:
                return ev

    async def aclose(self):
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._writer = self._reader = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *a):
        await self.aclose()


class AsyncClient(PoolCalls):
    """The asyncio client: one connection, any number of concurrent
    requests, opened at the first request and again after it broke.
    Use it from one event loop.  path: a Unix socket, or a broker
    "redis://HOST:PORT/DB"; pool: the pool of requests that name none."""

    def __init__(self, path=None, *, connect_timeout=CONNECT_TIMEOUT, pool=None):
        self.path = default_path(path)
        self.connect_timeout = connect_timeout
        self.pool = pool
        self._conn = None
        self._lock = None
        self._closed = False
        self._unclaimed = 0              # of the connections closed so far

    async def _connection(self):
        if self._closed:
            raise ConnectionLost("client is closed", sent=False)
        conn = self._conn
        if conn is not None and not conn.dead:
            return conn
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._conn is None or self._conn.dead:
                self._unclaimed += self._conn.pending.unclaimed if self._conn else 0
                self._conn = await self._open()
            return self._conn

    @property
    def unclaimed_answers(self):
        """As Client.unclaimed_answers."""
        conn = self._conn
        return self._unclaimed + (conn.pending.unclaimed if conn else 0)

    async def _open(self):
        if broker.is_url(self.path):
            from .aio_broker import BrokerConnection
            return await BrokerConnection.open(self.path, self.connect_timeout)
        return await _Connection.open(self.path, self.connect_timeout)

    async def _start(self, cls, type, data, stream, options):
        """As the sync client's: a line that could not be written is
        written once more on a new connection."""
        if self.pool is not None and options.get("pool") is None:
            options["pool"] = self.pool
        make = lambda rid: wire.encode_request(rid, type, data, stream=stream, **options)  # noqa: E731
        waiter = _Waiter()
        conn = await self._connection()
        try:
            rid = await conn.submit(waiter, make, options.get("pool"))
        except ConnectionLost as e:
            if e.sent:
                raise
            conn = await self._connection()
            rid = await conn.submit(waiter, make, options.get("pool"))
        return cls(conn, rid, waiter, options.get("timeout"))

    async def submit(self, type, data=None, **options):
        """Sends a request; returns its Request (await wait(); cancel())."""
        return await self._start(Request, type, data, False, options)

    async def send(self, type, data=None, *, timeout=None, pool=None, session=None, retry=None,
                   idempotency_key=None):
        """As Client.send(), awaited."""
        req = await self.submit(type, data, timeout=timeout, pool=pool, session=session, retry=retry,
                                idempotency_key=idempotency_key)
        return await req.wait()

    async def stream(self, type, data=None, **options):
        """A streaming request: `async for chunk in await client.stream(...)`."""
        return await self._start(Stream, type, data, True, options)

    async def cancel(self, request):
        """As Client.cancel(): "queued", "running" or "unknown" over the
        socket; "requested" or "unknown" through a broker."""
        if request.conn.dead:
            return "unknown"
        return await request.conn.cancel(request.id)

    def subscribe(self, topics=None, since=None, critical=False, pool=None):
        """Subscribes to the lifecycle events (pool.subscribe, an admin
        request) on a dedicated connection: `async for event in
        client.subscribe(["worker.#"])`.  since: ms since the epoch.
        Unix socket only."""
        if broker.is_url(self.path):
            raise broker.no_events()
        return AsyncSubscription(self.path, wire.subscribe_line(topics, since, critical, pool), self.connect_timeout)

    async def send_with_retry(self, type, data=None, *, max_retries=5, backoff=0.1, max_backoff=10.0,
                              idempotent=False, **options):
        """As Client.send_with_retry(), awaited."""
        idem = idempotent or options.get("idempotency_key") is not None
        attempt = 0
        while True:
            try:
                return await self.send(type, data, **options)
            except Exception as exc:
                attempt += 1
                delay = retry_delay(exc, attempt, max_retries=max_retries, base=backoff,
                                    cap=max_backoff, idempotent=idem)
                if delay is None:
                    raise
            await asyncio.sleep(delay)

    async def close(self):
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
            self._unclaimed += conn.pending.unclaimed

    async def __aenter__(self):
        return self

    async def __aexit__(self, *a):
        await self.close()
