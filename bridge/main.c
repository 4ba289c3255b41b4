/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * main.c - agentpool-worker: serves one Python agent to the master.
 *
 * The master forks, puts the worker's end of a socketpair on fd 3 and
 * execs this program (argv below).  Start-up: parse argv, bring Python up
 * (pyhost), import and start the agent (agent), freeze the heap built so
 * far out of the garbage collector's full passes (pyhost), say READY on fd 3
 * - or send START_FAILED with the traceback and exit with
 * AP_EXIT_START_FAILED, so the master does not respawn into a crash loop.
 * Then one of three drivers serves frames until STOP or EOF (--model): the
 * C loop for sync agents (sync_driver), one asyncio loop for async agents
 * (async_driver), or greenlets on gevent's hub for plain def agents whose
 * blocking calls gevent patched before the agent was imported
 * (gevent_driver).  STOP: answers flushed, on_stop(), Python finalized,
 * exit 0.  EOF (the master is gone): on_stop() best-effort, exit 0 at once.
 * SIGINT is ignored (the master owns ctrl-C); SIGTERM kills.
 *
 * Owns the one global state struct, `bridge` (bridge.h).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "bridge.h"
#include "agent.h"
#include "async_driver.h"
#include "gevent_driver.h"
#include "hctx.h"
#include "stream.h"
#include "ap_defaults.h"
#include "msg.h"
#include "pyerr.h"
#include "pyconv.h"
#include "codeid.h"
#include "publish.h"
#include "sstate.h"
#include "checkpoint.h"
#include "ainput.h"
#include "usage.h"
#include "pyhost.h"
#include "sync_driver.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_frame.h"
#include "ap_log.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION "0.0.0"
#endif

#define MAX_CONCURRENCY 100000

bridge_state bridge;

