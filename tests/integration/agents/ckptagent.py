# SPDX-License-Identifier: BSD-2-Clause
"""ckptagent.py - agents that use ctx.checkpoint, ctx.resume and ctx.session
(test_checkpoints.py, test_bridge_session.py).

Served with --python-path tests/integration/agents, in three models:
Sync (plain def), Async (async def) and Gevent (plain def, run with
workerModel gevent).  By message type:
  show        -> {"session": ctx.session, "resume": ctx.resume,
                  "attempt": ..., "pid": ..., "session_type": its class name}
  steps       -> data {"n": N, "stop_at": K, "dir": D}: runs steps from
                 the one after ctx.resume["step"] (0 without) to N-1,
                 checkpointing {"step": i} after each; on its first attempt,
                 once step K is checkpointed (and sent: the loop is let run),
                 writes its pid to D/running and waits there to be killed.
                 Answers {"resume": ctx.resume, "attempt": ..., "ran": [steps]}
  lives       -> data {"after": N}: seen = resume's "seen" + 1 (1 without),
                 checkpoints {"seen": seen}, and dies (os._exit(9)) while
                 seen <= N; then answers {"resume": ..., "attempt": ...}
  checkpoint  -> data {"value": V} or {"bytes": N} (a string of N JSON
                 bytes) or {"set": true} (a set: not JSON): ctx.checkpoint;
                 answers {"ok": true} or {"error": class name, "message": text}
  session_set -> data {"set": {k: v}}: updates ctx.session, answers its keys
  session_big -> data {"bytes": N}: ctx.session["big"] = a string making the
                 state's JSON N bytes
  session_raise -> changes ctx.session, then raises RuntimeError
  session_save -> data {"set": {...}, "then": {...}, "bytes": N}: updates
                 the state, ctx.session.save() (its error reported), then
                 applies "then"; answers {"saved": ..., "error": ...}
  session_bad -> puts a set in ctx.session (not JSON)
  forge_checkpoint -> (Sync only) writes a CHECKPOINT frame of data["bytes"]
                 bytes of JSON on fd 3, as agent code could, then answers
"""
import asyncio
import os
import struct
import time

MASTER_FD = 3
FRAME_CHECKPOINT = 14


def _describe(ctx):
    return {"session": ctx.session, "resume": ctx.resume, "attempt": ctx.attempt, "pid": os.getpid(),
            "session_type": type(ctx.session).__name__}


def _checkpoint(ctx, data):
    try:
        if data.get("set"):
            ctx.checkpoint({1, 2})
        elif "bytes" in data:
            ctx.checkpoint("x" * (data["bytes"] - 2))
        else:
            ctx.checkpoint(data.get("value"))
    except (TypeError, ValueError) as e:
        return {"error": type(e).__name__, "message": str(e)}
    return {"ok": True}


def _mark_running(directory):
    tmp = os.path.join(directory, "running.tmp")
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, os.path.join(directory, "running"))


def _first_step(ctx):
    return ctx.resume["step"] + 1 if ctx.resume else 0


def _lives(ctx, data):
    seen = (ctx.resume or {}).get("seen", 0) + 1
    ctx.checkpoint({"seen": seen})
    return seen <= data["after"]


def _session(ctx, type, data):
    s = ctx.session
    if type == "session_set":
        s.update(data["set"])
        return sorted(s)
    if type == "session_big":
        s.clear()
        s["big"] = "x" * (data["bytes"] - len('{"big":""}'))
        return True
    if type == "session_raise":
        s["raised"] = True
        raise RuntimeError("failed after changing the state")
    if type == "session_save":
        s.update(data.get("set", {}))
        if "bytes" in data:
            s["big"] = "x" * data["bytes"]
        err = None
        try:
            s.save()
        except (TypeError, ValueError) as e:
            err = {"error": type(e).__name__, "message": str(e)}
            s.pop("big", None)
        s.update(data.get("then", {}))
        return {"error": err}
    if type == "session_bad":
        s["bad"] = {1, 2}
        return True
    return None


class Sync:
    def handle_message(self, type, data, ctx):
        data = data or {}
        if type == "show":
            return _describe(ctx)
        if type == "steps":
            ran = []
            for i in range(_first_step(ctx), data["n"]):
                ran.append(i)
                ctx.checkpoint({"step": i})
                if ctx.attempt == 1 and i == data["stop_at"]:
                    _mark_running(data["dir"])
                    time.sleep(3600)
            return {"resume": ctx.resume, "attempt": ctx.attempt, "ran": ran}
        if type == "lives":
            if _lives(ctx, data):
                os._exit(9)
            return {"resume": ctx.resume, "attempt": ctx.attempt}
        if type == "checkpoint":
            return _checkpoint(ctx, data)
        if type == "forge_checkpoint":
            payload = b'"' + b"x" * (data["bytes"] - 2) + b'"'
            os.write(MASTER_FD, struct.pack("<IBBHQ", len(payload), FRAME_CHECKPOINT, 0, 0, 1) + payload)
            return {"pid": os.getpid()}
        return _session(ctx, type, data)


class Gevent(Sync):
    """The same plain defs, run on gevent's hub (workerModel gevent):
    time.sleep is gevent's, and a checkpoint leaves when the greenlet
    waits; steps and lives let the hub run before going on."""

    def handle_message(self, type, data, ctx):
        if type in ("steps", "lives"):
            import gevent
            if type == "lives":
                if _lives(ctx, data):
                    gevent.sleep(0)  # the hub writes the checkpoint
                    os._exit(9)
                return {"resume": ctx.resume, "attempt": ctx.attempt}
            ran = []
            for i in range(_first_step(ctx), data["n"]):
                ran.append(i)
                ctx.checkpoint({"step": i})
                if ctx.attempt == 1 and i == data["stop_at"]:
                    gevent.sleep(0)
                    _mark_running(data["dir"])
                    gevent.sleep(3600)
            return {"resume": ctx.resume, "attempt": ctx.attempt, "ran": ran}
        return Sync.handle_message(self, type, data, ctx)


class Async:
    async def handle_message(self, type, data, ctx):
        data = data or {}
        if type == "show":
            await asyncio.sleep(0)
            return _describe(ctx)
        if type == "steps":
            ran = []
            for i in range(_first_step(ctx), data["n"]):
                ran.append(i)
                ctx.checkpoint({"step": i})
                await asyncio.sleep(0)
                if ctx.attempt == 1 and i == data["stop_at"]:
                    await asyncio.sleep(0)  # the loop has written the checkpoint
                    _mark_running(data["dir"])
                    await asyncio.sleep(3600)
            return {"resume": ctx.resume, "attempt": ctx.attempt, "ran": ran}
        if type == "lives":
            if _lives(ctx, data):
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                os._exit(9)
            return {"resume": ctx.resume, "attempt": ctx.attempt}
        if type == "checkpoint":
            return _checkpoint(ctx, data)
        await asyncio.sleep(0)
        return _session(ctx, type, data)
