# SPDX-License-Identifier: BSD-2-Clause
"""The handler every HTTP peer runs in bench/compare: one WSGI callable.

POST /echo     -> decode the JSON body, encode it again, answer it (200)
POST /sleep50  -> decode the body, wait 50 ms, answer {"slept_ms": 50}
POST /fetch50  -> decode the body, GET its data's "url" (bench/compare
                  points it at agentpool-slowhttp's /delay/50) with
                  pyagents.examples.fetch's fetch(): urllib.request.urlopen,
                  the same function agentpool's FetchAgent calls; answer
                  what it returns. pyagents comes from PYTHONPATH, which
                  peers.py sets to agentpool's source tree.

The wait is time.sleep: a thread blocks only itself (uWSGI threads,
gunicorn gthread), gevent's monkey-patching turns it into a greenlet
switch (uWSGI --gevent with --gevent-monkey-patch, gunicorn -k gevent;
urlopen's socket likewise), and gunicorn's sync worker simply blocks,
which is its model. The same work as agentpool's EchoAgent /
AsyncSleepAgent / FetchAgent: JSON in, Python call, JSON out. Stdlib and
pyagents only; every answer carries Content-Length so HTTP/1.1
keep-alive holds.
"""

import json
import time

from pyagents.examples.fetch import fetch

_HEADERS_JSON = "application/json"


def app(environ, start_response):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    path = environ.get("PATH_INFO", "/")
    try:
        request = json.loads(body) if body else None
    except ValueError:
        out = b'{"error":"bad json"}'
        start_response("400 Bad Request", [("Content-Type", _HEADERS_JSON), ("Content-Length", str(len(out)))])
        return [out]
    if path == "/sleep50":
        time.sleep(0.05)
        out = json.dumps({"slept_ms": 50}).encode()
    elif path == "/fetch50":
        out = json.dumps(fetch(request["data"]["url"])).encode()
    else:
        out = json.dumps(request).encode()
    start_response("200 OK", [("Content-Type", _HEADERS_JSON), ("Content-Length", str(len(out)))])
    return [out]


application = app
