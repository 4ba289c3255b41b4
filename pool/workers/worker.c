/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * worker.c - worker processes seen from the master (see worker.h).
 *
 * Spawning: socketpair, fork, and in the child only async-signal-safe
 * work before execve of agentpool-worker: reset every signal disposition
 * and the mask (libevent's included), PR_SET_PDEATHSIG so the worker dies
 * with the master, its own process group so a terminal's ^C reaches only
 * the master, the socketpair on fd 3, /dev/null on stdin, stdout and
 * stderr on pipes the master reads into its log (wout.c), every other
 * descriptor closed.  argv and envp are built before fork.
 * Frames: read from the worker's socket (one read(2) of up to 64 KiB per
 * wake-up, without the FIONREAD a bufferevent asks first), written by
 * flush.c, and handled as they complete; results
 * and errors are matched to messages by internal id and generation, so a
 * late answer from a replaced process is dropped, not misdelivered; so
 * are CHUNK frames, which go to stream.c (CREDIT goes back through
 * worker_credit).
 * Death: SIGCHLD -> worker_reap() -> every message the process held is
 * answered worker_crashed at once, and the slot is respawned (at the
 * first start, an agent that cannot start is fatal instead; later,
 * failures to start back off exponentially rather than fork-looping).
 */
#include "worker.h"
#include "drift.h"
#include "events.h"
#include "ap_alloc.h"
#include "ap_defaults.h"
#include "ap_frame.h"
#include "ap_log.h"
#include "a2acard.h"
#include "agentev.h"
#include "agentstat.h"
#include "answer.h"
#include "metrics.h"
#include "pgroup.h"
#include "privs.h"
#include "recycle.h"
#include "reload.h"
#include "retry.h"
#include "supervisor.h"
#include "wenv.h"
#include "scan.h"
#include "sched.h"
#include "sessstate.h"
#include "server.h"
#include "stream.h"
#include "wout.h"
#include "wprog.h"
#include "wresult.h"
#include "usage.h"

#include <assert.h>
#include <cJSON.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* A RESULT at least this long is moved to its client, not copied. */
#define WORKER_MOVE_MIN (64u * 1024)
/* One read of the link takes at most this (libevent's own: 4 KiB, after
 * an ioctl FIONREAD); the rest waits for the next turn. */
#define WORKER_READ_MAX (64u * 1024)
/* A sync handler faster than this on average may have messages prefetched. */
#define WORKER_FAST_NS(w) ((uint64_t)(w)->pool->cfg->prefetch_fast_us * 1000u)

static const char *const state_names[] = {"starting", "ready", "busy", "draining", "stopping", "dead"};

const char *worker_state_name(worker_state s)
{
    return s < WORKER_STATE_COUNT ? state_names[s] : "?";
}

int worker_is_accepting(const worker *w)
{
    return w->state == WORKER_READY || w->state == WORKER_BUSY;
}

int worker_count_in(const pool_t *p, worker_state s)
{
    return p->worker_states[s];
}

int worker_live_count(const pool_t *p)
{
    return p->nworkers - p->worker_states[WORKER_DEAD];
}

void worker_set_state(worker *w, worker_state to)
{
    if (w->state == to)
        return;
    assert(worker_transition_ok(w->state, to));
    ap_debug("%s (pid %d): %s -> %s", w->name, (int)w->proc.pid, state_names[w->state], state_names[to]);
    w->pool->worker_states[w->state]--;
    w->pool->worker_states[to]++;
    w->state = to;
    w->load.accepting = worker_is_accepting(w);
}

/* Its name, or what follows "<pool>/" in it. */
static int name_is(const worker *w, const char *name, size_t len)
{
    const char *n = w->name, *slash = strchr(n, '/');
    if (strlen(n) == len && memcmp(n, name, len) == 0)
        return 1;
    return slash && strlen(slash + 1) == len && memcmp(slash + 1, name, len) == 0;
}

worker *worker_by_name(pool_t *p, const char *name, size_t len)
{
    worker *found = NULL;
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        if (w->slot < 0 || !name_is(w, name, len))
            continue;
        /* During a hand-over two processes share a name: prefer the one
         * taking messages. */
        if (found == NULL || worker_is_accepting(w))
            found = w;
    }
    return found;
}

worker *worker_free_entry(pool_t *p)
{
    for (int i = 0; i < p->nworkers; i++)
        if (p->workers[i].slot < 0 && p->workers[i].state == WORKER_DEAD)
            return &p->workers[i];
    return NULL;
}

void worker_assign(worker *w, int slot)
{
    w->slot = slot;
    if (slot >= 0 && server.cfg->pools_named)
        snprintf(w->name, sizeof(w->name), "%s/worker-%d", w->pool->name, slot);
    else if (slot >= 0)
        snprintf(w->name, sizeof(w->name), "worker-%d", slot);
}

/* A free entry's name. */
static void name_spare(worker *w)
{
    if (server.cfg->pools_named)
        snprintf(w->name, sizeof(w->name), "%s/spare-%d", w->pool->name, w->index);
    else
        snprintf(w->name, sizeof(w->name), "spare-%d", w->index);
}

static void respawn_cb(evutil_socket_t fd, short what, void *arg);
static void kill_step_cb(evutil_socket_t fd, short what, void *arg);

void worker_table_init(pool_t *p)
{
    /* One entry per possible worker, plus room for the replacements that
     * are started before the workers they replace stop. */
    int n = (int)(p->cfg->max_workers + p->cfg->max_concurrent_recycles);
    p->workers = ap_calloc((size_t)n, sizeof(worker));
    p->slot_gen = ap_calloc((size_t)p->cfg->max_workers, sizeof(uint32_t));
    p->slot_errors = ap_calloc((size_t)p->cfg->max_workers, sizeof(uint64_t));
    p->nworkers = n;
    p->pool_size = (int)p->cfg->min_workers;
    for (int i = 0; i < n; i++) {
        worker *w = &p->workers[i];
        w->pool = p;
        w->index = i;
        w->prog_fd = -1;
        w->fd = -1;
        worker_assign(w, i < p->pool_size ? i : -1);
        if (w->slot < 0)
            name_spare(w);
        w->state = WORKER_DEAD;
        link_init(&w->running);
        w->respawn_ev = evtimer_new(server.base, respawn_cb, w);
        w->kill_ev = evtimer_new(server.base, kill_step_cb, w);
    }
    memset(p->worker_states, 0, sizeof(p->worker_states));
    p->worker_states[WORKER_DEAD] = p->nworkers;
    wout_init(p);
}

static void link_free(worker *w);

void worker_table_free(pool_t *p)
{
    wout_free(p);
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        link_free(w);
        wprog_free(w);
        if (w->respawn_ev)
            event_free(w->respawn_ev);
        if (w->kill_ev)
            event_free(w->kill_ev);
        ap_free(w->proc.health);
    }
    ap_free(p->workers);
    p->workers = NULL;
    ap_free(p->slot_gen);
    p->slot_gen = NULL;
    ap_free(p->slot_errors);
    p->slot_errors = NULL;
}

