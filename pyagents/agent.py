# SPDX-License-Identifier: BSD-2-Clause
"""The Agent base class (see the package docstring).

Contract with the worker (bridge/ in agentpool):

* ``handle_message(type, data)`` is called once per message; its return
  value is sent back as JSON, an exception becomes an ``agent_error`` with
  the exception's class name and ``str(exc)``.  If it is a coroutine
  function the agent is served as async (``--concurrency`` messages at once
  on one event loop), else one message at a time.
* ``on_start()`` runs before the worker says it is ready (an exception
  there is a start-up failure: the master will not respawn the worker);
  ``on_stop()`` runs when the master stops the worker.  Either may be
  ``async def``.
* ``metrics()`` adds fields to the worker's answer to ``agent.metrics``
  (which the worker answers itself: messages_received, messages_sent,
  errors, uptime, queue_size, ...).
* ``health()``, if a subclass defines it, answers the master's heartbeat;
  its JSON-serialisable return value travels back with the PONG.  It must
  be a plain ``def`` and cheap.

The default ``handle_message`` dispatches on the type: ``"chat.reply"``
goes to ``handle_chat_reply(data)`` (``.`` and ``-`` become ``_``).  When
any of a subclass's ``handle_*`` methods is ``async def``, the subclass
gets an ``async`` dispatcher, so the whole agent is served as async.  A
subclass that defines ``handle_message`` itself decides on its own.
"""

import functools
import os
import time
import types

__all__ = ["Agent", "UnknownMessageType", "handler_name"]

# Bounds the per-class cache of resolved handlers (types are client input).
_CACHE_LIMIT = 1024

_CO_ASYNC_GENERATOR = 0x200  # inspect.CO_ASYNC_GENERATOR
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE; inspect itself (with ast, dis,
                      # enum, tokenize, re) would add ~10 ms and ~1.5 MiB to
                      # every worker's start


def _is_coroutine_function(fn, flags=_CO_COROUTINE):
    """inspect.iscoroutinefunction without importing inspect: an async def
    function, also behind a method or functools.partial (with flags
    _CO_COROUTINE | _CO_ASYNC_GENERATOR: an async generator too)."""
    while True:
        if isinstance(fn, functools.partial):
            fn = fn.func
        elif hasattr(fn, "__func__"):
            fn = fn.__func__
        else:
            break
    code = getattr(fn, "__code__", None)
    return code is not None and bool(getattr(code, "co_flags", 0) & flags)


class UnknownMessageType(LookupError):
    """Raised by the default dispatcher for a type with no handle_* method."""


def handler_name(type):
    """The method name that handles message ``type``: "chat.reply" -> "handle_chat_reply"."""
    return "handle_" + type.replace(".", "_").replace("-", "_")


def _dispatcher(fn):
    fn._pyagents_dispatcher = True
    return fn


class Agent:
    """Base class for agentpool agents.

    Class attributes give the defaults; the constructor takes optional
    overrides so an agent can also be built by hand in tests.
    """

    #: what this agent can do (free-form strings, reported in metrics)
    capabilities = ()
    #: advisory bound on messages held at once (reported in metrics)
    max_queue_size = 100

    def __init__(self, agent_id=None, capabilities=None, max_queue_size=None):
        self.agent_id = agent_id or os.environ.get("AGENTPOOL_WORKER_ID") or "agent-%d" % os.getpid()
        self.capabilities = list(type(self).capabilities if capabilities is None else capabilities)
        self.max_queue_size = type(self).max_queue_size if max_queue_size is None else max_queue_size
        self.started_at = time.time()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._pyagents_handlers = {}
        current = getattr(cls, "handle_message")
        if not getattr(current, "_pyagents_dispatcher", False):
            return  # handle_message defined by the subclass (or a parent): its call
        is_async = any(
            _is_coroutine_function(getattr(cls, name), _CO_COROUTINE | _CO_ASYNC_GENERATOR)
            for name in dir(cls)
            if name.startswith("handle_") and name != "handle_message" and callable(getattr(cls, name, None))
        )
        cls.handle_message = Agent._dispatch_async if is_async else Agent._dispatch_sync

    # -- dispatch -----------------------------------------------------------

    @classmethod
    def _resolve(cls, type):
        """The function handling ``type`` (cached per class)."""
        cache = cls.__dict__.get("_pyagents_handlers")
        if cache is None:
            cache = cls._pyagents_handlers = {}
        fn = cache.get(type)
        if fn is not None:
            return fn
        if not isinstance(type, str):
            raise TypeError("message type must be a str, not %s" % type.__class__.__name__)
        name = handler_name(type)
        fn = getattr(cls, name, None) if name != "handle_message" else None
        if fn is None or not callable(fn):
            raise UnknownMessageType(
                "%s does not handle message type %r (define %s(self, data))" % (cls.__name__, type, name)
            )
        if len(cache) < _CACHE_LIMIT:
            cache[type] = fn
        return fn

    @_dispatcher
    def _dispatch_sync(self, type, data):
        fn = self._pyagents_handlers.get(type) or self._resolve(type)
        return fn(self, data)

    @_dispatcher
    async def _dispatch_async(self, type, data):
        fn = self._pyagents_handlers.get(type) or self._resolve(type)
        result = fn(self, data)
        if hasattr(result.__class__, "__await__"):  # inspect.isawaitable's test (`type` is the message type here)
            result = await result
        elif isinstance(result, types.AsyncGeneratorType):  # an async generator streams (docs/agents.md)
            import _agentpool

            result = await _agentpool._astream(result)
        return result

    handle_message = _dispatch_sync

    # -- lifecycle and introspection ---------------------------------------

    def on_start(self):
        """Called once before the worker reports ready.  May be async."""

    def on_stop(self):
        """Called once when the worker stops.  May be async."""

    def metrics(self):
        """Extra fields for the agent.metrics answer (a dict)."""
        return {
            "agent_id": self.agent_id,
            "capabilities": list(self.capabilities),
            "max_queue_size": self.max_queue_size,
            "agent_class": type(self).__qualname__,
        }

    def __repr__(self):
        return "<%s %s>" % (type(self).__qualname__, self.agent_id)


Agent._pyagents_handlers = {}
