/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ploop.c - an asyncio event loop whose timers fire on time (ploop.h).
 *
 * asyncio's EpollSelector rounds every timeout up to a whole millisecond
 * (epoll_wait counts in ms), so asyncio.sleep(0.05) wakes 0 to 1 ms late,
 * ~0.5 ms on average, and every message of an agent that waits on timers
 * holds its slot that much longer: measured alone (bench/compare.d/
 * asyncio_ceiling.py) 50 ms sleeps reach 98.2% of Little's law at 128 per
 * loop, 97.5% at 512.  This loop is a SelectorEventLoop whose selector is
 * EpollSelector with only select() replaced: the same epoll fd, waited on
 * with epoll_pwait2 and a nanosecond timeout (the GIL let go), results
 * mapped to keys exactly as the stdlib does, in C (_ap_select: one call
 * per iteration instead of Python bytecode per event).  Where the kernel lacks
 * epoll_pwait2 (before 5.11) it falls back, once and for good, to
 * epoll_wait with the timeout rounded up, i.e. the stdlib's behaviour.
 * The process's timer slack is set to 1 ns when the loop is made: the
 * kernel otherwise lets a timed wait of a normal (not real-time) thread
 * end up to 50 us late (the default slack) so it can batch wake-ups.
 * The loop also calls a C function after every iteration (_run_once):
 * the driver writes the answers the iteration produced there, in the
 * same iteration, rather than through a call_soon handle run one
 * iteration (one more epoll_pwait2 and one more pass over asyncio's
 * Python) later.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "ploop.h"

#include "ap_log.h"

#include <errno.h>
#include <math.h>
#include <sys/epoll.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define PLOOP_MAX_EVENTS 1024

static int have_pwait2 = 1;

/* Maps epoll's bits to the selectors module's EVENT_READ (1) and
 * EVENT_WRITE (2) exactly as EpollSelector.select does. */
static long ploop_events(uint32_t ev)
{
    long events = 0;
    if (ev & ~(uint32_t)EPOLLIN)
        events |= 2;
    if (ev & ~(uint32_t)EPOLLOUT)
        events |= 1;
    return events;
}

/* key.events of a selectors.SelectorKey (a namedtuple: field 2), or -1
 * with a Python error set. */
static long ploop_key_events(PyObject *key)
{
    PyObject *o = PyTuple_Check(key) && PyTuple_GET_SIZE(key) > 2 ? PyTuple_GET_ITEM(key, 2) : NULL;
    if (o != NULL)
        return PyLong_AsLong(o);
    o = PyObject_GetAttrString(key, "events");
    long v = o ? PyLong_AsLong(o) : -1;
    Py_XDECREF(o);
    return v;
}

/* Waits on epfd up to timeout_s seconds (< 0: for ever), nanosecond
 * precise where the kernel can; returns the number of events in evs, or
 * -1 with a Python error set, or 0 after EINTR once Python's signal
 * handlers ran. */
