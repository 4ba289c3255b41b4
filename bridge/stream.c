/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stream.c - a streaming handler's chunks, on the worker's side (see
 * stream.h).
 *
 * Per message that streams, one entry in an id -> entry map: its bytes in
 * flight and, while its handler waits for credit, the object it waits on
 * (an asyncio future or a gevent Event).  The generator drivers and
 * Context.emit are a few lines of Python in the _agentpool module; the
 * chunk itself is encoded in C (_chunk), straight behind a frame header
 * in bridge.out, like a result.  After each chunk the driver's hook
 * (bridge.stream_sent) runs: the sync driver writes the chunk at once and
 * waits there while the window is full; async and gevent schedule a
 * flush, and _chunk hands the handler the object to wait on.  State: the
 * `st` struct below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "stream.h"
#include "bridge.h"
#include "idmap.h"
#include "pyconv.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_frame.h"
#include "ap_log.h"

#include <stdio.h>

typedef struct {
    size_t inflight;  /* chunk payload bytes sent, not yet credited */
    PyObject *waiter; /* what its handler waits on while the window is full, or NULL */
} sentry;

static struct {
    idmap_t map;       /* message id -> sentry */
    PyObject *module;  /* _agentpool (borrowed from sys.modules' reference, kept) */
    PyObject *drive;   /* _drive(mid, gen) */
    PyObject *adrive;  /* _adrive(mid, agen) */
    PyObject *waiter;  /* _waiter(): a new future or Event */
    PyObject *wake;    /* _wake(w) */
    PyObject *cancelled; /* StreamCancelled */
} st;

static const char stream_code[] =
    "class StreamCancelled(BaseException):\n"
    "    '''The master cancelled this stream (its client left): raised at a\n"
    "    chunk in a sync worker, so the generator's finally blocks run.'''\n"
    "def _drive(mid, gen):\n"
    "    send = gen.send\n"
    "    try:\n"
    "        while True:\n"
    "            try:\n"
    "                v = send(None)\n"
    "            except StopIteration as e:\n"
    "                return e.value\n"
    "            _chunk(mid, v)\n"
    "    finally:\n"
    "        gen.close()\n"
    "async def _adrive(mid, agen):\n"
    "    w = None\n"
    "    try:\n"
    "        async for v in agen:\n"
    "            if w is not None:\n"
    "                await w\n"
    "            w = _chunk(mid, v)\n"
    "    finally:\n"
    "        await agen.aclose()\n"
    "async def _astream(agen):\n"
    "    '''Streams an async generator a handler made inside its coroutine\n"
    "    (pyagents' dispatcher): its chunks go out, the answer is None.'''\n"
    "    mid = context()._mid\n"
    "    _begin(mid)\n"
    "    return await _adrive(mid, agen)\n"
    "def _waiter():\n"
    "    if _model == 'async':\n"
    "        import asyncio\n"
    "        return asyncio.get_running_loop().create_future()\n"
    "    import gevent.event\n"
    "    return gevent.event.Event()\n"
    "def _wake(w):\n"
    "    if _model == 'async':\n"
    "        if not w.done():\n"
    "            w.set_result(None)\n"
    "    else:\n"
    "        w.set()\n"
    "def _ctx_emit(self, value):\n"
    "    '''Sends value (JSON) to the client as the next chunk of this\n"
    "    message.  Sync and gevent: waits first while the stream's window\n"
    "    is full (the client has not read), then sends.  Async: sends, and\n"
    "    returns an awaitable that is done once the window has room; await\n"
    "    it (a callback that cannot await may drop it).'''\n"
    "    w = _chunk(self._mid, value)\n"
    "    if _model == 'async' and w is None:\n"
    "        import asyncio\n"
    "        w = asyncio.get_running_loop().create_future()\n"
    "        w.set_result(None)\n"
    "    return w\n"
    "Context.emit = _ctx_emit\n";

