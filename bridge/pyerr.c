/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyerr.c - tracebacks into the log (see pyerr.h).
 *
 * Formatting goes through the traceback module (format_exception), with
 * a one-line fallback when that fails.  The agent-exception limit is a
 * fixed table of PYERR_SLOTS pairs in the bridge's state (bridge.h),
 * found by a 64-bit hash of the message type and the exception class
 * and a linear probe: a worker sees few distinct failures, and this runs
 * only when an agent raised.  Names are kept for the log lines cut to
 * PYERR_NAME_MAX bytes, control bytes replaced.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pyerr.h"
#include "bridge.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

PyObject *pyerr_format(PyObject *type, PyObject *value, PyObject *tb)
{
    PyObject *traceback = NULL, *lines = NULL, *empty = NULL, *text = NULL;
    traceback = PyImport_ImportModule("traceback");
    if (traceback == NULL)
        goto fallback;
    lines = PyObject_CallMethod(traceback, "format_exception", "OOO", type ? type : Py_None,
                                value ? value : Py_None, tb ? tb : Py_None);
    if (lines == NULL)
        goto fallback;
    empty = PyUnicode_FromString("");
    if (empty == NULL)
        goto fallback;
    text = PyUnicode_Join(empty, lines);
    if (text == NULL)
        goto fallback;
    goto done;
fallback:
    PyErr_Clear();
    text = PyUnicode_FromFormat("%s: %S\n", type && PyType_Check(type) ? ((PyTypeObject *)type)->tp_name : "Error",
                                value ? value : Py_None);
    if (text == NULL) {
        PyErr_Clear();
        text = PyUnicode_FromString("(the exception could not be formatted)\n");
    }
done:
    Py_XDECREF(empty);
    Py_XDECREF(lines);
    Py_XDECREF(traceback);
    return text;
}

PyObject *pyerr_text(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *text = pyerr_format(type, value, tb);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return text;
}

/* Logs text (a str, or NULL) as an indented block at level. */
static void pyerr_block(ap_log_level level, PyObject *text)
{
    Py_ssize_t n = 0;
    const char *s = text ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    if (s)
        ap_log_block(level, "  ", s, (size_t)n);
    PyErr_Clear();
}

void pyerr_log(ap_log_level level, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    if (!PyErr_Occurred())
        return;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    PyObject *text = pyerr_text();
    ap_log(level, "%s:", what);
    pyerr_block(level, text);
    Py_DECREF(text);
}

/* ---- the per-(type, class) limit for agent exceptions ---------------- */

/* The UTF-8 of s (a str or NULL), or dflt. */
static const char *pyerr_utf8(PyObject *s, const char *dflt)
{
    const char *u = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : NULL;
    if (u == NULL) {
        PyErr_Clear();
        return dflt;
    }
    return u;
}

static uint64_t pyerr_hash(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull; /* "ab"+"c" differs from "a"+"bc" */
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h ? h : 1;
}

/* Seconds of a window so far, for messages (at least 1). */
static unsigned long long pyerr_secs(const pyerr_pair *p, uint64_t now)
{
    uint64_t span = now - p->window_start_ms;
    if (span > PYERR_WINDOW_MS)
        span = PYERR_WINDOW_MS;
    return span < 1000 ? 1 : (span + 999) / 1000;
}

/* Says how many of pair p were not logged, if any, and forgets them. */
static void pyerr_report(pyerr_pair *p, uint64_t now)
{
    if (p->suppressed == 0)
        return;
    ap_error("%u more %s raised for messages of type %s were not logged in the last %llu s",
             p->suppressed, p->exc, p->type, pyerr_secs(p, now));
    p->suppressed = 0;
}

/* Copies name into dst (PYERR_NAME_MAX + 1 bytes), cut, control bytes
 * as '?': a message type may hold a newline, which would forge a line. */
static void pyerr_name(char *dst, const char *name)
{
    size_t i = 0;
    for (; name[i] && i < PYERR_NAME_MAX; i++)
        dst[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
    dst[i] = '\0';
}

/* The table's pair for hash h: found, free, or the least recently used
 * one (its count reported first), reset for h. */
static pyerr_pair *pyerr_pair_for(uint64_t h, const char *type, const char *exc, uint64_t now)
{
    pyerr_pair *victim = &bridge.pyerr[0];
    for (size_t i = 0; i < PYERR_SLOTS; i++) {
        pyerr_pair *p = &bridge.pyerr[i];
        if (p->hash == h)
            return p;
        if (victim->hash != 0 && (p->hash == 0 || p->last_ms < victim->last_ms))
            victim = p;
    }
    if (victim->hash != 0)
        pyerr_report(victim, now);
    memset(victim, 0, sizeof(*victim));
    victim->hash = h;
    victim->window_start_ms = now;
    pyerr_name(victim->type, type);
    pyerr_name(victim->exc, exc);
    return victim;
}

void pyerr_log_agent(uint64_t id, PyObject *msg_type, PyObject *exc_name, PyObject *type,
                     PyObject *value, PyObject *tb)
{
    const char *t = pyerr_utf8(msg_type, "(unknown)");
    const char *e = pyerr_utf8(exc_name, "Exception");
    uint64_t now = ap_now_ms();
    pyerr_pair *p = pyerr_pair_for(pyerr_hash(t, e), t, e, now);

    p->last_ms = now;
    if (now - p->window_start_ms >= PYERR_WINDOW_MS) {
        pyerr_report(p, now);
        p->window_start_ms = now;
        p->shown = 0;
    }
    if (p->shown >= PYERR_BURST) {
        p->suppressed++;
        return;
    }
    p->shown++;
    char more[160] = "";
    if (p->suppressed)
        snprintf(more, sizeof(more), " (%u more like it were not logged in the last %llu s)",
                 p->suppressed, pyerr_secs(p, now));
    else if (p->shown == PYERR_BURST)
        snprintf(more, sizeof(more), " (more like it in the next %u s are counted, not logged)",
                 (unsigned)((PYERR_WINDOW_MS - (now - p->window_start_ms) + 999) / 1000));
    p->suppressed = 0;
    ap_error("message %llu of type %s failed: the agent raised %s%s:", (unsigned long long)id, p->type,
             p->exc, more);
    PyObject *text = pyerr_format(type, value, tb);
    pyerr_block(AP_LOG_ERROR, text);
    Py_DECREF(text);
}

void pyerr_flush(void)
{
    uint64_t now = ap_now_ms();
    for (size_t i = 0; i < PYERR_SLOTS; i++)
        pyerr_report(&bridge.pyerr[i], now);
}