/* ---- spawning -------------------------------------------------------- */

typedef worker_exec_args exec_args;

static void build_exec_args(exec_args *a, const worker *w)
{
    worker_exec_args_build(a, w->pool->cfg, server.worker_binary, w->name);
}

void worker_exec_args_build(worker_exec_args *a, const config *cfg, const char *binary, const char *name)
{
    int n = 0;
    snprintf(a->conc, sizeof(a->conc), "%lld", (long long)cfg->concurrency);
    snprintf(a->idenv, sizeof(a->idenv), "AGENTPOOL_WORKER_ID=%s", name);
    a->argv[n++] = (char *)binary;
    a->argv[n++] = "--id";
    a->argv[n++] = (char *)name;
    a->argv[n++] = "--agent";
    a->argv[n++] = cfg->agent;
    a->argv[n++] = "--pool";
    a->argv[n++] = cfg->socket;
    a->argv[n++] = "--model";
    a->argv[n++] = cfg->worker_model;
    snprintf(a->hubwarn, sizeof(a->hubwarn), "%lld", (long long)cfg->hub_blocked_warn_ms);
    a->argv[n++] = "--hub-blocked-warn-ms";
    a->argv[n++] = a->hubwarn;
    a->argv[n++] = "--concurrency";
    a->argv[n++] = a->conc;
    snprintf(a->maxres, sizeof(a->maxres), "%lld", (long long)config_max_result_bytes(cfg));
    a->argv[n++] = "--max-result-bytes";
    a->argv[n++] = a->maxres;
    snprintf(a->window, sizeof(a->window), "%lld", (long long)cfg->stream_window_bytes);
    a->argv[n++] = "--stream-window-bytes";
    a->argv[n++] = a->window;
    snprintf(a->maxsess, sizeof(a->maxsess), "%lld", (long long)cfg->max_session_bytes);
    a->argv[n++] = "--max-session-bytes";
    a->argv[n++] = a->maxsess;
    snprintf(a->maxckpt, sizeof(a->maxckpt), "%lld", (long long)cfg->max_checkpoint_bytes);
    a->argv[n++] = "--max-checkpoint-bytes";
    a->argv[n++] = a->maxckpt;
    for (int i = 0; i < cfg->n_python_path; i++) {
        a->argv[n++] = "--python-path";
        a->argv[n++] = cfg->python_path[i];
    }
    if (cfg->virtualenv) {
        a->argv[n++] = "--virtualenv";
        a->argv[n++] = cfg->virtualenv;
    }
    if (cfg->inherit_python_env)
        a->argv[n++] = "--inherit-python-env";
    a->argv[n++] = "--log-level";
    a->argv[n++] = cfg->log_level;
    if (strcmp(cfg->log_format, "json") == 0)
        a->argv[n++] = "--log-json";
    a->argv[n] = NULL;
    struct rlimit rl;
    a->maxfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;

    a->envp = wenv_build_envp(cfg, environ, a->idenv); /* env allow-list, no systemd variables */
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static AP_NORETURN void child_exec(int fd, const wout_pipes *out, int prog_fd, const exec_args *a, pid_t master,
                                   int maxfd, const wenv_ident *id, const config *cfg)
{
    /* Signals are blocked (worker_spawn): reset every handler first, then
     * unblock, so nothing of the master's runs in the child. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != master)
        _exit(1);
    setpgid(0, 0);
    if (fd != AP_WORKER_FD) {
        if (dup2(fd, AP_WORKER_FD) < 0)
            _exit(126);
    } else {
        fcntl(fd, F_SETFD, 0);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != 0)
        dup2(null, 0);
    if (wout_pipes_child(out) < 0) /* stdout, stderr and AP_LOG_FD: the master's pipes */
        _exit(126);
    /* the progress page: mapped and closed at start */
    if (prog_fd < 0 || dup2(prog_fd, AP_PROGRESS_FD) != AP_PROGRESS_FD)
        close(AP_PROGRESS_FD);
    int keep = AP_LOG_FD; /* the highest fd the worker gets */
    if (syscall(SYS_close_range, keep + 1, ~0U, 0) != 0)
        for (int i = keep + 1; i < maxfd; i++)
            close(i);
    wenv_apply_child(cfg, id, AP_WORKER_FD); /* umask, workerLimits, workerUser, chdir; _exits on failure */
    /* A change of ids (workerUser) cleared the parent-death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != master)
        _exit(1);
    execve(a->argv[0], a->argv, a->envp);
    static const char oops[] = "agentpoold: execve of the worker binary failed\n";
    (void)!write(2, oops, sizeof(oops) - 1);
    _exit(127);
}

/* A new process in entry w: every per-process field starts afresh, and
 * so does its load. */
static void process_reset(worker *w, pid_t pid, uint64_t spawn_ns)
{
    ap_free(w->proc.health);
    memset(&w->proc, 0, sizeof(w->proc));
    memset(&w->load, 0, sizeof(w->load));
    w->proc.pid = pid;
    w->proc.generation = ++w->pool->slot_gen[w->slot];
    w->proc.epoch = w->pool->epoch;
    w->proc.spawn_ns = spawn_ns;
    w->proc.started_ms = ap_now_ms();
    w->proc.last_active_ms = w->proc.started_ms;
    w->proc.svc_ewma_ns = WORKER_FAST_NS(w) * 4; /* not fast until it has shown it */
    /* the window it is started with (build_exec_args), which a reload may
     * change for later processes only */
    int64_t window = w->pool->cfg->stream_window_bytes;
    w->proc.credit_batch = (uint32_t)(window / 2 > 0 ? window / 2 : 1);
    w->proc.max_state_bytes = (uint32_t)w->pool->cfg->max_session_bytes;
    w->proc.max_ckpt_bytes = (uint32_t)w->pool->cfg->max_checkpoint_bytes;
    recycle_new_process(w);
}

static void worker_read_cb(evutil_socket_t fd, short what, void *arg);
static void worker_write_failed(void *arg, int err);

/* The master's end of the link: its output (flush.c), its own read
 * event and input buffer.  On error everything made is freed, fd closed,
 * and the failure logged. */
static int link_open(worker *w, int fd)
{
    w->fd = fd;
    w->in = evbuffer_new();
    w->rev = event_new(server.base, fd, EV_READ | EV_PERSIST, worker_read_cb, w);
    if (w->in == NULL || w->rev == NULL || event_add(w->rev, NULL) < 0 ||
        flush_open(&w->out, fd, 1, NULL, worker_write_failed, w) != AP_OK) {
        ap_error("%s: cannot watch its socket (evbuffer_new, event_new or event_add failed); killing it", w->name);
        link_free(w);
        return AP_ERR;
    }
    return AP_OK;
}

static void link_free(worker *w)
{
    if (w->rev)
        event_free(w->rev);
    w->rev = NULL;
    if (w->in)
        evbuffer_free(w->in);
    w->in = NULL;
    flush_close(&w->out);
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
}

int worker_spawn(pool_t *p, int index)
{
    worker *w = &p->workers[index];
    assert(w->state == WORKER_DEAD);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        ap_error("%s: socketpair() failed while spawning: %s", w->name, strerror(errno));
        return AP_ERR;
    }
    wout_pipes out;
    if (wout_pipes_open(&out, w) != AP_OK) {
        close(sv[0]);
        close(sv[1]);
        return AP_ERR;
    }
    const wenv_ident *id = privs_worker_ident(p->cfg);
    if (id == NULL) {
        ap_error("%s: workerUser of the settings in force was never resolved; not spawning", w->name);
        wout_pipes_close(&out);
        close(sv[0]);
        close(sv[1]);
        return AP_ERR;
    }
    int prog_fd = wprog_prepare(w);
    exec_args a;
    build_exec_args(&a, w);
    uint64_t t0 = ap_now_ns();
    /* No signal may reach the child while it still has libevent's
     * handlers: they would write into the master's signal pipe. */
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        ap_error("%s: fork() failed: %s", w->name, strerror(errno));
        ap_free(a.envp);
        wout_pipes_close(&out);
        close(sv[0]);
        close(sv[1]);
        return AP_ERR;
    }
    if (pid == 0)
        child_exec(sv[1], &out, prog_fd, &a, server.pid, a.maxfd, id, p->cfg);
    ap_free(a.envp);
    /* The child makes its own group too; whichever runs first, the group
     * exists once fork returns here, so signalling it (pgroup.c) never
     * misses a worker that has not run yet. */
    setpgid(pid, pid);
    close(sv[1]);
    evutil_make_socket_nonblocking(sv[0]);
    if (link_open(w, sv[0]) != AP_OK)
        kill(pid, SIGKILL);
    process_reset(w, pid, t0);
    if (wout_attach(w, &out) != AP_OK)
        kill(pid, SIGKILL);
    worker_set_state(w, WORKER_STARTING);
    p->stats.spawns++;
    ap_info("%s spawned (pid %d, generation %u)", w->name, (int)pid, w->proc.generation);
    events_emit(p, EVENTS_WORKER_SPAWNED, EVENTS_NORMAL, "\"worker\":\"%s\",\"pid\":%d,\"generation\":%u", w->name,
                (int)pid, w->proc.generation);
    return AP_OK;
}

