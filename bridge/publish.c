/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * publish.c - Context.publish (see publish.h).
 *
 * ctx.publish(topic, data=None) checks the topic (ap_frame_event_topic_valid:
 * ValueError), encodes data as JSON straight behind an EVENT frame header
 * in bridge.out (TypeError when it is not JSON, ValueError over
 * AP_EVENT_DATA_MAX), and hands the frame to the driver's hook like a
 * stream chunk (bridge.stream_sent: the sync driver writes it at once,
 * async and gevent with this loop iteration's answers).  It never waits
 * for the master and returns None: whether the master recorded the event
 * or dropped it (over the worker's rate) is not the handler's concern.
 * No state of its own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "publish.h"
#include "bridge.h"
#include "hctx.h"
#include "pyconv.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_frame.h"

static const char publish_code[] =
    "def _ctx_publish(self, topic, data=None):\n"
    "    '''Publishes an event agent.<topic> with data (any JSON value, 64 KiB\n"
    "    at most) to agentpoold's event stream (docs/events.md).  topic is\n"
    "    dot-separated segments of a-z 0-9 _ - (128 bytes at most);\n"
    "    ValueError for a bad topic or data too large, TypeError for data\n"
    "    that is not JSON.  Returns None at once.'''\n"
    "    _publish(self._mid, topic, data)\n"
    "Context.publish = _ctx_publish\n";

/* _publish(mid, topic, data): one EVENT frame for message mid. */
static PyObject *publish_py(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3 || !PyLong_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "publish(topic: str, data=None)");
        return NULL;
    }
    uint64_t id = PyLong_AsUnsignedLongLong(args[0]);
    if (id == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t tlen;
    const char *topic = PyUnicode_AsUTF8AndSize(args[1], &tlen);
    if (topic == NULL)
        return NULL;
    if (!ap_frame_event_topic_valid(topic, (size_t)tlen))
        return PyErr_Format(PyExc_ValueError,
                            "bad event topic %.140R: dot-separated segments of a-z 0-9 _ -, 1 to %d bytes "
                            "(published as agent.<topic>)",
                            args[1], AP_EVENT_TOPIC_MAX);
    buf_t *out = &bridge.out;
    size_t at = wire_begin(out);
    buf_append(out, topic, (size_t)tlen);
    int rc = pyconv_encode(args[2], out, AP_EVENT_DATA_MAX);
    if (rc != AP_OK) {
        wire_abort(out, at);
        if (rc == PYCONV_TOO_LARGE) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "event data too large (more than %u bytes)", AP_EVENT_DATA_MAX);
        }
        return NULL;
    }
    if (out->len - at - AP_FRAME_HDR_SIZE - (size_t)tlen > AP_EVENT_DATA_MAX) {
        wire_abort(out, at);
        return PyErr_Format(PyExc_ValueError, "event data too large (more than %u bytes)", AP_EVENT_DATA_MAX);
    }
    wire_end(out, at, AP_FRAME_EVENT, (uint16_t)tlen, id);
    if (bridge.stream_sent && bridge.stream_sent(id) != AP_OK)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef publish_def = {"_publish", (PyCFunction)(void (*)(void))publish_py, METH_FASTCALL, NULL};

int publish_init(void)
{
    return hctx_extend(&publish_def, publish_code);
}
