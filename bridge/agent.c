/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agent.c - finding, starting and stopping the Python agent (see agent.h).
 *
 * Runs only at start-up and shut-down, so it favours clarity over speed:
 * plain attribute lookups and the inspect module.  Each
 * function releases every reference it took on every path (one chain of
 * labels at its end).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "agent.h"
#include "bridge.h"

#include "ap_common.h"
#include "ap_log.h"

#include <string.h>

/* Looks up an optional attribute: a new reference, or NULL with no error
 * set when it does not exist (other errors stay set). */
static PyObject *optional_attr(PyObject *obj, const char *name)
{
    PyObject *v = PyObject_GetAttrString(obj, name);
    if (v == NULL && PyErr_ExceptionMatches(PyExc_AttributeError))
        PyErr_Clear();
    return v;
}

/* inspect.iscoroutinefunction(fn) as CPython 3.11 answers it, without
 * importing inspect (with ast, dis, enum, tokenize and re it would add
 * ~10 ms and ~1.5 MiB to every worker's start): through bound methods,
 * classmethod/staticmethod wrappers and functools.partial to a function,
 * whose code has CO_COROUTINE, or CO_ASYNC_GENERATOR (an async generator
 * streams on the async model: bridge/stream.c).  1, 0, or -1 with an
 * error set. */
static int is_coroutine_function(PyObject *fn)
{
    PyObject *f = fn;
    int rc = 0;
    Py_INCREF(f);
    for (int depth = 0; depth < 64; depth++) {
        PyObject *next;
        if (PyMethod_Check(f)) {
            next = PyMethod_GET_FUNCTION(f);
            Py_INCREF(next);
        } else if (strcmp(Py_TYPE(f)->tp_name, "functools.partial") == 0) {
            next = PyObject_GetAttrString(f, "func");
        } else if (PyFunction_Check(f)) {
            PyCodeObject *code = (PyCodeObject *)PyFunction_GET_CODE(f);
            rc = (code->co_flags & (CO_COROUTINE | CO_ASYNC_GENERATOR)) != 0;
            break;
        } else if ((next = optional_attr(f, "__func__")) == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            break;
        }
        if (next == NULL) {
            rc = -1;
            break;
        }
        Py_DECREF(f);
        f = next;
    }
    Py_DECREF(f);
    return rc;
}

/* obj's optional handle_a2a_message(message, ctx) into bridge.a2a_handler;
 * an agent without handle_message (*handler NULL) is served by it alone
 * (*handler becomes a new reference to it).  AP_ERR with an error set. */
static int load_a2a(const char *spec, PyObject *obj, PyObject **handler)
{
    PyObject *a2a = optional_attr(obj, "handle_a2a_message");
    if (a2a == NULL)
        return PyErr_Occurred() ? AP_ERR : AP_OK;
    if (!PyCallable_Check(a2a)) {
        Py_DECREF(a2a);
        PyErr_Format(PyExc_TypeError, "agent %s: handle_a2a_message is not callable", spec);
        return AP_ERR;
    }
    bridge.a2a_handler = a2a;
    if (*handler == NULL) {
        *handler = Py_NewRef(a2a);
        bridge.a2a_only = 1;
    }
    return AP_OK;
}