static void respawn_cb(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)fd;
    (void)what;
    w->respawn_due_ms = 0;
    if (server.state >= SERVER_DRAINING || w->pool->state == POOL_STOPPING || w->state != WORKER_DEAD)
        return;
    if (worker_spawn(w->pool, w->index) != AP_OK) {
        struct timeval tv = {1, 0};
        w->respawn_due_ms = ap_now_ms() + 1000;
        evtimer_add(w->respawn_ev, &tv);
    }
}

/* A delay above 0 is backoff (supervisor.c): the slot is "in restart
 * backoff" until the timer fires, which health.c reports. */
static void schedule_respawn(worker *w, int64_t delay)
{
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
    w->respawn_due_ms = delay > 0 ? ap_now_ms() + (uint64_t)delay : 0;
    evtimer_add(w->respawn_ev, &tv);
}

/* ---- sending ----------------------------------------------------------- */

/* The ext of m's REQUEST (AP_FRAME_REQ_SESSION with the state its session
 * has for it, AP_FRAME_REQ_RESUME with its checkpoint): the flags to add,
 * 0 when it needs none; *state the state's text. */
static uint8_t request_ext(const msg *m, ap_frame_ext *ext, const char **state)
{
    uint8_t flags = 0;
    ext->state_len = ext->resume_len = 0;
    if (m->sess != NULL && sessstate_text(m, state, &ext->state_len))
        flags |= AP_FRAME_REQ_SESSION;
    if (m->ckpt != NULL) {
        flags |= AP_FRAME_REQ_RESUME;
        ext->resume_len = m->ckpt_len;
    }
    return flags;
}

void worker_send(worker *w, msg *m)
{
    /* header, meta, ext and type in one piece; then the client's id and
     * data, straight from the request line, with the session's state and
     * the checkpoint to resume from between them when there are
     * (AP_FRAME_REQUEST in ap_frame.h) */
    unsigned char hdr[AP_FRAME_HDR_SIZE + AP_FRAME_META_SIZE + AP_FRAME_EXT_SIZE + AP_MAX_TYPE_LEN];
    ap_frame_meta meta = {m->deadline_ms, (uint32_t)m->attempts + 1, m->id_len};
    uint32_t len = AP_FRAME_META_SIZE + m->type_len + m->id_len + m->data_len;
    unsigned char *p = hdr + AP_FRAME_HDR_SIZE + AP_FRAME_META_SIZE;
    const char *state = NULL;
    ap_frame_ext ext;
    uint8_t flags = 0;
    if (AP_UNLIKELY(m->sess != NULL || m->ckpt != NULL) && (flags = request_ext(m, &ext, &state)) != 0) {
        ap_frame_ext_encode(p, &ext);
        p += AP_FRAME_EXT_SIZE;
        len += AP_FRAME_EXT_SIZE + ext.state_len + ext.resume_len;
    }
    ap_frame_hdr h = {len, AP_FRAME_REQUEST, AP_FRAME_REQ_META | flags, m->type_len, m->id};
    ap_frame_encode(hdr, &h);
    ap_frame_meta_encode(hdr + AP_FRAME_HDR_SIZE, &meta);
    memcpy(p, m->type, m->type_len);
    struct evbuffer *out = w->out.out;
    evbuffer_add(out, hdr, (size_t)(p - hdr) + m->type_len);
    if (m->id_len)
        evbuffer_add(out, m->line + m->id_off, m->id_len);
    if (AP_UNLIKELY(flags != 0)) {
        if (ext.state_len)
            evbuffer_add(out, state, ext.state_len);
        if (ext.resume_len)
            evbuffer_add(out, m->ckpt, ext.resume_len);
    }
    if (m->data_len)
        evbuffer_add(out, m->line + m->data_off, m->data_len);
    flush_mark(&w->out);
    w->proc.sent_bytes += AP_FRAME_HDR_SIZE + (uint64_t)len;
    msg_set_state(&server.msgs, m, MSG_RUNNING);
    m->worker = w;
    m->worker_gen = w->proc.generation;
    m->sent_ns = ap_now_ns();
    if (m->deliveries < UINT8_MAX)
        m->deliveries++;
    if (m->attempts++ == 0 && !m->control && !m->wait_told) {
        metrics_sent(w->pool->metrics, m);
        m->wait_told = 1;
    }
    link_add_tail(&w->running, &m->qlink);
    w->proc.running_count++;
    if (!m->control && ++w->load.in_flight >= w->load.slots && w->state == WORKER_READY)
        worker_set_state(w, WORKER_BUSY);
}

