/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstate.c - ctx.session on the worker's side (see sstate.h).
 *
 * Per message with a session, one entry in an id -> entry map: its
 * Session object and the JSON text the master last has for it (the text
 * the REQUEST carried, then each STATE sent).  The state is encoded
 * straight behind a STATE frame header in bridge.out, like a result; when
 * the bytes equal the kept text the frame is taken back, so a handler
 * that only reads its state costs the master nothing.  ctx.session.save()
 * sends at once, with AP_FRAME_STATE_SAVE, and hands the frame to the
 * driver's hook (bridge.stream_sent) as publish.c does; the end of the
 * message's frame leaves with its RESULT.  The size bound is
 * --max-session-bytes (the pool's maxSessionBytes).  A message without a
 * session costs one test of the map's count.  State: the `ss` struct.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sstate.h"
#include "bridge.h"
#include "hctx.h"
#include "idmap.h"
#include "pyconv.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_frame.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    PyObject *session; /* the Session the handler sees */
    char *sent;        /* the JSON text the master has (PyMem) */
    size_t sent_len;
} sentry;

static struct {
    idmap_t map;          /* message id -> sentry */
    PyObject *session_new; /* _session_new(mid, dict) */
} ss;

static const char sstate_code[] =
    "class Session(dict):\n"
    "    '''The state of this message's session (docs/sessions.md): a dict\n"
    "    of JSON values the master keeps for the session.  What the handler\n"
    "    leaves in it is committed when the handler returns (not when it\n"
    "    raises); save() commits it at once.'''\n"
    "    __slots__ = ('_mid',)\n"
    "    def save(self):\n"
    "        '''Sends the state as it is now to the master, which commits it\n"
    "        to the session store (nothing is sent when it did not change).\n"
    "        ValueError when its JSON is over maxSessionBytes, TypeError\n"
    "        when it holds a value JSON has no form for.'''\n"
    "        _session_save(self._mid, self)\n"
    "    def __repr__(self):\n"
    "        return '<agentpool Session %s>' % dict.__repr__(self)\n"
    "def _session_new(mid, d):\n"
    "    s = Session(d)\n"
    "    s._mid = mid\n"
    "    return s\n";

static void entry_free(sentry *e)
{
    Py_XDECREF(e->session);
    PyMem_Free(e->sent);
    PyMem_Free(e);
}

/* Keeps text[0..n) as what the master has.  AP_ERR with MemoryError. */
static int keep_sent(sentry *e, const char *text, size_t n)
{
    char *p = PyMem_Realloc(e->sent, n ? n : 1);
    if (p == NULL) {
        PyErr_NoMemory();
        return AP_ERR;
    }
    memcpy(p, text, n);
    e->sent = p;
    e->sent_len = n;
    return AP_OK;
}

/* Appends e's state as a STATE frame (flags) for message id to
 * bridge.out, unless its JSON is the text the master has.  Returns AP_OK;
 * SSTATE_TOO_LARGE with why set (nothing appended); AP_ERR with a Python
 * error set (nothing appended). */
static int put_state(sentry *e, uint64_t id, uint8_t flags, char *why, size_t cap)
{
    buf_t *out = &bridge.out;
    size_t at = wire_begin(out);
    /* encoded whole (up to the frame limit) so the refusal can say how large */
    int rc = pyconv_encode_named(e->session, out, AP_FRAME_MAX_PAYLOAD, "session state");
    size_t n = out->len - at - AP_FRAME_HDR_SIZE;
    if (rc == AP_OK && n > bridge.max_session_bytes)
        rc = PYCONV_TOO_LARGE;
    if (rc != AP_OK) {
        wire_abort(out, at);
        if (rc != PYCONV_TOO_LARGE)
            return AP_ERR;
        int over_frame = PyErr_Occurred() != NULL; /* pyconv's: past the frame limit */
        PyErr_Clear();
        snprintf(why, cap, "session state too large (%s%zu bytes, limit %zu)", over_frame ? "more than " : "",
                 over_frame ? (size_t)AP_FRAME_MAX_PAYLOAD : n, bridge.max_session_bytes);
        return SSTATE_TOO_LARGE;
    }
    const char *text = (const char *)out->data + at + AP_FRAME_HDR_SIZE;
    if (n == e->sent_len && memcmp(text, e->sent, n) == 0) {
        wire_abort(out, at); /* unchanged: the master has it */
        return AP_OK;
    }
    if (keep_sent(e, text, n) < 0) {
        wire_abort(out, at);
        return AP_ERR;
    }
    wire_end(out, at, AP_FRAME_STATE, 0, id);
    wire_set_flags(out, at, flags);
    return AP_OK;
}

