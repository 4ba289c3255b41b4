/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * server.c - the master's one global state and its lifecycle: start-up,
 * the periodic tick, signals, and shutdown (see server.h).
 *
 * Start-up order (server_start): make the master undumpable (no
 * ptrace or /proc reads by agents of the same uid) -> bind the socket (refuse early if a live
 * server owns it) -> event base, signals, the tick -> the worker table,
 * supervisor, dead letters, types and breakers, metrics, the HTTP
 * listener -> drop privileges -> fork the initial workers.  Clients may
 * connect at once; their messages wait in the queue until workers are
 * ready, and "ready" is logged only when every initial worker is.
 * Signals are libevent events (never async handlers): SIGTERM/SIGINT
 * start a graceful shutdown, SIGCHLD reaps, SIGHUP reloads, SIGTTIN and
 * SIGTTOU scale, SIGUSR1 reopens the log files (access.c).
 * Shutdown: stop accepting, answer what is queued and in flight within
 * shutdownTimeout (new requests get shutting_down), then answer the rest
 * shutting_down, STOP the workers (SIGKILL if they linger), flush the
 * answers, end the loop; server_free releases everything.
 * All timed work hangs off the one tick (TICK_MS).
 */
#include "server.h"
#include "flush.h"
#include "refuse.h"
#include "connlimit.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "agentstat.h"
#include "alert.h"
#include "events.h"
#include "access.h"
#include "answer.h"
#include "breaker.h"
#include "client.h"
#include "httpd.h"
#include "httpfront.h"
#include "idem.h"
#include "metrics.h"
#include "typetab.h"
#include "listener.h"
#include "pgroup.h"
#include "privs.h"
#include "recycle.h"
#include "reload.h"
#include "apikey.h"
#include "usage.h"
#include "retry.h"
#include "scale.h"
#include "sdnotify.h"
#include "supervisor.h"
#include "broker.h"
#include "suspect.h"
#include "sched.h"
#include "stream.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

server_t server;

/* After the workers were told to stop: how long before SIGKILL, and how
 * long answers may take to flush to clients before we exit anyway. */
#define STOP_GRACE_MS 5000
#define TICK_MS 100

static void finish_loop(void)
{
    event_base_loopexit(server.base, NULL);
}

/* Moves to STOPPING: everything answered (or failed), workers told. */
static void stop_workers(void)
{
    if (server.state == SERVER_STOPPING)
        return;
    server.state = SERVER_STOPPING;
    POOLS_FOREACH(p) worker_stop_all(p);
    server.shutdown_deadline_ms = ap_now_ms() + STOP_GRACE_MS;
    int live = pools_live_workers();
    ap_info("stopping %d worker%s", live, live == 1 ? "" : "s");
}

static void signal_all(int sig)
{
    POOLS_FOREACH(p) worker_signal_all(p, sig);
}

/* Answers everything still waiting shutting_down (deadline passed). */
static void fail_remaining(void)
{
    unsigned n = 0;
    POOLS_FOREACH(p) {
        n += pools_fail_waiting(p, ERR_SHUTTING_DOWN, "the server is shutting down");
        for (int i = 0; i < p->nworkers; i++)
            n += worker_fail_running(&p->workers[i], ERR_SHUTTING_DOWN,
                                     "the server is shutting down (shutdownTimeout passed)", NULL);
    }
    if (n)
        ap_warn("shutdownTimeout passed: answered %u message%s shutting_down", n, n == 1 ? "" : "s");
}

void server_check_shutdown(void)
{
    if (server.state == SERVER_DRAINING && server.msgs.live == 0)
        stop_workers();
    if (server.state == SERVER_STOPPING && pools_live_workers() == 0 &&
        ((client_all_flushed() && httpfront_all_flushed() && broker_all_flushed()) || ap_now_ms() >= server.shutdown_deadline_ms))
        finish_loop();
}

void server_begin_shutdown(const char *why)
{
    if (server.state >= SERVER_DRAINING)
        return;
    int fatal = server.exit_code != 0;
    size_t queued = 0;
    POOLS_FOREACH(p) queued += p->queue.depth;
    ap_info("shutting down (%s): %zu queued, %llu in flight, %d connection%s", why, queued,
            (unsigned long long)server.msgs.by_state[MSG_RUNNING], server.nclients, server.nclients == 1 ? "" : "s");
    listener_close();
    httpfront_stop_accepting();
    sdnotify_stopping();
    server.state = SERVER_DRAINING;
    server.shutdown_deadline_ms = ap_now_ms() + (uint64_t)server.cfg->shutdown_timeout;
    if (fatal) {
        fail_remaining();
        stop_workers();
        signal_all(SIGTERM);
    }
    server_check_shutdown();
}

