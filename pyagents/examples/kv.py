# SPDX-License-Identifier: BSD-2-Clause
"""KvAgent: a per-worker key/value store, showing per-type dispatch.

Types "kv.set" {"key": K, "value": V}, "kv.get" {"key": K} and
"kv.delete" {"key": K} go to handle_kv_set / handle_kv_get /
handle_kv_delete through Agent's default handle_message; any other type
fails with UnknownMessageType.  The store lives in the worker process, so
it is per worker and lost when the worker is recycled.
"""

from pyagents import Agent


class KvAgent(Agent):
    capabilities = ("kv",)

    def __init__(self):
        super().__init__()
        self.store = {}

    @staticmethod
    def _key(data):
        if not isinstance(data, dict) or not isinstance(data.get("key"), str):
            raise ValueError("kv needs data {\"key\": STRING, ...}")
        return data["key"]

    def handle_kv_set(self, data):
        self.store[self._key(data)] = data.get("value")
        return {"ok": True}

    def handle_kv_get(self, data):
        key = self._key(data)
        return {"key": key, "found": key in self.store, "value": self.store.get(key)}

    def handle_kv_delete(self, data):
        return {"deleted": self.store.pop(self._key(data), None) is not None}

    def metrics(self):
        m = super().metrics()
        m["keys"] = len(self.store)
        return m
