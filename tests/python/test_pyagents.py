# SPDX-License-Identifier: BSD-2-Clause
"""Unit tests of the pyagents package: the Agent base class and the examples.

Pure Python, no worker involved (tests/python/test_bridge.py drives the
real agentpool-worker).  Run by make check with PYTHONPATH = the source
tree; runnable by hand: python3 tests/python/test_pyagents.py.
"""

import asyncio
import inspect
import os
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("AP_SRCDIR") or os.path.normpath(os.path.join(HERE, "..", "..")))

import pyagents  # noqa: E402
from pyagents import Agent, UnknownMessageType, handler_name  # noqa: E402


def run(coro):
    return asyncio.run(coro)


class HandlerNameTest(unittest.TestCase):
    def test_dots_and_dashes_become_underscores(self):
        self.assertEqual(handler_name("chat.reply"), "handle_chat_reply")
        self.assertEqual(handler_name("a-b.c"), "handle_a_b_c")
        self.assertEqual(handler_name("ping"), "handle_ping")


class SyncDispatchTest(unittest.TestCase):
    class Chat(Agent):
        capabilities = ["chat"]

        def handle_chat_reply(self, data):
            return {"reply": data["text"].upper()}

        def handle_user_sign_up(self, data):
            return "signed up %s" % data

    def test_dispatches_by_type(self):
        a = self.Chat()
        self.assertEqual(a.handle_message("chat.reply", {"text": "hi"}), {"reply": "HI"})
        self.assertEqual(a.handle_message("user-sign.up", "ann"), "signed up ann")

    def test_stays_sync(self):
        self.assertFalse(inspect.iscoroutinefunction(self.Chat().handle_message))

    def test_unknown_type_raises_clear_error(self):
        with self.assertRaises(UnknownMessageType) as cm:
            self.Chat().handle_message("chat.nope", None)
        msg = str(cm.exception)
        self.assertIn("Chat", msg)
        self.assertIn("'chat.nope'", msg)
        self.assertIn("handle_chat_nope", msg)
        self.assertTrue(issubclass(UnknownMessageType, LookupError))

    def test_type_message_does_not_recurse(self):
        with self.assertRaises(UnknownMessageType):
            self.Chat().handle_message("message", None)

    def test_non_str_type(self):
        with self.assertRaises(TypeError):
            self.Chat().handle_message(5, None)

    def test_handler_cache_is_per_class_and_bounded(self):
        class A(Agent):
            def handle_x(self, data):
                return "A"

        class B(A):
            def handle_x(self, data):
                return "B"

        self.assertEqual(A().handle_message("x", None), "A")
        self.assertEqual(B().handle_message("x", None), "B")
        self.assertEqual(A().handle_message("x", None), "A")
        self.assertIsNot(A._pyagents_handlers, B._pyagents_handlers)

        class Many(Agent):
            def handle_a_b_c_d_e_f_g_h_i_j_k(self, data):
                return data

        # 2**10 spellings map to the same method; the cache stays bounded
        import itertools
        for seps in itertools.islice(itertools.product(".-_", repeat=10), 2000):
            t = "a" + "".join(s + c for s, c in zip(seps, "bcdefghijk"))
            self.assertEqual(Many().handle_message(t, 1), 1)
        self.assertLessEqual(len(Many._pyagents_handlers), 1024)


class AsyncDispatchTest(unittest.TestCase):
    class Mixed(Agent):
        async def handle_slow(self, data):
            await asyncio.sleep(0)
            return {"slow": data}

        def handle_fast(self, data):
            return {"fast": data}

    def test_async_handler_makes_dispatcher_async(self):
        self.assertTrue(inspect.iscoroutinefunction(self.Mixed().handle_message))

    def test_both_kinds_of_handlers_work(self):
        a = self.Mixed()
        self.assertEqual(run(a.handle_message("slow", 1)), {"slow": 1})
        self.assertEqual(run(a.handle_message("fast", 2)), {"fast": 2})

    def test_unknown_type_raises_when_awaited(self):
        with self.assertRaises(UnknownMessageType):
            run(self.Mixed().handle_message("nope", None))

    def test_subclass_of_async_agent_stays_async(self):
        class Child(self.Mixed):
            def handle_more(self, data):
                return "more"

        self.assertTrue(inspect.iscoroutinefunction(Child().handle_message))
        self.assertEqual(run(Child().handle_message("more", None)), "more")

    def test_own_handle_message_decides(self):
        class OwnSync(Agent):
            def handle_message(self, type, data):
                return "own"

            async def handle_x(self, data):  # not used by the own dispatcher
                return "x"

        class OwnAsync(Agent):
            async def handle_message(self, type, data):
                return "own-async"

        class Inherits(OwnSync):
            async def handle_y(self, data):
                return "y"

        self.assertFalse(inspect.iscoroutinefunction(OwnSync().handle_message))
        self.assertEqual(OwnSync().handle_message("x", None), "own")
        self.assertTrue(inspect.iscoroutinefunction(OwnAsync().handle_message))
        self.assertEqual(run(OwnAsync().handle_message("t", None)), "own-async")
        # a parent's own handle_message is kept, too
        self.assertFalse(inspect.iscoroutinefunction(Inherits().handle_message))


