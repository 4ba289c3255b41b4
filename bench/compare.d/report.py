# SPDX-License-Identifier: BSD-2-Clause
"""Results of bench/compare: the summary (ratios, targets), the markdown
tables and the gnuplot plots, all computed from the one results dict that
is also written as JSON (so a report can be rebuilt from a JSON file:
compare.d/report.py FILE.json rewrites FILE.md and the plots).

Conventions: throughput in requests (messages, tasks) per second, latency
in ms in the tables (the JSON keeps agentpool-bench's microseconds), CPU
per message in microseconds. A figure that could not be measured is
None in the summary and "-" in the tables, never 0.

Scheduling modes: every point carries "sched" ("same": the server in the
load generator's session; "own": a session of its own; older runs, which
have none, were "own"). The per-mode figures are the same summary
computed on the points of one mode (view()); the headline takes each
ratio from the mode less favourable to agentpool, and withholds it when
the plain sanity run of a server it involves disagrees with compare's
figure in that mode by more than SANITY_TOLERANCE.
"""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402  (each server's protocol, for runs that did not record it)

LITTLE_S = 0.050  # sleep50's wait, and fetch50's slow server's
FETCH_GOAL = 0.98  # issue 12: gevent mode at >= 98% of Little's law
TOKENS_SHARE_GOAL = 0.95  # issue 13: 256 streams deliver >= 95% of the chunk rate the agents produce
TOKENS_CPU_GOAL = 0.5  # issue 13: a chunk costs the master at most half of an echo message
HEADLINE = 32  # connections of the headline points
SANITY_TOLERANCE = 0.25  # compare vs the plain run, either way
# False: a figure is withheld when a server it involves failed its sanity
# check in the mode the figure is taken from (a failure in "own" only is the
# autogroup effect, and does not withhold "same" figures). True: withheld
# when that server failed in any mode.
SANITY_ANY_MODE = False
MODES = ("same", "own")
MODE_TEXT = {"same": "servers in the load generator's session", "own": "each server in a session of its own"}

ORDER = ["agentpool", "agentpool-http", "agentpool-async", "agentpool-gevent", "uwsgi-threads", "uwsgi-gevent", "gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent",
         "c-echo", "celery"]
HTTP = peers.HTTP_PEERS  # the peers a headline compares agentpool with (peers.py's HTTP servers)


# -- helpers ------------------------------------------------------------------

def _ok(p):
    return p.get("result") is not None and not p.get("error")


def thr(p):
    return p["result"].get("throughput_rps") if p and p.get("result") else None


def p99_ms(p):
    if not p or not p.get("result"):
        return None
    v = p["result"].get("latency_us", {}).get("p99")
    return v / 1000.0 if v is not None else None


def p50_ms(p):
    if not p or not p.get("result"):
        return None
    v = p["result"].get("latency_us", {}).get("p50")
    return v / 1000.0 if v is not None else None


def find(results, server, workload, conns=None, depth=None, payload=None, **kw):
    for p in results["points"]:
        if p["server"] != server or p["workload"] != workload:
            continue
        if conns is not None and p["conns"] != conns:
            continue
        if depth is not None and p["depth"] != depth:
            continue
        if payload is not None and p.get("payload_bytes") != payload:
            continue
        if any(p.get(k) != v for k, v in kw.items()):
            continue
        return p
    return None


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def fmt(v, digits=1, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) >= 1000:
        return "{:,.0f}{}".format(v, unit)
    return "{:.{d}f}{}".format(v, unit, d=digits)


def fx(v):
    return "-" if v is None else ("%.2fx" % v)


def point_brief(p):
    if p.get("result") is None:
        return "FAILED: %s" % p.get("error")
    r = p["result"]
    cpu = p.get("cpu", {})
    cap = cpu.get("machine_capacity_s") or 1
    s = "%8.0f/s p50 %7.2f ms p99 %8.2f ms  server %s us/msg  bench cpu %2.0f%%  foreign %2.0f%%" % (
        r.get("throughput_rps") or r.get("ok_rps") or 0, p50_ms(p) or 0, p99_ms(p) or 0,
        fmt(p.get("server_cpu_us_per_msg"), 1), 100 * (r.get("cpu", {}).get("utilization") or 0),
        100 * cpu.get("foreign_s", 0) / cap)
    sl = p.get("slowhttp") or {}
    if sl.get("cpu_us_per_req") is not None:
        s += "  slow server %s us/req (%.0f%% of a core)" % (fmt(sl["cpu_us_per_req"], 1),
                                                          100 * (sl.get("core_share") or 0))
    st = r.get("stream") or {}
    if st:
        fc = st.get("first_chunk_us") or {}
        s += "  chunks %s/s, first chunk p50 %s ms p99 %s ms" % (
            fmt(st.get("chunks_per_s"), 0), fmt(fc.get("p50") and fc["p50"] / 1000.0, 2),
            fmt(fc.get("p99") and fc["p99"] / 1000.0, 2))
        share = ratio(st.get("chunks_per_s"), agents_chunk_rate(p))
        if share is not None:
            s += " (%.1f%% of what the agents produce)" % (100 * share)
        s += ", master %s us/chunk" % fmt((p.get("agentpool") or {}).get("master_cpu_us_per_chunk"), 2)
    errs = r.get("errors") or {}
    if errs:
        s += "  errors %s" % json.dumps(errs)
    if p.get("error"):
        s += "  [%s]" % p["error"]
    return s


def chunks_per_s(p):
    return (((p or {}).get("result") or {}).get("stream") or {}).get("chunks_per_s")


def first_chunk_ms(p, q):
    """Time to first chunk, percentile q ("p50", "p99"), in ms."""
    st = ((p or {}).get("result") or {}).get("stream") or {}
    v = (st.get("first_chunk_us") or {}).get(q)
    return v / 1000.0 if v is not None else None


def agents_chunk_rate(p):
    """The chunks per second the tokens agents produce at point p when
    nothing else takes time: each stream's n chunks come (n - 1) x ms
    apart (the first at once), and the next stream of a connection starts
    as the last one ends; None for an unpaced point (ms 0)."""
    t = (p or {}).get("tokens") or {}
    n, ms = t.get("n", 0), t.get("ms", 0)
    if not ms or n < 2:
        return None
    return p["inflight"] * n / ((n - 1) * ms / 1000.0)


# -- summary --------------------------------------------------------------------

def _uwsgi_best(results):
    """uWSGI's best echo point at the headline load (threads and gevent,
    including the thread-count variants)."""
    best = None
    for p in results["points"]:
        if p["server"] in ("uwsgi-threads", "uwsgi-gevent") and p["conns"] == HEADLINE and p["depth"] == 1 \
                and p["workload"] in ("echo", "uwsgi-tune") and _ok(p):
            if best is None or thr(p) > thr(best):
                best = p
    return best


def _sleep_best_peer(results, n, workload="sleep50"):
    """The peer to beat at workload (sleep50, fetch50) n in flight: the
    lowest p99 among peers that reach 95% of Little's law; if none does,
    the highest throughput."""
    cands = [p for p in results["points"] if p["workload"] == workload and p["server"] in HTTP
             and p["inflight"] == n and _ok(p)]
    keep = [p for p in cands if thr(p) >= 0.95 * n / LITTLE_S]
    if keep:
        return min(keep, key=p99_ms)
    return max(cands, key=thr) if cands else None


def sched_of(p):
    return p.get("sched", "own")


def modes_in(results):
    have = {sched_of(p) for p in results["points"]}
    return [m for m in MODES if m in have]


def view(results, mode):
    """results with only the points measured in mode."""
    return dict(results, points=[p for p in results["points"] if sched_of(p) == mode])


def summarise(results):
    """Per mode the full summary, then the sanity check and the headline."""
    modes = modes_in(results)
    s = {"modes": modes, "by_mode": {m: summarise_mode(view(results, m)) for m in modes}}
    s["sanity"] = sanity(results, modes)
    s["headline"] = headline(results, s)
    return s


def sanity(results, modes):
    """Each plain run against compare's figure at the same point, per mode."""
    rows = []
    for rec in results.get("sanity") or []:
        plain = thr(rec)
        row = {"server": rec["server"], "workload": rec["workload"], "conns": rec["conns"], "depth": rec["depth"],
               "inflight": rec["inflight"], "plain_rps": plain, "plain_p99_ms": p99_ms(rec),
               "error": rec.get("error"), "modes": {}}
        for m in modes:
            p = find(results, rec["server"], rec["workload"], rec["conns"], rec["depth"], sched=m)
            if p is None:
                continue
            dev = ratio(thr(p), plain)
            dev = dev - 1 if dev is not None else None
            row["modes"][m] = {"rps": thr(p), "p99_ms": p99_ms(p), "deviation": dev,
                               "ok": dev is not None and abs(dev) <= SANITY_TOLERANCE}
        rows.append(row)
    return rows


def sanity_state(s, server, mode):
    """"ok", "FAILED" (a plain run disagrees by more than the tolerance, or
    failed) or "unchecked" (no plain run of server) for server in mode."""
    rows = [r for r in s["sanity"] if r["server"] == server]
    if not rows:
        return "unchecked"
    for r in rows:
        m = r["modes"].get(mode)
        if r["plain_rps"] is None or (m is not None and not m["ok"]):
            return "FAILED"
    return "ok"


def _agent_cpu(p):
    return p and p.get("server_cpu_us_per_msg")


def _best_http(results, conns, depth=1):
    """The peer with the highest throughput at echo conns x depth (uWSGI's
    thread variants included), and the one with the least CPU per request."""
    pts = [p for p in results["points"] if p["server"] in HTTP and p["conns"] == conns and p["depth"] == depth
           and p["workload"] in ("echo", "uwsgi-tune") and _ok(p)]
    fast = max(pts, key=thr) if pts else None
    lean = min((p for p in pts if _agent_cpu(p)), key=_agent_cpu, default=None)
    return fast, lean


def _who(p):
    if p is None:
        return None
    conf = p.get("server_config") or {}
    return p["server"] + (" threads %s" % conf["threads"] if p["workload"] == "uwsgi-tune" else "")


def headline_candidates(results):
    """Per mode, the headline figures: (key, target, goal, worse, value,
    display, servers involved). worse is "min" or "max": which value is less
    favourable to agentpool."""
    out = []
    a = find(results, "agentpool", "echo", HEADLINE, 1)
    fast, lean = _best_http(results, HEADLINE)
    ub = _uwsgi_best(results)
    d16 = find(results, "agentpool", "echo-d16", HEADLINE, 16)

    def add(key, target, goal, worse, value, display, servers, check=None):
        out.append({"key": key, "target": target, "goal": goal, "worse": worse, "value": value,
                    "display": display if value is not None else "-", "servers": [x for x in servers if x],
                    "check": check})

    x = ratio(thr(a), thr(fast))
    add("echo32_x_best", "echo 32 conns x 1: throughput vs the fastest peer", "report", "min", x,
        "%s (%s vs %s %s)" % (fx(x), fmt(thr(a), 0), _who(fast), fmt(thr(fast), 0)), ["agentpool", fast and fast["server"]])
    x = ratio(thr(a), thr(ub))
    add("echo32_x_uwsgi", "echo 32 conns x 1: throughput vs uWSGI's best config", ">= 3x", "min", x,
        "%s (%s vs %s %s)" % (fx(x), fmt(thr(a), 0), _who(ub), fmt(thr(ub), 0)), ["agentpool", ub and ub["server"]],
        lambda v: v >= 3)
    x = ratio(p99_ms(a), p99_ms(ub))
    add("echo32_p99_uwsgi", "echo 32 conns x 1: p99 vs uWSGI's best config", "<= 0.5x", "max", x,
        "%s (%s vs %s ms)" % (fx(x), _cell_ms(p99_ms(a)), _cell_ms(p99_ms(ub))), ["agentpool", ub and ub["server"]],
        lambda v: v <= 0.5)
    h = find(results, "agentpool-http", "echo", HEADLINE, 1)  # the same protocol as the peers (issue 17)
    x = ratio(thr(h), thr(ub))
    add("http32_x_uwsgi", "HTTP echo 32 conns x 1 (front door): throughput vs uWSGI's best config", ">= 3x", "min", x,
        "%s (%s vs %s %s)" % (fx(x), fmt(thr(h), 0), _who(ub), fmt(thr(ub), 0)),
        ["agentpool-http", ub and ub["server"]], lambda v: v >= 3)
    x = ratio(p99_ms(h), p99_ms(ub))
    add("http32_p99_uwsgi", "HTTP echo 32 conns x 1 (front door): p99 vs uWSGI's best config", "<= 0.5x", "max", x,
        "%s (%s vs %s ms)" % (fx(x), _cell_ms(p99_ms(h)), _cell_ms(p99_ms(ub))),
        ["agentpool-http", ub and ub["server"]], lambda v: v <= 0.5)
    x = ratio(thr(h), thr(a))
    add("http32_x_ndjson", "HTTP echo 32 conns x 1 (front door): throughput vs the NDJSON socket", "report", "min", x,
        "%s (%s vs %s)" % (fx(x), fmt(thr(h), 0), fmt(thr(a), 0)), ["agentpool-http", "agentpool"])
    x = ratio(_agent_cpu(a), _agent_cpu(lean))
    add("echo32_cpu_lean", "echo 32 conns x 1: server CPU per request vs the leanest peer", "report", "max", x,
        "%s (%s vs %s %s us)" % (fx(x), fmt(_agent_cpu(a), 1), _who(lean), fmt(_agent_cpu(lean), 1)),
        ["agentpool", lean and lean["server"]])
    x = ratio(_agent_cpu(a), _agent_cpu(ub))
    add("echo32_cpu_uwsgi", "echo 32 conns x 1: server CPU per request vs uWSGI's best config", "report", "max", x,
        "%s (%s vs %s us)" % (fx(x), fmt(_agent_cpu(a), 1), fmt(_agent_cpu(ub), 1)), ["agentpool", ub and ub["server"]])
    ap = (d16 or {}).get("agentpool") or {}
    m, w = ap.get("master_cpu_us_per_msg"), ap.get("worker_cpu_us_per_msg")
    add("d16_master", "depth 16, 32 conns: master CPU per message", "<= 1.0 us", "max", m,
        "%s us (worker %s us)" % (fmt(m, 2), fmt(w, 2)), ["agentpool"], lambda v: v <= 1.0)
    x = ratio(m, w)
    add("d16_master_over_worker", "depth 16, 32 conns: master CPU per message vs a worker's", "< 1x", "max", x,
        fx(x), ["agentpool"], lambda v: v < 1.0)
    for n, goal in ((256, 0.995), (1024, 0.995), (4096, 0.90)):
        p = find(results, "agentpool", "sleep50", n, 1)
        sh = ratio(thr(p), n / LITTLE_S)
        add("sleep%d_share" % n, "sleep50 %d in flight: share of Little's law" % n, ">= %.1f%%" % (100 * goal), "min",
            sh, "%s (%s/s)" % (fmt(sh and 100 * sh, 1, "%"), fmt(thr(p), 0)), ["agentpool"],
            lambda v, g=goal: v >= g)
        if n <= 1024:
            add("sleep%d_p99" % n, "sleep50 %d in flight: p99" % n, "<= 52 ms", "max", p99_ms(p),
                "%s ms" % _cell_ms(p99_ms(p)), ["agentpool"], lambda v: v <= 52)
        else:
            add("sleep%d_p99" % n, "sleep50 %d in flight: p99" % n, "report", "max", p99_ms(p),
                "%s ms" % _cell_ms(p99_ms(p)), ["agentpool"])
        bp = _sleep_best_peer(results, n)
        x = ratio(p99_ms(p), p99_ms(bp))
        add("sleep%d_p99_peer" % n, "sleep50 %d in flight: p99 vs the best peer" % n, "report", "max", x,
            "%s (%s vs %s %s ms)" % (fx(x), _cell_ms(p99_ms(p)), bp and bp["server"], _cell_ms(p99_ms(bp))),
            ["agentpool", bp and bp["server"]])
        x = ratio(_agent_cpu(p), _agent_cpu(bp))
        add("sleep%d_cpu_peer" % n, "sleep50 %d in flight: server CPU per request vs the best peer" % n, "report",
            "max", x, "%s (%s vs %s us)" % (fx(x), fmt(_agent_cpu(p), 1), fmt(_agent_cpu(bp), 1)),
            ["agentpool", bp and bp["server"]])
    # fetch50: the gevent pool (there is no async agent running the same urllib code)
    for n in sorted({p["inflight"] for p in results["points"] if p["workload"] == "fetch50"}):
        p = find(results, "agentpool-gevent", "fetch50", n, 1)
        sh = ratio(thr(p), n / LITTLE_S)
        add("fetch%d_share" % n, "fetch50 %d in flight: agentpool-gevent share of Little's law" % n,
            ">= %.0f%%" % (100 * FETCH_GOAL), "min", sh, "%s (%s/s)" % (fmt(sh and 100 * sh, 1, "%"), fmt(thr(p), 0)),
            ["agentpool-gevent"], lambda v: v >= FETCH_GOAL)
        add("fetch%d_p99" % n, "fetch50 %d in flight: agentpool-gevent p99" % n, "report", "max", p99_ms(p),
            "%s ms" % _cell_ms(p99_ms(p)), ["agentpool-gevent"])
        bp = _sleep_best_peer(results, n, "fetch50")
        x = ratio(p99_ms(p), p99_ms(bp))
        add("fetch%d_p99_peer" % n, "fetch50 %d in flight: agentpool-gevent p99 vs the best gevent peer" % n,
            "report", "max", x,
            "%s (%s vs %s %s ms)" % (fx(x), _cell_ms(p99_ms(p)), bp and bp["server"], _cell_ms(p99_ms(bp))),
            ["agentpool-gevent", bp and bp["server"]])
        x = ratio(_agent_cpu(p), _agent_cpu(bp))
        add("fetch%d_cpu_peer" % n, "fetch50 %d in flight: server CPU per request vs the best gevent peer" % n,
            "report", "max", x, "%s (%s vs %s us)" % (fx(x), fmt(_agent_cpu(p), 1), fmt(_agent_cpu(bp), 1)),
            ["agentpool-gevent", bp and bp["server"]])
    return out


def headline(results, s):
    """Each headline figure in every mode, the one less favourable to
    agentpool, and whether it may be claimed (the servers it involves
    passed their sanity check in that mode)."""
    per = {m: {c["key"]: c for c in headline_candidates(view(results, m))} for m in s["modes"]}
    rows = []
    keys = []  # in order, each once (a fetch50 load may be in one mode only)
    for m in s["modes"]:
        keys += [k for k in per[m] if k not in keys]
    for key in keys:
        have = [m for m in s["modes"] if key in per[m]]
        cands = [(m, per[m][key]) for m in have if per[m][key]["value"] is not None]
        first = per[have[0]][key]
        row = {"key": key, "target": first["target"], "goal": first["goal"],
               "by_mode": {m: per[m][key]["display"] for m in have},
               "values": {m: per[m][key]["value"] for m in have}}
        if not cands:
            row.update(mode=None, value=None, display="-", status="not measured", servers=[])
            rows.append(row)
            continue
        pick = (min if first["worse"] == "min" else max)(cands, key=lambda mc: mc[1]["value"])
        m, c = pick
        row.update(mode=m, value=c["value"], display=c["display"], servers=c["servers"])
        check_modes = s["modes"] if SANITY_ANY_MODE else [m]
        states = {}
        for srv in c["servers"]:
            got = [sanity_state(s, srv, x) for x in check_modes]
            states[srv] = "FAILED" if "FAILED" in got else got[0]
        row["sanity"] = states
        if any(v == "FAILED" for v in states.values()):
            row["status"] = "WITHHELD: sanity check failed for %s" % ", ".join(
                k for k, v in states.items() if v == "FAILED")
        elif any(v == "unchecked" for v in states.values()):
            row["status"] = "unchecked (no plain run of %s)" % ", ".join(
                k for k, v in states.items() if v == "unchecked")
        elif c["check"] is None:
            row["status"] = "reported"
        else:
            row["status"] = "met" if c["check"](c["value"]) else "MISSED"
        rows.append(row)
    return rows


def summarise_mode(results):
    s = {}
    interp = results.get("ceilings", {}).get("interp", {})
    ia = interp.get("agent", {}).get("16", {})
    s["interp_cpu_ns_per_msg"] = ia.get("cpu_ns_per_msg")
    s["interp_wall_ns_per_msg"] = ia.get("wall_ns_per_msg")
    s["interp_ceiling_2_workers_rps"] = 2e9 / ia["cpu_ns_per_msg"] if ia.get("cpu_ns_per_msg") else None

    a32 = find(results, "agentpool", "echo", HEADLINE, 1)
    ub = _uwsgi_best(results)
    gs = find(results, "gunicorn-sync", "echo", HEADLINE, 1)
    c32 = find(results, "c-echo", "echo", HEADLINE, 1)
    s["echo32"] = {
        "agentpool_rps": thr(a32), "agentpool_p99_ms": p99_ms(a32),
        "uwsgi_best": ub and {"server": ub["server"], "config": ub.get("server_config"), "rps": thr(ub),
                              "p99_ms": p99_ms(ub)},
        "gunicorn_sync_rps": thr(gs), "gunicorn_sync_p99_ms": p99_ms(gs),
        "c_echo_rps": thr(c32),
        "x_uwsgi_best": ratio(thr(a32), thr(ub)), "x_gunicorn_sync": ratio(thr(a32), thr(gs)),
        "p99_vs_uwsgi_best": ratio(p99_ms(a32), p99_ms(ub)),
        "share_of_c_echo": ratio(thr(a32), thr(c32)),
        "agentpool_cpu_us_per_msg": a32 and a32.get("server_cpu_us_per_msg"),
        "uwsgi_best_cpu_us_per_msg": ub and ub.get("server_cpu_us_per_msg"),
        "gunicorn_sync_cpu_us_per_msg": gs and gs.get("server_cpu_us_per_msg"),
    }
    per_peer = {}
    for name in HTTP:
        p = find(results, name, "echo", HEADLINE, 1)
        if p:
            per_peer[name] = {"rps": thr(p), "p99_ms": p99_ms(p), "x": ratio(thr(a32), thr(p)),
                              "cpu_us_per_msg": p.get("server_cpu_us_per_msg"), "error": p.get("error")}
    s["echo32"]["per_peer"] = per_peer

    d16 = find(results, "agentpool", "echo-d16", HEADLINE, 16)
    if d16 and d16.get("agentpool"):
        ap = d16["agentpool"]
        w = ap.get("worker_cpu_us_per_msg")
        m = ap.get("master_cpu_us_per_msg")
        ic = s["interp_cpu_ns_per_msg"] / 1000.0 if s["interp_cpu_ns_per_msg"] else None
        s["d16"] = {"rps": thr(d16), "p99_ms": p99_ms(d16), "worker_cpu_us_per_msg": w, "master_cpu_us_per_msg": m,
                    "interp_cpu_us_per_msg": ic, "worker_x_interp": ratio(w, ic), "master_over_worker": ratio(m, w),
                    "share_of_interp_x2": ratio(thr(d16), s["interp_ceiling_2_workers_rps"]),
                    "bench_cpu_s": d16["cpu"]["bench_s"], "foreign_cpu_s": d16["cpu"]["foreign_s"],
                    "wall_s": d16["cpu"]["wall_s"], "c_echo_d16_rps": thr(find(results, "c-echo", "echo-d16",
                                                                                HEADLINE, 16))}
    asy = {}
    for wl, depth in (("echo", 1), ("echo-d16", 16)):
        for name in ("agentpool", "agentpool-async", "agentpool-gevent"):
            p = find(results, name, wl, HEADLINE, depth)
            if p and p.get("agentpool"):
                asy["%s %s" % (name, wl)] = {
                    "rps": thr(p), "p99_ms": p99_ms(p),
                    "master_cpu_us_per_msg": p["agentpool"]["master_cpu_us_per_msg"],
                    "worker_cpu_us_per_msg": p["agentpool"]["worker_cpu_us_per_msg"],
                    "master_rw_syscalls_per_msg": p["agentpool"].get("master_rw_syscalls_per_msg"),
                    "master_ctxsw_per_msg": p["agentpool"].get("master_ctxsw_per_msg")}
    if any(k.startswith("agentpool-async") for k in asy):
        s["sync_vs_async_echo"] = asy
    sl = {}
    for n in (256, 1024, 4096):
        a = find(results, "agentpool", "sleep50", n, 1)
        mux = find(results, "agentpool", "sleep50-mux", 32, n // 32)
        bp = _sleep_best_peer(results, n)
        if not (a or bp):
            continue
        little = n / LITTLE_S
        row = {"little_rps": little, "agentpool_rps": thr(a), "agentpool_share": ratio(thr(a), little),
               "agentpool_p99_ms": p99_ms(a), "mux_rps": thr(mux), "mux_share": ratio(thr(mux), little),
               "mux_p99_ms": p99_ms(mux),
               "best_peer": bp and bp["server"], "best_peer_rps": thr(bp), "best_peer_share": ratio(thr(bp), little),
               "best_peer_p99_ms": p99_ms(bp), "p99_vs_best_peer": ratio(p99_ms(a), p99_ms(bp))}
        if a and a.get("agentpool"):
            cpu = a["cpu"]
            row["cpu_split_s"] = {"master": a["agentpool"]["master_cpu_s"],
                                  "workers": round(sum(w["cpu_s"] for w in a["agentpool"]["workers"]), 3),
                                  "bench": cpu["bench_s"], "foreign": cpu["foreign_s"],
                                  "idle": round(max(0.0, cpu["machine_capacity_s"] - cpu["machine_busy_s"]), 3),
                                  "wall": cpu["wall_s"]}
            row["master_cpu_us_per_msg"] = a["agentpool"]["master_cpu_us_per_msg"]
            row["worker_cpu_us_per_msg"] = a["agentpool"]["worker_cpu_us_per_msg"]
        a = results.get("ceilings", {}).get("asyncio", {}).get("per_loop", {}).get(str(n // 2))
        if a:
            row["asyncio_ceiling_share"] = a["share_of_little"]
            row["agentpool_vs_asyncio_ceiling"] = ratio(row["agentpool_share"], a["share_of_little"])
        sl[str(n)] = row
    s["sleep50"] = sl
    s["fetch50"] = _fetch_summary(results)
    s["tokens"] = _tokens_summary(results)
    ext = results.get("extras") or {}
    if ext and not ext.get("error"):
        wr = [x for x in ext.get("worker_rss_kb_idle", []) if x]
        bare = ext.get("bare_interpreter_rss_kb")
        mil = ext.get("million") or {}
        s["extras"] = {
            "master_rss_kb_1000_idle": ext.get("master_rss_kb_1000_idle"),
            "master_rss_kb_idle": ext.get("master_rss_kb_idle"),
            "worker_rss_kb_idle_max": max(wr) if wr else None, "bare_interpreter_rss_kb": bare,
            "worker_minus_bare_kb": (max(wr) - bare) if wr and bare else None,
            "respawn_median_ms": ext.get("respawn_fork_to_ready_median_ms"),
            "million_worker_rss_growth_kb_max": max(mil["worker_rss_growth_kb"]) if mil.get("worker_rss_growth_kb")
            else None,
        }
    s["targets"] = targets(s)
    return s


def _slow_cpu(p):
    return ((p or {}).get("slowhttp") or {}).get("cpu_us_per_req")


def _fetch_summary(results):
    """fetch50 per load: agentpool-gevent against Little's law and the best
    gevent peer, every server's row, and the slow server alone."""
    out = {}
    ceil = results.get("ceilings", {}).get("slowhttp", {})
    for n in sorted({p["inflight"] for p in results["points"] if p["workload"] == "fetch50"}):
        a = find(results, "agentpool-gevent", "fetch50", n, 1)
        bp = _sleep_best_peer(results, n, "fetch50")
        little = n / LITTLE_S
        alone = ceil.get(str(n)) or {}
        row = {"little_rps": little, "agentpool_gevent_rps": thr(a), "agentpool_gevent_share": ratio(thr(a), little),
               "agentpool_gevent_p99_ms": p99_ms(a), "agentpool_gevent_cpu_us_per_msg": _agent_cpu(a),
               "best_peer": bp and bp["server"], "best_peer_rps": thr(bp), "best_peer_share": ratio(thr(bp), little),
               "best_peer_p99_ms": p99_ms(bp), "p99_vs_best_peer": ratio(p99_ms(a), p99_ms(bp)),
               "cpu_vs_best_peer": ratio(_agent_cpu(a), _agent_cpu(bp)),
               "slow_alone_rps": thr(alone), "slow_alone_share": ratio(thr(alone), little),
               "slow_alone_p99_ms": p99_ms(alone),
               "slow_alone_cpu_us_per_req": (alone.get("slowhttp") or {}).get("cpu_us_per_req"),
               "servers": {}}
        for p in results["points"]:
            if p["workload"] == "fetch50" and p["inflight"] == n:
                row["servers"][p["server"]] = {"rps": thr(p), "share": ratio(thr(p), little), "p99_ms": p99_ms(p),
                                               "cpu_us_per_msg": _agent_cpu(p), "slow_cpu_us_per_req": _slow_cpu(p),
                                               "slow_core_share": (p.get("slowhttp") or {}).get("core_share"),
                                               "error": p.get("error")}
        out[str(n)] = row
    return out


def _master_us(p, key):
    return ((p or {}).get("agentpool") or {}).get(key)


def _tokens_summary(results):
    """tokens per server: one stream's chunks/s, the paced streams' chunks/s
    against what the agents produce, time to first chunk, and the master's
    CPU per chunk (the larger of the two points') over its CPU per echo
    message (the echo-ref point, same run), and the paced streams' CPU per
    chunk over echo's at the same event rate and connections (echo-rate)."""
    out = {}
    for name in _servers_in(results, "tokens"):
        one = find(results, name, "tokens", variant="one-stream")
        many = find(results, name, "tokens", variant="streams")
        echo = find(results, name, "tokens", variant="echo-ref")
        echo_rate = find(results, name, "tokens", variant="echo-rate")
        per_chunk = [v for v in (_master_us(one, "master_cpu_us_per_chunk"), _master_us(many, "master_cpu_us_per_chunk"))
                     if v is not None]
        echo_us = _master_us(echo, "master_cpu_us_per_msg")
        out[name] = {
            "one_stream_chunks_per_s": chunks_per_s(one),
            "one_stream_first_chunk_p50_ms": first_chunk_ms(one, "p50"),
            "one_stream_first_chunk_p99_ms": first_chunk_ms(one, "p99"),
            "one_stream_master_cpu_us_per_chunk": _master_us(one, "master_cpu_us_per_chunk"),
            "one_stream_master_rw_syscalls_per_chunk": _master_us(one, "master_rw_syscalls_per_chunk"),
            "streams_master_rw_syscalls_per_chunk": _master_us(many, "master_rw_syscalls_per_chunk"),
            "echo_master_rw_syscalls_per_msg": _master_us(echo, "master_rw_syscalls_per_msg"),
            "streams": many and many["inflight"], "streams_tokens": many and many.get("tokens"),
            "streams_chunks_per_s": chunks_per_s(many), "agents_chunks_per_s": agents_chunk_rate(many),
            "streams_share": ratio(chunks_per_s(many), agents_chunk_rate(many)),
            "first_chunk_p50_ms": first_chunk_ms(many, "p50"), "first_chunk_p99_ms": first_chunk_ms(many, "p99"),
            "streams_master_cpu_us_per_chunk": _master_us(many, "master_cpu_us_per_chunk"),
            "echo_master_cpu_us_per_msg": echo_us,
            "chunk_over_echo": ratio(max(per_chunk), echo_us) if per_chunk else None,
            "echo_rate": echo_rate and echo_rate.get("rate"),
            "echo_rate_master_cpu_us_per_msg": _master_us(echo_rate, "master_cpu_us_per_msg"),
            "paced_chunk_over_echo_same_rate": ratio(_master_us(many, "master_cpu_us_per_chunk"),
                                                     _master_us(echo_rate, "master_cpu_us_per_msg")),
            "errors": [p.get("error") for p in (one, many, echo, echo_rate) if p and p.get("error")],
        }
    return out


def targets(s):
    """The issue's targets, each with its figure and met / missed / not run."""
    t = []

    def add(name, value, goal, met):
        t.append({"target": name, "value": value, "goal": goal,
                  "status": "not measured" if met is None else ("met" if met else "MISSED")})

    e = s.get("echo32", {})
    x = e.get("x_uwsgi_best")
    add("echo 32 conns: throughput vs uWSGI's best", fx(x), ">= 3x", None if x is None else x >= 3)
    x = e.get("x_gunicorn_sync")
    add("echo 32 conns: throughput vs gunicorn sync", fx(x), ">= 8x", None if x is None else x >= 8)
    x = e.get("p99_vs_uwsgi_best")
    add("echo 32 conns: p99 vs uWSGI's best", fx(x), "<= 0.5x", None if x is None else x <= 0.5)
    d = s.get("d16", {})
    x = d.get("worker_x_interp")
    add("depth 16: worker CPU/msg vs interpreter ceiling", fx(x), "<= 1.5x", None if x is None else x <= 1.5)
    x = d.get("master_over_worker")
    add("depth 16: master CPU/msg vs a worker's", fx(x), "< 1x", None if x is None else x < 1)
    for n in ("256", "1024"):
        r = s.get("sleep50", {}).get(n, {})
        sh = r.get("agentpool_share")
        add("sleep50 %s in flight: throughput vs Little's law" % n, fmt(sh and 100 * sh, 1, "%"), ">= 99.5%",
            None if sh is None else sh >= 0.995)
        x = r.get("p99_vs_best_peer")
        add("sleep50 %s in flight: p99 vs best peer (%s)" % (n, r.get("best_peer")), fx(x), "<= 1x",
            None if x is None else x <= 1.0)
    for n, r in sorted(s.get("fetch50", {}).items(), key=lambda kv: int(kv[0])):
        sh = r.get("agentpool_gevent_share")
        add("fetch50 %s in flight: agentpool-gevent throughput vs Little's law" % n, fmt(sh and 100 * sh, 1, "%"),
            ">= %.0f%%" % (100 * FETCH_GOAL), None if sh is None else sh >= FETCH_GOAL)
    for name, r in s.get("tokens", {}).items():
        model = "gevent" if name == "agentpool-gevent" else "async"
        sh = r.get("streams_share")
        add("tokens, %s streams over 2 workers (%s): chunks/s vs what the agents produce" % (r.get("streams"), model),
            fmt(sh and 100 * sh, 1, "%"), ">= %.0f%%" % (100 * TOKENS_SHARE_GOAL),
            None if sh is None else sh >= TOKENS_SHARE_GOAL)
        x = r.get("chunk_over_echo")
        add("tokens (%s): master CPU per chunk vs per echo message at %d conns, closed loop" % (model, HEADLINE),
            fx(x), "<= %.1fx" % TOKENS_CPU_GOAL, None if x is None else x <= TOKENS_CPU_GOAL)
        x = r.get("paced_chunk_over_echo_same_rate")
        add("tokens (%s): master CPU per paced chunk vs per echo message at the same rate (%s/s over %s conns)"
            % (model, _fl(r.get("echo_rate")), r.get("streams")),
            fx(x), "<= %.1fx" % TOKENS_CPU_GOAL, None if x is None else x <= TOKENS_CPU_GOAL)
    r = s.get("sleep50", {}).get("4096", {})
    sh = r.get("agentpool_share")
    add("sleep50 4096 in flight: throughput vs Little's law", fmt(sh and 100 * sh, 1, "%"), ">= 90%",
        None if sh is None else sh >= 0.90)
    ex = s.get("extras", {})
    v = ex.get("master_rss_kb_1000_idle")
    add("master RSS with 1,000 idle connections", fmt(v and v / 1024, 1, " MiB"), "< 10 MB",
        None if v is None else v * 1024 < 10e6)
    v = ex.get("worker_minus_bare_kb")
    add("worker RSS minus bare interpreter with the agent", fmt(v and v / 1024, 1, " MiB"), "<= 3 MB",
        None if v is None else v * 1024 <= 3e6)
    v = ex.get("respawn_median_ms")
    add("respawn, fork to ready, median", fmt(v, 1, " ms"), "< 50 ms", None if v is None else v < 50)
    v = ex.get("million_worker_rss_growth_kb_max")
    add("1,000,000 echoes: worker RSS growth", fmt(v and v / 1024, 2, " MiB"), "< 1 MB",
        None if v is None else v * 1024 < 1e6)
    return t


# -- markdown -----------------------------------------------------------------------

def _servers_in(results, workload):
    names = {p["server"] for p in results["points"] if p["workload"] == workload}
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def _table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _label(results, name):
    return results["servers"].get(name, {}).get("label", name)


NOISY = 0.15  # other load above this share of the machine marks a figure with ~


def noisy(p):
    cpu = (p or {}).get("cpu") or {}
    cap = cpu.get("machine_capacity_s")
    return bool(cap) and cpu.get("foreign_s", 0) / cap > NOISY


def _cell_thr(p):
    if p is None:
        return "n/a"
    if p.get("result") is None:
        return "failed"
    v = fmt(thr(p), 0)
    return v + (" !" if p.get("error") or (p["result"].get("errors") or {}) else "") + (" ~" if noisy(p) else "")


def _cell_ms(v):
    return fmt(v, 2 if v is not None and v < 10 else 1)


def _header(results):
    s = results["summary"]
    m = results["machine"]
    L = []
    L.append("# bench/compare: %s run %s\n" % (results["mode"], results["date"]))
    L.append("Machine: %s, %s cores (%s usable), %s MB, kernel %s, %s. Load average at start %s, at end %s.\n" % (
        m["cpu_model"], m["cores"], m["cores_usable"], m["memory_mb"], m["kernel"], m.get("os"),
        m["loadavg_at_start"], m.get("loadavg_at_end")))
    if results.get("note"):
        L.append("Note: %s\n" % results["note"])
    b = results["build"]
    L.append("agentpool: `%s` (%s, CFLAGS `%s`), sources %s%s. Each point: %.0f s measured after %.1f s of "
             "warm-up, closed loop unless a rate is given. Duration of the run: %.0f s.%s\n" % (
                 b["build_dir"], b.get("agentpoold_version"), b.get("CFLAGS"), b["agentpool_srcdir"],
                 (" (git %s, %d dirty files)" % (b["agentpool_srcdir_git"]["head"][:10],
                                                  b["agentpool_srcdir_git"]["dirty_files"])
                  if b.get("agentpool_srcdir_git") else ""),
                 results["settings"]["seconds"], results["settings"]["warmup"], results["duration_s"],
                 " INTERRUPTED: %s." % results["interrupted"] if results.get("interrupted") else ""))
    sw = results["software"]
    L.append("Peers: uWSGI %s, gunicorn %s, gevent %s, Celery %s with %s, Python %s.\n" % (
        sw.get("uwsgi"), sw.get("gunicorn"), sw.get("gevent"), sw.get("celery"),
        (sw.get("redis_server") or "").split(" sha")[0], sw.get("python")))
    L.append("`!` marks a point with error answers or a bench exit status other than 0 (see the JSON); "
             "`~` a point during which other load (processes not part of this run) used more than %d%% of the "
             "machine's CPU; `failed`: no figure; `n/a`: not run.\n" % (100 * NOISY))
    pts = [p for p in results["points"] if p.get("cpu")]
    if pts:
        tot = sum(p["cpu"]["foreign_s"] for p in pts)
        cap = sum(p["cpu"]["machine_capacity_s"] for p in pts)
        L.append("Other load during the measured points: %.0f%% of the machine's CPU on average; %d of %d points "
                 "marked `~`.\n" % (100 * tot / cap if cap else 0, sum(1 for p in pts if noisy(p)), len(pts)))

    return L


def _ceilings(results):
    L = []
    ic = results.get("ceilings", {}).get("interp", {})
    if ic.get("agent"):
        L.append("## Ceilings\n")
        rows = []
        for size in sorted(ic["agent"], key=int):
            a, w = ic["agent"][size], ic.get("wsgi", {}).get(size, {})
            rows.append([size, fmt(a["cpu_ns_per_msg"] / 1000, 2), fmt(a["wall_ns_per_msg"] / 1000, 2),
                         fmt(2e9 / a["cpu_ns_per_msg"], 0), fmt(w.get("cpu_ns_per_msg") and w["cpu_ns_per_msg"] / 1000, 2)])
        L.append("Interpreter ceiling: the handler alone in a loop, one process (JSON decode, call, encode).\n")
        L.append(_table(["payload B", "EchoAgent CPU us/msg", "wall us/msg", "x2 workers msg/s",
                         "WSGI app CPU us/msg"], rows))
        L.append("Little's law for sleep50: %s.\n" % ", ".join(
            "%d in flight -> %s/s" % (n, fmt(n / LITTLE_S, 0)) for n in (256, 1024, 4096)))
    sl = results.get("ceilings", {}).get("slowhttp")
    if sl:
        if not ic.get("agent"):
            L.append("## Ceilings\n")
        L.append("The slow HTTP server alone (fetch50's service, agentpool-slowhttp: agentpool-bench straight at "
                 "it, a new TCP connection per request, as urllib does): %s.\n" % "; ".join(
                     "%s in flight: %s/s (%s of Little's law), p99 %s ms, its CPU %s us per request (%s of a core)" % (
                         n, fmt(thr(r), 0), fmt(thr(r) and 100 * thr(r) / (int(n) / LITTLE_S), 1, "%"),
                         _cell_ms(p99_ms(r)), fmt((r.get("slowhttp") or {}).get("cpu_us_per_req"), 1),
                         fmt((r.get("slowhttp") or {}).get("core_share") and
                             100 * r["slowhttp"]["core_share"], 0, "%"))
                     for n, r in sorted(sl.items(), key=lambda kv: int(kv[0]))))

    return L


def _mode_body(results, s):
    """The detailed sections of one mode: results is view(results, mode)."""
    L = []
    # targets
    L.append("## Targets\n")
    L.append(_table(["target", "measured", "goal", "status"],
                    [[t["target"], t["value"], t["goal"], t["status"]] for t in s["targets"]]))

    # echo
    conns = sorted({p["conns"] for p in results["points"] if p["workload"] == "echo"})
    if conns:
        L.append("## echo, closed loop\n")
        rows_t, rows_p, rows_c = [], [], []
        for name in _servers_in(results, "echo") + (["agentpool@d16"] if find(results, "agentpool", "echo-d16")
                                                    else []) + (["c-echo@d16"] if find(results, "c-echo", "echo-d16")
                                                                else []):
            srv, wl, depth = (name.split("@")[0], "echo-d16", 16) if "@" in name else (name, "echo", 1)
            label = _label(results, srv) + (" depth 16" if depth == 16 else "")
            pts = [find(results, srv, wl, c, depth) for c in conns]
            rows_t.append([label] + [_cell_thr(p) for p in pts])
            rows_p.append([label] + [_cell_ms(p99_ms(p)) for p in pts])
            rows_c.append([label] + [fmt(p and p.get("server_cpu_us_per_msg"), 1) for p in pts])
        head = ["server"] + ["%d conns" % c for c in conns]
        L.append("Throughput (requests/s):\n")
        L.append(_table(head, rows_t))
        L.append("p99 latency (ms):\n")
        L.append(_table(head, rows_p))
        L.append("Server CPU per request (us, all the server's processes; includes warm-up requests):\n")
        L.append(_table(head, rows_c))
        rows_s = []
        for name in _servers_in(results, "echo"):
            p = find(results, name, "echo", HEADLINE, 1)
            if p and p.get("server_rw_syscalls_per_msg") is not None:
                rows_s.append([_label(results, name), fmt(p.get("server_cpu_us_per_msg"), 1),
                               fmt(p["server_rw_syscalls_per_msg"], 2), fmt(p.get("server_ctxsw_per_msg"), 2)])
        if rows_s:
            L.append("Per request at %d connections, all the server's processes: CPU (us), read+write system calls, "
                     "context switches:\n" % HEADLINE)
            L.append(_table(["server", "CPU us", "syscalls", "ctxsw"], rows_s))
        e = s["echo32"]
        if e.get("agentpool_rps"):
            L.append("At %d connections agentpool does %s req/s: %s uWSGI's best (%s, %s req/s), %s gunicorn sync; "
                     "p99 %s of uWSGI's best; %s of the C echo ceiling.\n" % (
                         HEADLINE, fmt(e["agentpool_rps"], 0), fx(e["x_uwsgi_best"]),
                         e["uwsgi_best"] and "%s %s" % (e["uwsgi_best"]["server"], json.dumps(e["uwsgi_best"]["config"])),
                         fmt(e["uwsgi_best"] and e["uwsgi_best"]["rps"], 0), fx(e["x_gunicorn_sync"]),
                         fx(e["p99_vs_uwsgi_best"]), fmt(e["share_of_c_echo"] and 100 * e["share_of_c_echo"], 1, "%")))
        tune = [p for p in results["points"] if p["workload"] == "uwsgi-tune"]
        if tune:
            base = find(results, "uwsgi-threads", "echo", HEADLINE, 1)
            L.append("uWSGI thread counts at %d connections: %s.\n" % (HEADLINE, ", ".join(
                "%s threads/process %s req/s p99 %s ms" % (p.get("server_config", {}).get("threads"), _cell_thr(p),
                                                           _cell_ms(p99_ms(p))) for p in ([base] if base else []) + tune)))

    d = s.get("d16")
    if d:
        L.append("## agentpool pipelined, depth 16, %d connections: CPU per message\n" % HEADLINE)
        L.append(_table(["figure", "value"], [
            ["throughput", "%s msg/s (C echo ceiling at depth 16: %s)" % (fmt(d["rps"], 0), fmt(d["c_echo_d16_rps"], 0))],
            ["worker CPU per message", "%s us" % fmt(d["worker_cpu_us_per_msg"], 2)],
            ["master CPU per message", "%s us" % fmt(d["master_cpu_us_per_msg"], 2)],
            ["interpreter ceiling CPU per message", "%s us" % fmt(d["interp_cpu_us_per_msg"], 2)],
            ["worker / interpreter ceiling", fx(d["worker_x_interp"])],
            ["master / worker", fx(d["master_over_worker"])],
            ["throughput / (2 x interpreter ceiling)", fmt(d["share_of_interp_x2"] and 100 * d["share_of_interp_x2"], 1, "%")],
            ["CPU over the point (s): bench / other load / wall", "%s / %s / %s" % (
                fmt(d["bench_cpu_s"], 2), fmt(d["foreign_cpu_s"], 2), fmt(d["wall_s"], 2))],
        ]))
        rows = []
        for p in results["points"]:
            if p["server"].startswith("agentpool") and p.get("agentpool") and p.get("phase") == "main":
                ap = p["agentpool"]
                ws = [w for w in ap["workers"] if w.get("rw_syscalls_per_msg") is not None]
                wsys = sum(w["rw_syscalls_per_msg"] * w["messages"] for w in ws) / max(1, sum(w["messages"] for w in ws))
                wcs = sum(w["ctxsw_per_msg"] * w["messages"] for w in ws) / max(1, sum(w["messages"] for w in ws))
                rows.append([p["server"], p["workload"], p["conns"], p["depth"], p.get("payload_bytes") or 16,
                             _cell_thr(p),
                             fmt(ap["master_cpu_us_per_msg"], 2), fmt(ap["worker_cpu_us_per_msg"], 2),
                             fmt(ap.get("master_rw_syscalls_per_msg"), 2), fmt(ws and wsys, 2),
                             fmt(ap.get("master_ctxsw_per_msg"), 2), fmt(ws and wcs, 2)])
        L.append("Every agentpool point, per message: CPU (us), read+write system calls (/proc/PID/io syscr+syscw) "
                 "and context switches (voluntary + involuntary):\n")
        L.append(_table(["server", "workload", "conns", "depth", "payload B", "msg/s", "master CPU", "worker CPU",
                         "master syscalls", "worker syscalls", "master ctxsw", "worker ctxsw"], rows))

    # payloads
    sizes = sorted({p["payload_bytes"] for p in results["points"] if p["workload"] == "payload"})
    if sizes:
        L.append("## echo payload sizes, %d connections\n" % HEADLINE)
        rows = []
        for name in _servers_in(results, "payload"):
            pts = [find(results, name, "payload", HEADLINE, 1, b) for b in sizes]
            rows.append([_label(results, name)] + ["%s / %s" % (_cell_thr(p), _cell_ms(p99_ms(p))) for p in pts])
        L.append("Throughput (req/s) / p99 (ms):\n")
        L.append(_table(["server"] + ["%d B" % b for b in sizes], rows))

    # sleep50
    ns = sorted({p["inflight"] for p in results["points"] if p["workload"] == "sleep50"})
    if ns:
        L.append("## sleep50 (the handler waits 50 ms), in flight = connections x depth\n")
        rows = []
        names = _servers_in(results, "sleep50")
        for name in names:
            pts = [find(results, name, "sleep50", n, 1) for n in ns]
            rows.append([_label(results, name)] + ["%s (%s) / %s" % (
                _cell_thr(p), fmt(p and thr(p) and 100 * thr(p) / (n / LITTLE_S), 1, "%"), _cell_ms(p99_ms(p)))
                for p, n in zip(pts, ns)])
        if find(results, "agentpool", "sleep50-mux"):
            pts = [find(results, "agentpool", "sleep50-mux", 32, n // 32) for n in ns]
            rows.append(["agentpool, 32 conns x depth n/32"] + ["%s (%s) / %s" % (
                _cell_thr(p), fmt(p and thr(p) and 100 * thr(p) / (n / LITTLE_S), 1, "%"), _cell_ms(p99_ms(p)))
                for p, n in zip(pts, ns)])
        aio = results.get("ceilings", {}).get("asyncio", {}).get("per_loop", {})
        if aio:
            cells = []
            for n in ns:
                a = aio.get(str(n // 2))
                cells.append("%s (%s) / %s" % (fmt(a["share_of_little"] * n / LITTLE_S, 0),
                                               fmt(100 * a["share_of_little"], 1, "%"), _cell_ms(a["p99_ms"]))
                             if a else "n/a")
            rows.append(["asyncio alone: n/2 sleeps per loop, x2 loops, no I/O"] + cells)
        rows.append(["Little's law"] + [fmt(n / LITTLE_S, 0) for n in ns])
        L.append("Throughput (req/s) (share of Little's law) / p99 (ms):\n")
        L.append(_table(["server"] + ["%d in flight" % n for n in ns], rows))
        for n, r in sorted(s.get("sleep50", {}).items(), key=lambda kv: int(kv[0])):
            if r.get("cpu_split_s"):
                c = r["cpu_split_s"]
                L.append("agentpool at %s in flight, CPU seconds over %.1f s of wall time (2 cores = %.1f s): master %s, "
                         "workers %s, load generator %s, other load on the machine %s, idle %s; per message: master %s us, "
                         "worker %s us.\n" % (n, c["wall"], 2 * c["wall"], c["master"], c["workers"], c["bench"],
                                              c["foreign"], c["idle"], fmt(r.get("master_cpu_us_per_msg"), 1),
                                              fmt(r.get("worker_cpu_us_per_msg"), 1)))

    L += _fetch_md(results, s)
    L += _tokens_md(results, s)

    # celery
    cel = [p for p in results["points"] if p["server"] == "celery"]
    if cel:
        L.append("## Celery (task-queue view, not an HTTP server)\n")
        L.append("A Python client keeps K tasks in flight (apply_async, results fetched by MGET on the result keys).\n")
        rows = []
        for p in cel:
            r = p.get("result") or {}
            rows.append([p["workload"], p["conns"], _cell_thr(p), _cell_ms(p50_ms(p)), _cell_ms(p99_ms(p)),
                         fmt(p.get("server_cpu_us_per_msg"), 0),
                         fmt(r.get("cpu", {}).get("utilization") and 100 * r["cpu"]["utilization"], 0, "%"),
                         p.get("error") or ""])
        L.append(_table(["task", "in flight", "tasks/s", "p50 ms", "p99 ms", "server CPU us/task", "client CPU",
                         "error"], rows))

    # open loop
    ol = [p for p in results["points"] if p["workload"] == "openloop"]
    if ol:
        L.append("## Open loop: latency against offered load (%d connections, depth 1)\n" % OPEN_CONNS_DOC)
        rows = []
        for p in ol:
            r = p.get("result") or {}
            lat = r.get("latency_us", {})
            rows.append([_label(results, p["server"]), fmt(p["rate"], 0), "%.0f%%" % (100 * p.get("fraction", 0)),
                         _cell_thr(p), _cell_ms(p50_ms(p)), _cell_ms(p99_ms(p)),
                         _cell_ms(lat.get("p99_9") and lat["p99_9"] / 1000.0),
                         (r.get("outstanding") or {}).get("count", "-")])
        L.append(_table(["server", "offered/s", "of reference", "done/s", "p50 ms", "p99 ms", "p99.9 ms",
                         "outstanding"], rows))

    return [ln.replace("## ", "### ", 1) if ln.startswith("## ") else ln for ln in L]


def _fetch_md(results, s):
    """The fetch50 section of one mode."""
    ns = sorted({p["inflight"] for p in results["points"] if p["workload"] == "fetch50"})
    if not ns:
        return []
    L = ["## fetch50 (the handler GETs a local URL that answers after 50 ms), in flight = connections\n"]
    L.append("The same plain `def` code everywhere: pyagents.examples.fetch's `fetch()`, "
             "`urllib.request.urlopen(URL)` of agentpool-slowhttp's /delay/50 on 127.0.0.1, a new TCP connection "
             "per request; agentpool-gevent runs it as FetchAgent in workerModel gevent, gunicorn and uWSGI gevent "
             "as bench/compare.d/app.py's /fetch50. There is no agentpool async line: no async agent runs the same "
             "urllib code. The slow server's CPU is counted as neither the server's nor other load.\n")
    rows = []
    for name in _servers_in(results, "fetch50"):
        pts = [find(results, name, "fetch50", n, 1) for n in ns]
        rows.append([_label(results, name)] + ["%s (%s) / %s" % (
            _cell_thr(p), fmt(p and thr(p) and 100 * thr(p) / (n / LITTLE_S), 1, "%"), _cell_ms(p99_ms(p)))
            for p, n in zip(pts, ns)])
    ceil = results.get("ceilings", {}).get("slowhttp", {})
    if ceil:
        rows.append(["the slow server alone (agentpool-bench at it)"] + [
            "%s (%s) / %s" % (fmt(thr(ceil.get(str(n))), 0),
                              fmt(thr(ceil.get(str(n))) and 100 * thr(ceil[str(n)]) / (n / LITTLE_S), 1, "%"),
                              _cell_ms(p99_ms(ceil.get(str(n))))) if ceil.get(str(n)) else "n/a" for n in ns])
    rows.append(["Little's law"] + [fmt(n / LITTLE_S, 0) for n in ns])
    L.append("Throughput (req/s) (share of Little's law) / p99 (ms):\n")
    L.append(_table(["server"] + ["%d in flight" % n for n in ns], rows))
    rows = []
    for name in _servers_in(results, "fetch50"):
        pts = [find(results, name, "fetch50", n, 1) for n in ns]
        rows.append([_label(results, name)] + ["%s / %s (%s)" % (
            fmt(_agent_cpu(p), 1), fmt(_slow_cpu(p), 1),
            fmt(p and (p.get("slowhttp") or {}).get("core_share") is not None
                and 100 * p["slowhttp"]["core_share"], 0, "%")) for p in pts])
    L.append("CPU per request (us): the server's (all its processes, warm-up included) / the slow server's (its "
             "share of one core during the point):\n")
    L.append(_table(["server"] + ["%d in flight" % n for n in ns], rows))
    for n, r in sorted(s.get("fetch50", {}).items(), key=lambda kv: int(kv[0])):
        if r.get("agentpool_gevent_rps") is not None:
            L.append("At %s in flight agentpool-gevent does %s/s, %s of Little's law (goal %.0f%%); p99 %s ms, %s the "
                     "best gevent peer's (%s, %s ms); server CPU per request %s the best peer's.\n" % (
                         n, fmt(r["agentpool_gevent_rps"], 0),
                         fmt(r["agentpool_gevent_share"] and 100 * r["agentpool_gevent_share"], 1, "%"),
                         100 * FETCH_GOAL, _cell_ms(r["agentpool_gevent_p99_ms"]), fx(r["p99_vs_best_peer"]),
                         r["best_peer"], _cell_ms(r["best_peer_p99_ms"]), fx(r["cpu_vs_best_peer"])))
    return L


def _tokens_md(results, s):
    """The tokens section of one mode."""
    tk = s.get("tokens") or {}
    if not tk:
        return []
    r0 = next(iter(tk.values()))
    pace = r0.get("streams_tokens") or {}
    L = ["## tokens: streamed answers (pyagents.examples.tokens, agentpool-bench --stream)\n"]
    L.append("agentpool runs AsyncTokensAgent (async model), agentpool-gevent GeventTokensAgent (gevent model), 2 "
             "workers each. One stream: a request of %s chunks with no pause, one connection, closed loop. "
             "%s streams: %s connections x 1, each stream %s chunks of %s bytes %s ms apart; the agents then produce "
             "streams x n / ((n - 1) x ms) chunks/s (the first chunk of a stream comes at once). Time to first "
             "chunk is from the request's write. Master CPU = agentpoold's own user + sys (/proc/PID/stat) over the "
             "point (warm-up included), over the chunks it sent (pool.stats streams.chunksSent); the echo "
             "message's is the same server kind's echo at %d connections in this run (closed loop: messages share "
             "the master's wake-ups), and open loop at the paced streams' rate over as many connections (the same "
             "event rate: each event its own wake-up, as each paced chunk is). No peer streams NDJSON, so "
             "there is no peer line.\n" % (
                 fmt(float(_first_tokens(results, "one-stream").get("n", 0)), 0),
                 r0.get("streams"), r0.get("streams"), pace.get("n"), pace.get("size"), pace.get("ms"), HEADLINE))
    rows = []
    for name, r in tk.items():
        rows.append([_label(results, name), _fl(r["one_stream_chunks_per_s"]),
                     "%s / %s" % (_cell_ms(r["one_stream_first_chunk_p50_ms"]),
                                  _cell_ms(r["one_stream_first_chunk_p99_ms"])),
                     "%s (%s)" % (_fl(r["streams_chunks_per_s"]),
                                  fmt(r["streams_share"] and 100 * r["streams_share"], 1, "%")),
                     _fl(r["agents_chunks_per_s"]),
                     "%s / %s" % (_cell_ms(r["first_chunk_p50_ms"]), _cell_ms(r["first_chunk_p99_ms"])),
                     "%s / %s" % (fmt(r["one_stream_master_cpu_us_per_chunk"], 2),
                                  fmt(r["streams_master_cpu_us_per_chunk"], 2)),
                     "%s / %s" % (fmt(r["echo_master_cpu_us_per_msg"], 2),
                                  fmt(r["echo_rate_master_cpu_us_per_msg"], 2)),
                     "%s / %s" % (fx(r["chunk_over_echo"]), fx(r["paced_chunk_over_echo_same_rate"])),
                     "%s / %s / %s" % (fmt(r["one_stream_master_rw_syscalls_per_chunk"], 3),
                                       fmt(r["streams_master_rw_syscalls_per_chunk"], 3),
                                       fmt(r["echo_master_rw_syscalls_per_msg"], 2)),
                     "; ".join(r["errors"])])
    n = r0.get("streams")
    L.append(_table(["server", "one stream chunks/s", "one stream first chunk p50 / p99 ms",
                     "%s streams chunks/s (of agents')" % n, "agents produce/s",
                     "%s streams first chunk p50 / p99 ms" % n, "master us/chunk: one / %s streams" % n,
                     "master us/echo msg: %s conns closed loop / same rate as the streams" % HEADLINE,
                     "chunk / echo: larger chunk vs closed-loop echo / paced chunk vs same-rate echo",
                     "master read+write calls: per chunk one / %s streams / per echo msg" % n, "errors"], rows))
    return L


def _fl(v):
    """A count or rate as fmt prints a float (thousands separated)."""
    return fmt(None if v is None else float(v), 0)


def _first_tokens(results, variant):
    p = next((q for q in results["points"] if q["workload"] == "tokens" and q.get("variant") == variant), None)
    return (p or {}).get("tokens") or {}


def _tail(results):
    L = []
    ext = results.get("extras")
    if ext:
        L.append("## agentpool: memory and respawn\n")
        if ext.get("error"):
            L.append("failed: %s\n" % ext["error"])
        else:
            mil = ext.get("million") or {}
            L.append(_table(["figure", "value"], [
                ["master RSS idle / with 1,000 idle connections", "%s / %s KiB (%s connections seen)" % (
                    ext.get("master_rss_kb_idle"), ext.get("master_rss_kb_1000_idle"), ext.get("idle_connections_seen"))],
                ["worker RSS idle (each)", "%s KiB" % ext.get("worker_rss_kb_idle")],
                ["bare /usr/bin/python3 that imported the agent", "%s KiB" % ext.get("bare_interpreter_rss_kb")],
                ["respawn fork-to-ready (ms, each SIGKILLed worker)", "%s (median %s)" % (
                    ext.get("fork_to_ready_ms_respawns"), ext.get("respawn_fork_to_ready_median_ms"))],
                ["kill to replacement ready, as seen by pool.stats (ms)",
                 str([k["kill_to_ready_ms"] for k in ext.get("respawn_kills", [])])],
                ["1,000,000 echoes (8 conns x depth 16)", "%s msg/s, worker RSS %s -> %s KiB" % (
                    fmt(mil.get("throughput_rps"), 0), mil.get("worker_rss_kb_before"), mil.get("worker_rss_kb_after"))
                 if mil else "not run"],
            ]))

    if results.get("probes"):
        L.append("## Probes\n")
        for p in results["probes"]:
            L.append("- %s: %s\n" % (p["server"], p.get("error") or "ok"))

    if results.get("failures"):
        L.append("## Failures\n")
        for f in results["failures"]:
            L.append("- %s %s conns %s depth %s%s: %s\n" % (f["server"], f["workload"], f["conns"], f["depth"],
                                                        ", sched %s" % f["sched"] if f.get("sched") else "", f["error"]))

    L.append("## Command lines\n")
    L.append("`$TMP` is the run's temp dir (%s); `N` numbers the starts. Every point's exact load command is in "
             "the JSON.\n" % results.get("tmp_dir"))
    seen = set()
    for name, srv in results["servers"].items():
        for st in srv["starts"]:
            cmd = _norm(results, " ".join(_q(a) for a in st["command"]))
            if (cmd, bool(st.get("ok"))) in seen:
                continue
            seen.add((cmd, bool(st.get("ok"))))
            L.append("- %s: `%s`%s" % (name, cmd, "" if st.get("ok") else " (FAILED: %s)" % st.get("error")))
    L.append("")
    for wl in ("echo", "echo-d16", "sleep50", "fetch50", "tokens", "openloop", "celery-echo"):
        ex = next((p for p in results["points"] if p.get("command") and p["workload"] == wl), None)
        if ex:
            L.append("- load, %s: `%s`" % (wl, _norm(results, " ".join(_q(a) for a in ex["command"]))))
    if results.get("slowhttp"):
        sh = results["slowhttp"]
        L.append("- fetch50's slow HTTP server: `%s` (%s)" % (_norm(results, " ".join(_q(a) for a in sh["command"])),
                                                           sh.get("url") or "FAILED: %s" % sh.get("error")))
    L.append("- interpreter ceiling: `PYTHONPATH=%s %s`" % (
        results.get("ceilings", {}).get("interp_env", {}).get("PYTHONPATH"),
        " ".join(_q(a) for a in results.get("ceilings", {}).get("interp_command", []))))
    L.append("")
    if results.get("plots"):
        L.append("\n## Plots\n")
        for png in results["plots"]:
            L.append("![%s](%s)\n" % (os.path.basename(png), os.path.basename(png)))
    return L


def markdown(results):
    s = results["summary"]
    L = _header(results)
    L += _sched_md(results, s)
    L += _headline_md(results, s)
    L += _sanity_md(results, s)
    L += _side_by_side(results, s)
    L += _ceilings(results)
    for m in s["modes"]:
        L.append("## Details: sched %s (%s)\n" % (m, MODE_TEXT[m]))
        L += _mode_body(view(results, m), s["by_mode"][m])
    L += _tail(results)
    return "\n".join(L)


def _sched_md(results, s):
    m = results["machine"]
    st = results["settings"]
    L = ["## Scheduling\n"]
    L.append("`sched_autogroup_enabled` = %s (1: every session is a scheduling group of its own, so a server in its "
             "own session competes as one group against the load generator's group). bench/compare ran in session "
             "%s, %s. Modes measured: %s. `--sched %s`%s.\n" % (
                 m.get("sched_autogroup_enabled", "not recorded"), m.get("compare_session", "?"),
                 m.get("compare_autogroup", "?"),
                 ", ".join("%s (%s)" % (x, MODE_TEXT[x]) for x in s["modes"]), st.get("sched", "own (old run)"),
                 ": headline points (echo at %d connections, depth 1 and agentpool's depth 16, uWSGI's thread "
                 "variants, sleep50, fetch50, Celery) in both modes, every other point (other connection counts, payload "
                 "sizes, agentpool-async, the C echo ceiling, the open loop, the extras) in `%s` only"
                 % (HEADLINE, st.get("sched_single_mode")) if st.get("sched") == "both" else ""))
    pts = [p for p in results["points"] if p.get("autogroups")]
    bad = [p for p in pts if not p["autogroups"].get("as_intended")]
    L.append("Autogroups checked at every point (the server's processes and the load generator, "
             "/proc/PID/autogroup): %d of %d points ran as their mode says%s.\n" % (
                 len(pts) - len(bad), len(pts),
                 "; NOT: " + ", ".join("%s %s %d (%s)" % (p["server"], p["workload"], p["conns"], sched_of(p))
                                      for p in bad) if bad else ""))
    return L


def _headline_md(results, s):
    L = ["## Headline\n"]
    fails = [r for r in s["sanity"] if any(not v["ok"] for v in r["modes"].values()) or r["plain_rps"] is None]
    if fails:
        L.append("**SANITY CHECK FAILED** (compare's figure differs from the plain run by more than %d%%, or the "
                 "plain run failed): %s. A headline figure that involves such a server in such a mode is "
                 "withheld.\n" % (100 * SANITY_TOLERANCE, "; ".join(
                     "**%s %s %d in flight: %s**" % (r["server"], r["workload"], r["inflight"], ", ".join(
                         "%s %s" % (m, "%+.0f%%" % (100 * v["deviation"]) if v["deviation"] is not None else "failed")
                         for m, v in r["modes"].items() if not v["ok"]) or "plain run failed: %s" % r.get("error"))
                     for r in fails)))
    if not s["sanity"]:
        L.append("**No sanity runs** (--no-sanity, interrupted, or a run from before the check): no headline figure is checked.\n")
    L.append("Each figure in every mode measured; the headline value is the one less favourable to agentpool, "
             "with its mode. agentpool speaks NDJSON on a Unix socket, the peers HTTP on a Unix socket (uWSGI "
             "gevent and gunicorn sync with a new connection per request), Celery tasks through Redis: the same "
             "handler, not the same protocol. The `agentpool, HTTP front door` line (agentpool-http, its rows "
             "marked \"front door\") is the same pool over HTTP/1.1 keep-alive on a Unix socket (httpListen "
             "unix:, docs/http.md): the peers' own protocol and transport. "
             "Server CPU per request is all the server's processes' user+sys time (/proc/PID/stat) over the whole "
             "load run, warm-up included, divided by the requests answered in that run; it does not depend on how "
             "the scheduler shares the cores.\n")
    modes = s["modes"]
    rows = [[r["target"], r["goal"]] + [r["by_mode"].get(m, "-") for m in modes]
            + [("%s (%s)" % (r["display"], r["mode"])) if r.get("mode") else "-", r["status"]]
            for r in s["headline"]]
    L.append(_table(["target", "goal"] + ["sched %s" % m for m in modes] + ["headline (mode)", "status"], rows))
    return L


def _sanity_md(results, s):
    if not s["sanity"]:
        return []
    L = ["## Sanity: each server the plain way\n",
         "Each server once as a user would run it: one `bash -c` in a fresh session starts the server in the "
         "background, waits for an answer, warms it up for a second, runs the same load command and stops the "
         "server (the script is in the JSON, `sanity[].command`). compare's figure at the same point in each mode, "
         "and how far it is from the plain one (more than %d%%: FAILED).\n" % (100 * SANITY_TOLERANCE)]
    rows = []
    for r in s["sanity"]:
        cells = []
        for m in s["modes"]:
            v = r["modes"].get(m)
            cells.append("n/a" if v is None else "%s / %s ms (%s)%s" % (
                fmt(v["rps"], 0), _cell_ms(v["p99_ms"]),
                "%+.0f%%" % (100 * v["deviation"]) if v["deviation"] is not None else "-",
                "" if v["ok"] else " **FAILED**"))
        rows.append([_label(results, r["server"]), r["workload"], r["inflight"],
                     "%s / %s ms" % (fmt(r["plain_rps"], 0), _cell_ms(r["plain_p99_ms"]))
                     if r["plain_rps"] is not None else "FAILED: %s" % r.get("error")] + cells)
    L.append(_table(["server", "workload", "in flight", "plain req/s / p99"]
                    + ["sched %s req/s / p99 (vs plain)" % m for m in s["modes"]], rows))
    return L


def _side_by_side(results, s):
    """Every point measured in more than one mode, the modes side by side."""
    modes = s["modes"]
    if len(modes) < 2:
        return []
    keys = []
    for p in results["points"]:
        k = (p["server"], p["workload"], p["conns"], p["depth"], p.get("payload_bytes"), p.get("rate"),
             json.dumps(p.get("server_config"), sort_keys=True))
        if k not in keys:
            keys.append(k)
    rows = []
    for k in keys:
        pts = {sched_of(p): p for p in results["points"]
               if (p["server"], p["workload"], p["conns"], p["depth"], p.get("payload_bytes"), p.get("rate"),
                   json.dumps(p.get("server_config"), sort_keys=True)) == k}
        if len(pts) < 2:
            continue
        cells = []
        for m in modes:
            p = pts.get(m)
            cells += [_cell_thr(p), _cell_ms(p99_ms(p)), fmt(_agent_cpu(p), 1)]
        a, b = pts.get(modes[0]), pts.get(modes[1])
        rows.append([_label(results, k[0]), k[1] + (" threads %s" % json.loads(k[6]).get("threads")
                                                     if k[1] == "uwsgi-tune" else ""), "%d x %d" % (k[2], k[3])]
                    + cells + [fx(ratio(thr(b), thr(a)))])
    L = ["## Both modes side by side\n",
         "Throughput (req/s), p99 (ms) and server CPU per request (us) of every point measured both ways; the last "
         "column is %s throughput over %s.\n" % (modes[1], modes[0])]
    head = ["server", "workload", "conns x depth"]
    for m in modes:
        head += ["%s req/s" % m, "%s p99" % m, "%s CPU us" % m]
    L.append(_table(head + ["%s / %s" % (modes[1], modes[0])], rows))
    return L


OPEN_CONNS_DOC = 64


def _norm(results, cmd):
    import re
    tmp = results.get("tmp_dir")
    if tmp:
        cmd = cmd.replace(tmp, "$TMP")
    return re.sub(r"-\d+\.sock", "-N.sock", cmd)


def _q(a):
    a = str(a)
    return "'%s'" % a if any(c in a for c in " {}\"*") else a


# -- plots --------------------------------------------------------------------------

# one colour per server in every plot; a server not listed gets a fixed one from its name
COLOURS = {"agentpool": "#1f4e9c", "agentpool-async": "#3fa7d6", "agentpool-gevent": "#17becf",
           "c-echo": "#555555", "uwsgi-threads": "#d62728", "uwsgi-gevent": "#ff7f0e",
           "gunicorn-sync": "#2ca02c", "gunicorn-gthread": "#9467bd", "gunicorn-gevent": "#8c564b",
           "celery": "#e377c2"}
SPARE = ["#bcbd22", "#7f7f00", "#008080", "#800080", "#aa6e28", "#000080"]
DASH = {"same": 1, "own": 2}  # solid: servers in the load generator's session; dashed: their own


def colour(name):
    if name in COLOURS:
        return COLOURS[name]
    return SPARE[sum(name.encode()) % len(SPARE)]


def _legend(results, server, variant, mode, modes):
    wire = results["servers"].get(server, {}).get("protocol") or getattr(peers.BY_NAME.get(server), "wire", None)
    t = _label(results, server) + (" " + variant if variant else "") + (" (%s)" % wire if wire else "")
    return t + (", sched %s" % mode if len(modes) > 1 else "")


def _failed(p):
    return p.get("result") is None or bool(p.get("error"))


def plots(results, base, tmp):
    """Write the PNGs next to base (base-NAME.png); returns their paths.
    Every server has its colour (COLOURS) in every plot, every mode its
    dash (DASH); a failed point is an x at the bottom axis in its server's
    colour and is named in a note under the plot, as are points not run."""
    if not shutil.which("gnuplot"):
        return []
    d = os.path.join(tmp, "plots")
    os.makedirs(d, exist_ok=True)
    made = []
    modes = modes_in(results)
    single = results.get("settings", {}).get("sched_single_mode") or (modes[0] if modes else "own")

    def draw(name, title, xlabel, ylabel, curves, xkey, ykey, extra="", logx=True, logy=True, refs=""):
        """curves: (server, variant label, point filter). One line per curve
        and mode; failed points as x marks, missing ones in the notes."""
        lines, labels, notes = [], [], []
        mine = [p for srv, _, flt in curves for p in results["points"] if p["server"] == srv and flt(p)]
        allx = sorted({xkey(p) for p in mine})
        both = len({sched_of(p) for p in mine}) > 1
        for srv, variant, flt in curves:
            for mode in modes:
                pts = [p for p in results["points"] if p["server"] == srv and flt(p) and sched_of(p) == mode]
                if not pts:
                    continue
                # a figure a log axis cannot show (0 req/s) is a failure too, not a gap
                nofig = [p for p in pts if _failed(p) or ykey(p) is None or (logy and ykey(p) <= 0)]
                good = sorted((xkey(p), ykey(p)) for p in pts if not any(p is q for q in nofig))
                bad = sorted({xkey(p) for p in nofig})
                title_ = _legend(results, srv, variant, mode, modes)
                pt = 6 if variant else 7  # hollow: a variant (depth 16, pipelined)
                dt = DASH.get(mode, 1) if both else 1
                if good:
                    path = os.path.join(d, "%s-%s-%s-%s.dat" % (name, srv, len(lines), mode))
                    with open(path, "w") as f:
                        for x, y in good:
                            f.write("%s %s\n" % (x, y))
                    lines.append("'%s' using 1:2 with linespoints lw 2 dt %d pt %d ps 1.2 lc rgb '%s' title '%s'"
                                 % (path, dt, pt, colour(srv), title_.replace("'", "")))
                else:
                    lines.append("NaN with linespoints lw 2 dt %d pt %d lc rgb '%s' title '%s (no figure)'"
                                 % (dt, pt, colour(srv), title_.replace("'", "")))
                for x in bad:
                    labels.append("set label 'x' at first %s, graph 0.025 center front tc rgb '%s' font ',16'"
                                  % (x, colour(srv)))
                if bad:
                    notes.append("failed (x): %s at %s" % (title_, ", ".join(str(x) for x in bad)))
                if mode == single or not both:
                    miss = [x for x in allx if x not in {xkey(p) for p in pts}]
                    if miss:
                        notes.append("not run: %s at %s" % (title_, ", ".join(str(x) for x in miss)))
        if not lines:
            return
        if both:
            notes.insert(0, "solid: servers in the load generator's session (same); dashed: each server in its own "
                            "session (own), headline points only")
        notes = notes[:12]
        script = ["set terminal pngcairo size 1500,%d noenhanced font ',10'" % (720 + 14 * len(notes)),
                  "set output '%s-%s.png'" % (base, name), "set grid", "set key outside right top",
                  "set title '%s'" % title, "set xlabel '%s'" % xlabel, "set ylabel '%s'" % ylabel,
                  "set bmargin %d" % (4 + len(notes))]
        if logx:
            script.append("set logscale x")
        if logy:
            script.append("set logscale y")
        script.append(extra)
        script += labels
        for i, n in enumerate(notes):
            script.append("set label \"%s\" at screen 0.01, screen %.4f left font ',9'"
                          % (n.replace('"', "'"), (len(notes) - i) * 14.0 / (720 + 14 * len(notes))))
        script.append("plot " + ", \\\n  ".join(([refs] if refs else []) + lines))
        gp = os.path.join(d, name + ".gp")
        with open(gp, "w") as f:
            f.write("\n".join(script) + "\n")
        out = "%s-%s.png" % (base, name)
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
        if r.returncode == 0 and os.path.exists(out):
            made.append(out)
        else:
            results.setdefault("plot_errors", []).append("%s: %s" % (name, r.stderr[-300:]))

    def wl(workload, depth=None, nopayload=True):
        return lambda p: (p["workload"] == workload and (depth is None or p["depth"] == depth)
                          and not (nopayload and p.get("payload_bytes")))

    names = [n for n in ORDER if n in {p["server"] for p in results["points"]}]
    names += sorted({p["server"] for p in results["points"]} - set(names))
    echo = [(n, "", wl("echo", 1)) for n in names if find(results, n, "echo", depth=1)]
    echo += [(n, "depth 16", wl("echo-d16", 16)) for n in names if find(results, n, "echo-d16")]
    echo += [(n, "", wl("celery-echo")) for n in names if find(results, n, "celery-echo")]
    conns = lambda p: p["conns"]  # noqa: E731
    xt = "set xtics (1, 8, 32, 128, 1000)"
    xl = "connections (Celery: tasks in flight)"
    draw("echo-throughput", "echo: throughput against connections (2 workers each)", xl, "requests/s",
         echo, conns, thr, xt)
    draw("echo-p99", "echo: p99 latency against connections", xl, "p99 (ms)", echo, conns, p99_ms, xt)
    draw("echo-cpu", "echo: server CPU per request (all its processes, user+sys) against connections",
         xl, "CPU per request (us)", echo, conns, _agent_cpu, xt)

    sleep = [(n, "", wl("sleep50", 1)) for n in names if find(results, n, "sleep50", depth=1)]
    sleep += [(n, "32 conns, pipelined", wl("sleep50-mux")) for n in names if find(results, n, "sleep50-mux")]
    sleep += [(n, "", wl("celery-sleep50")) for n in names if find(results, n, "celery-sleep50")]
    inflight = lambda p: p["inflight"]  # noqa: E731
    sx = "set xrange [200:5000]\nset xtics (256, 1024, 4096)"
    draw("sleep50-throughput", "sleep50: throughput against requests in flight", "requests in flight", "requests/s",
         sleep, inflight, thr, sx, refs="x/0.05 with lines lw 1 dt 3 lc rgb 'black' title \"Little's law\"")
    draw("sleep50-p99", "sleep50: p99 latency against requests in flight", "requests in flight", "p99 (ms)",
         sleep, inflight, p99_ms, sx, refs="50 with lines dt 3 lc rgb 'black' title '50 ms'")
    draw("sleep50-cpu", "sleep50: server CPU per request against requests in flight", "requests in flight",
         "CPU per request (us)", sleep, inflight, _agent_cpu, sx)

    fetch = [(n, "", wl("fetch50", 1)) for n in names if find(results, n, "fetch50")]
    fx_ = "set xrange [200:1300]\nset xtics (256, 1024)"
    draw("fetch50-throughput", "fetch50 (urllib GET of a URL that answers after 50 ms): throughput against requests "
         "in flight", "requests in flight", "requests/s", fetch, inflight, thr, fx_,
         refs="x/0.05 with lines lw 1 dt 3 lc rgb 'black' title \"Little's law\"")
    draw("fetch50-p99", "fetch50: p99 latency against requests in flight", "requests in flight", "p99 (ms)",
         fetch, inflight, p99_ms, fx_, refs="50 with lines dt 3 lc rgb 'black' title '50 ms'")
    draw("fetch50-cpu", "fetch50: server CPU per request against requests in flight (the slow server's not included)",
         "requests in flight", "CPU per request (us)", fetch, inflight, _agent_cpu, fx_)

    ol = [(n, "", wl("openloop")) for n in names if find(results, n, "openloop")]
    draw("openloop", "echo, open loop: p99 latency (from the intended send time) against offered load "
         "(%d connections)" % OPEN_CONNS_DOC, "offered load (requests/s)", "p99 (ms)", ol, lambda p: round(p["rate"]),
         p99_ms, logx=False)

    if len({p["payload_bytes"] for p in results["points"] if p["workload"] == "payload"}) > 1:
        pl = [(n, "", wl("payload", nopayload=False)) for n in names if find(results, n, "payload")]
        draw("payload", "echo at %d connections: throughput against payload size" % HEADLINE, "payload (bytes)",
             "requests/s", pl, lambda p: p["payload_bytes"], thr)
    return made


def main(argv):
    """Rebuild FILE.md and the plots from FILE.json."""
    import tempfile
    path = argv[1]
    with open(path) as f:
        results = json.load(f)
    results["summary"] = summarise(results)
    base = path[:-5] if path.endswith(".json") else path
    with tempfile.TemporaryDirectory() as tmp:
        results["plots"] = [os.path.basename(x) for x in plots(results, base, tmp)]
    with open(base + ".md", "w") as f:
        f.write(markdown(results))
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print("rewrote %s.md and %d plots" % (base, len(results["plots"])))


if __name__ == "__main__":
    main(sys.argv)