/* _session_save(mid, session): ctx.session.save(). */
static PyObject *session_save_py(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    char why[160];
    (void)self;
    if (nargs != 2 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_session_save(mid, session)");
        return NULL;
    }
    uint64_t id = PyLong_AsUnsignedLongLong(args[0]);
    if (id == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    sentry *e = idmap_get(&ss.map, id);
    if (e == NULL || e->session != args[1]) {
        PyErr_SetString(PyExc_RuntimeError, "session.save(): the message this session belongs to has ended");
        return NULL;
    }
    int rc = put_state(e, id, AP_FRAME_STATE_SAVE, why, sizeof(why));
    if (rc == SSTATE_TOO_LARGE) {
        PyErr_SetString(PyExc_ValueError, why);
        return NULL;
    }
    if (rc != AP_OK)
        return NULL;
    if (bridge.stream_sent && bridge.stream_sent(id) != AP_OK)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef save_def = {"_session_save", (PyCFunction)(void (*)(void))session_save_py, METH_FASTCALL, NULL};

int sstate_init(void)
{
    idmap_init(&ss.map);
    if (hctx_extend(&save_def, sstate_code) < 0)
        return AP_ERR;
    PyObject *m = PyImport_ImportModule("_agentpool");
    ss.session_new = m ? PyObject_GetAttrString(m, "_session_new") : NULL;
    Py_XDECREF(m);
    return ss.session_new ? AP_OK : AP_ERR;
}

PyObject *sstate_open(uint64_t id, const char *text, size_t len)
{
    PyObject *d = pyconv_decode(text, len), *mid = NULL, *s = NULL;
    sentry *e = NULL;
    if (d == NULL)
        return NULL;
    if (!PyDict_CheckExact(d)) {
        PyErr_Format(PyExc_ValueError, "the session state is %s, not a JSON object", Py_TYPE(d)->tp_name);
        goto fail;
    }
    mid = PyLong_FromUnsignedLongLong(id);
    s = mid ? PyObject_CallFunctionObjArgs(ss.session_new, mid, d, NULL) : NULL;
    if (s == NULL)
        goto fail;
    e = PyMem_Calloc(1, sizeof(*e));
    if (e == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    e->session = Py_NewRef(s);
    if (keep_sent(e, text, len) < 0)
        goto fail;
    sentry *prev = idmap_put(&ss.map, id, e);
    if (prev != NULL)
        entry_free(prev);
    Py_DECREF(mid);
    Py_DECREF(d);
    return s;
fail:
    if (e != NULL)
        entry_free(e);
    Py_XDECREF(s);
    Py_XDECREF(mid);
    Py_DECREF(d);
    return NULL;
}

int sstate_end(uint64_t id, char *why, size_t cap)
{
    if (AP_LIKELY(ss.map.count == 0))
        return AP_OK;
    sentry *e = idmap_del(&ss.map, id);
    if (e == NULL)
        return AP_OK;
    int rc = put_state(e, id, 0, why, cap);
    entry_free(e);
    return rc;
}

void sstate_forget(uint64_t id)
{
    if (AP_LIKELY(ss.map.count == 0))
        return;
    sentry *e = idmap_del(&ss.map, id);
    if (e != NULL)
        entry_free(e);
}

void sstate_fini(void)
{
    if (ss.map.vals) {
        for (size_t i = 0; i < ss.map.cap; i++)
            if (ss.map.vals[i])
                entry_free(ss.map.vals[i]);
        idmap_free(&ss.map);
    }
    Py_CLEAR(ss.session_new);
}