#if defined(__SANITIZE_ADDRESS__)
/* ASan builds (configure --enable-asan): CPython keeps some memory until
 * the process ends by design; report only leaks that are not libpython's,
 * so a worker's exit status stays meaningful under LeakSanitizer. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libpython3\n";
}
#endif

static const char usage_text[] =
    "usage: agentpool-worker --agent MODULE:ATTR [options]\n"
    "Serves one Python agent to agentpoold over the socketpair on fd 3.\n"
    "It is started by agentpoold, not by hand.\n"
    "\n"
    "  --id NAME               worker name for logs (default $AGENTPOOL_WORKER_ID)\n"
    "  --agent MODULE:ATTR     the agent: a class (instantiated with no arguments),\n"
    "                          an object with handle_message(type, data), or such a function\n"
    "  --pool NAME             the pool's name, for the handler context (pyagents.context().pool)\n"
    "  --model MODEL           auto (async for an async def agent, else sync), sync, async or\n"
    "                          gevent (greenlets, standard library monkey-patched; default auto)\n"
    "  --concurrency N         messages in flight at once for an async or gevent agent (default 1)\n"
    "  --hub-blocked-warn-ms N log (with its stack) and count an event loop held N ms by one\n"
    "                          handler (async and gevent models; 0: off; default 1000)\n"
    "  --max-result-bytes N    longest result JSON sent; a longer one is answered agent_error\n"
    "                          \"result too large (N bytes, limit M)\" (default: the frame limit)\n"
    "  --stream-window-bytes N chunk bytes a stream may have in flight before its handler\n"
    "                          waits for the master's credit (default 262144)\n"
    "  --max-session-bytes N   longest session state JSON sent; a handler leaving a longer\n"
    "                          one is answered agent_error (default 1048576)\n"
    "  --max-checkpoint-bytes N longest ctx.checkpoint value JSON; a longer one raises\n"
    "                          ValueError in the handler (default 262144)\n"
    "  --python-path DIR       put DIR first on sys.path (repeatable)\n"
    "  --virtualenv DIR        use the virtual environment DIR (its pyvenv.cfg)\n"
    "  --inherit-python-env    honour PYTHONPATH, PYTHONHOME and other PYTHON* variables\n"
    "  --log-level LEVEL       debug, info, warn or error (default info)\n"
    "  --log-json              log JSON lines\n"
    "  --help, --version\n";

enum {
    OPT_ID = 256,
    OPT_AGENT,
    OPT_POOL,
    OPT_MODEL,
    OPT_HUB_BLOCKED,
    OPT_CONCURRENCY,
    OPT_MAX_RESULT_BYTES,
    OPT_STREAM_WINDOW,
    OPT_MAX_SESSION_BYTES,
    OPT_MAX_CHECKPOINT_BYTES,
    OPT_PYTHON_PATH,
    OPT_VIRTUALENV,
    OPT_INHERIT_ENV,
    OPT_LOG_LEVEL,
    OPT_LOG_JSON,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"id", required_argument, NULL, OPT_ID},
    {"agent", required_argument, NULL, OPT_AGENT},
    {"pool", required_argument, NULL, OPT_POOL},
    {"model", required_argument, NULL, OPT_MODEL},
    {"hub-blocked-warn-ms", required_argument, NULL, OPT_HUB_BLOCKED},
    {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
    {"max-result-bytes", required_argument, NULL, OPT_MAX_RESULT_BYTES},
    {"stream-window-bytes", required_argument, NULL, OPT_STREAM_WINDOW},
    {"max-session-bytes", required_argument, NULL, OPT_MAX_SESSION_BYTES},
    {"max-checkpoint-bytes", required_argument, NULL, OPT_MAX_CHECKPOINT_BYTES},
    {"python-path", required_argument, NULL, OPT_PYTHON_PATH},
    {"virtualenv", required_argument, NULL, OPT_VIRTUALENV},
    {"inherit-python-env", no_argument, NULL, OPT_INHERIT_ENV},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"log-json", no_argument, NULL, OPT_LOG_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static const char *const model_names[] = {"auto", "sync", "async", "gevent"};

const char *bridge_model_name(bridge_model m)
{
    return (size_t)m < AP_ARRAY_LEN(model_names) ? model_names[m] : "?";
}

static int model_by_name(const char *s)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(model_names); i++)
        if (strcmp(s, model_names[i]) == 0)
            return (int)i;
    return -1;
}

/* A byte count option's value, 1 to the frame limit, into *out.  AP_OK,
 * or AP_ERR with the reason in err. */
static int parse_bytes(const char *name, const char *arg, size_t *out, char *err, size_t cap)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || *end || end == arg || v < 1 || v > (long long)AP_FRAME_MAX_PAYLOAD) {
        snprintf(err, cap, "%s must be an integer from 1 to %u, got \"%s\"", name, AP_FRAME_MAX_PAYLOAD, arg);
        return AP_ERR;
    }
    *out = (size_t)v;
    return AP_OK;
}

/* Fills bridge's configuration from argv.  Returns AP_OK, 1 when --help or
 * --version was answered, or AP_ERR with the reason in err. */
