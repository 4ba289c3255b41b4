# SPDX-License-Identifier: BSD-2-Clause
"""pyagents.client.retry - what send_with_retry retries, and how long it waits.

Pure: retry_delay(exc, attempt, ...) is the seconds to wait before the
next attempt, or None when exc must be raised.  Retried: queue_full,
shutting_down, circuit_open (never sooner than its retryAfterMs) and a
lost connection, with exponential backoff and full jitter, at most
max_retries times.  A connection lost after the request was written
(ConnectionLost.sent) is resent only when the request is safe to run
twice (it has an idempotency key, or the caller says it is idempotent):
otherwise nobody can know whether the first attempt ran.
"""
import random

from .errors import CircuitOpen, ConnectionLost, QueueFull, ShuttingDown

RETRIED = (QueueFull, ShuttingDown, CircuitOpen)


def backoff(attempt, base, cap, rand=random.random):
    """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    return rand() * min(cap, base * (2 ** max(attempt - 1, 0)))


def retry_delay(exc, attempt, *, max_retries, base, cap, idempotent, rand=random.random):
    """attempt: how many attempts failed so far (1 after the first)."""
    if attempt > max_retries:
        return None
    if isinstance(exc, ConnectionLost):
        if exc.sent and not idempotent:
            return None
        return backoff(attempt, base, cap, rand)
    if isinstance(exc, CircuitOpen):
        return max(exc.retry_after, backoff(attempt, base, cap, rand))
    if isinstance(exc, RETRIED):
        return backoff(attempt, base, cap, rand)
    return None