static void send_simple(worker *w, ap_frame_kind kind, uint64_t id)
{
    unsigned char hdr[AP_FRAME_HDR_SIZE];
    ap_frame_hdr h = {0, (uint8_t)kind, 0, 0, id};
    ap_frame_encode(hdr, &h);
    if (w->out.out) {
        evbuffer_add(w->out.out, hdr, sizeof(hdr));
        flush_mark(&w->out);
        w->proc.sent_bytes += sizeof(hdr);
    }
}

void worker_cancel(worker *w, msg *m)
{
    send_simple(w, AP_FRAME_CANCEL, m->id);
}

void worker_credit(worker *w, uint64_t id, uint32_t n)
{
    unsigned char f[AP_FRAME_HDR_SIZE + AP_FRAME_CREDIT_SIZE];
    ap_frame_hdr h = {AP_FRAME_CREDIT_SIZE, AP_FRAME_CREDIT, 0, 0, id};
    ap_frame_encode(f, &h);
    ap_frame_credit_encode(f + AP_FRAME_HDR_SIZE, n);
    if (w->out.out) {
        evbuffer_add(w->out.out, f, sizeof(f));
        flush_mark(&w->out);
        w->proc.sent_bytes += sizeof(f);
    }
}

/* Escalation for a stuck worker: stacks to the log, then SIGTERM, then
 * SIGKILL.  Each step runs only if the process is still the same one. */
#define KILL_DUMP_GRACE_MS 200
#define KILL_TERM_GRACE_MS 2000

static void kill_step_cb(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)fd;
    (void)what;
    if (w->state == WORKER_DEAD || w->proc.pid <= 0)
        return;
    struct timeval tv = {KILL_TERM_GRACE_MS / 1000, (KILL_TERM_GRACE_MS % 1000) * 1000};
    if (w->proc.kill == WORKER_KILL_STACKS) {
        ap_warn("%s (pid %d): SIGTERM", w->name, (int)w->proc.pid);
        kill(w->proc.pid, SIGTERM);
        w->proc.kill = WORKER_KILL_TERM;
        evtimer_add(w->kill_ev, &tv);
    } else {
        ap_warn("%s (pid %d): still alive %d ms after SIGTERM: SIGKILL", w->name, (int)w->proc.pid, KILL_TERM_GRACE_MS);
        kill(w->proc.pid, SIGKILL);
    }
}

void worker_kill_for_memory(worker *w, const char *why)
{
    if (w->proc.kill != WORKER_KILL_NONE || w->proc.pid <= 0 || w->proc.reaped)
        return;
    ap_error("%s (pid %d) %s: killing it now", w->name, (int)w->proc.pid, why);
    w->proc.kill = WORKER_KILL_MEMORY;
    kill(w->proc.pid, SIGKILL);
}

void worker_kill_stuck(worker *w, const char *why)
{
    if (w->proc.kill != WORKER_KILL_NONE || w->proc.pid <= 0 || w->proc.reaped)
        return;
    ap_error("%s (pid %d) is stuck: %s; its Python stacks follow, then it is replaced", w->name, (int)w->proc.pid, why);
    w->pool->stats.stuck_kills++;
    char esc[512];
    events_emit(w->pool, EVENTS_WORKER_STUCK_KILLED, EVENTS_CRITICAL, "\"worker\":\"%s\",\"pid\":%d,\"why\":\"%s\"",
                w->name, (int)w->proc.pid, events_esc(esc, sizeof(esc), why));
    if (w->state != WORKER_STOPPING)
        worker_set_state(w, WORKER_STOPPING);
    w->proc.kill = WORKER_KILL_STACKS;
    /* SIGUSR1 makes the worker's faulthandler write every thread's stack
     * to stderr, which is our log. */
    kill(w->proc.pid, SIGUSR1);
    struct timeval tv = {0, KILL_DUMP_GRACE_MS * 1000};
    evtimer_add(w->kill_ev, &tv);
}

/* Sends STOP: the worker finishes what it holds, calls on_stop(), exits.
 * gracefulTimeout later (recycle_tick) it is killed if still there. */
static void worker_stop(worker *w)
{
    send_simple(w, AP_FRAME_STOP, 0);
    if (!w->proc.stop_sent_ms)
        w->proc.stop_sent_ms = ap_now_ms();
    worker_set_state(w, WORKER_STOPPING);
}

void worker_drain(worker *w)
{
    w->proc.stop_sent_ms = ap_now_ms();
    worker_set_state(w, WORKER_DRAINING);
    if (w->proc.running_count == 0)
        worker_stop(w);
}

void worker_retire(worker *w)
{
    if (worker_is_accepting(w))
        worker_drain(w);
    else if (w->state == WORKER_STARTING)
        worker_stop(w);
}

void worker_stop_all(pool_t *p)
{
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        evtimer_del(w->respawn_ev);
        w->respawn_due_ms = 0;
        if (w->state == WORKER_DEAD || w->state == WORKER_STOPPING)
            continue;
        worker_stop(w);
    }
}

void worker_signal_all(pool_t *p, int sig)
{
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        if (w->state == WORKER_DEAD || w->proc.pid <= 0 || w->proc.reaped)
            continue;
        /* One that said START_FAILED is exiting on its own, with the
         * status that says why: a SIGTERM now would only hide it. */
        if (sig != SIGKILL && w->proc.said_start_failed)
            continue;
        pgroup_kill(w->proc.pid, sig); /* and what its agent started */
    }
}

/* ---- receiving ------------------------------------------------------- */

void worker_release(worker *w, msg *m)
{
    link_del(&m->qlink); /* m->worker stays: who ran it, for the access log */
    w->proc.running_count--;
    if (!m->control) {
        w->load.in_flight--;
        if (w->state == WORKER_BUSY)
            worker_set_state(w, WORKER_READY);
    }
    if (w->state == WORKER_DRAINING && w->proc.running_count == 0 && !w->proc.reaped)
        worker_stop(w);
}

unsigned worker_fail_running(worker *w, reply_code code, const char *why, const char *extra)
{
    unsigned n = 0;
    while (!link_empty(&w->running)) {
        answer_error(msg_from_qlink(w->running.next), code, why, extra);
        n++;
    }
    return n;
}

