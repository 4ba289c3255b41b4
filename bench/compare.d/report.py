"""Results of bench/compare: the summary (ratios, targets), the markdown
tables and the gnuplot plots, all computed from the one results dict that
is also written as JSON (so a report can be rebuilt from a JSON file:
compare.d/report.py FILE.json rewrites FILE.md and the plots).

Conventions: throughput in requests (messages, tasks) per second, latency
in ms in the tables (the JSON keeps agentpool-bench's microseconds), CPU
per message in microseconds. A figure that could not be measured is
None in the summary and "-" in the tables, never 0.
"""

import json
import os
import shutil
import subprocess
import sys

LITTLE_S = 0.050  # sleep50's wait
HEADLINE = 32  # connections of the headline points

ORDER = ["agentpool", "agentpool-async", "uwsgi-threads", "uwsgi-gevent", "gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent",
         "c-echo", "celery"]
HTTP = ["uwsgi-threads", "uwsgi-gevent", "gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent"]


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
    errs = r.get("errors") or {}
    if errs:
        s += "  errors %s" % json.dumps(errs)
    if p.get("error"):
        s += "  [%s]" % p["error"]
    return s


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


def _sleep_best_peer(results, n):
    """The peer to beat at sleep50 n in flight: the lowest p99 among peers
    that reach 95% of Little's law; if none does, the highest throughput."""
    cands = [p for p in results["points"] if p["workload"] == "sleep50" and p["server"] in HTTP
             and p["inflight"] == n and _ok(p)]
    keep = [p for p in cands if thr(p) >= 0.95 * n / LITTLE_S]
    if keep:
        return min(keep, key=p99_ms)
    return max(cands, key=thr) if cands else None


def summarise(results):
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
        for name in ("agentpool", "agentpool-async"):
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
    add("depth 16: master CPU/msg vs a worker's", fx(x), "< 0.33x", None if x is None else x < 1 / 3)
    for n in ("256", "1024"):
        r = s.get("sleep50", {}).get(n, {})
        sh = r.get("agentpool_share")
        add("sleep50 %s in flight: throughput vs Little's law" % n, fmt(sh and 100 * sh, 1, "%"), ">= 98%",
            None if sh is None else sh >= 0.98)
        x = r.get("p99_vs_best_peer")
        add("sleep50 %s in flight: p99 vs best peer (%s)" % (n, r.get("best_peer")), fx(x), "<= 1x",
            None if x is None else x <= 1.0)
    r = s.get("sleep50", {}).get("4096", {})
    sh = r.get("agentpool_share")
    add("sleep50 4096 in flight: throughput reached (reported)", fmt(sh and 100 * sh, 1, "% of Little"), "report",
        None if sh is None else True)
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
    return [n for n in ORDER if n in names]


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


def markdown(results):
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

    # targets
    L.append("## Targets\n")
    L.append(_table(["target", "measured", "goal", "status"],
                    [[t["target"], t["value"], t["goal"], t["status"]] for t in s["targets"]]))

    # ceilings
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
            L.append("- %s %s conns %s depth %s: %s\n" % (f["server"], f["workload"], f["conns"], f["depth"], f["error"]))

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
    for wl in ("echo", "echo-d16", "sleep50", "openloop", "celery-echo"):
        ex = next((p for p in results["points"] if p.get("command") and p["workload"] == wl), None)
        if ex:
            L.append("- load, %s: `%s`" % (wl, _norm(results, " ".join(_q(a) for a in ex["command"]))))
    L.append("- interpreter ceiling: `PYTHONPATH=%s %s`" % (
        results.get("ceilings", {}).get("interp_env", {}).get("PYTHONPATH"),
        " ".join(_q(a) for a in results.get("ceilings", {}).get("interp_command", []))))
    L.append("")
    if results.get("plots"):
        L.append("\n## Plots\n")
        for png in results["plots"]:
            L.append("![%s](%s)\n" % (os.path.basename(png), os.path.basename(png)))
    return "\n".join(L)


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

def _series(results, server, workload, xkey, depth=None):
    pts = [p for p in results["points"] if p["server"] == server and p["workload"] == workload and _ok(p)
           and (depth is None or p["depth"] == depth)]
    return sorted(((xkey(p), p) for p in pts), key=lambda t: t[0])


