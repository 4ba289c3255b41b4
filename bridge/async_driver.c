/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * async_driver.c - serving an async agent on one asyncio event loop
 * (see async_driver.h), the way NGINX Unit's ASGI module serves its apps.
 *
 * One loop, no threads, no polling: ploop.c's, whose timers fire on time
 * (asyncio's own rounds every wait up to a millisecond).  At start the
 * loop's bound methods used later are looked up once.  The I/O with the
 * master is loopio.c's (shared with the gevent driver), given the loop's
 * add_reader/add_writer and call_soon.  Each REQUEST becomes
 * loop.create_task(m), where m is a C coroutine-like object (msgcoro)
 * wrapping agent.handle_message(type, data): it passes every await of the
 * agent's coroutine through to the task unchanged, and when the coroutine
 * returns or raises it converts the outcome and appends the answer frame
 * right inside the task's last step.  (Unit uses a done-callback instead;
 * answering in the last step saves a call_soon + Handle round trip per
 * message, about a third of asyncio's per-message cost, and the agent
 * still runs in a real Task: current_task(), contextvars, cancel().)  So
 * the worker keeps reading while messages await.  Answers leave at the
 * end of the loop iteration that produced them (ploop calls
 * on_iteration_end after each; on the stdlib's loop, the fall-back,
 * loopio schedules a flush with call_soon instead).
 *
 * The loop runs in loop.run_until_complete(quit_future); STOP sets the
 * future once the last message in flight is answered, EOF sets it at once.
 * In-flight messages are kept in an id -> msgcoro map for CANCEL.
 * Nothing here lets a Python exception escape into the loop: failures
 * become ERROR frames or log lines.  State: the one `ad` struct below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "async_driver.h"
#include "hctx.h"
#include "usage.h"
#include "hubwatch.h"
#include "loopio.h"
#include "idmap.h"
#include "ploop.h"
#include "msg.h"
#include "pyerr.h"
#include "agent.h"

#include "ap_common.h"
#include "ap_log.h"

#include <stddef.h>

#if PY_VERSION_HEX < 0x030A0000
#error "the async driver needs Python 3.10 or later (PyIter_Send)"
#endif

/* One message in flight, as the coroutine its task runs: it drives the
 * agent's coroutine (or the __await__ iterator of another awaitable),
 * passing every yield up to the task unchanged, and when that ends it
 * answers the master right inside the task's last step - no done-callback,
 * no extra trip through the loop.  The id map owns one reference (for
 * CANCEL), the task another. */
typedef struct {
    PyObject_HEAD
    uint64_t id;
    PyObject *type; /* the message's type (str), for the log */
    PyObject *it;   /* the agent's coroutine / iterator; NULL once finished */
    PyObject *task; /* strong until finished, so CANCEL can reach it */
    int cancel_requested;
    int finished;
    uint64_t cpu_ns;  /* thread CPU of its steps so far (usage.h) */
    uint64_t step_ns; /* the thread CPU clock when its current step began */
} msgcoro;

static struct {
    PyObject *loop;
    /* bound methods of the loop, looked up once */
    PyObject *create_task, *add_reader, *remove_reader, *add_writer, *remove_writer, *call_soon;
    PyObject *cancelled_error;
    PyObject *quit_future;
    /* our C callbacks as Python callables */
    PyObject *on_iteration_end;
    /* interned method names for the per-message calls */
    PyObject *s_add_done_callback, *s_result, *s_cancel, *s_set_result;
    PyObject *fd;
    idmap_t inflight;
    int warned_concurrency;
    int flush_each_iteration; /* the loop calls on_iteration_end: no call_soon flushes */
} ad;

/* ------------------------------------------------------------- helpers */

/* Logs and clears a stray Python exception (none may reach the loop). */
static void log_py_error(const char *during)
{
    pyerr_log(AP_LOG_ERROR, "unexpected Python error while %s", during);
}