/* Called once per process at most (worker_frame_out_of_place). */
static void on_ready(worker *w, const char *payload, size_t len)
{
    w->proc.said_ready = 1;
    if (w->state != WORKER_STARTING) { /* told to stop while it started */
        ap_debug("%s (pid %d): READY while %s; ignored", w->name, (int)w->proc.pid, state_names[w->state]);
        return;
    }
    cJSON *root = cJSON_ParseWithLength(payload, len);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(root, "code");
    if (drift_worker_ready(w, cJSON_IsString(code) ? code->valuestring : NULL) != AP_OK) {
        /* pinCode: a failed start (backoff; a replacement's old process keeps serving). */
        cJSON_Delete(root);
        w->start_failures++;
        w->proc.said_start_failed = 1;
        pgroup_kill(w->proc.pid, SIGKILL);
        return;
    }
    w->proc.async = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "async"));
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    /* the worker's word, shown in stats only: anything but the known names is "?" */
    const char *mname = w->proc.async ? "async" : "sync";
    if (cJSON_IsString(model) && (strcmp(model->valuestring, "sync") == 0 || strcmp(model->valuestring, "async") == 0 ||
                                  strcmp(model->valuestring, "gevent") == 0))
        mname = model->valuestring;
    snprintf(w->proc.model, sizeof(w->proc.model), "%s", mname);
    const cJSON *conc = cJSON_GetObjectItemCaseSensitive(root, "concurrency");
    int slots = cJSON_IsNumber(conc) ? conc->valueint : 1;
    if (slots < 1 || !w->proc.async)
        slots = 1;
    if (slots > w->pool->cfg->concurrency)
        slots = (int)w->pool->cfg->concurrency;
    agentev_worker_ready(w, cJSON_GetObjectItemCaseSensitive(root, "subscribes"));
    a2acard_worker_ready(w->pool, w->name, cJSON_GetObjectItemCaseSensitive(root, "card"));
    cJSON_Delete(root);
    w->load.slots = slots;
    w->proc.ready_ms = ap_now_ms();
    w->proc.last_active_ms = w->proc.ready_ms; /* idle counts from ready: starting is not idling */
    w->proc.rss_bytes = ap_rss_bytes((int)w->proc.pid); /* stats show it from the start, not after the next sample */
    w->start_failures = 0;
    worker_set_state(w, WORKER_READY);
    ap_info("%s ready (pid %d, %s, %d slot%s, fork to ready %.1f ms)", w->name, (int)w->proc.pid,
            w->proc.model, slots, slots == 1 ? "" : "s", (double)(ap_now_ns() - w->proc.spawn_ns) / 1e6);
    events_emit(w->pool, EVENTS_WORKER_READY, EVENTS_NORMAL, "\"worker\":\"%s\",\"pid\":%d,\"model\":\"%s\",\"slots\":%d",
                w->name, (int)w->proc.pid, w->proc.model, slots);
    recycle_replacement_ready(w);
    server_worker_ready();
}

static void on_start_failed(worker *w, const char *payload, size_t len)
{
    ap_error("%s (pid %d): agent %s failed to start:", w->name, (int)w->proc.pid, w->pool->cfg->agent);
    ap_log_block(AP_LOG_ERROR, "  ", payload, len);
    reload_note_start_failure(w, payload, len);
    w->start_failures++;
    w->proc.said_start_failed = 1;
    if (server.state == SERVER_STARTING && w->first_start) {
        server.exit_code = 1;
        server_begin_shutdown("the agent failed to start");
    }
}

/* Prefetch for a sync worker: it runs its messages one by one in the
 * order sent, so a message's handler time is from the later of its
 * sending and the previous answer to its own answer.  While the moving
 * average of that stays under prefetchFastUs the worker may hold
 * `prefetch` messages (batched in one write each way, the round trip
 * paid once per batch instead of once per message); a slow handler gets
 * one message at a time, so nothing waits behind it that another worker
 * could start. */
static void note_service_time(worker *w, const msg *m, uint64_t now)
{
    uint64_t from = m->sent_ns > w->proc.last_answer_ns ? m->sent_ns : w->proc.last_answer_ns;
    uint64_t t = now > from ? now - from : 0;
    w->proc.last_answer_ns = now;
    w->proc.svc_ewma_ns = w->proc.svc_ewma_ns - w->proc.svc_ewma_ns / 8 + t / 8;
    w->load.ahead = w->proc.svc_ewma_ns < WORKER_FAST_NS(w) ? (int)w->pool->cfg->prefetch - 1 : 0;
}

/* payload is the answer's bytes, or NULL when they are still in src (a
 * big RESULT, moved to the client rather than copied). */
static void on_answer(worker *w, const ap_frame_hdr *h, const char *payload, struct evbuffer *src)
{
    msg *m = msg_lookup(&server.msgs, h->id);
    if (m == NULL || m->state != MSG_RUNNING || m->worker != w || m->worker_gen != w->proc.generation) {
        /* Answered already (shutdown deadline) or from a replaced process. */
        w->pool->stats.late_results++;
        ap_debug("%s: %s for unknown message %llu dropped", w->name, ap_frame_kind_name(h->kind),
                 (unsigned long long)h->id);
        return;
    }
    worker_release(w, m);
    usage_cpu(m, h->aux);
    uint64_t now = ap_now_ns();
    w->proc.last_active_ms = now / 1000000u;
    w->proc.last_message_ms = w->proc.last_active_ms;
    if (!w->proc.async)
        note_service_time(w, m, now);
    if (!m->control) {
        w->load.processed++;
        w->pool->stats.processed++;
        recycle_after_answer(w);
    }
    if (m->sess && sessstate_answer(m, h, payload, src))
        return; /* held until its session state is committed */
    worker_answer_frame(w, m, h, payload, src);
}

void worker_answer_frame(worker *w, msg *m, const ap_frame_hdr *h, const char *payload, struct evbuffer *src)
{
    if (h->kind == AP_FRAME_RESULT && (h->flags & AP_FRAME_RESULT_INPUT))
        m->input_required = 1; /* ctx.require_input: the answer line says so */
    if (h->kind == AP_FRAME_RESULT && (h->flags & AP_FRAME_RESULT_STREAMED) && !m->want_stream) {
        stream_answer_collected(m, payload, src, h->len);
    } else if (h->kind == AP_FRAME_RESULT) {
        if (src)
            answer_ok_moved(m, src, h->len);
        else
            answer_ok(m, payload, h->len);
    } else {
        reply_code code = reply_code_of_error_json(payload, h->len);
        if (code == ERR_AGENT_ERROR && w && w->slot >= 0)
            w->pool->slot_errors[w->slot]++; /* per slot: survives recycling */
        answer_worker_error(m, code, payload, h->len);
    }
}

/* A CHUNK frame (its size checked by worker_frame_out_of_place): m must
 * be running on this process, as for an answer (a late chunk of a
 * replaced process or of a message answered and let go is dropped). */
static void on_chunk(worker *w, const ap_frame_hdr *h, const char *payload)
{
    msg *m = msg_lookup(&server.msgs, h->id);
    if (m == NULL || m->state != MSG_RUNNING || m->worker != w || m->worker_gen != w->proc.generation) {
        w->pool->stats.chunks_dropped++;
        ap_debug("%s: CHUNK for unknown message %llu dropped", w->name, (unsigned long long)h->id);
        return;
    }
    w->proc.last_active_ms = ap_now_ms();
    stream_chunk(m, payload, h->len, w->proc.last_active_ms);
}

/* A CHECKPOINT frame (its size checked by worker_frame_out_of_place):
 * kept with m, in place of the last, when m runs on this process (a late
 * one of a replaced process, or of a message answered, is dropped).  Its
 * bytes go back to a worker and into a dead-letter line, so they must be
 * one JSON value: the bridge never sends another, agent code forging
 * frames may (dropped, logged). */
