/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hctx.c - the handler context (see hctx.h).
 *
 * The Context class and pyagents.context()'s lookup are Python, defined
 * here as the `_agentpool` module so that they exist in every worker
 * whatever its sys.path.  Per message the C side only builds a 7-tuple
 * (frame id, raw client id bytes, type, deadline, attempt, session,
 * resume: the last two None unless the master sent them) and sets the
 * variable: the Context object, its id's JSON decoding and its Logger
 * are made only when a handler asks for them.  Context.log is a
 * logging.Logger (not registered with logging's manager, so none is kept
 * per message) whose records go to this worker's log through hctx_emit,
 * tagged with the message id; the log line already carries the worker's
 * id and pid.  json, logging and inspect are imported only when first
 * needed (a decorated or unusual handler, an id read, a log line): at
 * start-up they would add ~5 MiB and ~20 ms to every worker.  State: the
 * `hc` struct below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "hctx.h"
#include "bridge.h"

#include "ap_common.h"
#include "ap_log.h"

#include <unistd.h>

static struct {
    PyObject *module; /* _agentpool */
    PyObject *var;    /* its ContextVar */
    PyObject *cls;    /* its Context class */
} hc;

static const char hctx_code[] =
    "import contextvars, time\n"
    "current = contextvars.ContextVar('agentpool_context')\n"
    "class Context:\n"
    "    '''The message a handler is running: id (the client's), type,\n"
    "    deadline (time.monotonic() seconds, None: none) and remaining(),\n"
    "    attempt (1, then 2 after a crash retry...), worker, pid, pool,\n"
    "    session (the session's state, a dict, or None), resume (the last\n"
    "    checkpoint of an earlier attempt, or None) and log, a\n"
    "    logging.Logger whose lines go to agentpoold's log.'''\n"
    "    __slots__ = ('_mid', '_cid', 'type', 'deadline', 'attempt', '_session', 'resume', '_log')\n"
    "    worker = _worker\n"
    "    pid = _pid\n"
    "    pool = _pool\n"
    "    def __init__(self, mid, cid, type, deadline, attempt, session, resume):\n"
    "        self._mid = mid; self._cid = cid; self.type = type\n"
    "        self.deadline = deadline; self.attempt = attempt; self._log = None\n"
    "        self._session = session; self.resume = resume\n"
    "    @property\n"
    "    def session(self):\n"
    "        '''The session's state (change it in place; it cannot be\n"
    "        replaced: assigning raises AttributeError), or None.'''\n"
    "        return self._session\n"
    "    @property\n"
    "    def id(self):\n"
    "        if self._cid is None:\n"
    "            return None\n"
    "        import json\n"
    "        return json.loads(self._cid)\n"
    "    def remaining(self):\n"
    "        '''Seconds left before the client is answered timeout (never\n"
    "        below 0), or None when the message has no deadline.'''\n"
    "        d = self.deadline\n"
    "        return None if d is None else max(0.0, d - time.monotonic())\n"
    "    @property\n"
    "    def log(self):\n"
    "        if self._log is None:\n"
    "            tag = self._cid.decode('utf-8', 'replace') if self._cid is not None else '#%d' % self._mid\n"
    "            lg = _logger('message ' + tag)\n"
    "            lg.propagate = False\n"
    "            self._log = lg\n"
    "        return self._log\n"
    "    def __repr__(self):\n"
    "        return '<agentpool Context id=%r type=%r attempt=%d worker=%s>' % (self.id, self.type, self.attempt, self.worker)\n"
    "_handler = None\n"
    "def _logger(name):\n"
    "    global _handler\n"
    "    import logging\n"
    "    if _handler is None:\n"
    "        class _Handler(logging.Handler):\n"
    "            def emit(self, record):\n"
    "                try:\n"
    "                    text = self.format(record)\n"
    "                except Exception:\n"
    "                    self.handleError(record)\n"
    "                    return\n"
    "                _emit(record.levelno, record.name + ': ' + text)\n"
    "        _handler = _Handler()\n"
    "    lg = logging.Logger(name, _level)\n"
    "    lg.addHandler(_handler)\n"
    "    return lg\n"
    "def context():\n"
    "    v = current.get(None)\n"
    "    if v is None:\n"
    "        raise LookupError('pyagents.context() is only available while agentpool runs a handler')\n"
    "    if type(v) is tuple:\n"
    "        v = Context(*v)\n"
    "        current.set(v)\n"
    "    return v\n"
    "def wants_context(fn):\n"
    "    f = getattr(fn, '__func__', fn)\n"
    "    c = getattr(f, '__code__', None)\n"
    "    if type(f).__name__ == 'function' and c is not None and not hasattr(f, '__wrapped__'):\n"
    "        return c.co_argcount - (1 if f is not fn else 0) >= 3\n"
    "    import inspect\n"
    "    try:\n"
    "        sig = inspect.signature(fn)\n"
    "    except (TypeError, ValueError):\n"
    "        return False\n"
    "    n = 0\n"
    "    for p in sig.parameters.values():\n"
    "        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):\n"
    "            n += 1\n"
    "    return n >= 3\n";

/* _emit(levelno, text): one record of a Context.log into the worker's log. */
static PyObject *hctx_emit(PyObject *self, PyObject *args)
{
    int level;
    const char *text;
    Py_ssize_t len;
    (void)self;
    if (!PyArg_ParseTuple(args, "is#", &level, &text, &len))
        return NULL;
    ap_log_level lv = level >= 40 ? AP_LOG_ERROR : level >= 30 ? AP_LOG_WARN : level >= 20 ? AP_LOG_INFO : AP_LOG_DEBUG;
    ap_log_block(lv, "", text, (size_t)len);
    Py_RETURN_NONE;
}

