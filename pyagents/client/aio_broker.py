# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.aio_broker - the asyncio client's broker transport
(AsyncClient("redis://HOST:PORT/DB"), docs/client.md, Through a broker).

The same connection interface as aio._Connection (submit, forget,
fire_cancel, cancel, kill, close, dead), so AsyncClient, Request and
Stream work unchanged over it.  Requests submitted in the same turn of
the loop are added by one call of the add script (broker.ADD_SCRIPT) per
pool, in one pipeline (one round trip for all of them), by one flusher
task; one reader task
reads this connection's reply stream with XREAD BLOCK and hands each
line to its request by id, trimming what it has read once per
broker.TRIM_EVERY entries.

States: open -> dead (a Redis error, or close()), as the sync broker
transport's: dying fails every request in flight with
ConnectionLost(sent=True) and the next request opens a new connection
with a new reply stream.  close() wakes the reader with an entry of its
own, awaits it and DELs the reply stream.
"""
import asyncio

from . import broker


class BrokerConnection:
    def __init__(self, target, redis, r, sha):
        self._redis, self.r, self.sha = redis, r, sha
        self.core = broker.Core(target)
        self.path = target
        self.batch = []                   # [(keys, args, future)] not yet sent
        self.flusher = None
        self.cancels = set()              # fire_cancel tasks still running
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, target, connect_timeout):
        redis = broker.import_redis()
        r = redis.asyncio.Redis.from_url(target, socket_connect_timeout=connect_timeout,
                                          socket_timeout=broker.BLOCK_MS / 1000.0 + connect_timeout,
                                          client_name=broker.CLIENT_NAME)
        try:
            sha = await r.script_load(broker.ADD_SCRIPT)
        except (redis.RedisError, OSError) as e:
            await r.close()
            raise broker.lost(target, "cannot connect: %s" % e, sent=False) from None
        return cls(target, redis, r, sha)

    @property
    def dead(self):
        return self.core.dead

    @property
    def pending(self):
        return self.core.pending

    async def submit(self, waiter, make_line, pool=None):
        """Registers waiter under a new id and adds make_line(id) to
        pool's stream (with the other requests of this turn); returns the
        id.  QueueFull when the stream is full; ConnectionLost(sent=True)
        when Redis failed during the add (the entry may exist)."""
        rid, line = self.core.register(waiter, make_line)
        keys, args = broker.add_args(pool, line, self.core.reply)
        fut = asyncio.get_running_loop().create_future()
        self.batch.append((keys, args, fut))
        if self.flusher is None:
            self.flusher = asyncio.get_running_loop().create_task(self._flush())
        try:
            eid = await fut
        except self._redis.exceptions.ResponseError as e:
            self.core.forget(rid)
            raise broker.add_refusal(e, rid) from None
        except BaseException:
            self.core.forget(rid)
            raise
        self.core.added(rid, eid, pool)
        return rid

    async def _flush(self):
        """Sends the batch in one pipeline, again until it stays empty."""
        batch = []
        try:
            while self.batch and not self.core.dead:
                batch, self.batch = self.batch, []
                groups = {}                   # the pool's keys -> indexes in batch: one add call each
                for i, (keys, _, _) in enumerate(batch):
                    groups.setdefault(tuple(keys), []).append(i)
                pipe = self.r.pipeline(transaction=False)
                for keys, idx in groups.items():
                    pipe.evalsha(self.sha, len(keys), *keys, *broker.add_many_args([batch[i][1] for i in idx]))
                try:
                    answers = await pipe.execute(raise_on_error=False)
                    results = [None] * len(batch)
                    for idx, res in zip(groups.values(), answers):
                        for i, r in zip(idx, broker.add_results(len(idx), res)):
                            results[i] = r
                except (self._redis.RedisError, OSError) as e:
                    self.kill("add failed: %s" % e)
                    results = [broker.lost(self.path, "add failed: %s" % e, sent=True)] * len(batch)
                again = [b for b, res in zip(batch, results) if isinstance(res, self._redis.exceptions.NoScriptError)]
                if again:  # Redis restarted: its script cache is empty
                    self.sha = await self.r.script_load(broker.ADD_SCRIPT)
                    self.batch[:0] = again
                for (_, _, fut), res in zip(batch, results):
                    if fut.done() or isinstance(res, self._redis.exceptions.NoScriptError):
                        continue
                    if isinstance(res, BaseException):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
        except Exception as e:  # noqa: B902 - whatever stops the flusher fails what waits
            self.kill("add failed: %s" % e)
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(broker.lost(self.path, "add failed: %s" % e, sent=True))
        finally:
            self.flusher = None
            for _, _, fut in self.batch if self.core.dead else ():
                if not fut.done():
                    fut.set_exception(broker.lost(self.path, self.core.dead, sent=False))

    def forget(self, rid):
        self.core.forget(rid)

    async def cancel(self, rid):
        """Asks every agentpoold to cancel rid: "requested" once the
        control entry is written, "unknown" when rid is not in flight."""
        entry = self.core.cancel_entry(rid)
        if entry is None:
            return "unknown"
        try:
            await self.r.xadd(*entry)
        except (self._redis.RedisError, OSError) as e:
            raise broker.lost(self.path, "cancel not sent: %s" % e, sent=False) from None
        return "requested"

    def fire_cancel(self, rid):
        """Cancels rid without waiting (a task adds the control entry)."""
        entry = self.core.cancel_entry(rid)
        self.core.forget(rid)
        if entry is None or self.core.dead:
            return
        task = asyncio.get_running_loop().create_task(self._control(entry))
        self.cancels.add(task)
        task.add_done_callback(self.cancels.discard)

    async def _control(self, entry):
        try:
            await self.r.xadd(*entry)
        except (self._redis.RedisError, OSError):
            pass  # the request's answer goes to a reply stream that expires

    async def _read(self):
        why = "reader stopped"
        try:
            while not self.core.dead:
                got = await self.r.xread({self.core.reply: self.core.last}, count=broker.READ_COUNT,
                                         block=broker.BLOCK_MS)
                for waiter, kind, m in self.core.routes(got):
                    waiter.deliver(kind, m)
                upto = self.core.trim_point()
                if upto is not None:
                    await self.r.xtrim(self.core.reply, minid=upto, approximate=False)
        except Exception as e:  # noqa: B902 - whatever stops the reader fails what waits
            why = "reading the reply stream failed: %s" % e
        finally:
            self.kill(why)

    def kill(self, why):
        for w in self.core.die(why):
            w.fail(self.core.lost_answer(why))

    async def close(self):
        """Fails what is in flight, stops the reader, DELs the reply stream."""
        self.kill("client closed")
        try:
            await self.r.xadd(self.core.reply, {"wake": "1"})
            if self.task is not asyncio.current_task():
                await asyncio.wait_for(self.task, broker.BLOCK_MS / 1000.0 + 1)
            await self.r.delete(self.core.reply)
        except (self._redis.RedisError, OSError, asyncio.TimeoutError):
            pass
        await self.r.close()
        await self.r.connection_pool.disconnect()
