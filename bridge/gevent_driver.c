/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gevent_driver.c - serving a plain def agent on gevent's hub, one
 * greenlet per message (see gevent_driver.h).
 *
 * Blocking code (requests, urllib, socket, time.sleep) runs unchanged:
 * main.c has gevent's monkey.patch_all() run before the agent module is
 * imported, so every wait in it switches to the hub instead of blocking
 * the process; time.sleep is then gsleep.c's, which wakes on time.  The
 * bridge's own I/O is the hub's too: loopio.c's (shared with the asyncio
 * driver), given loop.io watchers on fd 3 and loop.run_callback; no
 * thread, no polling.  Each REQUEST gets a raw greenlet whose parent is
 * the hub, switched into at once from the read callback: the handler
 * runs until it waits (back to the hub) or returns, and its greenlet
 * answers the master as its last step (run_message).  A greenlet that
 * has answered parks itself on an idle stack and takes the next REQUEST,
 * so a message costs two switches, not a greenlet's making and
 * unmaking; the stack holds at most `concurrency`.  Switches use
 * greenlet's own switch, not hub.switch(), whose look-up of a switch_out
 * hook (which raw greenlets lack) raises and clears an AttributeError
 * each time.  PING, CANCEL and agent.metrics are answered by the reader
 * itself, so heartbeats go on while handlers wait.  CANCEL (the
 * master's, on a client's disconnect or a deadline) throws GreenletExit
 * into the message's greenlet from a hub callback, as gevent's own
 * Greenlet.kill does; the answer is then "cancelled".  The master caps
 * what is in flight at `concurrency`.
 *
 * The main greenlet waits on a gevent Event; STOP sets it once the last
 * greenlet has answered, EOF at once.  No Python exception escapes into
 * the hub: failures become ERROR frames or log lines.  State: the one `gd` struct below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "gevent_driver.h"
#include "gsleep.h"
#include "hctx.h"
#include "hubwatch.h"
#include "loopio.h"
#include "idmap.h"
#include "msg.h"
#include "pyerr.h"

#include "ap_common.h"
#include "ap_log.h"

#include <stdio.h>
#include <string.h>

/* One message in flight: its greenlet (a strong reference) and whether
 * the master asked to cancel it. */
typedef struct {
    PyObject *g;
    int cancel_requested;
} gmsg;

static struct {
    PyObject *hub, *loop;
    PyObject *reader, *writer;       /* loop.io watchers on fd 3 */
    PyObject *run_callback;          /* loop.run_callback */
    PyObject *greenlet_type;         /* greenlet.greenlet */
    PyObject *raw_switch;            /* greenlet.greenlet.switch: hub.switch without its switch_out look-up */
    PyObject *getcurrent;            /* greenlet.getcurrent */
    PyObject **idle;                 /* parked message greenlets (strong references) */
    size_t nidle;
    PyObject *greenlet_exit;         /* greenlet.GreenletExit */
    PyObject *quit;                  /* a gevent.event.Event the main greenlet waits on */
    /* our C callbacks as Python callables */
    PyObject *run_message, *kill_message;
    PyObject *s_start, *s_stop, *s_switch, *s_throw, *s_set, *s_wait;
    idmap_t inflight;                /* frame id -> gmsg */
    msg_call *starting;              /* the message run_message takes as it starts */
} gd;

/* ------------------------------------------------------------- helpers */

static void log_py_error(const char *during)
{
    pyerr_log(AP_LOG_ERROR, "unexpected Python error while %s", during);
}

/* loopio's watch: the read or write io watcher's start(cb) or stop(). */
static void watch(int write, int on, PyObject *cb)
{
    PyObject *w = write ? gd.writer : gd.reader;
    PyObject *r = on ? PyObject_CallMethodOneArg(w, gd.s_start, cb) : PyObject_CallMethodNoArgs(w, gd.s_stop);
    if (r == NULL)
        log_py_error(write ? "watching fd 3 for writing" : "watching fd 3 for reading");
    Py_XDECREF(r);
}

