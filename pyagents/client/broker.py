# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.broker - the broker wire (docs/scale-out.md, Clients),
shared by the sync and asyncio broker transports.

Pure apart from import_redis(): the key names of a pool, the Lua script
that adds request entries (each refused with "queue_full" when the pool's
stream holds agentpool:P:maxlen entries; several lines of one reply
stream in one call), what a refusal or a Redis
error becomes for the caller, and the lines carried by the entries of a
client's reply stream.  Core is a broker connection's state without
I/O: its reply stream, its requests in flight and their entry ids (what
a cancel names).

The Redis library (Debian's python3-redis) is imported only when a
redis:// target is used: the socket client never needs it.
"""
import binascii
import itertools
import os

from .errors import AgentpoolError, ConnectionLost, QueueFull
from . import wire

SCHEMES = ("redis://", "rediss://")
DEFAULT_POOL = "default"
# How long one XREAD of the reply stream blocks; a Redis that does not
# answer a command within this plus the connect timeout is taken as gone.
BLOCK_MS = 5000
READ_COUNT = 1024
# Reply entries read before the reply stream is trimmed (XTRIM MINID):
# one trim per this many answers, not one per read.
TRIM_EVERY = 256
# CLIENT SETNAME of the client's Redis connections (CLIENT LIST shows them).
CLIENT_NAME = "agentpool-client"

ADD_SCRIPT = """\
local max = tonumber(redis.call('GET', KEYS[2]))
local n = max and redis.call('XLEN', KEYS[1])
local out = {}
for i = 1, #ARGV do
  if i ~= 2 then
    if max ~= nil and n >= max then
      out[#out + 1] = redis.error_reply('queue_full the pool stream ' .. KEYS[1] .. ' holds ' .. max .. ' entries')
    else
      out[#out + 1] = redis.call('XADD', KEYS[1], '*', 'req', ARGV[i], 'replyTo', ARGV[2])
      if max then n = n + 1 end
    end
  end
end
if #ARGV == 2 then return out[1] end
return out
"""


def is_url(target):
    """True for a redis:// (or rediss://) target."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def import_redis():
    """The redis module, or ImportError saying what to install."""
    try:
        import redis
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise ImportError("a redis:// target needs the Redis library: apt-get install python3-redis") from None
    return redis


def request_stream(pool):
    return "agentpool:%s:requests" % pool


def maxlen_key(pool):
    return "agentpool:%s:maxlen" % pool


def control_stream(pool):
    return "agentpool:%s:control" % pool


def new_reply_stream():
    """A reply stream of its own: agentpool:reply:<128 random bits in hex>."""
    return "agentpool:reply:" + binascii.hexlify(os.urandom(16)).decode()


def pool_of(pool):
    return pool if pool else DEFAULT_POOL


def add_args(pool, line, reply, stream=None):
    """(keys, args) of the add script for a request line (bytes ending in
    a newline, as wire.encode_request makes it) of pool."""
    pool = pool_of(pool)
    return [stream or request_stream(pool), maxlen_key(pool)], [line.rstrip(b"\n"), reply]


def add_many_args(args):
    """The add script's ARGV for the args of several add_args() calls of
    the same pool and reply stream: the first line, the reply stream, then
    the other lines (the script answers one result per line, in order)."""
    return [args[0][0], args[0][1]] + [a[0] for a in args[1:]]


def add_results(n, res):
    """The per-line results of one add call of n lines (res: its answer,
    or the exception of the whole call)."""
    if n == 1 or isinstance(res, BaseException):
        return [res] * n
    if not isinstance(res, list) or len(res) != n:
        return [AgentpoolError("the add script answered %r for %d lines" % (res, n))] * n
    return res


def add_refusal(exc, rid):
    """The exception for the add script's ResponseError: QueueFull for
    the maxlen refusal (its response as a queue_full answer line would
    be), else AgentpoolError with Redis's text."""
    text = str(exc)
    if text.startswith("queue_full"):
        message = text[len("queue_full"):].strip() or "the pool's stream is full"
        return QueueFull(message, response={"id": rid, "ok": False,
                                             "error": {"code": "queue_full", "message": message}})
    return AgentpoolError("the broker refused the request: %s" % text)


def no_events():
    return AgentpoolError("events (pool.subscribe) are served on the Unix socket, not through the broker")


def lost(target, why, sent):
    return ConnectionLost("broker %s: %s" % (target, why), sent=sent)


def reply_lines(xread_result):
    """[(entry id, decoded line)] of an XREAD answer on one reply stream
    (entries without a line field, or with a broken one, give None)."""
    out = []
    for _key, entries in xread_result or ():
        for eid, fields in entries:
            line = fields.get(b"line") if fields else None
            out.append((eid, wire.decode_line(line) if line is not None else None))
    return out


class Core:
    """What a broker connection knows, without I/O (the sync transport
    calls it under its lock, the asyncio one from its loop): its reply
    stream, the requests in flight (wire.Pending), each one's entry id,
    the last reply entry read and how many since the last trim, and why
    it died (None while alive)."""

    def __init__(self, target):
        self.target = target
        self.reply = new_reply_stream()
        self.pending = wire.Pending()
        self.entries = {}               # request id -> (entry id, pool)
        self.next_seq = {}              # request id -> the seq of its next chunk
        self.ids = itertools.count(1)
        self.last = b"0-0"
        self.untrimmed = 0              # reply entries read since the last trim
        self.dead = None

    def register(self, waiter, make_line):
        """(id, line) of a new request; ConnectionLost(sent=False) if dead."""
        if self.dead:
            raise lost(self.target, self.dead, sent=False)
        rid = next(self.ids)
        line = make_line(rid)
        self.pending.add(rid, waiter, len(line))
        return rid, line

    def added(self, rid, eid, pool):
        """The request's entry id and pool (kept only while it waits: a
        quick answer may have come already)."""
        if rid in self.pending.by_id:
            self.entries[rid] = (eid, pool_of(pool))

    def cancel_entry(self, rid):
        """(control stream, its fields) cancelling rid, or None when rid
        is not in flight."""
        got = self.entries.get(rid)
        if got is None:
            return None
        return control_stream(got[1]), {"cancel": got[0], "replyTo": self.reply}

    def forget(self, rid):
        self.pending.discard(rid)
        self.entries.pop(rid, None)
        self.next_seq.pop(rid, None)

    def routes(self, xread_result):
        """[(waiter, kind, msg)] for the entries an XREAD returned; a
        final line ends its request's entry id too.  A chunk whose seq
        came already is dropped: an agentpoold that lost its Redis
        connection may write a chunk twice (never a final line)."""
        out = []
        for eid, msg in reply_lines(xread_result):
            self.last = eid
            self.untrimmed += 1
            if msg is None:
                continue
            for waiter, kind, m in self.pending.route(msg):
                rid = m.get("id")
                if kind == wire.FINAL:
                    self.entries.pop(rid, None)
                    self.next_seq.pop(rid, None)
                elif kind == wire.CHUNK and self.repeated(rid, m.get("seq")):
                    continue
                out.append((waiter, kind, m))
        return out

    def trim_point(self):
        """The entry id to trim the reply stream to (XTRIM MINID) once
        TRIM_EVERY entries were read since the last trim, else None."""
        if self.untrimmed < TRIM_EVERY:
            return None
        self.untrimmed = 0
        return self.last

    def repeated(self, rid, seq):
        """Was chunk seq of rid seen already?  (Counts it if not.)"""
        if not isinstance(seq, int) or isinstance(seq, bool):
            return False
        if seq < self.next_seq.get(rid, 0):
            return True
        self.next_seq[rid] = seq + 1
        return False

    def die(self, why):
        """Marks the connection dead; returns the waiters to fail (none
        when it was dead already)."""
        if self.dead:
            return []
        self.dead = why
        self.entries.clear()
        self.next_seq.clear()
        return self.pending.take_all()

    def lost_answer(self, why):
        return lost(self.target, "lost before the answer: %s" % why, sent=True)
