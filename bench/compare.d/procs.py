"""Processes for bench/compare: start a server, know its processes, stop it.

A server is started in a new session (start_new_session), so every
process it forks, whatever process group it moves to (agentpool's
workers take their own), keeps the session id, which is the leader's
pid. That is how its CPU time is summed (/proc/PID/stat utime+stime of
every live process of the session) and how it is stopped for sure:
SIGTERM (or the server's own stop signal) to the leader's group, a
grace period, then SIGKILL to every process still in the session.
Nothing here kills by name: only the pids of sessions this run created.

Also: readiness probes (an NDJSON request, an HTTP POST, over Unix
sockets), /proc readers (CPU, RSS, machine busy time) and the one
NDJSON request helper the runner uses for pool.stats.
"""

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
    # fields[0] is state (field 3); ppid 4, session 6, utime 14, stime 15.
    return int(fields[3]), int(fields[11]) + int(fields[12]), int(fields[1]), comm, fields[0]


def session_pids(sid):
    """Live pids whose session id is sid (the leader included); zombies,
    which nothing can kill and someone else will reap, are left out."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is not None and st[0] == sid and st[4] not in ("Z", "X"):
            out.append(int(name))
    return sorted(out)


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
    """One started server: its command, log, session, and how to stop it."""

    def __init__(self, name, argv, cwd, env, log_path, stop_signal=signal.SIGTERM):
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
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
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
        return session_pids(self.proc.pid) if self.proc else []

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
        left = session_pids(sid)
        if left:
            how += "; %d left in the session, SIGKILLed" % len(left)
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
            left = session_pids(sid)
            if left and time.monotonic() > deadline:
                how += "; %d would not die" % len(left)
                break
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return how
