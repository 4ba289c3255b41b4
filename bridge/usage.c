/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * usage.c - ctx.usage and the USAGE frame (see usage.h).
 *
 * ctx.usage is Python (below): it checks every value first (a number,
 * finite, >= 0; tokens_in and tokens_out integers; names of A-Z a-z 0-9
 * _ up to AP_USAGE_NAME_MAX; at most AP_USAGE_NAMES_MAX names per
 * message) and only then adds them to the message's running sums in
 * _usage_acc (message id -> {name: sum}), so a refused call changes
 * nothing.  usage_end pops the message's sums and encodes them as the
 * USAGE frame's payload.  _usage_acc holds only messages that reported and are
 * not answered yet, at most USAGE_PENDING_MAX (a handler that keeps a
 * context after its answer cannot grow it).  State: the `uc` struct
 * below.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "usage.h"
#include "bridge.h"
#include "pyconv.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_frame.h"
#include "ap_log.h"

#include <time.h>

static struct {
    PyObject *acc;              /* _agentpool._usage_acc (borrowed from the module) */
    uint64_t id;                /* the message measured */
    uint64_t start_ns;          /* its handler's start (thread CPU) */
    uint64_t cpu_ns;            /* fixed: its total */
    uint64_t last_ns;           /* sync model: the thread CPU clock at the last answer */
    int measuring, fixed;
} uc;

static const char usage_code[] =
    "import math as _math\n"
    "_usage_acc = {}\n"
    "def _ctx_usage(self, **numbers):\n"
    "    '''Reports what this message cost: usage(tokens_in=120, tokens_out=40,\n"
    "    cost=0.0021, **other_numbers).  Each value is a number >= 0 (tokens_in and\n"
    "    tokens_out integers); calls add up.  At most %d names of A-Z a-z 0-9 _\n"
    "    (%d bytes at most) per message.  agentpoold counts it per API key, pool\n"
    "    and message type, and charges tokens to the key's tokensPerMinute.\n"
    "    TypeError or ValueError for a bad value, and nothing is recorded.'''\n"
    "    mid = self._mid\n"
    "    acc = _usage_acc.get(mid)\n"
    "    names = set(acc) if acc else set()\n"
    "    for name, v in numbers.items():\n"
    "        if type(v) is not int and type(v) is not float:\n"
    "            raise TypeError('usage %%s must be a number, not %%s' %% (name, type(v).__name__))\n"
    "        if not (v >= 0) or not _math.isfinite(v):\n"
    "            raise ValueError('usage %%s must be a finite number >= 0, not %%r' %% (name, v))\n"
    "        if name in ('tokens_in', 'tokens_out'):\n"
    "            if type(v) is not int:\n"
    "                raise TypeError('usage %%s must be an integer' %% name)\n"
    "            if v + (acc.get(name, 0) if acc else 0) > 2 ** 53:\n"
    "                raise ValueError('usage %%s above 2**53' %% name)\n"
    "        if not name or len(name) > %d or not name.isascii() or not name.replace('_', 'a').isalnum():\n"
    "            raise ValueError('usage name %%r: 1 to %d characters of A-Z a-z 0-9 _' %% (name,))\n"
    "        names.add(name)\n"
    "    if len(names) > %d:\n"
    "        raise ValueError('usage: more than %d names for one message')\n"
    "    if acc is None:\n"
    "        if not numbers:\n"
    "            return None\n"
    "        if len(_usage_acc) >= %d:\n"
    "            raise RuntimeError('usage: too many messages with usage not yet sent (is this context still running?)')\n"
    "        acc = _usage_acc[mid] = {}\n"
    "    for name, v in numbers.items():\n"
    "        acc[name] = acc.get(name, 0) + v\n"
    "Context.usage = _ctx_usage\n";

/* Messages with reported usage not yet sent, at most. */
#define USAGE_PENDING_MAX 4096