static void on_checkpoint(worker *w, const ap_frame_hdr *h, const char *payload)
{
    char err[SCAN_ERROR_MAX];
    msg *m = msg_lookup(&server.msgs, h->id);
    if (m == NULL || m->state != MSG_RUNNING || m->worker != w || m->worker_gen != w->proc.generation) {
        ap_debug("%s: CHECKPOINT for unknown message %llu dropped", w->name, (unsigned long long)h->id);
        return;
    }
    if (scan_json_value(payload, h->len, AP_MAX_JSON_DEPTH, SCAN_ONE_LINE, err, NULL) != AP_OK) {
        ap_warn("%s (pid %d): CHECKPOINT of message %llu is not one JSON value (%s): dropped", w->name,
                (int)w->proc.pid, (unsigned long long)h->id, err);
        return;
    }
    w->proc.last_active_ms = ap_now_ms();
    msg_keep_checkpoint(m, payload, h->len);
}

/* A falsy health() answer counts as a missed beat, like no answer. */
static int health_is_falsy(const char *p, size_t len)
{
    static const char *const falsy[] = {"false", "null", "0", "\"\"", "[]", "{}", "0.0"};
    for (size_t i = 0; i < AP_ARRAY_LEN(falsy); i++)
        if (strlen(falsy[i]) == len && memcmp(falsy[i], p, len) == 0)
            return 1;
    return 0;
}

static void on_pong(worker *w, const ap_frame_hdr *h, const char *payload)
{
    if (h->id != w->proc.ping_seq)
        return; /* an old beat's late answer */
    w->proc.ping_out = 0;
    ap_free(w->proc.health);
    w->proc.health = NULL;
    if (h->len > 0 && h->len <= WORKER_HEALTH_MAX)
        w->proc.health = ap_strndup(payload, h->len);
    if (h->len > 0 && health_is_falsy(payload, h->len)) {
        w->proc.missed_beats++;
        ap_warn("%s (pid %d): health() answered %.*s (%u in a row)", w->name, (int)w->proc.pid, (int)h->len, payload,
                w->proc.missed_beats);
    } else {
        w->proc.missed_beats = 0;
    }
}

void worker_heartbeat(pool_t *p)
{
    unsigned max = (unsigned)p->cfg->max_missed_beats;
    for (int i = 0; i < p->nworkers; i++) {
        worker *w = &p->workers[i];
        if (!worker_is_accepting(w) || w->proc.kill != WORKER_KILL_NONE)
            continue;
        /* A sync worker holding a message cannot answer until it is done:
         * its message's timeout judges it instead. */
        if (!w->proc.async && w->load.in_flight > 0) {
            w->proc.ping_out = 0;
            continue;
        }
        if (w->proc.ping_out && ++w->proc.missed_beats)
            ap_warn("%s (pid %d): missed a heartbeat (%u in a row)", w->name, (int)w->proc.pid, w->proc.missed_beats);
        if (w->proc.missed_beats >= max) {
            char why[96];
            snprintf(why, sizeof(why), "%u heartbeats missed in a row", w->proc.missed_beats);
            worker_kill_stuck(w, why);
            continue;
        }
        send_simple(w, AP_FRAME_PING, ++w->proc.ping_seq);
        w->proc.ping_out = 1;
    }
}

static void worker_protocol_error(worker *w, const char *what)
{
    ap_error("%s (pid %d): %s; killing it", w->name, (int)w->proc.pid, what);
    w->proc.link_broken = 1;
    event_del(w->rev);
    if (w->proc.pid > 0 && !w->proc.reaped)
        kill(w->proc.pid, SIGKILL);
}

/* Whether frame h may come from w in its state: NULL when it may, else
 * why not.  Checked before a frame changes anything: the worker runs
 * agent code, which can write to the master link (fd 3) too, so a frame
 * is input to be checked against what the master knows, like a client's
 * line.  READY or START_FAILED is said once per process, by the bridge,
 * before any message: a second one can only be forged (or a corrupt
 * stream), and the link can no longer be trusted, so they are protocol
 * errors (the worker is killed; what it held is retried as after a
 * crash).  A RESULT or ERROR for a message this process does not hold
 * is ignored with a log line (on_answer): it is also what a replaced or
 * timed-out worker legitimately sends late (logged at debug level, counted
 * in messages.lateResults).  A PONG for another ping
 * than the last is ignored (on_pong): an old beat's late answer. */
/* worker_frame_out_of_place for a frame of one JSON value the bridge
 * bounds by limit. */
static const char *bounded_frame(const worker *w, const ap_frame_hdr *h, uint64_t limit, const char *empty,
                                 const char *over)
{
    if (h->len == 0)
        return empty;
    if (h->len > limit)
        return over;
    return w->proc.said_ready ? NULL : "before READY";
}

static const char *worker_frame_out_of_place(const worker *w, const ap_frame_hdr *h)
{
    switch (h->kind) {
    case AP_FRAME_READY:
    case AP_FRAME_START_FAILED:
        return w->proc.said_ready || w->proc.said_start_failed ? "said only once, at start" : NULL;
    case AP_FRAME_EVENT: {
        /* ctx.publish: the bridge checks the sizes first, so a bad one is forged */
        const char *why = agentev_header_refused(h->aux, h->len);
        if (why != NULL)
            return why;
        return w->proc.said_ready ? NULL : "before READY";
    }
    case AP_FRAME_USAGE: {
        const char *why = usage_header_refused(h->len);
        return why ? why : w->proc.said_ready ? NULL : "before READY";
    }
    /* The bridge sends each of these as one JSON value within its limit,
     * never empty (a gap in a client's stream is not an option): anything
     * else is forged. */
    case AP_FRAME_CHUNK:
        return bounded_frame(w, h, (uint64_t)config_max_result_bytes(w->pool->cfg), "an empty chunk",
                             "a chunk over maxResultBytes");
    case AP_FRAME_STATE:
        return bounded_frame(w, h, w->proc.max_state_bytes, "an empty session state",
                             "a session state over maxSessionBytes");
    case AP_FRAME_CHECKPOINT:
        return bounded_frame(w, h, w->proc.max_ckpt_bytes, "an empty checkpoint",
                             "a checkpoint over maxCheckpointBytes");
    case AP_FRAME_RESULT:
    case AP_FRAME_ERROR:
    case AP_FRAME_PONG:
        return w->proc.said_ready ? NULL : "before READY";
    default:
        return "never sent by a worker";
    }
}

/* A header that does not decode: the stream is corrupt (logged, the
 * worker killed). */
static void frame_corrupt(worker *w, const ap_frame_hdr *h)
{
    char what[96];
    snprintf(what, sizeof(what), "corrupt frame header (kind %u, length %u)", h->kind, h->len);
    worker_protocol_error(w, what);
}

/* AP_OK when h may come from w now, else AP_ERR (logged, the worker
 * killed). */
