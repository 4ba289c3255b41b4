# SPDX-License-Identifier: BSD-2-Clause
"""The handler every HTTP peer runs in bench/compare: one WSGI callable.

POST /echo     -> decode the JSON body, encode it again, answer it (200)
POST /sleep50  -> decode the body, wait 50 ms, answer {"slept_ms": 50}

The wait is time.sleep: a thread blocks only itself (uWSGI threads,
gunicorn gthread), gevent's monkey-patching turns it into a greenlet
switch (uWSGI --gevent with --gevent-monkey-patch, gunicorn -k gevent),
and gunicorn's sync worker simply blocks, which is its model. The same
work as agentpool's EchoAgent / AsyncSleepAgent: JSON in, Python call,
JSON out. Stdlib only; every answer carries Content-Length so HTTP/1.1
keep-alive holds.
"""

import json
import time

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
    else:
        out = json.dumps(request).encode()
    start_response("200 OK", [("Content-Type", _HEADERS_JSON), ("Content-Length", str(len(out)))])
    return [out]


application = app