int agent_load(const char *spec)
{
    PyObject *module = NULL, *obj = NULL, *next = NULL;
    char *modname = NULL;
    int rc = AP_ERR;

    const char *colon = strchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] == '\0') {
        PyErr_Format(PyExc_ValueError, "--agent must be MODULE:ATTR (e.g. pyagents.examples.echo:EchoAgent), got \"%s\"", spec);
        goto done;
    }
    modname = PyMem_Malloc((size_t)(colon - spec) + 1);
    if (modname == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(modname, spec, (size_t)(colon - spec));
    modname[colon - spec] = '\0';
    module = PyImport_ImportModule(modname);
    if (module == NULL)
        goto done;

    /* attr may be dotted: "Outer.Inner" */
    obj = module;
    Py_INCREF(obj);
    for (const char *a = colon + 1; *a;) {
        const char *dot = strchr(a, '.');
        size_t n = dot ? (size_t)(dot - a) : strlen(a);
        PyObject *name = PyUnicode_FromStringAndSize(a, (Py_ssize_t)n);
        if (name == NULL)
            goto done;
        next = PyObject_GetAttr(obj, name);
        Py_DECREF(name);
        if (next == NULL)
            goto done;
        Py_SETREF(obj, next);
        next = NULL;
        a += n + (dot ? 1 : 0);
    }

    if (PyType_Check(obj)) {
        PyObject *inst = PyObject_CallNoArgs(obj);
        if (inst == NULL)
            goto done;
        Py_SETREF(obj, inst);
    }
    PyObject *handler = optional_attr(obj, "handle_message");
    if (handler == NULL && PyErr_Occurred())
        goto done;
    if (!PyModule_Check(obj) && load_a2a(spec, obj, &handler) < 0) {
        Py_XDECREF(handler);
        goto done;
    }
    if (handler != NULL) {
        if (!PyCallable_Check(handler)) {
            Py_DECREF(handler);
            PyErr_Format(PyExc_TypeError, "agent %s: handle_message is not callable", spec);
            goto done;
        }
        bridge.agent = obj;
        bridge.handler = handler;
        obj = NULL;
        bridge.health = optional_attr(bridge.agent, "health");
        if (bridge.health == NULL && PyErr_Occurred())
            goto done;
        bridge.metrics = optional_attr(bridge.agent, "metrics");
        if (bridge.metrics == NULL && PyErr_Occurred())
            goto done;
    } else if (PyCallable_Check(obj) && !PyModule_Check(obj)) {
        bridge.handler = obj; /* a plain handle_message(type, data) */
        obj = NULL;
    } else {
        PyErr_Format(PyExc_TypeError,
                     "agent %s is not an agent: expected a class or object with handle_message(type, data), "
                     "or a function handle_message(type, data)", spec);
        goto done;
    }

    int co = is_coroutine_function(bridge.handler);
    if (co < 0)
        goto done;
    bridge.is_async = co;
    if (bridge.a2a_handler && !bridge.a2a_only) {
        int aco = is_coroutine_function(bridge.a2a_handler);
        if (aco < 0)
            goto done;
        if (aco != co) {
            PyErr_Format(PyExc_TypeError,
                         "agent %s: handle_a2a_message is %s but handle_message is %s: both must be async def "
                         "(or async generators), or neither", spec, aco ? "async" : "not async",
                         co ? "async" : "not async");
            goto done;
        }
    }
    rc = AP_OK;
done:
    Py_XDECREF(obj);
    Py_XDECREF(module);
    PyMem_Free(modname);
    return rc;
}

int agent_hook(const char *name)
{
    PyObject *fn = NULL, *res = NULL, *asyncio = NULL, *awaited = NULL;
    int rc = AP_ERR;
    if (bridge.agent == NULL)
        return AP_OK;
    fn = optional_attr(bridge.agent, name);
    if (fn == NULL) {
        rc = PyErr_Occurred() ? AP_ERR : AP_OK;
        goto done;
    }
    res = PyObject_CallNoArgs(fn);
    if (res == NULL)
        goto done;
    if (PyCoro_CheckExact(res) || PyObject_HasAttrString(res, "__await__")) {
        if (bridge.run_until_complete) {
            awaited = PyObject_CallOneArg(bridge.run_until_complete, res);
        } else {
            asyncio = PyImport_ImportModule("asyncio");
            if (asyncio == NULL)
                goto done;
            awaited = PyObject_CallMethod(asyncio, "run", "O", res);
        }
        if (awaited == NULL)
            goto done;
    }
    rc = AP_OK;
done:
    Py_XDECREF(awaited);
    Py_XDECREF(asyncio);
    Py_XDECREF(res);
    Py_XDECREF(fn);
    return rc;
}

void agent_release(void)
{
    Py_CLEAR(bridge.metrics);
    Py_CLEAR(bridge.health);
    Py_CLEAR(bridge.handler);
    Py_CLEAR(bridge.a2a_handler);
    Py_CLEAR(bridge.agent);
}
