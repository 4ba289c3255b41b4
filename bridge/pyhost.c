/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyhost.c - the embedded interpreter's start and end (see pyhost.h).
 *
 * Only main.c calls this, once each way.  Errors are returned as text so
 * the caller can send them to the master in a START_FAILED frame.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pyhost.h"
#include "bridge.h"

#include "ap_common.h"
#include "ap_log.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AP_PYTHON3
#define AP_PYTHON3 "python3"
#endif
#ifndef AP_SRCDIR
#define AP_SRCDIR "."
#endif
#ifndef AP_BUILDDIR
#define AP_BUILDDIR "."
#endif
#ifndef AP_PYTHONPKGDIR
#define AP_PYTHONPKGDIR "/usr/local/share/agentpool/python"
#endif

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A virtualenv is bound to the Python version it was made with: its
 * site-packages hold extension modules built for it.  pyvenv.cfg's
 * "version" (or "version_info") line names it; major.minor must be the
 * embedded interpreter's, or start-up fails with one line saying both
 * (instead of a bare ModuleNotFoundError later).  No version line: no
 * check.  Returns AP_ERR with err filled on a mismatch. */
static int venv_version_check(const char *cfg, char *err, size_t ecap)
{
    FILE *f = fopen(cfg, "r");
    if (f == NULL)
        return AP_OK; /* is_file() said it is there; a read error shows later */
    char line[256];
    int major = -1, minor = -1;
    while (major < 0 && fgets(line, sizeof(line), f) != NULL) {
        char key[32];
        int ma, mi;
        if (sscanf(line, " %31[a-z_] = %d.%d", key, &ma, &mi) == 3 &&
            (strcmp(key, "version") == 0 || strcmp(key, "version_info") == 0)) {
            major = ma;
            minor = mi;
        }
    }
    fclose(f);
    if (major < 0 || (major == PY_MAJOR_VERSION && minor == PY_MINOR_VERSION))
        return AP_OK;
    snprintf(err, ecap,
             "--virtualenv %s was made with Python %d.%d but agentpool-worker embeds Python %d.%d: "
             "recreate it with python%d.%d -m venv",
             bridge.virtualenv, major, minor, PY_MAJOR_VERSION, PY_MINOR_VERSION, PY_MAJOR_VERSION,
             PY_MINOR_VERSION);
    return AP_ERR;
}

/* Picks sys.executable: the venv's interpreter or the one matching our
 * libpython.  Returns AP_ERR with err filled when the venv is unusable. */
static int pick_executable(char *exe, size_t cap, char *err, size_t ecap)
{
    if (bridge.virtualenv == NULL) {
        snprintf(exe, cap, "%s", AP_PYTHON3);
        return AP_OK;
    }
    char cfg[PATH_MAX];
    snprintf(cfg, sizeof(cfg), "%s/pyvenv.cfg", bridge.virtualenv);
    if (!is_file(cfg)) {
        snprintf(err, ecap, "--virtualenv %s: no pyvenv.cfg there (make one with: %s -m venv %s)",
                 bridge.virtualenv, AP_PYTHON3, bridge.virtualenv);
        return AP_ERR;
    }
    if (venv_version_check(cfg, err, ecap) != AP_OK)
        return AP_ERR;
    static const char *const names[] = {"python3", "python"};
    for (size_t i = 0; i < AP_ARRAY_LEN(names); i++) {
        snprintf(exe, cap, "%s/bin/%s", bridge.virtualenv, names[i]);
        if (access(exe, X_OK) == 0)
            return AP_OK;
    }
    snprintf(err, ecap, "--virtualenv %s: no bin/python3 in it", bridge.virtualenv);
    return AP_ERR;
}