void server_worker_ready(void)
{
    if (server.state != SERVER_STARTING)
        return;
    POOLS_FOREACH(p) {
        for (int i = 0; i < p->nworkers; i++)
            if (p->workers[i].first_start && !worker_is_accepting(&p->workers[i]))
                return;
    }
    server.state = SERVER_READY;
    POOLS_FOREACH(p) {
        for (int i = 0; i < p->nworkers; i++)
            p->workers[i].first_start = 0;
    }
    sdnotify_ready();
    if (!server.cfg->pools_named) {
        pool_t *p = server.pools[0];
        ap_info("ready: %d workers running %s on %s (pid %d, %s, allocator %s)", p->pool_size, p->cfg->agent,
                server.cfg->socket, (int)server.pid, config_strategy_name(p->cfg->strategy), ap_alloc_name());
        return;
    }
    ap_info("ready: %d pools on %s (pid %d, allocator %s)", server.npools, server.cfg->socket, (int)server.pid,
            ap_alloc_name());
    POOLS_FOREACH(p) {
        ap_info("pool %s: %d workers running %s (%s)", p->name, p->pool_size, p->cfg->agent,
                config_strategy_name(p->cfg->strategy));
    }
}

/* The one periodic timer: shutdown deadlines. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    uint64_t now = ap_now_ms();
    POOLS_FOREACH(p) {
        supervisor_tick(p, now);
        if (server.state == SERVER_READY || server.state == SERVER_DRAINING || server.state == SERVER_STOPPING)
            recycle_tick(p, now);
        scale_tick(p, now);
        alert_tick(p, now);
        retry_tick(p, now);
        idem_tick(p, now);
        broker_tick(p, now);
        suspect_tick(p, now);
        if (p->cfg->health_check_interval > 0 && server.state == SERVER_READY &&
            now - p->last_heartbeat_ms >= (uint64_t)p->cfg->health_check_interval) {
            p->last_heartbeat_ms = now;
            worker_heartbeat(p);
        }
    }
    access_tick(now);
    apikey_tick(now);
    client_tick(now);
    stream_tick(now);
    httpfront_tick(now);
    events_tick();
    if (now - server.last_decay_ms >= 1000) {
        server.last_decay_ms = now;
        ap_alloc_decay(); /* a spike's freed pages go back even when idle */
    }
    reload_step();
    pools_tick();
    sdnotify_tick(now);
    if (server.state == SERVER_DRAINING && now >= server.shutdown_deadline_ms) {
        fail_remaining();
        stop_workers();
    } else if (server.state == SERVER_STOPPING && now >= server.shutdown_deadline_ms && pools_live_workers() > 0) {
        ap_warn("workers still running %d ms after STOP: sending SIGKILL", STOP_GRACE_MS);
        signal_all(SIGKILL);
        server.shutdown_deadline_ms = now + STOP_GRACE_MS;
    }
    if (server.state >= SERVER_DRAINING)
        server_check_shutdown();
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    switch (sig) {
    case SIGCHLD:
        worker_reap();
        break;
    case SIGTERM:
    case SIGINT:
        if (server.state >= SERVER_DRAINING) {
            ap_info("second %s: stopping now", sig == SIGINT ? "SIGINT" : "SIGTERM");
            server.shutdown_deadline_ms = 0;
            tick_cb(-1, 0, NULL);
        } else {
            server_begin_shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
        }
        break;
    case SIGHUP:
        reload_start("SIGHUP", NULL, 0, NULL, 0);
        break;
    case SIGTTIN: /* the default pool: signals cannot name one */
        if (pools_default())
            scale_to(pools_default(), pools_default()->pool_size + 1, "SIGTTIN");
        break;
    case SIGUSR1:
        access_reopen_logs();
        break;
    case SIGTTOU:
        if (pools_default())
            scale_to(pools_default(), pools_default()->pool_size - 1, "SIGTTOU");
        break;
    default:
        break;
    }
}

static void add_signal(int sig)
{
    struct event *ev = evsignal_new(server.base, sig, signal_cb, NULL);
    evsignal_add(ev, NULL);
    server.sig_events[server.nsig_events++] = ev;
}

/* The worker binary: next to agentpoold (a build tree), else libexecdir (server.h). */
char *server_find_worker_binary(const config *cfg)
{
    if (cfg->worker_binary)
        return ap_strdup(cfg->worker_binary);
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            char cand[PATH_MAX + 32];
            snprintf(cand, sizeof(cand), "%.*s/agentpool-worker", (int)(slash - self), self);
            if (access(cand, X_OK) == 0)
                return ap_strdup(cand);
        }
    }
    return ap_strdup(AP_LIBEXECDIR "/agentpool-worker");
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            ap_warn("could not raise the open-file limit from %llu: %s", (unsigned long long)was, strerror(errno));
    }
}

/* Agents run with the master's uid (the shipped unit: User=agentpool,
 * or root with `user`): without this a worker could ptrace its master
 * or read /proc/<master>/environ and mem, recovering what the `env`
 * allow-list keeps from workers.  Not dumpable, the master's /proc files
 * belong to root and ptrace needs CAP_SYS_PTRACE.  Workers get their own
 * flag back at exec, so their faulthandler stacks and the master's reads
 * of their /proc (RSS) are unchanged.  It also means no core dump of the
 * master.  Sanitizer builds stay dumpable: LeakSanitizer must inspect the
 * process at exit. */
