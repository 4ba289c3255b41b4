# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.wire - the NDJSON protocol as both clients speak it.

Pure (no sockets, no threads): encode_request() makes a request line;
Pending is one connection's table of unanswered requests, and route()
says which waiter a response line belongs to.  Ids are the client's own
integers, never reused on a connection.  Two answers carry no id
(docs/protocol.md): `too_large` (the server could not read the id) goes
to the largest unanswered request, which is right because the server
reads lines in order and a line longer than the limit makes every longer
one too large as well.  A connection-level refusal (`too_many_connections`,
`forbidden` with a null id, sent once before the server closes) is
refusal()'s: the connection fails every request with it.
"""
import json

from .errors import error_from_response

HEARTBEAT, CHUNK, FINAL = "heartbeat", "chunk", "final"


def encode_request(rid, type, data=None, *, timeout=None, pool=None, session=None,
                   retry=None, idempotency_key=None, stream=False):
    """The request line (bytes, ending in \\n).  timeout: seconds (sent as
    timeoutMs, at least 1); pool, session, idempotency_key: sent as "pool",
    "session", "idempotencyKey" (a server that does not know them ignores
    them); retry: False opts out of retries after a worker crash."""
    if not isinstance(type, str):
        raise TypeError("type must be a string")
    req = {"id": rid, "type": type}
    if data is not None:
        req["data"] = data
    if timeout is not None:
        ms = int(round(timeout * 1000))
        req["timeoutMs"] = max(ms, 1)
    if retry is not None:
        req["retry"] = bool(retry)
    if stream:
        req["stream"] = True
    if pool is not None:
        req["pool"] = pool
    if session is not None:
        req["session"] = session
    if idempotency_key is not None:
        req["idempotencyKey"] = idempotency_key
    return json.dumps(req, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


def kind_of(msg):
    """HEARTBEAT, CHUNK or FINAL for a decoded response line."""
    if "chunk" in msg:
        return CHUNK
    if msg.get("heartbeat") is True and "ok" not in msg:
        return HEARTBEAT
    return FINAL


def outcome(msg):
    """(result, None) for an ok final line, (None, exception) otherwise."""
    if msg.get("ok") is True:
        return msg.get("result"), None
    return None, error_from_response(msg)


CONNECTION_CODES = ("too_many_connections", "forbidden")


class Pending:
    """One connection's unanswered requests: id -> (waiter, line size);
    unclaimed counts the final lines that came for no request in the
    table (an answer after the caller gave up, or a second answer)."""

    def __init__(self):
        self.by_id = {}
        self.unclaimed = 0

    def __len__(self):
        return len(self.by_id)

    def add(self, rid, waiter, size):
        self.by_id[rid] = (waiter, size)

    def discard(self, rid):
        entry = self.by_id.pop(rid, None)
        return entry[0] if entry else None

    def take_all(self):
        """Removes and returns every waiter (the connection is gone)."""
        waiters = [w for w, _ in self.by_id.values()]
        self.by_id.clear()
        return waiters

    def route(self, msg):
        """[(waiter, kind, msg)] for a decoded line: nothing for a line
        nobody waits for (an answer after the caller gave up), one entry
        usually.  A final
        line removes its request from the table."""
        if not isinstance(msg, dict):
            return []
        rid = msg.get("id")
        kind = kind_of(msg)
        if rid is None:
            err = msg.get("error") if isinstance(msg.get("error"), dict) else {}
            if err.get("code") == "too_large" and self.by_id:
                rid = max(self.by_id, key=lambda k: self.by_id[k][1])
            else:
                return []
        entry = self.by_id.get(rid)
        if entry is None:
            if kind == FINAL:
                self.unclaimed += 1
            return []
        if kind == FINAL:
            del self.by_id[rid]
        return [(entry[0], kind, msg)]


END = object()  # stream_line: the stream's final line came


def stream_line(stream, kind, msg):
    """One line read for stream (a sync or async Stream): a chunk's value,
    or END once the final line set stream.done and stream.result (its
    error raised instead, as the matching exception)."""
    if kind == CHUNK:
        return msg.get("chunk")
    stream.done = True
    stream.result, exc = outcome(msg)
    if exc is not None:
        raise exc
    return END


def refusal(msg):
    """The exception of a connection-level refusal line (the server
    closes the connection after it), else None."""
    if isinstance(msg, dict) and msg.get("id") is None and msg.get("ok") is False:
        err = msg.get("error")
        if isinstance(err, dict) and err.get("code") in CONNECTION_CODES:
            return error_from_response(msg)
    return None


def decode_line(line):
    """The decoded response line, or None for a blank or broken one."""
    line = line.strip()
    if not line:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return None


def subscribe_line(topics=None, since=None, critical=False, pool=None):
    """The pool.subscribe request line of a subscription (docs/events.md):
    topics (patterns; None: every topic), since (ms since the epoch, or
    None: live events only), critical (critical events only), pool."""
    data = {}
    if topics is not None:
        data["topics"] = [topics] if isinstance(topics, str) else list(topics)
    if since is not None:
        data["since"] = since
    if critical:
        data["priority"] = "critical"
    if pool is not None:
        data["pool"] = pool
    return (json.dumps({"id": "subscribe", "type": "pool.subscribe", "data": data},
                       separators=(",", ":")) + "\n").encode()


def subscribe_answer(msg):
    """The subscription's answer: its result, or the error raised
    (forbidden, bad_request, too_many_connections, ...)."""
    if not isinstance(msg, dict) or msg.get("ok") is not True:
        raise error_from_response(msg if isinstance(msg, dict) else {"ok": False})
    return msg.get("result")


def event_line(msg):
    """An event line (or subscriber.dropped) as a dict, else None (an
    answer to another request on the connection)."""
    return msg if isinstance(msg, dict) and "event" in msg and "ok" not in msg else None
