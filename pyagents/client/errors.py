# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.errors - one exception class per protocol error code.

error_from_response() turns an error response ({"id", "ok": false,
"error": {...}}) into the exception for its code (docs/protocol.md, Error
codes); a code this client does not know raises plain AgentpoolError, so
a newer server never breaks an older client.  ConnectionLost is the
client's own: the connection broke, with `sent` saying whether the
request had been written whole (and may have run) or not (it did not).
"""


class AgentpoolError(Exception):
    """Every error the client raises.  code: the protocol's error code;
    message: the server's English text; response: the whole response
    object (None for errors the client made up, such as ConnectionLost)."""

    code = None

    def __init__(self, message="", code=None, response=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.response = response

    @property
    def error(self):
        """The response's "error" object ({} when there is none)."""
        if isinstance(self.response, dict) and isinstance(self.response.get("error"), dict):
            return self.response["error"]
        return {}

    def __repr__(self):
        return "%s(code=%r, message=%r)" % (type(self).__name__, self.code, self.message)


class BadRequest(AgentpoolError):
    code = "bad_request"


class TooLarge(AgentpoolError):
    code = "too_large"


class QueueFull(AgentpoolError):
    code = "queue_full"


class AgentError(AgentpoolError):
    """The agent raised: .exception is the remote exception's class name
    (None for a result too large, where nothing was raised); .traceback
    when the server sent one (pool.reload)."""
    code = "agent_error"

    @property
    def exception(self):
        return self.error.get("exception")

    @property
    def traceback(self):
        return self.error.get("traceback")


class ShuttingDown(AgentpoolError):
    code = "shutting_down"


class WorkerCrashed(AgentpoolError):
    """The worker died holding the request at each attempt.  attempts,
    signal or exit_status of the last death; partial and chunks for a
    stream that had sent chunks already."""
    code = "worker_crashed"

    @property
    def attempts(self):
        return self.error.get("attempts")

    @property
    def signal(self):
        return self.error.get("signal")

    @property
    def exit_status(self):
        return self.error.get("exitStatus")

    @property
    def partial(self):
        return bool(self.error.get("partial", False))

    @property
    def chunks(self):
        return self.error.get("chunks", 0)


class Timeout(AgentpoolError):
    code = "timeout"


class TooManyConnections(AgentpoolError):
    code = "too_many_connections"


class Forbidden(AgentpoolError):
    code = "forbidden"


class Cancelled(AgentpoolError):
    code = "cancelled"


class _RetryAfter(AgentpoolError):
    """An error that says when to try again: retry_after in seconds
    (float), retry_after_ms as the server sent it."""

    @property
    def retry_after_ms(self):
        return self.error.get("retryAfterMs", 0)

    @property
    def retry_after(self):
        return (self.retry_after_ms or 0) / 1000.0


class CircuitOpen(_RetryAfter):
    """The type's breaker is open: retry_after in seconds (float),
    retry_after_ms as the server sent it."""
    code = "circuit_open"


class SessionBusy(AgentpoolError):
    """The request's session was running another message and its pool's
    sessionBusy is "reject" (docs/sessions.md)."""
    code = "session_busy"


class TooManySessions(AgentpoolError):
    """A new session past its pool's maxSessions while every tracked
    session had a message in the master (docs/sessions.md)."""
    code = "too_many_sessions"


class StoreUnavailable(AgentpoolError):
    """The session store could not read or commit the request's session
    state (docs/sessions.md): nothing of this message's state changes were
    kept; try again once the store is back."""
    code = "store_unavailable"


class Unauthorized(AgentpoolError):
    """The request's "key" is not a key of the server's apiKeysFile."""
    code = "unauthorized"


class RateLimited(_RetryAfter):
    """The request's API key is at its maxInFlight, ratePerMinute or
    tokensPerMinute: retry_after (seconds) says when to try again."""
    code = "rate_limited"


class ConnectionLost(AgentpoolError):
    """The connection could not be made or broke before the answer came.
    sent=False: the request was never written whole, so it did not run;
    sent=True: it was written and its answer was lost: it may have run."""
    code = "connection_lost"

    def __init__(self, message="", sent=False):
        super().__init__(message)
        self.sent = sent

    def __repr__(self):
        return "ConnectionLost(sent=%r, message=%r)" % (self.sent, self.message)


BY_CODE = {cls.code: cls for cls in (
    BadRequest, TooLarge, QueueFull, AgentError, ShuttingDown, WorkerCrashed, Timeout,
    TooManyConnections, Forbidden, Cancelled, CircuitOpen, SessionBusy, TooManySessions, StoreUnavailable,
    Unauthorized, RateLimited)}


def error_from_response(resp):
    """The exception for an error response (unknown codes: AgentpoolError)."""
    err = resp.get("error") if isinstance(resp, dict) else None
    if not isinstance(err, dict):
        err = {}
    code = err.get("code")
    message = err.get("message", "")
    if not isinstance(message, str):
        message = str(message)
    cls = BY_CODE.get(code, AgentpoolError)
    return cls(message, code=code if isinstance(code, str) else None, response=resp)