static int frame_in_place(worker *w, const ap_frame_hdr *h)
{
    const char *why = worker_frame_out_of_place(w, h);
    if (why == NULL)
        return AP_OK;
    char what[128];
    snprintf(what, sizeof(what), "%s frame while %s (%s)", ap_frame_kind_name(h->kind), state_names[w->state], why);
    w->pool->stats.frames_out_of_place++;
    worker_protocol_error(w, what);
    return AP_ERR;
}

/* Acts on one complete frame: its payload at payload, or (payload NULL)
 * next in `in`, its header already drained.  Returns 1 when it freed
 * capacity (an answer, READY), else 0. */
static int frame_handle(worker *w, const ap_frame_hdr *h, const char *payload, struct evbuffer *in)
{
    /* A RESULT over maxResultBytes is answered agent_error instead,
     * its payload dropped unread. */
    int ours = (h->kind == AP_FRAME_RESULT || h->kind == AP_FRAME_ERROR) && agentstat_owns(w, h);
    ap_frame_hdr eh;
    char refusal[WRESULT_REFUSAL_MAX];
    int refused = !ours && wresult_refuse(w, h, &eh, refusal, sizeof(refusal));
    struct evbuffer *src = NULL;
    if (refused)
        payload = refusal;
    else if (payload == NULL) {
        /* A big RESULT is never pulled up into one piece: its chains are
         * moved to the client (answer_ok_moved), so a result of hundreds
         * of megabytes costs the loop no memcpy of its size. */
        if (!ours && h->kind == AP_FRAME_RESULT && h->len >= WORKER_MOVE_MIN)
            src = in;
        else
            payload = h->len ? (const char *)evbuffer_pullup(in, h->len) : "";
    }
    switch (h->kind) {
    case AP_FRAME_RESULT:
    case AP_FRAME_ERROR:
        if (ours) { /* our own agent.metrics ask: no message */
            agentstat_answer(w, h, payload);
            return 0;
        }
        on_answer(w, refused ? &eh : h, payload, src);
        return 1;
    case AP_FRAME_READY:
        on_ready(w, payload, h->len);
        return 1;
    case AP_FRAME_START_FAILED:
        on_start_failed(w, payload, h->len);
        return 0;
    case AP_FRAME_PONG:
        on_pong(w, h, payload);
        return 0;
    case AP_FRAME_CHUNK:
        on_chunk(w, h, payload);
        return 0;
    case AP_FRAME_EVENT:
        agentev_frame(w, h, payload);
        return 0;
    case AP_FRAME_STATE:
        sessstate_frame(w, h, payload);
        return 0;
    case AP_FRAME_CHECKPOINT:
        on_checkpoint(w, h, payload);
        return 0;
    case AP_FRAME_USAGE:
        usage_frame(w, h, payload);
        return 0;
    default: /* refused by worker_frame_out_of_place */
        return 0;
    }
}

/* Handles every complete frame in w's input.  Returns how many freed
 * capacity (answers, READY), or -1 when the stream is corrupt (the worker
 * is being killed).  Never pumps the queue: the caller does. */
static int worker_handle_frames(worker *w)
{
    struct evbuffer *in = w->in;
    int answered = 0;
    if (w->proc.link_broken)
        return -1;
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        if (avail < AP_FRAME_HDR_SIZE)
            break;
        unsigned char hb[AP_FRAME_HDR_SIZE];
        ap_frame_hdr h;
        evbuffer_copyout(in, hb, sizeof(hb));
        if (ap_frame_decode(hb, &h) != AP_OK) {
            frame_corrupt(w, &h);
            return -1;
        }
        if (avail < AP_FRAME_HDR_SIZE + (size_t)h.len)
            break;
        if (frame_in_place(w, &h) != AP_OK)
            return -1;
        evbuffer_drain(in, AP_FRAME_HDR_SIZE);
        size_t before = evbuffer_get_length(in);
        answered += frame_handle(w, &h, NULL, in);
        /* What was not moved to a client (most frames: all of it). */
        size_t taken = before - evbuffer_get_length(in);
        evbuffer_drain(in, h.len - taken);
    }
    return answered;
}

/* The same for n bytes just read into buf, while nothing was left in
 * w->in from before: frames are handled where they lie, and only an
 * incomplete last one is copied to w->in. */
static int worker_handle_read(worker *w, const char *buf, size_t n)
{
    int answered = 0;
    size_t off = 0;
    if (w->proc.link_broken)
        return -1;
    while (n - off >= AP_FRAME_HDR_SIZE) {
        const unsigned char *hb = (const unsigned char *)buf + off;
        ap_frame_hdr h;
        if (ap_frame_decode(hb, &h) != AP_OK) {
            frame_corrupt(w, &h);
            return -1;
        }
        if (n - off - AP_FRAME_HDR_SIZE < (size_t)h.len)
            break;
        if (frame_in_place(w, &h) != AP_OK)
            return -1;
        answered += frame_handle(w, &h, buf + off + AP_FRAME_HDR_SIZE, NULL);
        off += AP_FRAME_HDR_SIZE + (size_t)h.len;
        if (w->proc.link_broken || w->in == NULL)
            return -1;
    }
    if (off < n && evbuffer_add(w->in, buf + off, n - off) < 0) {
        worker_protocol_error(w, "out of memory keeping a partial frame");
        return -1;
    }
    return answered;
}

static char read_scratch[WORKER_READ_MAX]; /* worker_read_cb's reads, handled in place */

/* One read(2) of at most max bytes into w->in (through one scratch
 * buffer: a 64 KiB reserve in the evbuffer costs a malloc and a free of
 * its size per read; the copy of what came is smaller).  Returns as
 * read(2). */
static ssize_t worker_read_once(worker *w, int fd, size_t max)
{
    ssize_t n = read(fd, read_scratch, max < sizeof(read_scratch) ? max : sizeof(read_scratch));
    if (n > 0 && evbuffer_add(w->in, read_scratch, (size_t)n) < 0) {
        errno = ENOMEM;
        return -1;
    }
    return n;
}

/* The link closed or failed: the process is going or gone; make sure,
 * then reaping answers for what it held. */
static void worker_link_lost(worker *w, const char *why)
{
    if (w->state != WORKER_STOPPING)
        ap_debug("%s (pid %d): socketpair %s", w->name, (int)w->proc.pid, why);
    event_del(w->rev);
    if (w->proc.pid > 0 && w->state != WORKER_STOPPING)
        kill(w->proc.pid, SIGKILL);
}

static void worker_read_cb(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    (void)what;
    int direct = evbuffer_get_length(w->in) == 0;
    ssize_t n = direct ? read(fd, read_scratch, sizeof(read_scratch)) : worker_read_once(w, fd, WORKER_READ_MAX);
    if (n == 0) {
        worker_link_lost(w, "closed");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            worker_link_lost(w, strerror(errno));
        return;
    }
    /* Pumped here, not only by the deferred pump each answer asked for:
     * the requests it sends then leave in the same flush as the answers
     * (measured: deferring it alone saved no instructions). */
    if ((direct ? worker_handle_read(w, read_scratch, (size_t)n) : worker_handle_frames(w)) > 0)
        sched_pump(w->pool);
}