int usage_init(void)
{
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    PyObject *module = PyDict_GetItemString(modules, "_agentpool");
    if (module == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the _agentpool module is not there");
        return AP_ERR;
    }
    char code[sizeof(usage_code) + 64];
    snprintf(code, sizeof(code), usage_code, AP_USAGE_NAMES_MAX, AP_USAGE_NAME_MAX, AP_USAGE_NAME_MAX,
             AP_USAGE_NAME_MAX, AP_USAGE_NAMES_MAX, AP_USAGE_NAMES_MAX, USAGE_PENDING_MAX);
    PyObject *g = PyModule_GetDict(module); /* borrowed */
    PyObject *r = PyRun_String(code, Py_file_input, g, g);
    if (r == NULL)
        return AP_ERR;
    Py_DECREF(r);
    uc.acc = PyDict_GetItemString(g, "_usage_acc");
    if (uc.acc == NULL || !PyDict_Check(uc.acc)) {
        PyErr_SetString(PyExc_RuntimeError, "the _agentpool module lacks _usage_acc");
        return AP_ERR;
    }
    Py_INCREF(uc.acc);
    uc.last_ns = usage_cpu_now();
    return AP_OK;
}

void usage_fini(void)
{
    Py_CLEAR(uc.acc);
}

uint64_t usage_step_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t usage_cpu_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void usage_begin(uint64_t id)
{
    if (bridge.model == BRIDGE_MODEL_GEVENT)
        return;
    uc.id = id;
    uc.measuring = 1;
    uc.fixed = 0;
    if (bridge.model != BRIDGE_MODEL_SYNC) /* sync: from the last answer (usage_end); async: its steps' clock */
        uc.start_ns = usage_step_now();
}

void usage_set_cpu(uint64_t id, uint64_t cpu_ns)
{
    uc.id = id;
    uc.measuring = 1;
    uc.fixed = 1;
    uc.cpu_ns = cpu_ns;
}

/* Message id's reported sums (new reference), or NULL. */
static PyObject *take_report(uint64_t id)
{
    if (uc.acc == NULL || PyDict_GET_SIZE(uc.acc) == 0)
        return NULL;
    PyObject *key = PyLong_FromUnsignedLongLong(id);
    if (key == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *v = PyDict_GetItemWithError(uc.acc, key); /* borrowed */
    if (v != NULL) {
        Py_INCREF(v);
        if (PyDict_DelItem(uc.acc, key) < 0)
            PyErr_Clear();
    }
    PyErr_Clear();
    Py_DECREF(key);
    return v;
}

uint16_t usage_end(uint64_t id)
{
    uint16_t aux = 0;
    if (bridge.model == BRIDGE_MODEL_SYNC) {
        /* one clock read per answer: what the thread used since the last */
        uint64_t now = usage_cpu_now(), used = now > uc.last_ns ? now - uc.last_ns : 0;
        uc.last_ns = now;
        if (uc.measuring && uc.id == id)
            aux = ap_frame_cpu_encode(used);
        uc.measuring = 0;
    } else if (uc.measuring && uc.id == id) {
        uint64_t now = uc.fixed ? 0 : usage_step_now();
        aux = ap_frame_cpu_encode(uc.fixed ? uc.cpu_ns : now > uc.start_ns ? now - uc.start_ns : 0);
        uc.measuring = 0;
    }
    PyObject *report = take_report(id);
    if (report == NULL)
        return aux;
    buf_t *out = &bridge.out;
    size_t at = wire_begin(out);
    if (pyconv_encode(report, out, AP_USAGE_JSON_MAX) == AP_OK && out->len - at - AP_FRAME_HDR_SIZE <= AP_USAGE_JSON_MAX) {
        wire_end(out, at, AP_FRAME_USAGE, 0, id);
    } else {
        PyErr_Clear();
        wire_abort(out, at);
        ap_warn("message %llu: its usage report could not be sent (over %u bytes of JSON?); dropped",
                (unsigned long long)id, AP_USAGE_JSON_MAX);
    }
    Py_DECREF(report);
    return aux;
}
