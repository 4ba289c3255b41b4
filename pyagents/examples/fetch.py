# SPDX-License-Identifier: BSD-2-Clause
"""FetchAgent: a plain def agent that waits on the network.

Message ``fetch`` with data ``{"url": URL, "client": "urllib" | "requests",
"timeout": seconds}`` GETs the URL with ``urllib.request.urlopen`` (the
default) or ``requests.get`` and answers ``{"status": N, "bytes": N,
"body": first 200 characters}``.  Written as ordinary blocking code: run
it with ``workerModel`` ``gevent`` and one worker waits on up to
``concurrency`` URLs at once, because gevent patched the sockets these
libraries use before this module was imported (docs/agents.md).
``requests`` is optional (Debian: python3-requests); asking for it when it
is missing is an agent_error saying so.  The work itself is the module's
``fetch()`` function, which bench/compare's WSGI peers call too.
"""

import urllib.request

try:
    import requests
except ImportError:  # pragma: no cover - depends on the machine
    requests = None

from pyagents import Agent


def fetch(url, client="urllib", timeout=30):
    """GET url with client ("urllib" or "requests") and return {"status",
    "bytes", "body": first 200 characters}.  Blocking code: under gevent's
    patching it waits as a greenlet.  bench/compare's WSGI app calls this
    same function, so its peers run the agent's own code."""
    if client == "urllib":
        with urllib.request.urlopen(url, timeout=timeout) as r:
            status, body = r.status, r.read()
    elif client == "requests":
        if requests is None:
            raise RuntimeError("requests is not installed (Debian: apt-get install python3-requests)")
        r = requests.get(url, timeout=timeout)
        status, body = r.status_code, r.content
    else:
        raise ValueError('client must be "urllib" or "requests"')
    return {"status": status, "bytes": len(body), "body": body[:200].decode("utf-8", "replace")}


class FetchAgent(Agent):
    capabilities = ("fetch",)

    def handle_fetch(self, data):
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise ValueError('fetch needs data {"url": "http://..."}')
        return fetch(data["url"], data.get("client", "urllib"), data.get("timeout", 30))