/* loopio's call_soon: loop.run_callback, at the end of this iteration. */
static int call_soon(PyObject *cb)
{
    PyObject *r = PyObject_CallOneArg(gd.run_callback, cb);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* loopio's wake: sets the Event the main greenlet waits on. */
static int wake(void)
{
    PyObject *r = PyObject_CallMethodNoArgs(gd.quit, gd.s_set);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* --------------------------------------------------- messages in flight */

/* Forgets message id once its greenlet has answered. */
static void forget(uint64_t id)
{
    gmsg *m = idmap_del(&gd.inflight, id);
    if (m != NULL) {
        Py_DECREF(m->g); /* alive while it runs: greenlet holds the current one */
        PyMem_Free(m);
    }
    bridge.inflight--;
    loopio_answered();
}

/* Runs the message gd.starting points at: the handler with the message's
 * context, the answer, then forgets the message.  Never raises. */
static void run_one(void)
{
    msg_call c = *gd.starting; /* taken before the handler can switch away */
    uint64_t id = c.meta.id;
    PyObject *token = NULL;
    PyObject *res = msg_invoke(&c, &token);
    hctx_leave(token);
    if (res != NULL) {
        msg_reply_plain(id, res, c.type);
        Py_DECREF(res);
    } else if (PyErr_ExceptionMatches(gd.greenlet_exit)) {
        gmsg *m = idmap_get(&gd.inflight, id);
        PyErr_Clear();
        if (m && m->cancel_requested)
            msg_reply_error(id, BRIDGE_CODE_CANCELLED, "cancelled by the master", NULL);
        else
            msg_reply_error(id, BRIDGE_CODE_AGENT_ERROR, "the message's greenlet was killed (not by the master)",
                            "GreenletExit");
    } else {
        msg_reply_exception(id, c.type);
    }
    Py_DECREF(c.type);
    forget(id);
    log_py_error("answering a message");
}

/* Parks the current greenlet on the idle stack and waits there for the
 * next message.  Returns 1 when one came (gd.starting is set), 0 when the
 * greenlet should end instead (stack full, worker ending, or killed while
 * parked). */
static int park(void)
{
    if (gd.nidle >= (size_t)bridge.max_inflight || bridge.stopping || bridge.eof)
        return 0;
    PyObject *me = PyObject_CallNoArgs(gd.getcurrent);
    if (me == NULL) {
        log_py_error("parking a greenlet");
        return 0;
    }
    gd.idle[gd.nidle++] = me;
    /* not hub.switch(): its getattr(getcurrent(), 'switch_out', None)
     * raises and clears an AttributeError for every raw greenlet */
    PyObject *r = PyObject_CallOneArg(gd.raw_switch, gd.hub); /* back when submit picks us */
    if (r == NULL) {
        /* killed while parked (the worker's end): leave the stack */
        for (size_t i = 0; i < gd.nidle; i++)
            if (gd.idle[i] == me) {
                gd.idle[i] = gd.idle[--gd.nidle];
                Py_DECREF(me);
                break;
            }
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(r);
    return gd.starting != NULL;
}

/* The body of every message's greenlet: runs messages until it is not
 * wanted on the idle stack any more. */
static PyObject *run_message(PyObject *self, PyObject *unused)
{
    do
        run_one();
    while (park());
    Py_RETURN_NONE;
}

/* Messages this worker holds: its greenlets in flight. */
static size_t held_count(void)
{
    return bridge.inflight;
}

/* Runs one REQUEST in a new greenlet, or answers it at once. */
static void submit(const ap_frame_hdr *h, const unsigned char *payload)
{
    msg_call c;
    if (msg_prepare(h, payload, held_count, &c) < 0)
        return;
    PyObject *g = gd.nidle ? gd.idle[--gd.nidle] /* its reference moves to m */
                           : PyObject_CallFunctionObjArgs(gd.greenlet_type, gd.run_message, gd.hub, NULL);
    gmsg *m = g ? PyMem_Malloc(sizeof(*m)) : NULL;
    if (m == NULL) {
        if (g != NULL)
            PyErr_NoMemory();
        Py_XDECREF(g);
        Py_DECREF(c.data);
        Py_XDECREF(c.meta.session);
        Py_XDECREF(c.meta.resume);
        msg_reply_exception(h->id, c.type);
        Py_DECREF(c.type);
        return;
    }
    m->g = g;
    m->cancel_requested = 0;
    gmsg *prev = idmap_put(&gd.inflight, h->id, m);
    if (AP_UNLIKELY(prev != NULL)) {
        ap_warn("message %llu arrived while a message with that id is still in flight", (unsigned long long)h->id);
        Py_DECREF(prev->g);
        PyMem_Free(prev);
    }
    bridge.inflight++;
    gd.starting = &c;
    PyObject *r = PyObject_CallOneArg(gd.raw_switch, g); /* until it waits or ends */
    gd.starting = NULL;
    if (r == NULL)
        log_py_error("starting a message's greenlet");
    Py_XDECREF(r);
}

/* A hub callback: throws GreenletExit into message id's greenlet if it
 * is still in flight. */
static PyObject *kill_message(PyObject *self, PyObject *arg)
{
    uint64_t id = PyLong_AsUnsignedLongLong(arg);
    gmsg *m = PyErr_Occurred() ? NULL : idmap_get(&gd.inflight, id);
    if (m != NULL) {
        PyObject *g = Py_NewRef(m->g);
        PyObject *r = PyObject_CallMethodOneArg(g, gd.s_throw, gd.greenlet_exit);
        Py_XDECREF(r);
        Py_DECREF(g);
    }
    log_py_error("cancelling a greenlet");
    Py_RETURN_NONE;
}

static void cancel(uint64_t id)
{
    gmsg *m = idmap_get(&gd.inflight, id);
    if (m == NULL) {
        ap_debug("CANCEL %llu: not in flight (already answered?)", (unsigned long long)id);
        return;
    }
    m->cancel_requested = 1;
    PyObject *pid = PyLong_FromUnsignedLongLong(id);
    PyObject *args[3] = {NULL, gd.kill_message, pid};
    PyObject *r = pid ? PyObject_Vectorcall(gd.run_callback, args + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
                      : NULL;
    if (r == NULL)
        log_py_error("scheduling a greenlet's cancel");
    Py_XDECREF(r);
    Py_XDECREF(pid);
}

/* ------------------------------------------------------------ lifecycle */

static PyMethodDef run_def = {"agentpool_message", run_message, METH_NOARGS, NULL};
static PyMethodDef kill_def = {"agentpool_cancel", kill_message, METH_O, NULL};

int gevent_driver_patch(char *err, size_t cap)
{
    PyObject *monkey = PyImport_ImportModule("gevent.monkey"), *r = NULL;
    if (monkey == NULL) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyObject *text = value ? PyObject_Str(value) : NULL;
        const char *why = text ? PyUnicode_AsUTF8(text) : NULL;
        snprintf(err, cap, "workerModel gevent needs gevent, which cannot be imported (%s): install python3-gevent "
                 "(Debian) or gevent in the agent's virtualenv", why ? why : "unknown error");
        PyErr_Clear();
        Py_XDECREF(text);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return AP_ERR;
    }
    r = PyObject_CallMethod(monkey, "patch_all", NULL);
    Py_DECREF(monkey);
    if (r == NULL) {
        pyerr_log(AP_LOG_ERROR, "gevent.monkey.patch_all() raised");
        snprintf(err, cap, "workerModel gevent: gevent.monkey.patch_all() failed (traceback in the log above)");
        return AP_ERR;
    }
    Py_DECREF(r);
    if (gsleep_install() < 0) {
        pyerr_log(AP_LOG_ERROR, "replacing gevent's time.sleep raised");
        snprintf(err, cap, "workerModel gevent: installing the bridge's time.sleep failed (traceback in the log "
                 "above)");
        return AP_ERR;
    }
    return AP_OK;
}

int gevent_driver_init(void)
{
    PyObject *gevent = NULL, *greenlet = NULL, *event = NULL, *get_hub = NULL, *ev_cls = NULL;
    int rc = AP_ERR;
    gevent = PyImport_ImportModule("gevent");
    greenlet = gevent ? PyImport_ImportModule("greenlet") : NULL;
    event = greenlet ? PyImport_ImportModule("gevent.event") : NULL;
    if (event == NULL)
        goto done;
    get_hub = PyObject_GetAttrString(gevent, "get_hub");
    gd.hub = get_hub ? PyObject_CallNoArgs(get_hub) : NULL;
    gd.loop = gd.hub ? PyObject_GetAttrString(gd.hub, "loop") : NULL;
    gd.run_callback = gd.loop ? PyObject_GetAttrString(gd.loop, "run_callback") : NULL;
    gd.greenlet_type = PyObject_GetAttrString(greenlet, "greenlet");
    gd.raw_switch = gd.greenlet_type ? PyObject_GetAttrString(gd.greenlet_type, "switch") : NULL;
    gd.greenlet_exit = PyObject_GetAttrString(greenlet, "GreenletExit");
    gd.getcurrent = PyObject_GetAttrString(greenlet, "getcurrent");
    gd.idle = PyMem_Calloc((size_t)bridge.max_inflight, sizeof(PyObject *));
    ev_cls = PyObject_GetAttrString(event, "Event");
    gd.quit = ev_cls ? PyObject_CallNoArgs(ev_cls) : NULL;
    if (!gd.run_callback || !gd.greenlet_type || !gd.raw_switch || !gd.greenlet_exit || !gd.getcurrent || !gd.quit)
        goto done;
    if (gd.idle == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    gd.reader = PyObject_CallMethod(gd.loop, "io", "ii", bridge.fd, 1); /* libev EV_READ */
    gd.writer = gd.reader ? PyObject_CallMethod(gd.loop, "io", "ii", bridge.fd, 2) : NULL; /* EV_WRITE */
    gd.run_message = PyCFunction_New(&run_def, NULL);
    gd.kill_message = PyCFunction_New(&kill_def, NULL);
    gd.s_start = PyUnicode_InternFromString("start");
    gd.s_stop = PyUnicode_InternFromString("stop");
    gd.s_switch = PyUnicode_InternFromString("switch");
    gd.s_throw = PyUnicode_InternFromString("throw");
    gd.s_set = PyUnicode_InternFromString("set");
    gd.s_wait = PyUnicode_InternFromString("wait");
    if (!gd.writer || !gd.run_message || !gd.kill_message || !gd.s_start || !gd.s_stop || !gd.s_switch ||
        !gd.s_throw || !gd.s_set || !gd.s_wait)
        goto done;
    static const loopio_ops ops = {watch, call_soon, wake, submit, cancel, "greenlets"};
    if (loopio_init(&ops, 0) < 0)
        goto done;
    idmap_init(&gd.inflight);
    rc = AP_OK;
done:
    Py_XDECREF(ev_cls);
    Py_XDECREF(get_hub);
    Py_XDECREF(event);
    Py_XDECREF(greenlet);
    Py_XDECREF(gevent);
    return rc;
}

bridge_end gevent_driver_run(void)
{
    if (loopio_start() < 0)
        return BRIDGE_END_EOF;
    hubwatch_start(HUBWATCH_GEVENT, gd.loop);
    int escapes = 0;
    while (!loopio_done()) {
        PyObject *r = PyObject_CallMethodNoArgs(gd.quit, gd.s_wait);
        if (r != NULL) {
            Py_DECREF(r);
            continue;
        }
        /* SystemExit / KeyboardInterrupt thrown to the main greenlet by the
         * hub (gevent's way of reporting them): log and run on. */
        log_py_error("waiting in the main greenlet (the hub reported SystemExit or KeyboardInterrupt?)");
        if (++escapes >= 1000) {
            ap_error("the gevent hub keeps failing: giving up");
            exit(1);
        }
    }
    hubwatch_stop();
    return bridge.eof ? BRIDGE_END_EOF : BRIDGE_END_STOP;
}

void gevent_driver_fini(void)
{
    gsleep_fini();
    loopio_fini();
    if (gd.inflight.vals) {
        for (size_t i = 0; i < gd.inflight.cap; i++) {
            gmsg *m = gd.inflight.vals[i];
            if (m) {
                Py_DECREF(m->g);
                PyMem_Free(m);
            }
        }
        idmap_free(&gd.inflight);
    }
    Py_CLEAR(gd.s_wait);
    Py_CLEAR(gd.s_set);
    Py_CLEAR(gd.s_throw);
    Py_CLEAR(gd.s_switch);
    Py_CLEAR(gd.s_stop);
    Py_CLEAR(gd.s_start);
    Py_CLEAR(gd.kill_message);
    Py_CLEAR(gd.run_message);
    Py_CLEAR(gd.writer);
    Py_CLEAR(gd.reader);
    Py_CLEAR(gd.quit);
    Py_CLEAR(gd.greenlet_exit);
    /* parked greenlets end as they are released (GreenletExit while parked) */
    while (gd.nidle > 0)
        Py_DECREF(gd.idle[--gd.nidle]);
    PyMem_Free(gd.idle);
    gd.idle = NULL;
    Py_CLEAR(gd.getcurrent);
    Py_CLEAR(gd.raw_switch);
    Py_CLEAR(gd.greenlet_type);
    Py_CLEAR(gd.run_callback);
    Py_CLEAR(gd.loop);
    Py_CLEAR(gd.hub);
}