static int parse_args(int argc, char **argv, char *err, size_t cap)
{
    int c;
    ap_log_level level = AP_LOG_INFO;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_ID:
            bridge.id = optarg;
            break;
        case OPT_AGENT:
            bridge.agent_spec = optarg;
            break;
        case OPT_POOL:
            bridge.pool = optarg;
            break;
        case OPT_MODEL: {
            int m = model_by_name(optarg);
            if (m < 0) {
                snprintf(err, cap, "--model must be auto, sync, async or gevent, got \"%s\"", optarg);
                return AP_ERR;
            }
            bridge.model = (bridge_model)m;
            break;
        }
        case OPT_CONCURRENCY: {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > MAX_CONCURRENCY) {
                snprintf(err, cap, "--concurrency must be an integer from 1 to %d, got \"%s\"", MAX_CONCURRENCY, optarg);
                return AP_ERR;
            }
            bridge.concurrency = (int)v;
            break;
        }
        case OPT_HUB_BLOCKED: {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 0 || v > 3600000) {
                snprintf(err, cap, "--hub-blocked-warn-ms must be an integer from 0 to 3600000, got \"%s\"", optarg);
                return AP_ERR;
            }
            bridge.hub_blocked_warn_ms = (int)v;
            break;
        }
        case OPT_MAX_RESULT_BYTES:
            if (parse_bytes("--max-result-bytes", optarg, &bridge.max_result_bytes, err, cap) < 0)
                return AP_ERR;
            break;
        case OPT_STREAM_WINDOW:
            if (parse_bytes("--stream-window-bytes", optarg, &bridge.stream_window, err, cap) < 0)
                return AP_ERR;
            break;
        case OPT_MAX_SESSION_BYTES:
            if (parse_bytes("--max-session-bytes", optarg, &bridge.max_session_bytes, err, cap) < 0)
                return AP_ERR;
            break;
        case OPT_MAX_CHECKPOINT_BYTES:
            if (parse_bytes("--max-checkpoint-bytes", optarg, &bridge.max_checkpoint_bytes, err, cap) < 0)
                return AP_ERR;
            break;
        case OPT_PYTHON_PATH:
            if (bridge.n_python_paths >= BRIDGE_MAX_PYTHON_PATHS) {
                snprintf(err, cap, "too many --python-path options (at most %d)", BRIDGE_MAX_PYTHON_PATHS);
                return AP_ERR;
            }
            bridge.python_paths[bridge.n_python_paths++] = optarg;
            break;
        case OPT_VIRTUALENV:
            bridge.virtualenv = optarg;
            break;
        case OPT_INHERIT_ENV:
            bridge.inherit_python_env = 1;
            break;
        case OPT_LOG_LEVEL:
            if (ap_log_parse_level(optarg, &level) < 0) {
                snprintf(err, cap, "--log-level must be debug, info, warn or error, got \"%s\"", optarg);
                return AP_ERR;
            }
            break;
        case OPT_LOG_JSON:
            ap_log_set_json(1);
            break;
        case OPT_HELP:
            fputs(usage_text, stdout);
            return 1;
        case OPT_VERSION:
            printf("agentpool-worker %s (built with Python %s)\n", VERSION, PY_VERSION);
            return 1;
        case ':':
            snprintf(err, cap, "option %s needs a value", argv[optind - 1]);
            return AP_ERR;
        default:
            snprintf(err, cap, "unknown option %s (see --help)", argv[optind - 1]);
            return AP_ERR;
        }
    }
    if (optind < argc) {
        snprintf(err, cap, "unexpected argument \"%s\" (see --help)", argv[optind]);
        return AP_ERR;
    }
    if (bridge.agent_spec == NULL) {
        snprintf(err, cap, "--agent MODULE:ATTR is required");
        return AP_ERR;
    }
    bridge.log_level = (int)level;
    return AP_OK;
}

/* Writes one frame now, blocking.  Returns AP_ERR when the master is gone. */
static int send_now(unsigned kind, const void *payload, size_t len)
{
    wire_put(&bridge.out, kind, 0, payload, len);
    if (wire_flush(&bridge.out, bridge.fd) != AP_OK) {
        ap_error("write(fd %d) of a %s frame failed: %s", bridge.fd, ap_frame_kind_name(kind), strerror(errno));
        return AP_ERR;
    }
    return AP_OK;
}

/* Reports a start-up failure to the log and the master, then exits. */
static AP_NORETURN void start_failed(const char *text, size_t len)
{
    ap_error("agent %s failed to start:", bridge.agent_spec ? bridge.agent_spec : "(none)");
    ap_log_block(AP_LOG_ERROR, "  ", text, len);
    if (bridge.fd >= 0) {
        if (len > AP_FRAME_MAX_PAYLOAD)
            len = AP_FRAME_MAX_PAYLOAD;
        send_now(AP_FRAME_START_FAILED, text, len);
    }
    exit(AP_EXIT_START_FAILED);
}

