# SPDX-License-Identifier: BSD-2-Clause
"""The servers bench/compare runs, and the exact command line of each.

Every peer runs exactly 2 worker processes with the same handler
(bench/compare.d/app.py for HTTP, the EchoAgent / AsyncSleepAgent /
FetchAgent for agentpool, celery_app.py for Celery), listens on a Unix
socket in the run's temp dir, and is described here by:

  config(point)  the settings that depend on the load (threads, cores,
                 connections), as a small dict: points with the same
                 config share one start of the server;
  argv(conf, ctx) the command line, working directory and environment
                 (the HTTP peers get PYTHONPATH = agentpool's source tree,
                 for app.py's fetch50, which imports pyagents.examples.fetch);
  nprocs         processes of its session once ready (master + 2);
  wire           the protocol and transport the load uses, for legends
                 (so NDJSON and HTTP lines are never read as like for like);
  stop_signal    how it is asked to stop (procs.Server escalates).

Choices, so each peer runs as its users would run it for this load:
  uwsgi-threads   master + 2 processes, --http11-socket (keep-alive),
                  threads per process = ceil(in-flight / 2): a uWSGI
                  thread holds one keep-alive connection, and an idle
                  thread is the only one that accepts, so that is the
                  fewest threads that starve no connection;
  uwsgi-gevent    master + 2 processes, --gevent cores, monkey-patched.
                  Debian's uWSGI 2.0.21 gevent plugin with gevent 22.10
                  cannot keep a connection alive (--http11-socket: the
                  second request on a connection is never answered and
                  the workers abort; gevent issues #1884, #1941), so it
                  runs --http-socket and says "Connection: close": one
                  connection per request, which the load generator
                  follows (close_announced, reconnect);
  gunicorn-sync   2 sync workers (one request at a time, closes after
                  every response: its model);
  gunicorn-gthread 2 workers, 4 threads each for the CPU-bound echo (more
                  only add GIL contention), in-flight threads each for
                  sleep50; worker-connections above the connections;
  gunicorn-gevent 2 workers, worker-connections above the connections;
  celery          prefork, concurrency 2, a local redis-server on a Unix
                  socket as broker and result backend;
  agentpool       agentpoold with min = max = 2 workers, no recycling
                  (the default recycles every 10,000 messages), the
                  async sleep agent with 4096 slots per worker; for
                  tokens the AsyncTokensAgent (4096 slots), streamed;
  agentpool-gevent the same in workerModel gevent with the plain def
                  SleepAgent (time.sleep), EchoAgent and FetchAgent
                  (fetch50: urllib.request.urlopen of the slow server,
                  4096 greenlets per worker), GeventTokensAgent for
                  tokens. There is no async agentpool line for fetch50:
                  no async agent runs the same urllib code. No peer
                  runs tokens: none streams NDJSON chunk lines (an HTTP
                  chunked response would be another protocol and
                  another load generator);
  agentpool-http  the agentpool pool with the sync EchoAgent, driven over
                  its HTTP/1.1 front door (a unix: httpListen, keep-alive):
                  agentpool on the peers' own protocol and transport;
  c-echo          bench/echo_ceiling.c, 2 processes: the IPC ceiling.
"""

import math
import os
import signal

import procs

HERE = os.path.dirname(os.path.abspath(__file__))


def _inflight(point):
    return point["conns"] * point["depth"]


class Peer:
    name = ""
    label = ""
    proto = "http"  # http | ndjson | celery
    wire = "HTTP/1.1 keep-alive, Unix socket"
    nprocs = 3
    stop_signal = signal.SIGTERM
    is_peer = True  # False for agentpool and the ceilings
    pool = False  # True for agentpoold (pool.health, pool.stats)
    http_path = None  # HTTP: the POST target for every load (None: /echo, /sleep50, /fetch50 by load)
    doc = ""

    @staticmethod
    def ndjson_sock(ctx):
        """Where pool.health and pool.stats are asked (pool servers)."""
        return ctx.sock

    def config(self, point):
        return {}

    def argv(self, conf, ctx):
        raise NotImplementedError

    def settled(self, srv, conf):
        """Beyond answering: is everything started? (default: yes)"""
        return True