static sentry *entry_get(uint64_t id, int make)
{
    sentry *e = idmap_get(&st.map, id);
    if (e == NULL && make) {
        e = PyMem_Calloc(1, sizeof(*e));
        if (e == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        idmap_put(&st.map, id, e);
    }
    return e;
}

int stream_full(uint64_t id)
{
    sentry *e = idmap_get(&st.map, id);
    return e && e->inflight >= bridge.stream_window;
}

/* Waits while message id's window is full, before its next chunk: a sync
 * worker reads its socket (bridge.stream_wait), a greenlet waits on an
 * Event the CREDIT sets.  An asyncio task cannot wait here: it awaited
 * the future _chunk gave it (or did not, and the chunk goes anyway).
 * AP_ERR with an exception set (StreamCancelled, GreenletExit...). */
static int wait_room(uint64_t id, sentry *e)
{
    if (e->inflight < bridge.stream_window || bridge.model == BRIDGE_MODEL_ASYNC)
        return AP_OK;
    if (bridge.model == BRIDGE_MODEL_SYNC)
        return bridge.stream_wait ? bridge.stream_wait(id) : AP_OK;
    while ((e = idmap_get(&st.map, id)) != NULL && e->inflight >= bridge.stream_window) {
        PyObject *w = PyObject_CallNoArgs(st.waiter);
        if (w == NULL)
            return AP_ERR;
        Py_XSETREF(e->waiter, Py_NewRef(w));
        PyObject *r = PyObject_CallMethod(w, "wait", NULL);
        Py_DECREF(w);
        if (r == NULL)
            return AP_ERR;
        Py_DECREF(r);
    }
    return AP_OK;
}

/* _chunk(mid, value): sends value as the next chunk of mid, after
 * waiting for room (wait_room).  Returns None, or (async) a future done
 * once the window has room again, to await before the next chunk.
 * Raises TypeError when value is not JSON, ValueError when it is over
 * maxResultBytes, StreamCancelled (sync) when the master cancelled the
 * message. */
static PyObject *stream_chunk(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_chunk(mid, value)");
        return NULL;
    }
    uint64_t id = PyLong_AsUnsignedLongLong(args[0]);
    if (id == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    sentry *e = entry_get(id, 1);
    if (e == NULL || wait_room(id, e) != AP_OK)
        return NULL;
    e = entry_get(id, 1); /* the map may have changed while it waited */
    if (e == NULL)
        return NULL;
    buf_t *out = &bridge.out;
    size_t at = wire_begin(out);
    int rc = pyconv_encode(args[1], out, AP_FRAME_MAX_PAYLOAD);
    if (rc != AP_OK) {
        wire_abort(out, at);
        if (rc == PYCONV_TOO_LARGE) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "chunk too large (more than %u bytes, limit %zu)", AP_FRAME_MAX_PAYLOAD,
                         bridge.max_result_bytes);
        }
        return NULL;
    }
    size_t n = out->len - at - AP_FRAME_HDR_SIZE;
    if (n > bridge.max_result_bytes) {
        wire_abort(out, at);
        return PyErr_Format(PyExc_ValueError, "chunk too large (%zu bytes, limit %zu)", n, bridge.max_result_bytes);
    }
    wire_end(out, at, AP_FRAME_CHUNK, 0, id);
    e->inflight += n;
    if (bridge.stream_sent && bridge.stream_sent(id) != AP_OK)
        return NULL;
    e = idmap_get(&st.map, id);
    if (e == NULL || e->inflight < bridge.stream_window || bridge.model != BRIDGE_MODEL_ASYNC)
        Py_RETURN_NONE;
    Py_CLEAR(e->waiter);
    e->waiter = PyObject_CallNoArgs(st.waiter);
    return e->waiter ? Py_NewRef(e->waiter) : NULL;
}

static PyMethodDef chunk_def = {"_chunk", (PyCFunction)(void (*)(void))stream_chunk, METH_FASTCALL, NULL};

