/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hubwatch.c - noticing an event loop that something holds (hubwatch.h).
 *
 * The loop beats: a timer on it (gevent: one repeating loop.timer;
 * asyncio: call_later, re-armed by each beat) stores the time every
 * hubBlockedWarnMs / 2.  A watchdog thread sleeps, in plain C without
 * the GIL, until the last beat is hubBlockedWarnMs old; it never touches
 * the master link.  If no beat came meanwhile the loop is held: the thread
 * takes the GIL (a busy Python loop lets go of it within the switch
 * interval; a blocking call that released it, at once; a C call that
 * keeps it, when it returns), checks again that no beat came, and reads
 * the main thread's current frame - the code holding the loop, the
 * running greenlet's in gevent - so the report carries the offending
 * stack: one warning line with the worker id, pid and how long the loop
 * has been held, then the stack.
 * Every report is counted (bridge.hub_blocked, and the master's progress
 * page, which the master shows as hubBlocked and
 * agentpool_hub_blocked_total).  gevent: reported again each further
 * hubBlockedWarnMs the hub stays held.  asyncio: the classic mistake
 * repeats at one site for every message, so each site (file:line) is
 * logged once and counted every time.  Replacing a worker held past a
 * message's deadline is the master's job (its cancel grace), as for any
 * stuck worker.  State: the one `hw` struct below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include "hubwatch.h"
#include "bridge.h"

#include "ap_common.h"
#include "ap_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HUBWATCH_SITES 256 /* asyncio sites remembered; past it, every report is logged */

static struct {
    hubwatch_kind kind;
    PyObject *loop;
    PyObject *beat_fn;        /* our beat as a Python callable */
    PyObject *timer;          /* gevent: the repeating timer watcher; asyncio: the next TimerHandle */
    PyObject *call_later;     /* asyncio: loop.call_later */
    PyObject *interval;       /* seconds between beats (float) */
    uint64_t warn_ns;
    _Atomic uint64_t last_beat_ns;
    PyThreadState *main_ts;   /* the thread running the loop */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started, stop;
    uint64_t sites[HUBWATCH_SITES];
    unsigned nsites;
} hw = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---------------------------------------------------- the loop's beat */

static PyObject *beat(PyObject *self, PyObject *unused)
{
    (void)self;
    atomic_store(&hw.last_beat_ns, ap_now_ns());
    if (hw.kind == HUBWATCH_ASYNCIO && hw.call_later && !hw.stop) {
        PyObject *h = PyObject_CallFunctionObjArgs(hw.call_later, hw.interval, hw.beat_fn, NULL);
        if (h == NULL) {
            PyErr_Clear();
            ap_warn("hubBlockedWarnMs: could not re-arm the event loop's beat: the watch stops");
        }
        Py_XSETREF(hw.timer, h);
    }
    Py_RETURN_NONE;
}

static PyMethodDef beat_def = {"agentpool_hub_beat", beat, METH_NOARGS, NULL};

/* ---------------------------------------------------------- the report */

/* A hash of the frame's file and line: the "site" of an asyncio report. */
static uint64_t site_of(PyFrameObject *f)
{
    uint64_t h = 1469598103934665603ull;
    PyCodeObject *co = PyFrame_GetCode(f);
    const char *file = co ? PyUnicode_AsUTF8(co->co_filename) : NULL;
    if (file == NULL)
        PyErr_Clear();
    for (const char *p = file ? file : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ (uint64_t)PyFrame_GetLineNumber(f)) * 1099511628211ull;
    Py_XDECREF(co);
    return h;
}

/* True the first time site h is seen (and remembers it). */
static int site_is_new(uint64_t h)
{
    for (unsigned i = 0; i < hw.nsites; i++)
        if (hw.sites[i] == h)
            return 0;
    if (hw.nsites < HUBWATCH_SITES)
        hw.sites[hw.nsites++] = h;
    return 1;
}

/* The stack ending at f, as traceback.format_stack gives it (new
 * reference), or NULL with no error set. */
static PyObject *stack_text(PyFrameObject *f)
{
    PyObject *tb = PyImport_ImportModule("traceback"), *lines = NULL, *empty = NULL, *text = NULL;
    if (tb != NULL)
        lines = PyObject_CallMethod(tb, "format_stack", "O", (PyObject *)f);
    if (lines != NULL)
        empty = PyUnicode_FromString("");
    if (empty != NULL)
        text = PyUnicode_Join(empty, lines);
    Py_XDECREF(empty);
    Py_XDECREF(lines);
    Py_XDECREF(tb);
    if (text == NULL)
        PyErr_Clear();
    return text;
}

/* Reports the held loop: runs in the watchdog thread, holding the GIL. */
static void report(uint64_t held_ms)
{
    bridge.hub_blocked++;
    if (bridge.progress)
        atomic_fetch_add_explicit(&bridge.progress->hub_blocked, 1, memory_order_relaxed);
    PyFrameObject *f = PyThreadState_GetFrame(hw.main_ts); /* the code holding the loop */
    int log = hw.kind == HUBWATCH_GEVENT || f == NULL || site_is_new(site_of(f));
    if (log) {
        const char *what = hw.kind == HUBWATCH_GEVENT ? "the gevent hub" : "the asyncio event loop";
        PyObject *text = f ? stack_text(f) : NULL;
        ap_warn("%s has been held for %llu ms (hubBlockedWarnMs %llu) in worker %s, pid %d: every other message of "
                "this worker waits meanwhile%s%s", what, (unsigned long long)held_ms,
                (unsigned long long)(hw.warn_ns / 1000000u), bridge.id, (int)getpid(),
                hw.kind == HUBWATCH_ASYNCIO ? " (a blocking call inside async def? logged once per site)" : "",
                text ? "; it is held here:" : " (no Python frame to show)");
        if (text) {
            Py_ssize_t n;
            const char *s = PyUnicode_AsUTF8AndSize(text, &n);
            if (s)
                ap_log_block(AP_LOG_WARN, "  ", s, (size_t)n);
            PyErr_Clear();
            Py_DECREF(text);
        }
    }
    Py_XDECREF(f);
}