/* Inserts dir into sys.path at *at (made absolute). */
static int path_insert(PyObject *path, Py_ssize_t *at, const char *dir)
{
    char abs[PATH_MAX];
    if (dir[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            cwd[0] = '\0';
        snprintf(abs, sizeof(abs), "%s/%s", cwd, dir);
        dir = abs;
    }
    PyObject *s = PyUnicode_DecodeFSDefault(dir);
    if (s == NULL)
        return AP_ERR;
    int rc = PyList_Insert(path, (*at)++, s);
    Py_DECREF(s);
    return rc < 0 ? AP_ERR : AP_OK;
}

/* True when this binary runs from the build directory it was built in
 * (make check, ./bootstrap serve): only then is the source tree's
 * pyagents the right one. */
static int running_in_build_tree(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return 0;
    self[n] = '\0';
    size_t l = strlen(AP_BUILDDIR);
    return strncmp(self, AP_BUILDDIR, l) == 0 && self[l] == '/';
}

/* True when dir is already one of sys.path's entries. */
static int path_has(PyObject *path, const char *dir)
{
    PyObject *s = PyUnicode_DecodeFSDefault(dir);
    int has = s ? PySequence_Contains(path, s) : -1;
    Py_XDECREF(s);
    if (has < 0)
        PyErr_Clear();
    return has > 0;
}

/* sys.path: the --python-path directories first (the operator's), then
 * Python's own (standard library, site-packages or the venv's).  In the
 * build tree the source tree comes right after the operator's
 * directories; an installed worker never looks there (the tree it was
 * built from may be gone, or hold other code): it appends the installed
 * package directory (AP_PYTHONPKGDIR, where pyagents was installed) last,
 * unless Python already has it, so a virtualenv's packages come first. */
static int setup_sys_path(char *err, size_t cap)
{
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    if (path == NULL || !PyList_Check(path)) {
        snprintf(err, cap, "sys.path is missing after initialisation");
        return AP_ERR;
    }
    Py_ssize_t at = 0;
    for (int i = 0; i < bridge.n_python_paths; i++)
        if (path_insert(path, &at, bridge.python_paths[i]) < 0)
            goto fail;
    if (running_in_build_tree()) {
        if (path_insert(path, &at, AP_SRCDIR) < 0)
            goto fail;
    } else if (is_dir(AP_PYTHONPKGDIR) && !path_has(path, AP_PYTHONPKGDIR)) {
        Py_ssize_t end = PyList_GET_SIZE(path);
        if (path_insert(path, &end, AP_PYTHONPKGDIR) < 0)
            goto fail;
    }
    return AP_OK;
fail:
    PyErr_Clear();
    snprintf(err, cap, "could not extend sys.path");
    return AP_ERR;
}

/* faulthandler: a fatal signal writes the Python stacks to stderr, and so
 * does SIGUSR1, which the master sends before it kills a worker stuck in
 * a message or a blocked event loop, so the log says where it was. */
static int enable_stack_dumps(char *err, size_t cap)
{
    PyObject *fh = PyImport_ImportModule("faulthandler");
    PyObject *r1 = fh ? PyObject_CallMethod(fh, "enable", NULL) : NULL;
    PyObject *r2 = r1 ? PyObject_CallMethod(fh, "register", "i", SIGUSR1) : NULL;
    int ok = r2 != NULL;
    Py_XDECREF(r2);
    Py_XDECREF(r1);
    Py_XDECREF(fh);
    if (!ok) {
        PyErr_Clear();
        snprintf(err, cap, "could not enable faulthandler for SIGUSR1");
        return AP_ERR;
    }
    return AP_OK;
}

/* Python's logging reaches the master's log: logging's handler of last
 * resort becomes one writing "LEVEL logger: message" to stderr (the pipe
 * the master reads; it maps that prefix to the log line's level) for
 * records at the worker's --log-level and above, and the root logger
 * passes them unless the agent configured logging itself.  Being the last
 * resort, it is used only while no handler is configured: an agent that
 * calls logging.basicConfig() or adds its own handlers replaces it.
 * Done once the agent is imported, and only if it imported logging: the
 * module and what it pulls in cost ~10 ms of start-up and ~1 MiB per
 * worker, which an agent that never logs should not pay.  A failure is
 * logged and start-up goes on. */
void pyhost_setup_logging(void)
{
    static const char code[] =
        "import sys\n"
        "logging = sys.modules.get('logging')\n"
        "if logging is not None:\n"
        "    _h = logging.StreamHandler(sys.stderr)\n"
        "    _h.setFormatter(logging.Formatter('%(levelname)s %(name)s: %(message)s'))\n"
        "    _h.setLevel(level)\n"
        "    logging.lastResort = _h\n"
        "    if not logging.getLogger().handlers:\n"
        "        logging.getLogger().setLevel(level)\n";
    static const int py_levels[] = {10, 20, 30, 40, 50}; /* by ap_log_level */
    int lv = bridge.log_level >= 0 && (size_t)bridge.log_level < AP_ARRAY_LEN(py_levels) ? bridge.log_level : 1;
    PyObject *g = PyDict_New();
    PyObject *level = PyLong_FromLong(py_levels[lv]);
    PyObject *r = NULL;
    if (g && level && PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0 &&
        PyDict_SetItemString(g, "level", level) == 0)
        r = PyRun_String(code, Py_file_input, g, g);
    if (r == NULL) {
        PyErr_Clear();
        ap_warn("could not set up Python logging: agent log records may not reach the log");
    }
    Py_XDECREF(r);
    Py_XDECREF(level);
    Py_XDECREF(g);
}

/* Once the agent has started: one full collection, then gc.freeze() moves
 * every object still alive - the interpreter's, the imported modules',
 * the agent's - to the permanent generation.  Python's collector otherwise
 * rescans all of them in every full (generation 2) collection; with a few
 * thousand messages' objects passing through per second those come every
 * few seconds and each stops the worker for ~17k objects' worth of work
 * (3-13 ms measured here), which every message in flight then waits out.
 * After the freeze a full collection scans only what was allocated since.
 * What is frozen is never collected: a cycle made at start-up that becomes
 * garbage later stays (the stdlib's advice for servers, see gc.freeze).
 * A failure is logged and costs only the pauses. */
void pyhost_freeze_heap(void)
{
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *r = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    Py_XDECREF(r);
    r = r ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    if (r == NULL) {
        PyErr_Clear();
        ap_warn("gc.freeze() failed: full garbage collections will rescan the start-up heap");
    }
    Py_XDECREF(r);
    Py_XDECREF(gc);
}

int pyhost_init(char *err, size_t cap)
{
    PyConfig config;
    PyStatus st;
    char exe[PATH_MAX];
    char *argv[] = {(char *)"agentpool-worker"};

    if (pick_executable(exe, sizeof(exe), err, cap) < 0)
        return AP_ERR;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0;
    config.install_signal_handlers = 0;
    config.use_environment = bridge.inherit_python_env ? 1 : 0;
    /* agent prints show up at once and survive os._exit() */
    config.buffered_stdio = 0;
    st = PyConfig_SetBytesArgv(&config, 1, argv);
    if (PyStatus_Exception(st))
        goto fail;
    st = PyConfig_SetBytesString(&config, &config.program_name, exe);
    if (PyStatus_Exception(st))
        goto fail;
    st = PyConfig_SetBytesString(&config, &config.executable, exe);
    if (PyStatus_Exception(st))
        goto fail;
    st = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(st))
        goto fail;
    PyConfig_Clear(&config);
    if (enable_stack_dumps(err, cap) != AP_OK)
        return AP_ERR;
    return setup_sys_path(err, cap);
fail:
    snprintf(err, cap, "Python initialisation failed: %s%s%s", st.func ? st.func : "", st.func ? ": " : "",
             st.err_msg ? st.err_msg : "(no message)");
    PyConfig_Clear(&config);
    return AP_ERR;
}

void pyhost_version(char *out, size_t cap)
{
    const char *full = Py_GetVersion();
    size_t n = strcspn(full, " ");
    snprintf(out, cap, "%.*s", (int)n, full);
}

void pyhost_flush_stdio(void)
{
    static const char *const names[] = {"stdout", "stderr"};
    for (size_t i = 0; i < AP_ARRAY_LEN(names); i++) {
        PyObject *f = PySys_GetObject(names[i]); /* borrowed */
        if (f && f != Py_None) {
            PyObject *r = PyObject_CallMethod(f, "flush", NULL);
            Py_XDECREF(r);
        }
    }
    PyErr_Clear();
}

int pyhost_fini(void)
{
    return Py_FinalizeEx() < 0 ? AP_ERR : AP_OK;
}