def plots(results, base, tmp):
    """Write the PNGs next to base (base-NAME.png); returns their paths."""
    if not shutil.which("gnuplot"):
        return []
    d = os.path.join(tmp, "plots")
    os.makedirs(d, exist_ok=True)
    made = []
    style = ('set terminal pngcairo size 960,600 noenhanced font ",10"\nset grid\nset key outside right top\n')

    def dat(name, rows):
        path = os.path.join(d, name + ".dat")
        with open(path, "w") as f:
            for r in rows:
                f.write(" ".join(str(x) for x in r) + "\n")
        return path

    def draw(name, script):
        out = "%s-%s.png" % (base, name)
        gp = os.path.join(d, name + ".gp")
        with open(gp, "w") as f:
            f.write(style + "set output '%s'\n" % out + script)
        r = subprocess.run(["gnuplot", gp], capture_output=True, text=True)
        if r.returncode == 0 and os.path.exists(out):
            made.append(out)
        else:
            results.setdefault("plot_errors", []).append("%s: %s" % (name, r.stderr[-300:]))

    # throughput and p99 against connections, echo
    lines_t, lines_p = [], []
    curves = [(n, "echo", 1) for n in _servers_in(results, "echo")]
    if find(results, "agentpool", "echo-d16"):
        curves.append(("agentpool", "echo-d16", 16))
    for srv, wl, depth in curves:
        ser = _series(results, srv, wl, lambda p: p["conns"], depth)
        if not ser:
            continue
        title = _label(results, srv) + (" depth 16" if depth == 16 else "")
        f = dat("echo-%s-%s" % (srv, wl), [(x, thr(p), p99_ms(p)) for x, p in ser])
        dash = " dt 2" if srv == "c-echo" or depth == 16 else ""
        lines_t.append("'%s' using 1:2 with linespoints lw 2%s title '%s'" % (f, dash, title))
        lines_p.append("'%s' using 1:3 with linespoints lw 2%s title '%s'" % (f, dash, title))
    if lines_t:
        draw("echo-throughput", "set title 'echo: throughput against connections (2 workers each)'\n"
             "set logscale xy\nset xtics (1, 8, 32, 128, 1000)\nset xlabel 'connections'\nset ylabel 'requests/s'\nplot " + ", \\\n  ".join(lines_t) + "\n")
        draw("echo-p99", "set title 'echo: p99 latency against connections'\nset logscale xy\n"
             "set xtics (1, 8, 32, 128, 1000)\nset xlabel 'connections'\nset ylabel 'p99 (ms)'\nplot " + ", \\\n  ".join(lines_p) + "\n")

    # sleep50
    lines_t, lines_p = [], []
    for srv in _servers_in(results, "sleep50"):
        ser = _series(results, srv, "sleep50", lambda p: p["inflight"])
        if ser:
            f = dat("sleep-%s" % srv, [(x, thr(p), p99_ms(p)) for x, p in ser])
            lines_t.append("'%s' using 1:2 with linespoints lw 2 title '%s'" % (f, _label(results, srv)))
            lines_p.append("'%s' using 1:3 with linespoints lw 2 title '%s'" % (f, _label(results, srv)))
    ser = _series(results, "agentpool", "sleep50-mux", lambda p: p["inflight"])
    if ser:
        f = dat("sleep-agentpool-mux", [(x, thr(p), p99_ms(p)) for x, p in ser])
        lines_t.append("'%s' using 1:2 with linespoints lw 2 dt 2 title 'agentpool 32 conns, pipelined'" % f)
        lines_p.append("'%s' using 1:3 with linespoints lw 2 dt 2 title 'agentpool 32 conns, pipelined'" % f)
    if lines_t:
        draw("sleep50-throughput", "set title 'sleep50: throughput against requests in flight'\nset logscale xy\n"
             "set xlabel 'requests in flight'\nset ylabel 'requests/s'\nset xrange [200:5000]\nset xtics (256, 1024, 4096)\n"
             "plot x/0.05 with lines lw 1 dt 3 lc rgb 'black' title \"Little's law\", \\\n  "
             + ", \\\n  ".join(lines_t) + "\n")
        draw("sleep50-p99", "set title 'sleep50: p99 latency against requests in flight'\nset logscale xy\n"
             "set xlabel 'requests in flight'\nset ylabel 'p99 (ms)'\nset xrange [200:5000]\nset xtics (256, 1024, 4096)\n"
             "plot 50 with lines dt 3 lc rgb 'black' title '50 ms', \\\n  " + ", \\\n  ".join(lines_p) + "\n")

    # open loop
    lines = []
    for srv in [n for n in ORDER + HTTP if n in {p["server"] for p in results["points"] if p["workload"] == "openloop"}]:
        ser = _series(results, srv, "openloop", lambda p: p["rate"])
        if ser and not any(srv in ln for ln in lines):
            f = dat("open-%s" % srv, [(x, p99_ms(p), p50_ms(p)) for x, p in ser])
            lc = len(lines) // 2 + 1
            lines.append("'%s' using 1:2 with linespoints lw 2 lc %d title '%s p99'" % (f, lc, _label(results, srv)))
            lines.append("'%s' using 1:3 with linespoints lw 1 dt 2 lc %d title '%s p50'" % (f, lc, _label(results, srv)))
    if lines:
        draw("openloop", "set title 'echo, open loop: latency against offered load (64 connections)'\n"
             "set logscale y\nset xlabel 'offered load (requests/s)'\nset ylabel 'latency (ms), from intended send time'\n"
             "plot " + ", \\\n  ".join(lines) + "\n")

    # payload sizes
    lines = []
    for srv in _servers_in(results, "payload"):
        ser = _series(results, srv, "payload", lambda p: p["payload_bytes"])
        if ser:
            f = dat("payload-%s" % srv, [(x, thr(p)) for x, p in ser])
            lines.append("'%s' using 1:2 with linespoints lw 2 title '%s'" % (f, _label(results, srv)))
    if len(lines) and len({p["payload_bytes"] for p in results["points"] if p["workload"] == "payload"}) > 1:
        draw("payload", "set title 'echo at 32 connections: throughput against payload size'\nset logscale xy\n"
             "set xlabel 'payload (bytes)'\nset ylabel 'requests/s'\nplot " + ", \\\n  ".join(lines) + "\n")
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