/* start_failed with the current Python exception's traceback. */
static AP_NORETURN void start_failed_py(void)
{
    PyObject *text = pyerr_text();
    PyObject *bytes = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
    if (bytes == NULL) {
        PyErr_Clear();
        start_failed("(the traceback could not be encoded)", 36);
    }
    start_failed(PyBytes_AS_STRING(bytes), (size_t)PyBytes_GET_SIZE(bytes));
}

AP_NORETURN void bridge_bad_frame(unsigned kind, uint32_t len, uint64_t id, int corrupt)
{
    if (corrupt)
        ap_error("corrupt frame header from the master (kind %u, len %u, id %llu): the stream cannot be trusted, exiting",
                 kind, (unsigned)len, (unsigned long long)id);
    else
        ap_error("unexpected %s frame (kind %u, len %u, id %llu) from the master: the stream cannot be trusted, exiting",
                 ap_frame_kind_name(kind), kind, (unsigned)len, (unsigned long long)id);
    (void)wire_flush(&bridge.out, bridge.fd); /* best effort: answers already made */
    exit(1);
}

/* Sends this process's own log lines to AP_LOG_FD when agentpoold passed
 * a pipe there (close-on-exec, so processes the agent starts do not get
 * it): stdout and stderr carry agent output, and the master relays as
 * the worker's own lines only what comes on this fd.  Without one (run
 * by hand) the log stays on stderr. */
static void setup_log_fd(void)
{
    struct stat st;
    int fdfl = fcntl(AP_LOG_FD, F_GETFD);
    if (fdfl < 0 || fstat(AP_LOG_FD, &st) < 0 || !S_ISFIFO(st.st_mode))
        return;
    fcntl(AP_LOG_FD, F_SETFD, fdfl | FD_CLOEXEC);
    ap_log_set_fd(AP_LOG_FD);
}

/* Checks fd 3 and prepares it: a socket, close-on-exec (so processes the
 * agent starts cannot keep the master's connection open), blocking. */
static int setup_fd(void)
{
    struct stat st;
    int fd = AP_WORKER_FD;
    if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        ap_error("fd %d is not a socket: agentpool-worker is started by agentpoold, which passes it one end of a "
                 "socketpair on fd %d", fd, fd);
        return AP_ERR;
    }
    int fdfl = fcntl(fd, F_GETFD);
    int fl = fcntl(fd, F_GETFL);
    if (fdfl < 0 || fl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        ap_error("fcntl(fd %d) failed: %s", fd, strerror(errno));
        return AP_ERR;
    }
    bridge.fd = fd;
    return AP_OK;
}

/* Maps the progress page the master passes on AP_PROGRESS_FD (if it
 * does) and closes the fd, so the worker holds fds 0-3 only. */
static void setup_progress(void)
{
    struct stat st;
    if (fstat(AP_PROGRESS_FD, &st) < 0)
        return;
    if (S_ISREG(st.st_mode) && (size_t)st.st_size >= sizeof(ap_progress)) {
        void *p = mmap(NULL, sizeof(ap_progress), PROT_READ | PROT_WRITE, MAP_SHARED, AP_PROGRESS_FD, 0);
        if (p != MAP_FAILED)
            bridge.progress = p;
        else
            ap_warn("mmap of the progress page (fd %d) failed: %s", AP_PROGRESS_FD, strerror(errno));
    }
    close(AP_PROGRESS_FD);
}

/* ,"NAME":VALUE when the agent declares the attribute NAME (not None):
 * "subscribes", its event patterns (docs/events.md), as a list; "card",
 * its A2A Agent Card fields (docs/a2a.md), as it is.  The master checks
 * both; one that cannot be written as JSON within limit is left out. */
