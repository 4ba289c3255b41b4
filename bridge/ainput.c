/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ainput.c - Context.require_input (see ainput.h).
 *
 * One dict, message id -> prompt, holding only the messages whose
 * handler called require_input and that are not answered yet (so it is
 * bounded by the messages in flight); msg.c takes the entry when it
 * answers the message (RESULT) or forgets it (ERROR).  The common case,
 * a message that never asks, costs msg_reply one size test.  Works the
 * same in the sync, async and gevent models: only the answer's path
 * reads it.  State: `ai` below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "ainput.h"
#include "hctx.h"

#include "ap_common.h"

static struct {
    PyObject *pending; /* {message id (int): prompt} */
} ai;

static const char ainput_code[] =
    "def _ctx_require_input(self, prompt):\n"
    "    '''Ends this turn asking the caller for more input: when the\n"
    "    handler returns, the message is answered with prompt (a str or\n"
    "    any JSON value) in place of its return value, marked input\n"
    "    required (an A2A task goes to TASK_STATE_INPUT_REQUIRED, prompt\n"
    "    its status message; the next message with its taskId continues\n"
    "    it).  The last call wins.  Returns None at once.'''\n"
    "    _require_input(self._mid, prompt)\n"
    "Context.require_input = _ctx_require_input\n";

/* _require_input(mid, prompt): keeps prompt for message mid. */
static PyObject *ainput_py(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "require_input(prompt)");
        return NULL;
    }
    if (args[1] == Py_None) {
        PyErr_SetString(PyExc_ValueError, "require_input(prompt): prompt must not be None");
        return NULL;
    }
    if (PyDict_SetItem(ai.pending, args[0], args[1]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef ainput_def = {"_require_input", (PyCFunction)(void (*)(void))ainput_py, METH_FASTCALL, NULL};

int ainput_init(void)
{
    ai.pending = PyDict_New();
    if (ai.pending == NULL)
        return AP_ERR;
    return hctx_extend(&ainput_def, ainput_code);
}

/* Removes id's entry: the prompt (new reference) when asked for. */
static PyObject *pop(uint64_t id)
{
    if (AP_LIKELY(ai.pending == NULL || PyDict_GET_SIZE(ai.pending) == 0))
        return NULL;
    PyObject *key = PyLong_FromUnsignedLongLong(id);
    PyObject *v = key ? PyDict_GetItemWithError(ai.pending, key) : NULL; /* borrowed */
    if (v != NULL) {
        Py_INCREF(v);
        if (PyDict_DelItem(ai.pending, key) < 0)
            PyErr_Clear();
    }
    if (PyErr_Occurred())
        PyErr_Clear(); /* out of memory: as if never asked */
    Py_XDECREF(key);
    return v;
}

PyObject *ainput_take(uint64_t id)
{
    return pop(id);
}

void ainput_forget(uint64_t id)
{
    PyObject *v = pop(id);
    Py_XDECREF(v);
}