static int ploop_wait(int epfd, double timeout, struct epoll_event *evs, int maxev)
{
    int n;
    for (;;) {
        int err;
        Py_BEGIN_ALLOW_THREADS
        if (timeout < 0) {
            n = epoll_wait(epfd, evs, maxev, -1);
        } else if (have_pwait2) {
            struct timespec ts;
            ts.tv_sec = (time_t)timeout;
            ts.tv_nsec = (long)((timeout - (double)ts.tv_sec) * 1e9);
            if (ts.tv_nsec >= 1000000000L)
                ts.tv_nsec = 999999999L;
            n = epoll_pwait2(epfd, evs, maxev, &ts, NULL);
        } else {
            double ms = ceil(timeout * 1e3);
            n = epoll_wait(epfd, evs, maxev, ms > 2147483647.0 ? 2147483647 : (int)ms);
        }
        err = errno;
        Py_END_ALLOW_THREADS
        if (n >= 0)
            return n;
        if (err == ENOSYS && have_pwait2 && timeout >= 0) {
            have_pwait2 = 0;
            ap_info("epoll_pwait2 is not available (%s): asyncio timers keep millisecond precision",
                    strerror(err));
            continue;
        }
        if (err == EINTR) /* let Python's signal handlers run; the loop asks again */
            return PyErr_CheckSignals() < 0 ? -1 : 0;
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
}

/* _ap_select(epfd, timeout_s, fd_to_key) -> [(key, events), ...]: the
 * whole of EpollSelector.select after its timeout argument, in C (one
 * call per loop iteration instead of a Python loop over the events). */
static PyObject *ploop_select(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct epoll_event evs[PLOOP_MAX_EVENTS];
    (void)self;
    if (nargs != 3 || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "_ap_select(epfd, timeout, fd_to_key)");
        return NULL;
    }
    int epfd = (int)PyLong_AsLong(args[0]);
    double timeout = PyFloat_AsDouble(args[1]);
    if (PyErr_Occurred())
        return NULL;
    PyObject *fd_to_key = args[2];
    Py_ssize_t nkeys = PyDict_GET_SIZE(fd_to_key);
    int maxev = nkeys < 1 ? 1 : nkeys > PLOOP_MAX_EVENTS ? PLOOP_MAX_EVENTS : (int)nkeys;
    int n = ploop_wait(epfd, timeout, evs, maxev);
    if (n < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    for (int i = 0; out != NULL && i < n; i++) {
        PyObject *fd = PyLong_FromLong(evs[i].data.fd);
        PyObject *key = fd ? PyDict_GetItemWithError(fd_to_key, fd) : NULL; /* borrowed */
        Py_XDECREF(fd);
        long kev = key ? ploop_key_events(key) : 0;
        PyObject *t = key && kev >= 0 ? Py_BuildValue("(Ol)", key, ploop_events(evs[i].events) & kev) : NULL;
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            if (PyErr_Occurred())
                Py_CLEAR(out);
            continue; /* a key no longer registered: skipped, as the stdlib does */
        }
        Py_DECREF(t);
    }
    return out;
}

static PyMethodDef select_def = {"_ap_select", (PyCFunction)(void (*)(void))ploop_select, METH_FASTCALL, NULL};

/* The selector: the stdlib's EpollSelector.select with the wait replaced
 * (same InterruptedError handling, same event mapping); the loop: the
 * stdlib's with `after` called at the end of each iteration. */
static const char ploop_code[] =
        "import asyncio, selectors\n"
        "class PreciseEpollSelector(selectors.EpollSelector):\n"
        "    def select(self, timeout=None):\n"
        "        if timeout is None:\n"
        "            timeout = -1.0\n"
        "        elif timeout <= 0:\n"
        "            timeout = 0.0\n"
        "        return _ap_select(self._selector.fileno(), timeout, self._fd_to_key)\n"
        "class PreciseEventLoop(asyncio.SelectorEventLoop):\n"
        "    def __init__(self, after):\n"
        "        super().__init__(PreciseEpollSelector())\n"
        "        self._ap_after = after\n"
        "    def _run_once(self):\n"
        "        super()._run_once()\n"
        "        self._ap_after()\n"
        "loop = PreciseEventLoop(after)\n";

PyObject *ploop_new_loop(PyObject *after)
{
    if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) < 0)
        ap_warn("prctl(PR_SET_TIMERSLACK, 1 ns) failed: %s: asyncio timers may wake up to 50 us late",
                strerror(errno));
    PyObject *g = PyDict_New(), *fn = PyCFunction_New(&select_def, NULL), *r = NULL, *loop = NULL;
    if (g && fn && PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0 &&
        PyDict_SetItemString(g, "_ap_select", fn) == 0 && PyDict_SetItemString(g, "after", after) == 0)
        r = PyRun_String(ploop_code, Py_file_input, g, g);
    if (r != NULL) {
        loop = PyDict_GetItemString(g, "loop"); /* borrowed */
        Py_XINCREF(loop);
    }
    Py_XDECREF(r);
    Py_XDECREF(fn);
    Py_XDECREF(g);
    return loop;
}