class CEcho(Peer):
    name, label, proto, is_peer = "c-echo", "C echo (IPC ceiling)", "ndjson", False
    wire = "NDJSON, Unix socket"
    doc = "bench/echo_ceiling.c: NDJSON echo in C, 2 processes, no Python"

    def argv(self, conf, ctx):
        return [ctx.echo_ceiling, "--socket", ctx.sock, "--workers", "2"], ctx.tmp, ctx.env


class Agentpool(Peer):
    name, label, proto, is_peer = "agentpool", "agentpool", "ndjson", False
    wire = "NDJSON, Unix socket"
    pool = True  # speaks pool.stats / pool.health
    doc = "agentpoold, 2 workers, EchoAgent (sync) or AsyncSleepAgent (4096 slots per worker)"
    # conf["agent"] -> (the agent, slots per worker)
    AGENTS = {"echo": ("pyagents.examples.echo:EchoAgent", 64),
              "sleep": ("pyagents.examples.sleep:AsyncSleepAgent", 4096),
              "fetch": ("pyagents.examples.fetch:FetchAgent", 4096),
              "tokens": ("pyagents.examples.tokens:AsyncTokensAgent", 4096)}

    def config(self, point):
        return {"agent": {"sleep50": "sleep", "fetch50": "fetch", "tokens": "tokens"}.get(point["kind"], "echo")}

    def argv(self, conf, ctx):
        agent, slots = self.AGENTS[conf["agent"]]
        argv = [ctx.agentpoold, "--socket", ctx.sock, "--agent", agent,
                "--min-workers", "2", "--max-workers", "2",
                "--max-messages-per-worker", "0", "--worker-recycle-interval", "0",
                "--max-connections", "8192", "--listen-backlog", "4096",
                "--concurrency", str(slots),
                "--dead-letter-file", os.path.join(ctx.tmp, "agentpool.deadletter.jsonl")]
        return argv, ctx.tmp, ctx.env


class AgentpoolAsync(Agentpool):
    """The same pool with an async echo agent (compare.d/agents.py, 64 slots
    per worker): not a peer, the measure of one-message-at-a-time."""
    name, label = "agentpool-async", "agentpool, async echo agent"
    doc = "agentpoold, 2 workers, compare.d/agents.py:AsyncEchoAgent, 64 slots per worker"

    def config(self, point):
        return {"agent": "async-echo"}

    def argv(self, conf, ctx):
        argv, cwd, env = super().argv({"agent": "echo"}, ctx)
        argv[argv.index("pyagents.examples.echo:EchoAgent")] = "agents:AsyncEchoAgent"
        return argv + ["--python-path", HERE], cwd, env


class AgentpoolHTTP(Agentpool):
    """The same pool (sync EchoAgent) driven over its HTTP/1.1 front door
    (docs/http.md): httpListen on a unix: socket at the run's socket path,
    POST /v1/messages, keep-alive; its NDJSON socket (pool.health,
    pool.stats) sits next to it.  Not a peer: agentpool's HTTP line, read
    against the HTTP peers on the same protocol and transport."""
    name, label, proto, is_peer = "agentpool-http", "agentpool, HTTP front door", "http", False
    wire = "HTTP/1.1 keep-alive, Unix socket"
    http_path = "/v1/messages"
    doc = "agentpoold, 2 workers, EchoAgent, httpListen unix: (POST /v1/messages, keep-alive), httpAuth none"

    def config(self, point):
        return {"agent": "echo"}

    @staticmethod
    def ndjson_sock(ctx):
        return ctx.sock + ".ndjson"

    def argv(self, conf, ctx):
        argv, cwd, env = super().argv(conf, ctx)
        argv[argv.index("--socket") + 1] = self.ndjson_sock(ctx)
        return argv + ["--http-listen", "unix:" + ctx.sock, "--http-auth", "none"], cwd, env


