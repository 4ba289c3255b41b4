# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.sync_broker - the blocking client's broker transport
(Client("redis://HOST:PORT/DB"), docs/client.md, Through a broker).

The same connection interface as sync._Connection (submit, forget,
fire_cancel, cancel, kill, close, dead), so Client, Request and Stream
work unchanged over it.  A request is one entry added to its pool's
stream by the add script (broker.ADD_SCRIPT); its answer lines come back
as entries of this connection's reply stream, which one reader thread
reads with XREAD BLOCK and hands to the waiting thread by id, trimming
what it has read once per broker.TRIM_EVERY entries.  Redis connections come from redis-py's thread-safe
pool (the reader's blocking XREAD holds one of them).

States: open -> dead (a Redis error in the reader or an add, or
close()).  Dying fails every request in flight with ConnectionLost
(sent=True: its entry may still be answered, on a reply stream nobody
reads any more); the next request opens a new connection with a new
reply stream.  close() wakes the reader with an entry of its own,
joins it and DELs the reply stream (the ingress's PEXPIRE removes the
reply stream of a client that died without closing).
"""
import threading

from . import broker


class BrokerConnection:
    def __init__(self, target, connect_timeout):
        redis = broker.import_redis()
        self._redis = redis
        self.core = broker.Core(target)
        self.path = target
        try:
            self.r = redis.Redis.from_url(target, socket_connect_timeout=connect_timeout,
                                          socket_timeout=broker.BLOCK_MS / 1000.0 + connect_timeout,
                                          client_name=broker.CLIENT_NAME)
            self.sha = self.r.script_load(broker.ADD_SCRIPT)
        except redis.RedisError as e:
            raise broker.lost(target, "cannot connect: %s" % e, sent=False) from None
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="agentpool-broker-reader", daemon=True)
        self.reader.start()

    @property
    def dead(self):
        return self.core.dead

    @property
    def pending(self):
        return self.core.pending

    def _add(self, keys, args):
        """The add script (EVALSHA, EVAL again after a Redis restart
        emptied its script cache)."""
        try:
            return self.r.evalsha(self.sha, len(keys), *keys, *args)
        except self._redis.exceptions.NoScriptError:
            self.sha = self.r.script_load(broker.ADD_SCRIPT)
            return self.r.evalsha(self.sha, len(keys), *keys, *args)

    def submit(self, waiter, make_line, pool=None):
        """Registers waiter under a new id and adds make_line(id) to
        pool's stream; returns the id.  QueueFull when the stream is
        full; ConnectionLost(sent=True) when Redis failed during the add
        (the entry may exist)."""
        with self.lock:
            rid, line = self.core.register(waiter, make_line)
        keys, args = broker.add_args(pool, line, self.core.reply)
        try:
            eid = self._add(keys, args)
        except self._redis.exceptions.ResponseError as e:
            self.forget(rid)
            raise broker.add_refusal(e, rid) from None
        except self._redis.RedisError as e:
            self.forget(rid)
            self.kill("add failed: %s" % e)
            raise broker.lost(self.path, "add failed: %s" % e, sent=True) from None
        with self.lock:
            self.core.added(rid, eid, pool)
        return rid

    def forget(self, rid):
        with self.lock:
            self.core.forget(rid)

    def _control(self, rid):
        """Adds the cancel entry for rid's entry to its pool's control
        stream; the entry id, or None when rid is not in flight."""
        with self.lock:
            entry = self.core.cancel_entry(rid)
        if entry is not None:
            self.r.xadd(*entry)
        return entry

    def cancel(self, rid):
        """Asks every agentpoold to cancel rid: "requested" once the
        control entry is written, "unknown" when rid is not in flight."""
        try:
            return "requested" if self._control(rid) is not None else "unknown"
        except self._redis.RedisError as e:
            raise broker.lost(self.path, "cancel not sent: %s" % e, sent=False) from None

    def fire_cancel(self, rid):
        """Cancels rid without waiting for its answer."""
        try:
            self._control(rid)
        except self._redis.RedisError:
            pass  # the request's answer goes to a reply stream that expires
        self.forget(rid)

    def _read(self):
        why = "reader stopped"
        try:
            while not self.core.dead:
                got = self.r.xread({self.core.reply: self.core.last}, count=broker.READ_COUNT,
                                   block=broker.BLOCK_MS)
                with self.lock:
                    routes = self.core.routes(got)
                    upto = self.core.trim_point()
                for waiter, kind, m in routes:
                    waiter.deliver(kind, m)
                if upto is not None:
                    self.r.xtrim(self.core.reply, minid=upto, approximate=False)
        except Exception as e:  # noqa: B902 - whatever stops the reader fails what waits
            why = "reading the reply stream failed: %s" % e
        self.kill(why)

    def kill(self, why):
        """Marks the connection dead and fails what it held (once)."""
        with self.lock:
            waiters = self.core.die(why)
        for w in waiters:
            w.fail(self.core.lost_answer(why))

    def close(self):
        """Fails what is in flight, stops the reader, DELs the reply stream."""
        self.kill("client closed")
        try:
            self.r.xadd(self.core.reply, {"wake": "1"})
            if self.reader is not threading.current_thread():
                self.reader.join(broker.BLOCK_MS / 1000.0 + 1)
            self.r.delete(self.core.reply)
        except self._redis.RedisError:
            pass
        self.r.close()
