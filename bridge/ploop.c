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
 * mapped to keys exactly as the stdlib does.  Where the kernel lacks
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

/* _ap_poll(epfd, timeout_s, maxevents) -> [(fd, events), ...];
 * timeout_s < 0 waits for ever. */
static PyObject *ploop_poll(PyObject *self, PyObject *args)
{
    int epfd, maxev, n;
    double timeout;
    struct epoll_event evs[PLOOP_MAX_EVENTS];
    (void)self;
    if (!PyArg_ParseTuple(args, "idi", &epfd, &timeout, &maxev))
        return NULL;
    if (maxev < 1)
        maxev = 1;
    if (maxev > PLOOP_MAX_EVENTS)
        maxev = PLOOP_MAX_EVENTS;
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
            break;
        if (err == ENOSYS && have_pwait2 && timeout >= 0) {
            have_pwait2 = 0;
            ap_info("epoll_pwait2 is not available (%s): asyncio timers keep millisecond precision",
                    strerror(err));
            continue;
        }
        if (err == EINTR) {
            /* Let Python's signal handlers run; the loop asks again. */
            if (PyErr_CheckSignals() < 0)
                return NULL;
            return PyList_New(0);
        }
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        PyObject *t = Py_BuildValue("(iI)", evs[i].data.fd, (unsigned)evs[i].events);
        if (t == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, t);
    }
    return out;
}

static PyMethodDef poll_def = {"_ap_poll", ploop_poll, METH_VARARGS, NULL};

/* The selector: the stdlib's EpollSelector.select with the wait replaced
 * (same InterruptedError handling, same event mapping); the loop: the
 * stdlib's with `after` called at the end of each iteration. */
static const char ploop_code[] =
        "import asyncio, select, selectors\n"
        "class PreciseEpollSelector(selectors.EpollSelector):\n"
        "    def select(self, timeout=None):\n"
        "        if timeout is None:\n"
        "            timeout = -1.0\n"
        "        elif timeout <= 0:\n"
        "            timeout = 0.0\n"
        "        ready = []\n"
        "        get = self._fd_to_key.get\n"
        "        for fd, event in _ap_poll(self._selector.fileno(), timeout, max(len(self._fd_to_key), 1)):\n"
        "            events = 0\n"
        "            if event & ~select.EPOLLIN:\n"
        "                events |= selectors.EVENT_WRITE\n"
        "            if event & ~select.EPOLLOUT:\n"
        "                events |= selectors.EVENT_READ\n"
        "            key = get(fd)\n"
        "            if key:\n"
        "                ready.append((key, events & key.events))\n"
        "        return ready\n"
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
    PyObject *g = PyDict_New(), *fn = PyCFunction_New(&poll_def, NULL), *r = NULL, *loop = NULL;
    if (g && fn && PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0 &&
        PyDict_SetItemString(g, "_ap_poll", fn) == 0 && PyDict_SetItemString(g, "after", after) == 0)
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
