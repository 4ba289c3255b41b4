# SPDX-License-Identifier: BSD-2-Clause
"""Processes for bench/compare: start a server, know its processes, stop it.

Scheduling modes (sched_autogroup_enabled = 1 makes a session a
scheduling group of its own, which changes how the cores are shared
between a server and the load generator):

  own   the server is started in a new session (start_new_session), so
        every process it forks, whatever process group it moves to
        (agentpool's workers take their own), keeps the session id, which
        is the leader's pid: its processes are the live processes of that
        session;
  same  the server stays in the session of bench/compare, which is the
        load generator's (a process group of its own only, which does not
        change scheduling): its processes are the leader and its
        descendants (/proc PPid walk), plus every one seen before that is
        still alive with the same start time (an orphan whose parent died).
        bench/compare makes itself a child subreaper, so such an orphan
        stays below it instead of going to init.

That is how a server's CPU time is summed (/proc/PID/stat utime+stime of
its live processes) and how it is stopped for sure: its stop signal to the
leader's process group, a grace period, then SIGKILL to every process
still its own. Nothing here kills by name: only pids this run started.

Also: readiness probes (an NDJSON request, an HTTP POST, over Unix
sockets), /proc readers (CPU, RSS, machine busy time) and the one
NDJSON request helper the runner uses for pool.stats.
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print("[compare %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# -- /proc readers ---------------------------------------------------------

def proc_stat(pid):
    """(session, cpu_ticks utime+stime, ppid, comm, state) of pid, or None
    if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    close = raw.rfind(")")
    comm = raw[raw.find("(") + 1:close]
    fields = raw[close + 2:].split()
    # fields[0] is state (field 3); ppid 4, session 6, utime 14, stime 15, starttime 22.
    return int(fields[3]), int(fields[11]) + int(fields[12]), int(fields[1]), comm, fields[0], int(fields[19])


def all_stats():
    """{pid: proc_stat(pid)} of every live, non-zombie process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None and st[4] not in ("Z", "X"):
                out[int(name)] = st
    return out


def descendants(root, known=None):
    """Live pids of root and its descendants (by PPid), plus the pids of
    known ({pid: starttime}) still alive with that start time; zombies
    left out. Returns (pids, {pid: starttime} of them)."""
    stats = all_stats()
    kids = {}
    for pid, st in stats.items():
        kids.setdefault(st[2], []).append(pid)
    seen = {}
    todo = [root] if root in stats else []
    for pid, start in (known or {}).items():
        if pid in stats and stats[pid][5] == start:
            todo.append(pid)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen[pid] = stats[pid][5]
        todo.extend(kids.get(pid, []))
    return sorted(seen), seen


def autogroup(pid):
    """The scheduling autogroup of pid ("/autogroup-N"), or None."""
    try:
        with open("/proc/%d/autogroup" % pid) as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def become_subreaper():
    """prctl(PR_SET_CHILD_SUBREAPER): orphans of our children come to us
    (so a same-session server's orphans stay findable and get reaped).
    Returns True if it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap(pids):
    """Reap those of pids that became our children as orphans (we are a
    subreaper) and have exited, so they do not linger as zombies. Only
    these pids: a waitpid(-1) would steal the status of a Popen child."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def session_pids(sid):
    """Live pids whose session id is sid (the leader included); zombies,
    which nothing can kill and someone else will reap, are left out."""
    return sorted(pid for pid, st in all_stats().items() if st[0] == sid)


def cpu_ticks(pids):
    """{pid: utime+stime ticks} of the pids still alive."""
    out = {}
    for pid in pids:
        st = proc_stat(pid)
        if st is not None:
            out[pid] = st[1]
    return out


def rss_kb(pid):
    """VmRSS of pid in KiB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def threads(pid):
    """Threads of pid, or 0."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def io_counts(pids):
    """{pid: (read syscalls, write syscalls, context switches)} from
    /proc/PID/io (syscr, syscw) and /proc/PID/status (voluntary +
    nonvoluntary switches), for the pids still alive."""
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/io" % pid) as f:
                io = dict(line.split(":", 1) for line in f if ":" in line)
            cs = 0
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        cs += int(line.split()[1])
            out[pid] = (int(io["syscr"]), int(io["syscw"]), cs)
        except (OSError, KeyError, ValueError):
            continue
    return out


def machine_ticks():
    """(busy, idle, steal) ticks of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return user + nice + system + irq + softirq, idle + iowait, steal


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# -- requests over Unix sockets ---------------------------------------------

def ndjson_request(path, obj, timeout=5.0):
    """Send one NDJSON request on a fresh connection; the decoded answer.
    Raises OSError / ValueError on failure."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall((json.dumps(obj) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                raise OSError("connection closed before the answer")
            buf += chunk
    return json.loads(buf)


def http_post(path, target, body, timeout=5.0):
    """POST body to target over the Unix socket path; (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (target.encode(), len(body), body))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            rest += chunk
    return status, rest


# -- a server's life ---------------------------------------------------------

class Server:
    """One started server: its command, log, processes, and how to stop it.
    sched is "own" (a session of its own) or "same" (bench/compare's
    session, which the load generator shares)."""

    def __init__(self, name, argv, cwd, env, log_path, stop_signal=signal.SIGTERM, sched="own"):
        if sched not in ("own", "same"):
            raise ValueError("sched must be own or same, not %r" % sched)
        self.sched = sched
        self.known = {}  # same: {pid: starttime} of every process seen
        self.name = name
        self.argv = [str(a) for a in argv]
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.proc = None
        self.started_at = None

    def start(self):
        logf = open(self.log_path, "ab")
        try:
            if self.sched == "own":
                self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                             stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
            else:
                self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                             stdout=logf, stderr=subprocess.STDOUT, process_group=0)
        finally:
            logf.close()
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        if self.proc is None:
            return []
        if self.sched == "own":
            return session_pids(self.proc.pid)
        pids, seen = descendants(self.proc.pid, self.known)
        self.known.update(seen)
        return pids

    def autogroups(self):
        """{autogroup: number of the server's processes in it}."""
        out = {}
        for pid in self.pids():
            g = autogroup(pid)
            out[g] = out.get(g, 0) + 1
        return out

    def wait_processes(self, n, deadline):
        """Wait until the session has at least n processes; True if so."""
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            if len(self.pids()) >= n:
                return True
            time.sleep(0.05)
        return False

    def log_tail(self, nbytes=2000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - nbytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, grace=15.0):
        """Stop the leader's group with stop_signal, then SIGKILL whatever of
        the session is left. Returns how it went (for the record)."""
        if self.proc is None:
            return "not started"
        sid = self.proc.pid
        self.pids()  # same: remember every process before the leader goes
        how = "exited by itself"
        if self.proc.poll() is None:
            try:
                os.killpg(sid, self.stop_signal)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=grace)
                how = "stopped by %s" % signal.Signals(self.stop_signal).name
            except subprocess.TimeoutExpired:
                how = "killed (SIGKILL) after %.0f s" % grace
        left = self.pids()
        if left:
            how += "; %d of its processes left, SIGKILLed" % len(left)
        deadline = time.monotonic() + 5.0
        while left:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if self.proc.poll() is None:
                try:
                    self.proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    pass
            time.sleep(0.05)
            reap([p for p in self.known if p != sid])
            left = self.pids()
            if left and time.monotonic() > deadline:
                how += "; %d would not die" % len(left)
                break
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        reap([p for p in self.known if p != sid])
        return how