static void ready_attr(buf_t *p, const char *name, int as_list, size_t limit)
{
    if (bridge.agent == NULL || !PyObject_HasAttrString(bridge.agent, name))
        return;
    PyObject *v = PyObject_GetAttrString(bridge.agent, name);
    if (v == NULL || v == Py_None) {
        PyErr_Clear();
        Py_XDECREF(v);
        return;
    }
    PyObject *val = as_list ? PySequence_List(v) : (Py_INCREF(v), v); /* a tuple or any sequence: a JSON array */
    size_t at = p->len;
    buf_putc(p, ',');
    pyconv_append_cstr(p, name, strlen(name));
    buf_putc(p, ':');
    if (val == NULL || pyconv_encode_named(val, p, limit, name) != AP_OK) {
        ap_error("the agent's %s cannot be sent as JSON (%s): it is left out", name,
                 as_list ? "a list of strings is expected" : "a dict of JSON values is expected");
        PyErr_Print();
        p->len = at;
    }
    Py_XDECREF(val);
    Py_DECREF(v);
}

static void send_ready(void)
{
    char version[32], codeid[48];
    char head[256];
    const char *model = bridge_model_name(bridge.model);
    pyhost_version(version, sizeof(version));
    codeid_compute(codeid, sizeof(codeid));
    buf_t p;
    buf_init(&p, 256);
    /* "async": the master's word for "holds many at once": gevent too */
    int n = snprintf(head, sizeof(head),
                     "{\"pid\":%d,\"async\":%s,\"model\":\"%s\",\"concurrency\":%d,\"python\":\"%s\","
                     "\"code\":\"%s\",\"agent\":",
                     (int)getpid(), bridge.model != BRIDGE_MODEL_SYNC ? "true" : "false", model, bridge.max_inflight,
                     version, codeid);
    buf_append(&p, head, (size_t)n);
    pyconv_append_cstr(&p, bridge.agent_spec, strlen(bridge.agent_spec));
    ready_attr(&p, "subscribes", 1, 64 * 1024);
    ready_attr(&p, "card", 0, 64 * 1024);
    buf_putc(&p, '}');
    /* logged first, so the line is there once the master sees READY */
    if (bridge.model != BRIDGE_MODEL_SYNC)
        ap_info("ready: agent %s (%s, concurrency %d, Python %s)", bridge.agent_spec, model, bridge.max_inflight,
                version);
    else
        ap_info("ready: agent %s (sync, Python %s)", bridge.agent_spec, version);
    int rc = send_now(AP_FRAME_READY, p.data, p.len);
    buf_free(&p);
    if (rc < 0)
        exit(0); /* the master is gone already */
}

/* Settles --model against the agent just loaded: auto becomes async or
 * sync; a model that cannot serve this agent is a start-up failure with
 * one line saying why. */
static void resolve_model(void)
{
    char err[512];
    switch (bridge.model) {
    case BRIDGE_MODEL_AUTO:
        bridge.model = bridge.is_async ? BRIDGE_MODEL_ASYNC : BRIDGE_MODEL_SYNC;
        return;
    case BRIDGE_MODEL_SYNC:
        if (!bridge.is_async)
            return;
        snprintf(err, sizeof(err), "workerModel sync cannot run %s: its handle_message is async def "
                 "(use workerModel async or auto)", bridge.agent_spec);
        break;
    case BRIDGE_MODEL_GEVENT:
        if (!bridge.is_async)
            return;
        snprintf(err, sizeof(err), "workerModel gevent runs plain def agents, but %s's handle_message is async def "
                 "(use workerModel async or auto)", bridge.agent_spec);
        break;
    case BRIDGE_MODEL_ASYNC:
        return; /* a plain def handler runs on the loop (and holds it while it runs) */
    }
    start_failed(err, strlen(err));
}

static bridge_end run_driver(void)
{
    switch (bridge.model) {
    case BRIDGE_MODEL_ASYNC:
        return async_driver_run();
    case BRIDGE_MODEL_GEVENT:
        return gevent_driver_run();
    default:
        return sync_driver_run();
    }
}

/* Calls on_stop() and logs its failure. */
static void call_on_stop(void)
{
    if (agent_hook("on_stop") == AP_OK)
        return;
    pyerr_log(AP_LOG_ERROR, "on_stop() raised");
}