/* Calls a loop method with (fd[, callback]); logs failures. */
static void call_fd_method(PyObject *method, PyObject *callback, const char *name)
{
    PyObject *args[3] = {NULL, ad.fd, callback};
    PyObject *r = PyObject_Vectorcall(method, args + 1, (callback ? 2 : 1) | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (r == NULL)
        log_py_error(name);
    Py_XDECREF(r);
}

/* loopio's watch: loop.add_reader / add_writer (cb) or remove_*. */
static void watch(int write, int on, PyObject *cb)
{
    if (on)
        call_fd_method(write ? ad.add_writer : ad.add_reader, cb, write ? "loop.add_writer" : "loop.add_reader");
    else
        call_fd_method(write ? ad.remove_writer : ad.remove_reader, NULL,
                       write ? "loop.remove_writer" : "loop.remove_reader");
}

static int call_soon(PyObject *cb)
{
    PyObject *h = PyObject_CallOneArg(ad.call_soon, cb);
    Py_XDECREF(h);
    return h ? 0 : -1;
}

/* loopio's wake: sets the future run_until_complete waits for. */
static int wake(void)
{
    PyObject *args[3] = {NULL, ad.quit_future, Py_None};
    PyObject *r = PyObject_VectorcallMethod(ad.s_set_result, args + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* Called by ploop's loop after every iteration: writes what the
 * iteration answered (unless a write watcher already waits for room). */
static PyObject *on_iteration_end(PyObject *self, PyObject *unused)
{
    loopio_iteration_end();
    Py_RETURN_NONE;
}

/* --------------------------------------------------- messages in flight */

static PyTypeObject msgcoro_type;

/* Settles message m: answers it with `result`, or with the exception now
 * set when result is NULL, then forgets it.  Runs inside the message's
 * task step; m stays alive meanwhile (the task holds it as its coroutine). */
static void msgcoro_finish(msgcoro *m, PyObject *result)
{
    usage_set_cpu(m->id, m->cpu_ns + (usage_step_now() - m->step_ns));
    if (result != NULL) {
        msg_reply(m->id, result, m->type);
    } else if (PyErr_ExceptionMatches(ad.cancelled_error)) {
        PyErr_Clear();
        if (m->cancel_requested)
            msg_reply_error(m->id, BRIDGE_CODE_CANCELLED, "cancelled by the master", NULL);
        else
            msg_reply_error(m->id, BRIDGE_CODE_AGENT_ERROR, "the message's task was cancelled (not by the master)",
                            "CancelledError");
    } else {
        msg_reply_exception(m->id, m->type);
    }
    m->finished = 1;
    Py_CLEAR(m->it);
    PyObject *task = m->task; /* alive anyway: it is running this step */
    m->task = NULL;
    bridge.inflight--;
    int owned = idmap_get(&ad.inflight, m->id) == m;
    if (owned)
        idmap_del(&ad.inflight, m->id);
    loopio_answered();
    log_py_error("answering a message");
    Py_XDECREF(task);
    if (owned)
        Py_DECREF(m); /* the map's reference; the task still holds one */
}

/* Passes one step of the agent's coroutine up to the task: a yielded
 * value goes up unchanged; a return or an exception settles the message
 * and ends our coroutine (NULL, no exception: StopIteration(None)). */
static PyObject *msgcoro_outcome(msgcoro *m, PySendResult st, PyObject *res)
{
    if (st == PYGEN_NEXT)
        return res;
    if (st == PYGEN_RETURN) {
        msgcoro_finish(m, res);
        Py_DECREF(res);
        return NULL;
    }
    msgcoro_finish(m, NULL); /* consumes the exception */
    return NULL;
}

static PyObject *msgcoro_iternext(PyObject *self)
{
    msgcoro *m = (msgcoro *)self;
    PyObject *res = NULL;
    if (m->finished)
        return NULL;
    m->step_ns = usage_step_now();
    PySendResult st = PyIter_Send(m->it, Py_None, &res);
    PyObject *r = msgcoro_outcome(m, st, res);
    if (!m->finished)
        m->cpu_ns += usage_step_now() - m->step_ns;
    return r;
}

static PyObject *msgcoro_send(PyObject *self, PyObject *arg)
{
    msgcoro *m = (msgcoro *)self;
    PyObject *res = NULL, *r = NULL;
    if (!m->finished) {
        m->step_ns = usage_step_now();
        PySendResult st = PyIter_Send(m->it, arg, &res);
        r = msgcoro_outcome(m, st, res);
        if (!m->finished)
            m->cpu_ns += usage_step_now() - m->step_ns;
    }
    if (r == NULL && !PyErr_Occurred())
        PyErr_SetNone(PyExc_StopIteration);
    return r;
}

/* throw(exc): into the agent's coroutine (this is how Task.cancel()
 * arrives). */
static PyObject *msgcoro_throw(PyObject *self, PyObject *args)
{
    msgcoro *m = (msgcoro *)self;
    PyObject *meth = NULL, *res = NULL, *exc = PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0) : Py_None;
    if (m->finished) {
        if (PyExceptionInstance_Check(exc))
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        else if (PyExceptionClass_Check(exc))
            PyErr_SetNone(exc);
        else
            PyErr_SetString(PyExc_TypeError, "throw() needs an exception");
        return NULL;
    }
    m->step_ns = usage_step_now();
    meth = PyObject_GetAttrString(m->it, "throw");
    if (meth == NULL) {
        /* a plain iterator: the exception ends the message right here */
        PyErr_Clear();
        if (PyExceptionInstance_Check(exc))
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        else
            PyErr_SetString(PyExc_TypeError, "throw() needs an exception");
        msgcoro_finish(m, NULL);
        goto stopped;
    }
    res = PyObject_Call(meth, args, NULL);
    Py_DECREF(meth);
    if (res != NULL) {
        m->cpu_ns += usage_step_now() - m->step_ns;
        return res; /* the agent caught it and awaits again */
    }
    if (PyErr_ExceptionMatches(PyExc_StopIteration)) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyObject *ret = value ? ((PyStopIterationObject *)value)->value : Py_None;
        msgcoro_finish(m, ret ? ret : Py_None);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    } else {
        msgcoro_finish(m, NULL);
    }
stopped:
    PyErr_SetNone(PyExc_StopIteration);
    return NULL;
}

static PyObject *msgcoro_close(PyObject *self, PyObject *unused)
{
    msgcoro *m = (msgcoro *)self;
    if (m->finished)
        Py_RETURN_NONE;
    PyObject *r = PyObject_CallMethod(m->it, "close", NULL);
    Py_XDECREF(r);
    PyErr_Clear();
    PyErr_SetString(PyExc_RuntimeError, "the message's coroutine was closed before it finished");
    msgcoro_finish(m, NULL);
    Py_RETURN_NONE;
}

static PyObject *msgcoro_await(PyObject *self)
{
    Py_INCREF(self);
    return self;
}

static void msgcoro_dealloc(PyObject *self)
{
    msgcoro *m = (msgcoro *)self;
    Py_XDECREF(m->it);
    Py_XDECREF(m->task);
    Py_XDECREF(m->type);
    PyObject_Free(self);
}

static PyMethodDef msgcoro_methods[] = {
    {"send", msgcoro_send, METH_O, NULL},
    {"throw", msgcoro_throw, METH_VARARGS, NULL},
    {"close", msgcoro_close, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyAsyncMethods msgcoro_async = {
    .am_await = msgcoro_await,
};

static PyTypeObject msgcoro_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "agentpool_worker.Message",
    .tp_basicsize = sizeof(msgcoro),
    .tp_dealloc = msgcoro_dealloc,
    .tp_as_async = &msgcoro_async,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "one message in flight: runs the agent's coroutine and answers the master when it ends",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = msgcoro_iternext,
    .tp_methods = msgcoro_methods,
};

/* Records m (with its task) as in flight; the map takes m's reference. */
static void pending_put(msgcoro *m)
{
    msgcoro *prev = idmap_put(&ad.inflight, m->id, m);
    if (AP_UNLIKELY(prev != NULL)) {
        ap_warn("message %llu arrived while a message with that id is still in flight", (unsigned long long)m->id);
        Py_DECREF(prev);
    }
    bridge.inflight++;
    if (AP_UNLIKELY(bridge.inflight > (size_t)bridge.max_inflight && !ad.warned_concurrency)) {
        ap_warn("%zu messages in flight, above --concurrency %d: the master sent more than it should "
                "(served anyway; warned once)", bridge.inflight, bridge.max_inflight);
        ad.warned_concurrency = 1;
    }
}

/* Messages this worker holds: its tasks in flight. */
static size_t held_count(void)
{
    return bridge.inflight;
}

/* Runs one REQUEST: starts its task, or answers at once.  *token: the
 * handler context's, left by the caller once the task exists (the task
 * copies the context when it is created). */
static void start(const ap_frame_hdr *h, const unsigned char *payload, PyObject **token)
{
    PyObject *aw, *it, *task, *type;
    aw = msg_call_handler(h, payload, held_count, &type, token);
    if (aw == NULL)
        return;
    if (AP_LIKELY(PyCoro_CheckExact(aw))) {
        it = aw;
    } else if (Py_TYPE(aw)->tp_as_async && Py_TYPE(aw)->tp_as_async->am_await) {
        it = Py_TYPE(aw)->tp_as_async->am_await(aw); /* its __await__() iterator */
        Py_DECREF(aw);
        if (it == NULL) {
            msg_reply_exception(h->id, type);
            Py_DECREF(type);
            return;
        }
    } else {
        msg_reply(h->id, aw, type); /* a handler that answered without awaiting */
        Py_DECREF(aw);
        Py_DECREF(type);
        return;
    }
    msgcoro *m = PyObject_New(msgcoro, &msgcoro_type);
    if (m == NULL) {
        Py_DECREF(it);
        msg_reply_exception(h->id, type);
        Py_DECREF(type);
        return;
    }
    m->id = h->id;
    m->type = type; /* m owns it now */
    m->it = it;
    m->task = NULL;
    m->cancel_requested = 0;
    m->finished = 0;
    m->cpu_ns = 0;
    m->step_ns = usage_step_now();
    task = PyObject_CallOneArg(ad.create_task, (PyObject *)m);
    if (task == NULL) {
        PyObject *et, *ev, *etb;
        PyErr_Fetch(&et, &ev, &etb);
        PyObject *r = PyObject_CallMethod(it, "close", NULL); /* never started: no warning */
        Py_XDECREF(r);
        PyErr_Clear();
        PyErr_Restore(et, ev, etb);
        m->finished = 1;
        msg_reply_exception(h->id, m->type);
        Py_DECREF(m);
        return;
    }
    m->task = task;
    pending_put(m);
}

static void submit(const ap_frame_hdr *h, const unsigned char *payload)
{
    PyObject *token = NULL;
    start(h, payload, &token);
    hctx_leave(token);
}

static void cancel(uint64_t id)
{
    msgcoro *m = idmap_get(&ad.inflight, id);
    if (m == NULL || m->task == NULL) {
        ap_debug("CANCEL %llu: not in flight (already answered?)", (unsigned long long)id);
        return;
    }
    m->cancel_requested = 1;
    PyObject *args[2] = {NULL, m->task};
    PyObject *r = PyObject_VectorcallMethod(ad.s_cancel, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (r == NULL)
        log_py_error("cancelling a task");
    Py_XDECREF(r);
}

/* ------------------------------------------------------------ lifecycle */

static PyMethodDef iteration_end_def = {"agentpool_iteration_end", on_iteration_end, METH_NOARGS, NULL};

static PyObject *get_attr(PyObject *o, const char *name)
{
    return o ? PyObject_GetAttrString(o, name) : NULL;
}

int async_driver_init(void)
{
    PyObject *asyncio = NULL, *r = NULL;
    int rc = AP_ERR;
    if (PyType_Ready(&msgcoro_type) < 0)
        goto done;
    asyncio = PyImport_ImportModule("asyncio");
    if (asyncio == NULL)
        goto done;
    ad.on_iteration_end = PyCFunction_New(&iteration_end_def, NULL);
    ad.loop = ad.on_iteration_end ? ploop_new_loop(ad.on_iteration_end) : NULL;
    ad.flush_each_iteration = ad.loop != NULL;
    if (ad.loop == NULL) {
        /* Not fatal: the stdlib's loop, timers rounded up to the ms. */
        PyErr_Clear();
        ap_warn("the precise event loop could not be made; using asyncio's default");
        ad.loop = PyObject_CallMethod(asyncio, "new_event_loop", NULL);
    }
    if (ad.loop == NULL)
        goto done;
    r = PyObject_CallMethod(asyncio, "set_event_loop", "O", ad.loop);
    if (r == NULL)
        goto done;
    ad.create_task = get_attr(ad.loop, "create_task");
    ad.add_reader = get_attr(ad.loop, "add_reader");
    ad.remove_reader = get_attr(ad.loop, "remove_reader");
    ad.add_writer = get_attr(ad.loop, "add_writer");
    ad.remove_writer = get_attr(ad.loop, "remove_writer");
    ad.call_soon = get_attr(ad.loop, "call_soon");
    bridge.run_until_complete = get_attr(ad.loop, "run_until_complete");
    ad.cancelled_error = get_attr(asyncio, "CancelledError");
    ad.quit_future = ad.loop ? PyObject_CallMethod(ad.loop, "create_future", NULL) : NULL;
    if (!ad.create_task || !ad.add_reader || !ad.remove_reader || !ad.add_writer || !ad.remove_writer ||
        !ad.call_soon || !bridge.run_until_complete || !ad.cancelled_error || !ad.quit_future)
        goto done;
    ad.s_add_done_callback = PyUnicode_InternFromString("add_done_callback");
    ad.s_result = PyUnicode_InternFromString("result");
    ad.s_cancel = PyUnicode_InternFromString("cancel");
    ad.s_set_result = PyUnicode_InternFromString("set_result");
    ad.fd = PyLong_FromLong(bridge.fd);
    if (!ad.s_add_done_callback || !ad.s_result || !ad.s_cancel || !ad.s_set_result || !ad.fd)
        goto done;
    static const loopio_ops ops = {watch, call_soon, wake, submit, cancel, "messages"};
    if (loopio_init(&ops, ad.flush_each_iteration) < 0)
        goto done;
    idmap_init(&ad.inflight);
    rc = AP_OK;
done:
    Py_XDECREF(r);
    Py_XDECREF(asyncio);
    return rc;
}

bridge_end async_driver_run(void)
{
    if (loopio_start() < 0)
        return BRIDGE_END_EOF;
    hubwatch_start(HUBWATCH_ASYNCIO, ad.loop); /* a coroutine step that holds the loop is reported */
    int escapes = 0;
    while (!loopio_done()) {
        PyObject *r = PyObject_CallOneArg(bridge.run_until_complete, ad.quit_future);
        if (r != NULL) {
            Py_DECREF(r);
            break;
        }
        /* SystemExit / KeyboardInterrupt raised in a task propagate out of
         * the loop after the task has recorded them; its done-callback
         * still answers the message, so log and run on. */
        log_py_error("running the event loop (an agent task raised SystemExit or KeyboardInterrupt?)");
        if (++escapes >= 1000) {
            ap_error("the event loop keeps failing: giving up");
            exit(1);
        }
    }
    hubwatch_stop();
    return bridge.eof ? BRIDGE_END_EOF : BRIDGE_END_STOP;
}

void async_driver_fini(void)
{
    loopio_fini();
    if (ad.loop) {
        PyObject *gens = PyObject_CallMethod(ad.loop, "shutdown_asyncgens", NULL);
        PyObject *r = gens ? PyObject_CallOneArg(bridge.run_until_complete, gens) : NULL;
        Py_XDECREF(r);
        Py_XDECREF(gens);
        log_py_error("shutting down async generators");
        r = PyObject_CallMethod(ad.loop, "close", NULL);
        Py_XDECREF(r);
        log_py_error("closing the event loop");
    }
    if (ad.inflight.vals) {
        for (size_t i = 0; i < ad.inflight.cap; i++)
            if (ad.inflight.vals[i])
                Py_DECREF((PyObject *)ad.inflight.vals[i]);
        idmap_free(&ad.inflight);
    }
    Py_CLEAR(ad.fd);
    Py_CLEAR(ad.s_set_result);
    Py_CLEAR(ad.s_cancel);
    Py_CLEAR(ad.s_result);
    Py_CLEAR(ad.s_add_done_callback);
    Py_CLEAR(ad.on_iteration_end);
    Py_CLEAR(ad.quit_future);
    Py_CLEAR(ad.cancelled_error);
    Py_CLEAR(bridge.run_until_complete);
    Py_CLEAR(ad.call_soon);
    Py_CLEAR(ad.remove_writer);
    Py_CLEAR(ad.add_writer);
    Py_CLEAR(ad.remove_reader);
    Py_CLEAR(ad.add_reader);
    Py_CLEAR(ad.create_task);
    Py_CLEAR(ad.loop);
}
