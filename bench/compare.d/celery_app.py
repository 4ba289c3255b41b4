# SPDX-License-Identifier: BSD-2-Clause
"""The Celery side of bench/compare: the same two handlers as tasks.

echo(data) returns data (kombu decodes and encodes the JSON around it);
sleep50(data) waits 50 ms and returns {"slept_ms": 50}. The broker and
the result backend are the local Redis that bench/compare starts on a
Unix socket (BENCH_REDIS_URL). JSON serialisation only, results expire
after a minute, no gossip/mingle/heartbeat (one node, nothing to learn).
"""

import os
import time

from celery import Celery

_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("benchtasks", broker=_URL, backend=_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=60,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="echo")
def echo(data):
    return data


@app.task(name="sleep50")
def sleep50(data):
    time.sleep(0.05)
    return {"slept_ms": 50}