static AP_NORETURN void finish(bridge_end end)
{
    if (end == BRIDGE_END_EOF) {
        ap_info("the master is gone (end of fd %d): exiting", bridge.fd);
        call_on_stop();
        pyerr_flush();
        pyhost_flush_stdio();
        _exit(0);
    }
    int fl = fcntl(bridge.fd, F_GETFL);
    if (fl >= 0)
        fcntl(bridge.fd, F_SETFL, fl & ~O_NONBLOCK);
    if (wire_flush(&bridge.out, bridge.fd) != AP_OK)
        ap_warn("could not write the last answers: %s", strerror(errno));
    call_on_stop();
    pyerr_flush();
    if (bridge.model == BRIDGE_MODEL_ASYNC)
        async_driver_fini();
    else if (bridge.model == BRIDGE_MODEL_GEVENT)
        gevent_driver_fini();
    agent_release();
    sstate_fini();
    stream_fini();
    usage_fini();
    hctx_fini();
    pyconv_fini();
    unsigned long long sent = bridge.sent, errors = bridge.errors;
    if (pyhost_fini() < 0)
        ap_warn("Python finalization reported an error");
    ap_info("stopped: %llu messages answered (%llu errors)", sent, errors);
    buf_free(&bridge.in);
    buf_free(&bridge.out);
    exit(0);
}

int main(int argc, char **argv)
{
    char err[1024];
    bridge.started_ns = ap_now_ns();
    bridge.fd = -1;
    bridge.concurrency = 1;
    bridge.max_result_bytes = AP_FRAME_MAX_PAYLOAD;
    bridge.stream_window = AP_DEFAULT_STREAM_WINDOW;
    bridge.max_session_bytes = 1024 * 1024;
    bridge.max_checkpoint_bytes = 256 * 1024;
    bridge.log_level = AP_LOG_INFO;
    bridge.hub_blocked_warn_ms = 1000;
    const char *env_id = getenv("AGENTPOOL_WORKER_ID");
    bridge.id = env_id && *env_id ? env_id : "agentpool-worker";
    ap_log_init(bridge.id, AP_LOG_INFO);
    buf_init(&bridge.in, 256 * 1024);
    buf_init(&bridge.out, 64 * 1024);

    int rc = parse_args(argc, argv, err, sizeof(err));
    if (rc == 1)
        return 0;
    ap_log_init(bridge.id, (ap_log_level)bridge.log_level);
    setup_log_fd();
    if (setup_fd() < 0)
        exit(AP_EXIT_START_FAILED);
    setup_progress();
    if (rc < 0)
        start_failed(err, strlen(err));

    signal(SIGINT, SIG_IGN);  /* the master handles ctrl-C and sends STOP */
    signal(SIGPIPE, SIG_IGN); /* a vanished master is EPIPE, i.e. EOF */

    if (pyhost_init(err, sizeof(err)) < 0)
        start_failed(err, strlen(err));
    /* gevent: patched before the agent's imports, so they get gevent's sockets */
    if (bridge.model == BRIDGE_MODEL_GEVENT && gevent_driver_patch(err, sizeof(err)) < 0)
        start_failed(err, strlen(err));
    if (agent_load(bridge.agent_spec) < 0)
        start_failed_py();
    resolve_model();
    pyhost_setup_logging();
    if (hctx_init() < 0 || stream_init() < 0 || publish_init() < 0 || sstate_init() < 0 || checkpoint_init() < 0 ||
        ainput_init() < 0 ||
        usage_init() < 0)
        start_failed_py();
    bridge.max_inflight = bridge.model == BRIDGE_MODEL_SYNC ? 1 : bridge.concurrency;
    if (bridge.model == BRIDGE_MODEL_ASYNC && async_driver_init() < 0)
        start_failed_py();
    if (bridge.model == BRIDGE_MODEL_GEVENT && gevent_driver_init() < 0)
        start_failed_py();
    if (agent_hook("on_start") < 0)
        start_failed_py();
    pyhost_freeze_heap();
    send_ready();

    finish(run_driver());
}