class AttributesTest(unittest.TestCase):
    def test_agent_id_from_env(self):
        old = os.environ.get("AGENTPOOL_WORKER_ID")
        os.environ["AGENTPOOL_WORKER_ID"] = "worker-42"
        try:
            self.assertEqual(Agent().agent_id, "worker-42")
            self.assertEqual(Agent(agent_id="mine").agent_id, "mine")
        finally:
            if old is None:
                del os.environ["AGENTPOOL_WORKER_ID"]
            else:
                os.environ["AGENTPOOL_WORKER_ID"] = old

    def test_agent_id_default_without_env(self):
        old = os.environ.pop("AGENTPOOL_WORKER_ID", None)
        try:
            self.assertEqual(Agent().agent_id, "agent-%d" % os.getpid())
        finally:
            if old is not None:
                os.environ["AGENTPOOL_WORKER_ID"] = old

    def test_capabilities_and_queue_size(self):
        class C(Agent):
            capabilities = ("a", "b")
            max_queue_size = 7

        c = C()
        self.assertEqual(c.capabilities, ["a", "b"])
        self.assertEqual(c.max_queue_size, 7)
        c.capabilities.append("z")  # a per-instance copy
        self.assertEqual(C().capabilities, ["a", "b"])
        d = C(capabilities=["x"], max_queue_size=3)
        self.assertEqual((d.capabilities, d.max_queue_size), (["x"], 3))

    def test_metrics_fields(self):
        m = Agent(agent_id="w").metrics()
        self.assertEqual(m["agent_id"], "w")
        self.assertEqual(m["capabilities"], [])
        self.assertEqual(m["max_queue_size"], 100)
        self.assertEqual(m["agent_class"], "Agent")

    def test_hooks_exist_and_no_health_by_default(self):
        a = Agent()
        self.assertIsNone(a.on_start())
        self.assertIsNone(a.on_stop())
        self.assertFalse(hasattr(a, "health"))

    def test_exports(self):
        self.assertIs(pyagents.Agent, Agent)
        self.assertIn("Agent", pyagents.__all__)


class ExamplesTest(unittest.TestCase):
    def test_echo(self):
        from pyagents.examples.echo import EchoAgent
        for v in (None, 1, "x", [1, {"a": None}], {"k": [True, 2.5]}):
            self.assertEqual(EchoAgent().handle_message("any.type", v), v)

    def test_sleep(self):
        from pyagents.examples.sleep import AsyncSleepAgent, SleepAgent
        self.assertEqual(SleepAgent().handle_message("sleep", {"ms": 2}), {"slept_ms": 2})
        self.assertFalse(inspect.iscoroutinefunction(SleepAgent().handle_message))
        self.assertTrue(inspect.iscoroutinefunction(AsyncSleepAgent().handle_message))
        self.assertEqual(run(AsyncSleepAgent().handle_message("sleep", {"ms": 1})), {"slept_ms": 1})
        with self.assertRaises(ValueError):
            SleepAgent().handle_message("sleep", {"ms": -1})

    def test_cpu(self):
        from pyagents.examples.cpu import CpuAgent
        r = CpuAgent().handle_message("cpu", {"ms": 5})
        self.assertEqual(r["burned_ms"], 5)
        self.assertGreater(r["iterations"], 0)

    def test_raise(self):
        from pyagents.examples.raising import RaiseAgent
        with self.assertRaises(ValueError) as cm:
            RaiseAgent().handle_message("x", {})
        self.assertEqual(str(cm.exception), "boom")
        with self.assertRaises(ValueError) as cm:
            RaiseAgent().handle_message("x", {"message": "custom"})
        self.assertEqual(str(cm.exception), "custom")
        with self.assertRaises(ValueError):
            RaiseAgent().handle_message("x", None)

    def test_crash_exits_with_code(self):
        code = "from pyagents.examples.crash import CrashAgent; CrashAgent().handle_message('x', {'code': 7})"
        env = dict(os.environ, PYTHONPATH=sys.path[0])
        p = subprocess.run([sys.executable, "-c", code], env=env)
        self.assertEqual(p.returncode, 7)
        code = "from pyagents.examples.crash import CrashAgent; CrashAgent().handle_message('x', None)"
        self.assertEqual(subprocess.run([sys.executable, "-c", code], env=env).returncode, 1)

    def test_leak_grows(self):
        from pyagents.examples import leak
        a = leak.LeakAgent()
        before = len(leak._HOARD)
        r1 = a.handle_message("leak", {"kb": 4})
        r2 = a.handle_message("leak", {"kb": 4})
        self.assertEqual(r2["chunks"], before + 2)
        self.assertEqual(r2["leaked_kb"] - r1["leaked_kb"], 4)
        del leak._HOARD[before:]

    def test_whoami(self):
        from pyagents.examples.whoami import WhoamiAgent
        r = WhoamiAgent().handle_message("whoami", None)
        self.assertEqual(r["pid"], os.getpid())
        self.assertEqual(r["worker"], WhoamiAgent().agent_id)

    def test_kv_dispatch(self):
        from pyagents.examples.kv import KvAgent
        a = KvAgent()
        self.assertEqual(a.handle_message("kv.set", {"key": "a", "value": [1]}), {"ok": True})
        self.assertEqual(a.handle_message("kv.get", {"key": "a"}), {"key": "a", "found": True, "value": [1]})
        self.assertEqual(a.handle_message("kv.delete", {"key": "a"}), {"deleted": True})
        self.assertEqual(a.handle_message("kv.get", {"key": "a"})["found"], False)
        self.assertEqual(a.metrics()["keys"], 0)
        with self.assertRaises(UnknownMessageType):
            a.handle_message("kv.list", {})

    def test_badstart(self):
        from pyagents.examples.badstart import BadStartAgent
        with self.assertRaises(RuntimeError) as cm:
            BadStartAgent().on_start()
        self.assertEqual(str(cm.exception), "bad start")

    def test_broken_import(self):
        sys.modules.pop("pyagents.examples.broken_import", None)
        with self.assertRaises(ImportError) as cm:
            import pyagents.examples.broken_import  # noqa: F401
        self.assertIn("on purpose", str(cm.exception))


class GateTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "open")

    def tearDown(self):
        self.dir.cleanup()

    def test_sync_gate_waits_for_file(self):
        from pyagents.examples.gate import GateAgent
        result = []
        t = threading.Thread(target=lambda: result.append(
            GateAgent().handle_message("gate", {"file": self.path, "seq": 3})))
        t.start()
        t.join(0.05)
        self.assertEqual(result, [])  # held while the file is missing
        open(self.path, "w").close()
        t.join(30)
        self.assertEqual(result, [{"released": True, "seq": 3}])

    def test_sync_gate_needs_file(self):
        from pyagents.examples.gate import GateAgent
        with self.assertRaises(ValueError):
            GateAgent().handle_message("gate", {})

    def test_async_gate_file_and_release(self):
        from pyagents.examples.gate import AsyncGateAgent
        a = AsyncGateAgent()
        self.assertTrue(inspect.iscoroutinefunction(a.handle_message))

        async def scenario():
            by_file = [asyncio.ensure_future(a.handle_message("gate", {"file": self.path, "seq": i}))
                       for i in range(3)]
            by_release = [asyncio.ensure_future(a.handle_message("gate", {"seq": 10 + i})) for i in range(2)]
            while a.health()["held"] < 5:
                await asyncio.sleep(0)
            self.assertFalse(any(f.done() for f in by_file + by_release))
            open(self.path, "w").close()
            files = await asyncio.gather(*by_file)
            self.assertEqual(files, [{"released": True, "seq": i} for i in range(3)])
            self.assertFalse(any(f.done() for f in by_release))
            self.assertEqual(a.health(), {"held": 2})
            released = await a.handle_message("gate.release", None)
            self.assertEqual(released, {"released": 2})
            self.assertEqual(await asyncio.gather(*by_release),
                             [{"released": True, "seq": 10}, {"released": True, "seq": 11}])
            self.assertEqual(a.health(), {"held": 0})
            # an open gate answers at once
            self.assertEqual(await a.handle_message("gate", {"file": self.path}), {"released": True, "seq": None})
            # a cancelled waiter is forgotten
            f = asyncio.ensure_future(a.handle_message("gate", {"seq": 99}))
            while a.health()["held"] < 1:
                await asyncio.sleep(0)
            f.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await f
            self.assertEqual(a.health(), {"held": 0})
            self.assertEqual(a.metrics()["held"], 0)

        run(scenario())


class ContextOutsideWorkerTest(unittest.TestCase):
    def test_context_outside_a_worker_raises_lookup_error(self):
        with self.assertRaisesRegex(LookupError, "only available inside agentpool-worker"):
            pyagents.context()
        self.assertIn("context", pyagents.__all__)


if __name__ == "__main__":
    unittest.main(verbosity=1)
