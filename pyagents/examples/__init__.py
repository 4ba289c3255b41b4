# SPDX-License-Identifier: BSD-2-Clause
"""Example agents, used by agentpool's tests, benchmarks and docs.

Each is named on the command line as ``pyagents.examples.<module>:<Class>``:

========================  =====================================================
echo:EchoAgent            returns data unchanged
sleep:SleepAgent          sync; sleeps data["ms"] milliseconds (time.sleep: in
                          workerModel gevent, a greenlet wait)
sleep:AsyncSleepAgent     async; awaits asyncio.sleep(data["ms"] / 1000)
cpu:CpuAgent              burns CPU for data["ms"] milliseconds
raising:RaiseAgent        raises ValueError(data.get("message", "boom"))
crash:CrashAgent          os._exit(data.get("code", 1)): kills its worker
leak:LeakAgent            keeps data.get("kb", 1024) KiB more per message
whoami:WhoamiAgent        {"pid": worker pid, "worker": agent_id}
gate:GateAgent            sync; holds a message until data["file"] exists
gate:AsyncGateAgent       async; same, and "gate.release" frees all at once
fetch:FetchAgent          plain def; GETs data["url"] (urllib or requests):
                          run it with workerModel gevent
kv:KvAgent                per-type dispatch demo: kv.set / kv.get / kv.delete
badstart:BadStartAgent    on_start() raises RuntimeError("bad start")
broken_import             a module that fails to import (start-up tests)
========================  =====================================================
"""