class AgentpoolGevent(Agentpool):
    """The same pool in workerModel gevent, serving plain def agents: the
    sync SleepAgent (time.sleep, a greenlet wait once patched) for
    sleep50, the FetchAgent (urllib.request.urlopen) for fetch50, the
    sync EchoAgent for echo (a greenlet per message: the switch's cost).
    The same agent code the gevent HTTP peers run."""
    name, label = "agentpool-gevent", "agentpool, gevent workers"
    doc = ("agentpoold, 2 workers, workerModel gevent: SleepAgent (time.sleep) / FetchAgent (urllib) / EchoAgent, "
           "4096, 4096 or 64 greenlets per worker")

    def argv(self, conf, ctx):
        argv, cwd, env = super().argv(conf, ctx)
        if conf["agent"] == "sleep":
            argv[argv.index("pyagents.examples.sleep:AsyncSleepAgent")] = "pyagents.examples.sleep:SleepAgent"
        elif conf["agent"] == "tokens":
            argv[argv.index("pyagents.examples.tokens:AsyncTokensAgent")] = "pyagents.examples.tokens:GeventTokensAgent"
        return argv + ["--worker-model", "gevent"], cwd, env


class UwsgiThreads(Peer):
    name, label = "uwsgi-threads", "uWSGI threads"
    stop_signal = signal.SIGINT
    doc = "uWSGI master + 2 processes, --http11-socket keep-alive, threads = ceil(in-flight/2) per process"

    def config(self, point):
        if point.get("threads"):
            return {"threads": point["threads"], "listen": 1024}
        n = _inflight(point)
        return {"threads": max(1, math.ceil(n / 2)), "listen": min(4096, max(1024, n))}

    def settled(self, srv, conf):
        workers = [p for p in srv.pids() if p != srv.pid]
        return len(workers) >= 2 and all(procs.threads(p) >= conf["threads"] for p in workers)

    def argv(self, conf, ctx):
        return ["/usr/bin/uwsgi", "--plugin", "python3", "--master", "--processes", "2",
                "--threads", str(conf["threads"]), "--http11-socket", ctx.sock,
                "--wsgi-file", os.path.join(HERE, "app.py"), "--chdir", HERE, "--need-app",
                "--disable-logging", "--listen", str(conf["listen"]), "--die-on-term"], ctx.tmp, ctx.app_env


class UwsgiGevent(Peer):
    name, label = "uwsgi-gevent", "uWSGI gevent (no keep-alive)"
    wire = "HTTP, a new connection per request, Unix socket"
    stop_signal = signal.SIGINT
    doc = ("uWSGI master + 2 processes, --gevent cores, --gevent-monkey-patch, --http-socket with "
           "Connection: close (keep-alive is broken in this uWSGI/gevent pair)")

    def config(self, point):
        n = _inflight(point)
        return {"cores": max(1024, n), "listen": min(4096, max(1024, n))}

    def argv(self, conf, ctx):
        return ["/usr/bin/uwsgi", "--plugin", "python3,gevent_python3", "--master", "--processes", "2",
                "--gevent", str(conf["cores"]), "--gevent-monkey-patch", "--http-socket", ctx.sock,
                "--add-header", "Connection: close",
                "--wsgi-file", os.path.join(HERE, "app.py"), "--chdir", HERE, "--need-app",
                "--disable-logging", "--listen", str(conf["listen"]), "--die-on-term"], ctx.tmp, ctx.app_env