/* ------------------------------------------------------------ the watchdog */

/* The loop looks held: takes the GIL, and reports if it still is.
 * Called with hw.mu held; returns with it held. */
static void check_held(void)
{
    pthread_mutex_unlock(&hw.mu);
    PyGILState_STATE g = PyGILState_Ensure();
    uint64_t held_ns = ap_now_ns() - atomic_load(&hw.last_beat_ns);
    if (held_ns >= hw.warn_ns && hw.loop != NULL && !hw.stop) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        report(held_ns / 1000000u);
        PyErr_Restore(et, ev, etb);
    }
    PyGILState_Release(g);
    pthread_mutex_lock(&hw.mu);
}

static void *watchdog(void *arg)
{
    uint64_t last_report = 0;
    (void)arg;
    pthread_mutex_lock(&hw.mu);
    while (!hw.stop) {
        uint64_t now = ap_now_ns(), b = atomic_load(&hw.last_beat_ns);
        uint64_t due = (b > last_report ? b : last_report) + hw.warn_ns;
        if (now >= due) {
            check_held(); /* one report per period while held */
            last_report = ap_now_ns();
            continue;
        }
        struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
        int rc = pthread_cond_timedwait(&hw.cv, &hw.mu, &ts);
        if (rc != 0 && rc != ETIMEDOUT && rc != EINTR) {
            ap_warn("hubBlockedWarnMs watch: pthread_cond_timedwait failed: %s; the watch stops", strerror(rc));
            break;
        }
    }
    pthread_mutex_unlock(&hw.mu);
    return NULL;
}

/* ------------------------------------------------------------- lifecycle */

static int arm_beat(void)
{
    hw.beat_fn = PyCFunction_New(&beat_def, NULL);
    hw.interval = PyFloat_FromDouble((double)hw.warn_ns / 2e9);
    if (hw.beat_fn == NULL || hw.interval == NULL)
        return AP_ERR;
    if (hw.kind == HUBWATCH_GEVENT) {
        hw.timer = PyObject_CallMethod(hw.loop, "timer", "OO", hw.interval, hw.interval);
        PyObject *r = hw.timer ? PyObject_CallMethod(hw.timer, "start", "O", hw.beat_fn) : NULL;
        if (r == NULL)
            return AP_ERR;
        Py_DECREF(r);
        /* the beat alone must not keep the hub's loop alive */
        return PyObject_SetAttrString(hw.timer, "ref", Py_False) == 0 ? AP_OK : AP_ERR;
    }
    hw.call_later = PyObject_GetAttrString(hw.loop, "call_later");
    if (hw.call_later == NULL)
        return AP_ERR;
    PyObject *r = beat(NULL, NULL);
    Py_XDECREF(r);
    return hw.timer ? AP_OK : AP_ERR;
}

void hubwatch_start(hubwatch_kind kind, PyObject *loop)
{
    pthread_condattr_t ca;
    if (bridge.hub_blocked_warn_ms <= 0 || hw.started)
        return;
    hw.kind = kind;
    hw.loop = Py_NewRef(loop);
    hw.warn_ns = (uint64_t)bridge.hub_blocked_warn_ms * 1000000u;
    hw.stop = 0;
    hw.main_ts = PyThreadState_Get();
    atomic_store(&hw.last_beat_ns, ap_now_ns());
    if (arm_beat() < 0) {
        PyErr_Clear();
        ap_warn("hubBlockedWarnMs: could not start the event loop's beat; blocked loops will not be reported");
        hubwatch_stop();
        return;
    }
    int rc = pthread_condattr_init(&ca);
    if (rc == 0)
        rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&hw.cv, &ca);
    if (rc == 0) {
        rc = pthread_create(&hw.thread, NULL, watchdog, NULL);
        if (rc != 0)
            pthread_cond_destroy(&hw.cv);
    }
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        ap_warn("hubBlockedWarnMs: could not start the watch thread: %s; blocked loops will not be reported",
                strerror(rc));
        hubwatch_stop();
        return;
    }
    hw.started = 1;
}

void hubwatch_stop(void)
{
    if (hw.started) {
        pthread_mutex_lock(&hw.mu);
        hw.stop = 1;
        pthread_cond_signal(&hw.cv);
        pthread_mutex_unlock(&hw.mu);
        Py_BEGIN_ALLOW_THREADS
        pthread_join(hw.thread, NULL);
        Py_END_ALLOW_THREADS
        pthread_cond_destroy(&hw.cv);
        hw.started = 0;
    }
    hw.stop = 1;
    if (hw.timer) {
        PyObject *r = hw.kind == HUBWATCH_GEVENT ? PyObject_CallMethod(hw.timer, "stop", NULL)
                                                 : PyObject_CallMethod(hw.timer, "cancel", NULL);
        Py_XDECREF(r);
        PyErr_Clear();
    }
    Py_CLEAR(hw.timer);
    Py_CLEAR(hw.call_later);
    Py_CLEAR(hw.interval);
    Py_CLEAR(hw.beat_fn);
    Py_CLEAR(hw.loop);
}
