/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * codeid.c - the agent code's identity, computed in the worker (see
 * codeid.h).  The hashing runs as a few lines of Python in a private
 * namespace: sysconfig is in every CPython, and SHA-256 comes from the
 * interpreter's own _sha256 module (hashlib would load OpenSSL's libcrypto
 * into every worker: ~4 MiB of RSS), hashlib only where that is missing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "codeid.h"
#include "ap_log.h"

#include <stdio.h>

void codeid_compute(char *out, size_t cap)
{
    static const char code[] =
        "import sys, sysconfig\n"
        "try:\n"
        "    from _sha256 import sha256 as _sha\n"
        "except ImportError:\n"
        "    from hashlib import sha256 as _sha\n"
        "_paths = sysconfig.get_paths()\n"
        "_skip = tuple(p.rstrip('/') + '/' for p in {_paths.get('stdlib'), _paths.get('platstdlib')} if p)\n"
        "_h = _sha()\n"
        "_n = 0\n"
        "for _name in sorted(sys.modules):\n"
        "    _f = getattr(sys.modules[_name], '__file__', None)\n"
        "    if not isinstance(_f, str) or not _f.endswith('.py') or _f.startswith(_skip):\n"
        "        continue\n"
        "    try:\n"
        "        with open(_f, 'rb') as _fh:\n"
        "            _d = _sha(_fh.read()).digest()\n"
        "    except OSError:\n"
        "        continue\n"
        "    _h.update(_name.encode() + b'\\0' + _d)\n"
        "    _n += 1\n"
        "result = '%s:%d' % (_h.hexdigest()[:16], _n)\n";
    out[0] = '\0';
    PyObject *g = PyDict_New();
    PyObject *r = NULL;
    if (g && PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0)
        r = PyRun_String(code, Py_file_input, g, g);
    PyObject *res = r && g ? PyDict_GetItemString(g, "result") : NULL; /* borrowed */
    const char *s = res ? PyUnicode_AsUTF8(res) : NULL;
    if (s)
        snprintf(out, cap, "%s", s);
    else
        ap_warn("could not compute the agent code's identity: code drift cannot be checked for this worker");
    PyErr_Clear();
    Py_XDECREF(r);
    Py_XDECREF(g);
}