static void forbid_ptrace(void)
{
#if !defined(__SANITIZE_ADDRESS__)
    if (prctl(PR_SET_DUMPABLE, 0) != 0)
        ap_warn("prctl(PR_SET_DUMPABLE, 0): %s; workers running as our uid can ptrace the master",
                strerror(errno));
#endif
}

int server_start(config *cfg, int argc, char **argv)
{
    char err[512];
    memset(&server, 0, sizeof(server));
    forbid_ptrace();
    server.boot_cfg = *cfg; /* the strings move with it */
    server.cfg = &server.boot_cfg;
    config_moved(server.cfg, cfg);
    if (access_start(server.cfg) != AP_OK)
        return AP_ERR;
    usage_init((unsigned)server.cfg->max_tracked_keys);
    if (apikey_init(server.cfg->api_keys_file, err, sizeof(err)) != AP_OK) {
        ap_error("%s", err);
        return AP_ERR;
    }
    reload_init(argc, argv);
    server.pid = getpid();
    server.started_ms = ap_now_ms();
    server.listen_fd = -1;
    link_init(&server.clients);
    link_init(&server.streams);
    msg_table_init(&server.msgs);
    server.worker_binary = server_find_worker_binary(cfg);
    if (access(server.worker_binary, X_OK) != 0) {
        ap_error("worker binary %s: %s (set workerBinary)", server.worker_binary, strerror(errno));
        return AP_ERR;
    }
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    pgroup_init(); /* what agents start and leave behind comes back to us */
    sdnotify_init();

    if (listener_open(err, sizeof(err)) != 0) {
        ap_error("%s", err);
        return AP_ERR;
    }
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    server.base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (server.base == NULL || flush_init(server.base) != AP_OK || sched_init(server.base) != AP_OK ||
        listener_start() != 0) {
        ap_error("could not create the event loop");
        listener_close();
        return AP_ERR;
    }
    access_loop_start(); /* from here on the log never blocks */
    srandom((unsigned)(server.pid ^ ap_now_ns()));
    add_signal(SIGTERM);
    add_signal(SIGINT);
    add_signal(SIGCHLD);
    add_signal(SIGHUP);
    add_signal(SIGTTIN);
    add_signal(SIGTTOU);
    add_signal(SIGUSR1);
    server.tick = event_new(server.base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(server.tick, &tv);

    events_init(); /* before the first worker is spawned: that is an event */
    if (pools_init() != AP_OK)
        return AP_ERR;
    if (httpd_start(err, sizeof(err)) != AP_OK || httpfront_start(err, sizeof(err)) != AP_OK) {
        ap_error("%s", err);
        listener_close();
        return AP_ERR;
    }
    if (privs_drop(err, sizeof(err)) != AP_OK) { /* everything needing root is open by now */
        ap_error("%s", err);
        listener_close();
        return AP_ERR;
    }
    cfg = server.cfg;
    if (server.npools == 1)
        ap_info("agentpoold %s starting: %d workers, agent %s, socket %s, worker %s", PACKAGE_VERSION,
                server.pools[0]->pool_size, server.pools[0]->cfg->agent, cfg->socket, server.worker_binary);
    else
        ap_info("agentpoold %s starting: %d pools, socket %s, worker %s", PACKAGE_VERSION, server.npools, cfg->socket,
                server.worker_binary);
    POOLS_FOREACH(p) {
        for (int i = 0; i < p->pool_size; i++) {
            p->workers[i].first_start = 1;
            if (worker_spawn(p, i) != AP_OK) {
                server.exit_code = 1;
                server_begin_shutdown("could not spawn the initial workers");
                return AP_OK;
            }
        }
    }
    return AP_OK;
}

void server_run(void)
{
    event_base_dispatch(server.base);
}

void server_free(void)
{
    listener_close();
    httpd_stop();
    httpfront_stop(); /* its exchanges' clients go with it */
    client_close_all();
    privs_free();
    connlimit_free();
    refuse_free(); /* before the event base: refused peers still lingering */
    signal_all(SIGKILL);
    worker_reap();
    worker_reap_final(); /* and what agents left behind */
    pools_free();
    events_free();
    agentstat_free();
    for (int i = 0; i < server.nsig_events; i++)
        event_free(server.sig_events[i]);
    event_free(server.tick);
    flush_free();
    sched_free();
    access_loop_stop();
    event_base_free(server.base);
    msg_table_free(&server.msgs);
    apikey_free(); /* after the messages, which hold keys */
    usage_free();
    ap_free(server.worker_binary);
    access_stop();
    sdnotify_free();
    ap_info("exited (status %d)", server.exit_code);
    reload_free();
}