static PyMethodDef emit_def = {"_emit", hctx_emit, METH_VARARGS, NULL};

/* module.name = value, value stolen; AP_ERR with an error set. */
static int add_owned(PyObject *module, const char *name, PyObject *value)
{
    int rc = value ? PyModule_AddObjectRef(module, name, value) : -1;
    Py_XDECREF(value);
    return rc < 0 ? AP_ERR : AP_OK;
}

int hctx_init(void)
{
    static const int py_levels[] = {10, 20, 30, 40}; /* by ap_log_level */
    PyObject *g = NULL, *r = NULL, *fn = NULL, *wants = NULL, *modules;
    int rc = AP_ERR;
    hc.module = PyModule_New("_agentpool");
    if (hc.module == NULL)
        goto done;
    g = PyModule_GetDict(hc.module); /* borrowed */
    fn = PyCFunction_New(&emit_def, NULL);
    int lv = bridge.log_level >= 0 && (size_t)bridge.log_level < AP_ARRAY_LEN(py_levels) ? bridge.log_level : 1;
    if (fn == NULL || PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(g, "_emit", fn) < 0 ||
        add_owned(hc.module, "_worker", PyUnicode_FromString(bridge.id)) < 0 ||
        PyModule_AddIntConstant(hc.module, "_pid", (long)getpid()) < 0 ||
        add_owned(hc.module, "_pool", PyUnicode_FromString(bridge.pool ? bridge.pool : "")) < 0 ||
        PyModule_AddIntConstant(hc.module, "_level", py_levels[lv]) < 0)
        goto done;
    r = PyRun_String(hctx_code, Py_file_input, g, g);
    if (r == NULL)
        goto done;
    hc.var = PyDict_GetItemString(g, "current");
    hc.cls = PyDict_GetItemString(g, "Context");
    if (hc.var == NULL || hc.cls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the _agentpool module lacks current or Context");
        goto done;
    }
    Py_INCREF(hc.var);
    Py_INCREF(hc.cls);
    modules = PyImport_GetModuleDict(); /* borrowed */
    if (PyDict_SetItemString(modules, "_agentpool", hc.module) < 0)
        goto done;
    wants = PyObject_CallMethod(hc.module, "wants_context", "O", bridge.handler);
    if (wants == NULL)
        goto done;
    bridge.wants_context = PyObject_IsTrue(wants) == 1;
    rc = AP_OK;
done:
    Py_XDECREF(wants);
    Py_XDECREF(r);
    Py_XDECREF(fn);
    return rc;
}

PyObject *hctx_enter(const hctx_meta *m, PyObject *type, PyObject **arg)
{
    PyObject *t = PyTuple_New(7), *v, *token;
    *arg = NULL;
    if (t == NULL)
        return NULL;
    PyObject *mid = PyLong_FromUnsignedLongLong(m->id);
    PyObject *cid = m->cid_len ? PyBytes_FromStringAndSize((const char *)m->cid, m->cid_len) : Py_NewRef(Py_None);
    PyObject *deadline = m->deadline_ms ? PyFloat_FromDouble((double)m->deadline_ms / 1e3) : Py_NewRef(Py_None);
    PyObject *attempt = PyLong_FromUnsignedLong(m->attempt ? m->attempt : 1);
    PyTuple_SET_ITEM(t, 0, mid);
    PyTuple_SET_ITEM(t, 1, cid);
    PyTuple_SET_ITEM(t, 2, Py_NewRef(type));
    PyTuple_SET_ITEM(t, 3, deadline);
    PyTuple_SET_ITEM(t, 4, attempt);
    PyTuple_SET_ITEM(t, 5, Py_NewRef(m->session ? m->session : Py_None));
    PyTuple_SET_ITEM(t, 6, Py_NewRef(m->resume ? m->resume : Py_None));
    if (mid == NULL || cid == NULL || deadline == NULL || attempt == NULL) {
        Py_DECREF(t);
        return NULL;
    }
    if (bridge.wants_context) {
        v = PyObject_Call(hc.cls, t, NULL);
        Py_DECREF(t);
        if (v == NULL)
            return NULL;
    } else {
        v = t;
    }
    token = PyContextVar_Set(hc.var, v);
    if (token != NULL && bridge.wants_context)
        *arg = Py_NewRef(v);
    Py_DECREF(v);
    return token;
}

PyObject *hctx_context(void)
{
    return PyObject_CallMethod(hc.module, "context", NULL);
}

int hctx_extend(PyMethodDef *def, const char *code)
{
    PyObject *g = PyModule_GetDict(hc.module); /* borrowed */
    PyObject *fn = PyCFunction_New(def, NULL);
    int bad = fn == NULL || PyDict_SetItemString(g, def->ml_name, fn) < 0;
    Py_XDECREF(fn);
    if (bad)
        return AP_ERR;
    PyObject *r = PyRun_String(code, Py_file_input, g, g);
    if (r == NULL)
        return AP_ERR;
    Py_DECREF(r);
    return AP_OK;
}

void hctx_leave(PyObject *token)
{
    PyObject *type, *value, *tb;
    if (token == NULL)
        return;
    PyErr_Fetch(&type, &value, &tb); /* the handler's exception, if any, survives */
    if (PyContextVar_Reset(hc.var, token) < 0)
        PyErr_Clear(); /* made in another context: the variable dies with it */
    PyErr_Restore(type, value, tb);
    Py_DECREF(token);
}

void hctx_fini(void)
{
    Py_CLEAR(hc.cls);
    Py_CLEAR(hc.var);
    Py_CLEAR(hc.module);
}