class UwsgiGeventHttp11(UwsgiGevent):
    """Only probed: shows why uwsgi-gevent runs without keep-alive."""
    name, label = "uwsgi-gevent-http11", "uWSGI gevent, --http11-socket (probe)"
    wire = "HTTP/1.1 keep-alive, Unix socket"

    def argv(self, conf, ctx):
        argv, cwd, env = super().argv(conf, ctx)
        i = argv.index("--http-socket")
        argv[i] = "--http11-socket"
        j = argv.index("--add-header")
        del argv[j:j + 2]
        return argv, cwd, env


class _Gunicorn(Peer):
    stop_signal = signal.SIGINT
    worker_class = ""

    def base(self, ctx, backlog):
        return ["/usr/bin/python3", "-m", "gunicorn", "--workers", "2", "--worker-class", self.worker_class,
                "--bind", "unix:" + ctx.sock, "--backlog", str(backlog), "--chdir", HERE,
                "--graceful-timeout", "5"]


class GunicornSync(_Gunicorn):
    name, label, worker_class = "gunicorn-sync", "gunicorn sync", "sync"
    wire = "HTTP, closes after each response, Unix socket"
    doc = "gunicorn, 2 sync workers (closes after every response)"

    def config(self, point):
        return {"backlog": min(4096, max(2048, _inflight(point)))}

    def argv(self, conf, ctx):
        return self.base(ctx, conf["backlog"]) + ["app:app"], ctx.tmp, ctx.app_env


class GunicornGthread(_Gunicorn):
    name, label, worker_class = "gunicorn-gthread", "gunicorn gthread", "gthread"
    doc = "gunicorn, 2 gthread workers: 4 threads (echo) or in-flight threads (sleep50)"

    def config(self, point):
        n = _inflight(point)
        threads = n if point["kind"] in ("sleep50", "fetch50") else 4
        return {"threads": threads, "worker_connections": max(1000, n + 64),
                "backlog": min(4096, max(2048, n))}

    def argv(self, conf, ctx):
        return self.base(ctx, conf["backlog"]) + [
            "--threads", str(conf["threads"]), "--worker-connections", str(conf["worker_connections"]),
            "app:app"], ctx.tmp, ctx.app_env


class GunicornGevent(_Gunicorn):
    name, label, worker_class = "gunicorn-gevent", "gunicorn gevent", "gevent"
    doc = "gunicorn, 2 gevent workers, worker-connections above the connections"

    def config(self, point):
        n = _inflight(point)
        return {"worker_connections": max(1000, n + 64), "backlog": min(4096, max(2048, n))}

    def argv(self, conf, ctx):
        return self.base(ctx, conf["backlog"]) + [
            "--worker-connections", str(conf["worker_connections"]), "app:app"], ctx.tmp, ctx.app_env


class Celery(Peer):
    name, label, proto = "celery", "Celery (prefork 2, Redis)", "celery"
    wire = "tasks through Redis on a Unix socket"
    stop_signal = signal.SIGQUIT  # cold shutdown: nothing to finish
    doc = "celery worker --pool prefork --concurrency 2, redis-server on a Unix socket"

    def argv(self, conf, ctx):
        env = dict(ctx.env, BENCH_REDIS_URL=ctx.redis_url)
        return ["/usr/bin/python3", "-m", "celery", "-A", "celery_app", "worker", "--pool", "prefork",
                "--concurrency", "2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
                "--without-heartbeat"], HERE, env


def redis_argv(ctx):
    return ["/usr/bin/redis-server", "--port", "0", "--unixsocket", ctx.redis_sock, "--unixsocketperm", "700",
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", ctx.tmp]


ALL = [CEcho(), Agentpool(), AgentpoolAsync(), AgentpoolHTTP(), AgentpoolGevent(), UwsgiThreads(), UwsgiGevent(), GunicornSync(), GunicornGthread(),
       GunicornGevent(), Celery()]
BY_NAME = {p.name: p for p in ALL}
BY_NAME["uwsgi-gevent-http11"] = UwsgiGeventHttp11()
HTTP_PEERS = [p.name for p in ALL if p.proto == "http" and p.is_peer]