/* _begin(mid): mid streams (its RESULT will say so, even with no chunk). */
static PyObject *stream_begin_py(PyObject *self, PyObject *arg)
{
    (void)self;
    uint64_t id = PyLong_AsUnsignedLongLong(arg);
    if (id == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    if (entry_get(id, 1) == NULL)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef begin_def = {"_begin", stream_begin_py, METH_O, NULL};

void stream_credit(uint64_t id, const unsigned char *payload, size_t len)
{
    bridge.credits++;
    sentry *e = idmap_get(&st.map, id);
    if (e == NULL || len < AP_FRAME_CREDIT_SIZE)
        return; /* its stream is over already */
    size_t n = ap_frame_credit_decode(payload);
    e->inflight = n < e->inflight ? e->inflight - n : 0;
    if (e->waiter && e->inflight < bridge.stream_window) {
        PyObject *w = e->waiter;
        e->waiter = NULL;
        PyObject *r = PyObject_CallOneArg(st.wake, w);
        if (r == NULL) {
            ap_error("message %llu: waking its stream failed", (unsigned long long)id);
            PyErr_Print();
        }
        Py_XDECREF(r);
        Py_DECREF(w);
    }
}

int stream_end(uint64_t id)
{
    if (st.map.count == 0)
        return 0;
    sentry *e = idmap_del(&st.map, id);
    if (e == NULL)
        return 0;
    Py_XDECREF(e->waiter);
    PyMem_Free(e);
    return 1;
}

PyObject *stream_wrap(uint64_t id, PyObject *res)
{
    PyObject *fn = PyGen_CheckExact(res) ? st.drive : PyAsyncGen_CheckExact(res) ? st.adrive : NULL;
    if (fn == NULL)
        return res;
    if (entry_get(id, 1) == NULL) {
        Py_DECREF(res);
        return NULL;
    }
    PyObject *mid = PyLong_FromUnsignedLongLong(id);
    PyObject *r = mid ? PyObject_CallFunctionObjArgs(fn, mid, res, NULL) : NULL;
    Py_XDECREF(mid);
    Py_DECREF(res);
    return r;
}

int stream_cancel_pending(void)
{
    return st.cancelled && PyErr_ExceptionMatches(st.cancelled);
}

void stream_raise_cancelled(uint64_t id)
{
    PyErr_Format(st.cancelled, "message %llu: cancelled by the master", (unsigned long long)id);
}

static PyObject *get_fn(PyObject *g, const char *name)
{
    PyObject *o = PyDict_GetItemString(g, name); /* borrowed */
    if (o == NULL)
        PyErr_Format(PyExc_RuntimeError, "the _agentpool module lacks %s", name);
    return Py_XNewRef(o);
}

int stream_init(void)
{
    idmap_init(&st.map);
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    st.module = PyDict_GetItemString(modules, "_agentpool");
    if (st.module == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the _agentpool module is not there");
        return AP_ERR;
    }
    Py_INCREF(st.module);
    PyObject *g = PyModule_GetDict(st.module); /* borrowed */
    PyObject *fn = PyCFunction_New(&chunk_def, NULL);
    PyObject *begin = PyCFunction_New(&begin_def, NULL);
    PyObject *model = PyUnicode_FromString(bridge_model_name(bridge.model));
    int bad = fn == NULL || begin == NULL || model == NULL || PyDict_SetItemString(g, "_chunk", fn) < 0 ||
              PyDict_SetItemString(g, "_begin", begin) < 0 || PyDict_SetItemString(g, "_model", model) < 0;
    Py_XDECREF(fn);
    Py_XDECREF(begin);
    Py_XDECREF(model);
    if (bad)
        return AP_ERR;
    PyObject *r = PyRun_String(stream_code, Py_file_input, g, g);
    if (r == NULL)
        return AP_ERR;
    Py_DECREF(r);
    st.drive = get_fn(g, "_drive");
    st.adrive = get_fn(g, "_adrive");
    st.waiter = get_fn(g, "_waiter");
    st.wake = get_fn(g, "_wake");
    st.cancelled = get_fn(g, "StreamCancelled");
    return st.drive && st.adrive && st.waiter && st.wake && st.cancelled ? AP_OK : AP_ERR;
}

void stream_fini(void)
{
    Py_CLEAR(st.drive);
    Py_CLEAR(st.adrive);
    Py_CLEAR(st.waiter);
    Py_CLEAR(st.wake);
    Py_CLEAR(st.cancelled);
    Py_CLEAR(st.module);
    idmap_free(&st.map);
}