/* The process is gone: whatever it wrote before it died may still be in
 * the socket.  Read it all and act on it, so a finished answer is
 * delivered rather than retried or failed. */
static void worker_drain_dead(worker *w)
{
    if (w->in == NULL)
        return;
    /* Not through read_scratch: this may run while frames read there
     * are being handled (a death noticed on the way). */
    for (int i = 0; i < 1 << 14 && evbuffer_read(w->in, w->fd, WORKER_READ_MAX) > 0; i++)
        ;
    worker_handle_frames(w);
}

static void worker_write_failed(void *arg, int err)
{
    worker_link_lost(arg, strerror(err));
}

/* ---- death ----------------------------------------------------------- */

static void describe_status(int status, char *buf, size_t cap)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(buf, cap, "killed by signal %d (%s)", sig, strsignal(sig));
    } else if (WEXITSTATUS(status) == WENV_EXIT_FAILED) {
        snprintf(buf, cap, "exited with status %d (its environment could not be set up)", WENV_EXIT_FAILED);
    } else {
        snprintf(buf, cap, "exited with status %d", WEXITSTATUS(status));
    }
}

/* Logs how w's process ended and counts it; says why, for the
 * supervisor. */
static sup_reason death_note(worker *w, int status, const char *how)
{
    int stuck = w->proc.kill == WORKER_KILL_STACKS || w->proc.kill == WORKER_KILL_TERM;
    int expected = w->state == WORKER_STOPPING && w->proc.kill == WORKER_KILL_NONE;
    int never_ready = w->proc.ready_ms == 0;
    int held = w->proc.running_count;
    if (expected && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        ap_info("%s (pid %d) stopped", w->name, (int)w->proc.pid);
    else if (expected)
        ap_info("%s (pid %d) stopped: %s", w->name, (int)w->proc.pid, how);
    else
        ap_error("%s (pid %d) %s%s, holding %d message%s", w->name, (int)w->proc.pid, how,
                 never_ready ? " before it was ready" : "", held, held == 1 ? "" : "s");
    if (!expected && w->proc.kill == WORKER_KILL_NONE)
        w->pool->stats.crashes++; /* killed on purpose is counted apart */
    if (never_ready && !w->proc.said_start_failed && !expected)
        w->start_failures++;
    sup_reason reason = expected ? (w->proc.recycle_reason ? SUP_RECYCLED : SUP_STOPPED)
                        : stuck ? SUP_KILLED_STUCK
                        : w->proc.kill == WORKER_KILL_MEMORY ? SUP_KILLED_MEMORY
                        : never_ready ? SUP_START_FAILED : SUP_CRASHED;
    events_emit(w->pool, EVENTS_WORKER_EXITED, expected ? EVENTS_NORMAL : EVENTS_CRITICAL,
                "\"worker\":\"%s\",\"pid\":%d,\"reason\":\"%s\",\"expected\":%s,\"%s\":%d,\"how\":\"%s\",\"held\":%d",
                w->name, (int)w->proc.pid, supervisor_reason_name(reason), expected ? "true" : "false",
                WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
                how, held);
    return reason;
}

/* Lets go of w's process: its socket, its kill escalation, its state. */
static void process_clear(worker *w)
{
    evtimer_del(w->kill_ev);
    w->proc.kill = WORKER_KILL_NONE;
    link_free(w);
    w->proc.pid = 0;
    w->load.in_flight = 0;
    worker_set_state(w, WORKER_DEAD);
}

/* The entry goes back to the spares. */
static void entry_free(worker *w)
{
    worker_assign(w, -1);
    name_spare(w);
}

/* After a death: a new process for the slot, now or after the
 * supervisor's delay, unless the entry was freed or the pool is
 * stopping.  A first-start worker that never got ready stops the
 * server instead: that agent cannot start. */
static void respawn_decide(worker *w, int freed, int never_ready, int64_t delay)
{
    if (freed) {
        reload_step(); /* a hand-over ended: the next worker, if reloading */
    } else if (server.state == SERVER_STARTING && w->first_start && never_ready) {
        if (server.exit_code == 0) {
            ap_error("%s died before it was ready at first start: not respawning", w->name);
            server.exit_code = 1;
        }
        server_begin_shutdown("a worker failed to start");
    } else if (server.state < SERVER_DRAINING && w->pool->state != POOL_STOPPING && delay >= 0) {
        schedule_respawn(w, delay);
    }
}

static void worker_died(worker *w, int status)
{
    char how[64];
    w->proc.reaped = 1;  /* its pid may be reused from now on: never signal it */
    worker_drain_dead(w);
    wout_detach(w); /* its last output before the line saying how it ended */
    describe_status(status, how, sizeof(how));
    int never_ready = w->proc.ready_ms == 0;
    sup_reason reason = death_note(w, status, how);
    retry_worker_died(w, status, how);
    int64_t delay = supervisor_worker_ended(w, status, reason);
    int freed = recycle_process_ended(w);
    process_clear(w);
    if (!freed && (w->slot >= w->pool->pool_size || w->slot < 0))
        freed = 1; /* its slot was scaled away */
    if (freed)
        entry_free(w);
    respawn_decide(w, freed, never_ready, delay);
    sched_pump_soon(w->pool); /* what it held freed bytes and maybe queue room */
    if (server.state >= SERVER_DRAINING)
        server_check_shutdown();
}

static worker *worker_by_pid(pid_t pid)
{
    POOLS_FOREACH(p) {
        for (int i = 0; i < p->nworkers; i++)
            if (p->workers[i].proc.pid == pid && p->workers[i].state != WORKER_DEAD)
                return &p->workers[i];
    }
    return NULL;
}

static int is_worker_pid(pid_t pid)
{
    return worker_by_pid(pid) != NULL;
}

void worker_reap(void)
{
    int status, reaped = 0;
    for (;;) {
        /* Look before reaping: while a dead worker is an unreaped zombie
         * its pid, and so its process group id, cannot be reused, so
         * this is the moment to kill what its agent started. */
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
            break;
        pid_t pid = si.si_pid;
        worker *w = worker_by_pid(pid);
        if (w != NULL && pgroup_kill(pid, SIGKILL) != AP_OK)
            ap_debug("%s (pid %d): kill of its process group: %s", w->name, (int)pid, strerror(errno));
        if (waitpid(pid, &status, WNOHANG) != pid)
            break;
        reaped++;
        if (w == NULL) {
            ap_debug("reaped pid %d, not a current worker", (int)pid);
            continue;
        }
        worker_died(w, status);
    }
    /* A dead process's own children are re-parented to us (subreaper):
     * any child that is not a worker was started by an agent. */
    if (reaped)
        pgroup_sweep(is_worker_pid);
}

void worker_reap_final(void)
{
    pgroup_sweep_final(is_worker_pid);
}
