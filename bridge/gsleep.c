/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gsleep.c - time.sleep for gevent workers that wakes on time (see
 * gsleep.h).
 *
 * gevent's sleep is a libev timer, and libev's epoll backend blocks in
 * whole milliseconds, rounded up, at least one: a greenlet's
 * time.sleep(0.05) ends 0.5-1 ms late on average, 1-2% of a 50 ms wait,
 * where the asyncio driver's loop (ploop.c, epoll_pwait2) wakes within
 * microseconds.  Here every sleeping greenlet is one entry in a binary
 * min-heap of due times, and one timerfd (CLOCK_MONOTONIC, absolute),
 * watched by a loop.io watcher on the hub, is armed at the earliest due
 * time plus GSLEEP_SLACK_NS: the slack lets one wake-up serve the sleeps
 * that end close together (a bound on wake-ups per second, and so on the
 * answer batches the master gets), while keeping a sleep's lateness near
 * the slack.  The watcher's callback switches into each greenlet whose
 * time has come, in due order, from the hub, as gevent's own timer
 * callbacks do.  A sleep never ends early.
 *
 * Only the plain case is taken: time.sleep(seconds) with 0 < seconds <
 * GSLEEP_MAX_S, from a greenlet of the main thread other than the hub.
 * Everything else (sleep(0), the ref argument, a native thread's sleep,
 * bad arguments) goes to gevent's sleep as before, as does gevent.sleep
 * itself.  An entry belongs to its sleeping call, which frees it; the
 * heap only points at it (and holds its greenlet) while it waits.  An
 * exception thrown into a sleeping greenlet (gevent.Timeout, the
 * master's cancel) takes its entry out of the heap and leaves the sleep
 * at once, so the heap holds only greenlets that still sleep: at most
 * one entry per greenlet.  A process forked from the worker (an agent's
 * os.fork or multiprocessing) gets a timerfd of its own at once
 * (child_timer, a pthread_atfork handler), armed for its copy of the
 * heap: a shared one would let the child re-arm or disarm the worker's.
 * State: the one `gs` struct below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "gsleep.h"
#include "pyerr.h"

#include "ap_common.h"
#include "ap_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define GSLEEP_SLACK_NS 200000u /* a wake-up serves the sleeps due up to 200 us after the first */
#define GSLEEP_MAX_S 1e6        /* longer sleeps (and inf) go to gevent's */

typedef struct {
    uint64_t due;  /* CLOCK_MONOTONIC ns */
    PyObject *g;   /* the sleeping greenlet (strong while in the heap) */
    size_t at;     /* its index in the heap; GS_OUT when not in it */
} gs_entry;

#define GS_OUT ((size_t)-1)

static struct {
    PyObject *hub, *getcurrent, *orig_sleep;
    PyObject *raw_type, *raw_switch;     /* greenlet.greenlet and its switch */
    PyObject *watcher, *on_timer, *wake; /* wake: the value a due greenlet is switched with */
    PyObject *s_switch, *s_start, *s_stop;
    unsigned long main_thread;
    int tfd, watching;
    uint64_t armed;                      /* the timerfd's due time, 0: disarmed */
    gs_entry **heap;
    size_t n, cap;
} gs = {.tfd = -1};

/* ---------------------------------------------------------------- heap */

static void heap_swap(size_t a, size_t b)
{
    gs_entry *t = gs.heap[a];
    gs.heap[a] = gs.heap[b];
    gs.heap[b] = t;
    gs.heap[a]->at = a;
    gs.heap[b]->at = b;
}

static void sift_up(size_t i)
{
    while (i > 0 && gs.heap[(i - 1) / 2]->due > gs.heap[i]->due) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < gs.n && gs.heap[l]->due < gs.heap[m]->due)
            m = l;
        if (r < gs.n && gs.heap[r]->due < gs.heap[m]->due)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

/* Adds e; AP_ERR (MemoryError set) when the heap cannot grow. */
static int heap_push(gs_entry *e)
{
    if (gs.n == gs.cap) {
        size_t cap = gs.cap ? gs.cap * 2 : 64;
        gs_entry **h = PyMem_Realloc(gs.heap, cap * sizeof(*h));
        if (h == NULL) {
            PyErr_NoMemory();
            return AP_ERR;
        }
        gs.heap = h;
        gs.cap = cap;
    }
    e->at = gs.n++;
    gs.heap[e->at] = e;
    sift_up(e->at);
    return AP_OK;
}

/* Takes e (in the heap) out of it. */
static void heap_remove(gs_entry *e)
{
    size_t i = e->at, last = --gs.n;
    e->at = GS_OUT;
    if (i == last)
        return;
    gs.heap[i] = gs.heap[last];
    gs.heap[i]->at = i;
    sift_up(i);
    sift_down(gs.heap[i]->at);
}

/* ------------------------------------------------------------- the timer */

static void watch(int on)
{
    if (on == gs.watching)
        return;
    PyObject *r = on ? PyObject_CallMethodOneArg(gs.watcher, gs.s_start, gs.on_timer)
                     : PyObject_CallMethodNoArgs(gs.watcher, gs.s_stop);
    if (r == NULL) {
        pyerr_log(AP_LOG_ERROR, "unexpected Python error while %s the sleep timer's watcher",
                  on ? "starting" : "stopping");
        return;
    }
    Py_DECREF(r);
    gs.watching = on;
}

/* Arms the timerfd for the heap's earliest entry (or disarms it), and
 * watches it while anything sleeps.  Re-arming also clears a fired
 * timerfd's readiness. */
static void rearm(void)
{
    uint64_t want = gs.n ? gs.heap[0]->due + GSLEEP_SLACK_NS : 0;
    if (want != gs.armed) {
        struct itimerspec its = {{0, 0}, {(time_t)(want / 1000000000u), (long)(want % 1000000000u)}};
        if (timerfd_settime(gs.tfd, want ? TFD_TIMER_ABSTIME : 0, &its, NULL) < 0)
            ap_error("timerfd_settime(fd %d) for time.sleep failed: %s", gs.tfd, strerror(errno));
        else
            gs.armed = want;
    }
    watch(gs.n > 0);
}

/* The timerfd's watcher: wakes every greenlet whose sleep is over. */
static PyObject *on_timer(PyObject *self, PyObject *unused)
{
    (void)self;
    uint64_t now = ap_now_ns(); /* once: a greenlet that sleeps again waits for the next wake-up */
    gs.armed = (uint64_t)-1; /* fired: rearm must set it again (or disarm it) */
    while (gs.n > 0 && gs.heap[0]->due <= now) {
        gs_entry *e = gs.heap[0];
        PyObject *g = e->g; /* the heap's reference, now ours */
        heap_remove(e);
        PyObject *args[2] = {g, gs.wake};
        PyObject *r = Py_IS_TYPE(g, (PyTypeObject *)gs.raw_type) ? PyObject_Vectorcall(gs.raw_switch, args, 2, NULL)
                                                                 : PyObject_CallMethodOneArg(g, gs.s_switch, gs.wake);
        Py_DECREF(g);
        if (r == NULL)
            pyerr_log(AP_LOG_ERROR, "a greenlet woken from time.sleep ended with an exception");
        Py_XDECREF(r);
    }
    rearm();
    Py_RETURN_NONE;
}

/* pthread_atfork's child handler: a new timer under the same fd number
 * (the watcher keeps watching that number), armed for the child's heap.
 * Syscalls only: nothing else is safe in a forked child yet. */
static void child_timer(void)
{
    if (gs.tfd < 0)
        return;
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0 || dup3(fd, gs.tfd, O_CLOEXEC) < 0) {
        if (fd >= 0)
            close(fd);
        return; /* the child shares the worker's timer: its sleeps may misfire the worker's */
    }
    close(fd);
    gs.armed = 0;
    if (gs.n > 0) {
        uint64_t want = gs.heap[0]->due + GSLEEP_SLACK_NS;
        struct itimerspec its = {{0, 0}, {(time_t)(want / 1000000000u), (long)(want % 1000000000u)}};
        if (timerfd_settime(gs.tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
            gs.armed = want;
    }
}

/* ------------------------------------------------------------- the sleep */

static PyObject *fallback(PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return PyObject_Vectorcall(gs.orig_sleep, args, nargsf, kwnames);
}

/* time.sleep(seconds): waits on the heap, or in gevent's sleep. */
static PyObject *gs_sleep(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    (void)self;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL || !(PyFloat_CheckExact(args[0]) ||
        PyLong_CheckExact(args[0])) || PyThread_get_thread_ident() != gs.main_thread)
        return fallback(args, nargsf, kwnames);
    double s = PyFloat_AsDouble(args[0]);
    if (s == -1.0 && PyErr_Occurred())
        PyErr_Clear();
    if (!(s > 0 && s < GSLEEP_MAX_S))
        return fallback(args, nargsf, kwnames);
    PyObject *me = PyObject_CallNoArgs(gs.getcurrent);
    if (me == NULL)
        return NULL;
    if (me == gs.hub) { /* gevent says why the hub cannot sleep */
        Py_DECREF(me);
        return fallback(args, nargsf, kwnames);
    }
    gs_entry *e = PyMem_Malloc(sizeof(*e));
    if (e == NULL) {
        Py_DECREF(me);
        return PyErr_NoMemory();
    }
    e->due = ap_now_ns() + (uint64_t)(s * 1e9 + 0.5);
    e->g = me; /* the heap's reference */
    if (heap_push(e) < 0) {
        Py_DECREF(me);
        PyMem_Free(e);
        return NULL;
    }
    if (gs.heap[0] == e)
        rearm();
    /* a raw greenlet (every message's) has no switch_out for hub.switch()
     * to look up, and looking raises and clears an AttributeError */
    PyObject *r = Py_IS_TYPE(me, (PyTypeObject *)gs.raw_type) ? PyObject_CallOneArg(gs.raw_switch, gs.hub)
                                                              : PyObject_CallMethodNoArgs(gs.hub, gs.s_switch);
    if (r == gs.wake) { /* on_timer took e out of the heap */
        Py_DECREF(r);
        PyMem_Free(e);
        Py_RETURN_NONE;
    }
    /* an exception thrown in (Timeout, cancel), or a stray switch: out
     * of the heap now; the timerfd stays as it is (no Python call with an
     * exception set), at worst one early wake-up that finds nothing due */
    if (e->at != GS_OUT) {
        heap_remove(e);
        Py_DECREF(e->g);
    }
    PyMem_Free(e);
    if (r != NULL) {
        PyErr_Format(PyExc_RuntimeError, "time.sleep was switched into by something other than its timer "
                     "(with %R)", r);
        Py_DECREF(r);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

static PyMethodDef sleep_def = {"sleep", (PyCFunction)(void (*)(void))gs_sleep, METH_FASTCALL | METH_KEYWORDS,
                                "sleep(seconds)\n\nThe calling greenlet waits seconds (agentpool's gevent worker: "
                                "woken by a timerfd; other calls go to gevent.sleep)."};
static PyMethodDef timer_def = {"agentpool_sleep_timer", on_timer, METH_NOARGS, NULL};

int gsleep_install(void)
{
    PyObject *time = NULL, *gevent = NULL, *greenlet = NULL, *get_hub = NULL, *loop = NULL, *fn = NULL;
    int rc = AP_ERR;
    gs.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (gs.tfd < 0) {
        ap_warn("timerfd_create for time.sleep failed: %s; time.sleep stays gevent's (whole milliseconds, late by "
                "up to one)", strerror(errno));
        return AP_OK;
    }
    time = PyImport_ImportModule("time");
    gevent = time ? PyImport_ImportModule("gevent") : NULL;
    greenlet = gevent ? PyImport_ImportModule("greenlet") : NULL;
    if (greenlet == NULL)
        goto done;
    get_hub = PyObject_GetAttrString(gevent, "get_hub");
    gs.hub = get_hub ? PyObject_CallNoArgs(get_hub) : NULL;
    loop = gs.hub ? PyObject_GetAttrString(gs.hub, "loop") : NULL;
    gs.watcher = loop ? PyObject_CallMethod(loop, "io", "ii", gs.tfd, 1) : NULL; /* libev EV_READ */
    gs.getcurrent = gs.watcher ? PyObject_GetAttrString(greenlet, "getcurrent") : NULL;
    gs.raw_type = gs.getcurrent ? PyObject_GetAttrString(greenlet, "greenlet") : NULL;
    gs.raw_switch = gs.raw_type ? PyObject_GetAttrString(gs.raw_type, "switch") : NULL;
    gs.orig_sleep = gs.raw_switch ? PyObject_GetAttrString(time, "sleep") : NULL;
    gs.wake = gs.orig_sleep ? PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type) : NULL;
    gs.on_timer = gs.wake ? PyCFunction_New(&timer_def, NULL) : NULL;
    fn = gs.on_timer ? PyCFunction_New(&sleep_def, NULL) : NULL;
    gs.s_switch = fn ? PyUnicode_InternFromString("switch") : NULL;
    gs.s_start = gs.s_switch ? PyUnicode_InternFromString("start") : NULL;
    gs.s_stop = gs.s_start ? PyUnicode_InternFromString("stop") : NULL;
    if (gs.s_stop == NULL || PyObject_SetAttrString(time, "sleep", fn) < 0)
        goto done;
    gs.main_thread = PyThread_get_thread_ident();
    int e = pthread_atfork(NULL, NULL, child_timer);
    if (e != 0)
        ap_warn("pthread_atfork for time.sleep's timer failed: %s; a forked child would share it", strerror(e));
    rc = AP_OK;
done:
    Py_XDECREF(fn);
    Py_XDECREF(loop);
    Py_XDECREF(get_hub);
    Py_XDECREF(greenlet);
    Py_XDECREF(gevent);
    Py_XDECREF(time);
    if (rc < 0)
        gsleep_fini();
    return rc;
}

void gsleep_fini(void)
{
    if (gs.watcher && gs.s_stop)
        watch(0);
    /* a greenlet still asleep (only the agent's own at STOP, which waits
     * for every message) keeps its entry and our reference, as gevent's
     * timer would keep it: releasing it here would run its GreenletExit
     * into a half-finalized worker */
    if (gs.n)
        ap_debug("%zu greenlets still in time.sleep at the worker's end", gs.n);
    gs.n = 0;
    PyMem_Free(gs.heap);
    gs.heap = NULL;
    gs.cap = 0;
    if (gs.tfd >= 0)
        close(gs.tfd);
    gs.tfd = -1;
    gs.armed = 0;
    Py_CLEAR(gs.s_stop);
    Py_CLEAR(gs.s_start);
    Py_CLEAR(gs.s_switch);
    Py_CLEAR(gs.on_timer);
    Py_CLEAR(gs.wake);
    Py_CLEAR(gs.orig_sleep);
    Py_CLEAR(gs.raw_switch);
    Py_CLEAR(gs.raw_type);
    Py_CLEAR(gs.getcurrent);
    Py_CLEAR(gs.watcher);
    Py_CLEAR(gs.hub);
}
