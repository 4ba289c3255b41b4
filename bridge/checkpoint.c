/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * checkpoint.c - Context.checkpoint (see checkpoint.h).
 *
 * ctx.checkpoint(value) encodes value as JSON straight behind a
 * CHECKPOINT frame header in bridge.out (TypeError when it is not JSON,
 * ValueError over --max-checkpoint-bytes, the pool's maxCheckpointBytes)
 * and hands the frame to the driver's hook like a stream chunk
 * (bridge.stream_sent: the sync driver writes it at once, async and
 * gevent with this loop iteration's answers), so a checkpoint is with the
 * master before the handler's next step can crash the worker.  It never
 * waits for the master and returns None.  No state of its own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "checkpoint.h"
#include "bridge.h"
#include "hctx.h"
#include "pyconv.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_frame.h"

static const char checkpoint_code[] =
    "def _ctx_checkpoint(self, value):\n"
    "    '''Records value (any JSON value, maxCheckpointBytes at most) as\n"
    "    this message's checkpoint: should its worker die, the message's\n"
    "    next attempt sees the last one as ctx.resume.  ValueError when\n"
    "    its JSON is too large, TypeError when it is not JSON.  Returns\n"
    "    None at once.'''\n"
    "    _checkpoint(self._mid, value)\n"
    "Context.checkpoint = _ctx_checkpoint\n";

/* _checkpoint(mid, value): one CHECKPOINT frame for message mid. */
static PyObject *checkpoint_py(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "checkpoint(value)");
        return NULL;
    }
    uint64_t id = PyLong_AsUnsignedLongLong(args[0]);
    if (id == (uint64_t)-1 && PyErr_Occurred())
        return NULL;
    buf_t *out = &bridge.out;
    size_t at = wire_begin(out);
    /* encoded whole (up to the frame limit) so the refusal can say how large */
    int rc = pyconv_encode_named(args[1], out, AP_FRAME_MAX_PAYLOAD, "checkpoint");
    size_t n = out->len - at - AP_FRAME_HDR_SIZE;
    if (rc == PYCONV_TOO_LARGE) {
        wire_abort(out, at);
        PyErr_Clear();
        return PyErr_Format(PyExc_ValueError, "checkpoint too large (more than %u bytes, limit %zu)",
                            AP_FRAME_MAX_PAYLOAD, bridge.max_checkpoint_bytes);
    }
    if (rc != AP_OK) {
        wire_abort(out, at);
        return NULL;
    }
    if (n > bridge.max_checkpoint_bytes) {
        wire_abort(out, at);
        return PyErr_Format(PyExc_ValueError, "checkpoint too large (%zu bytes, limit %zu)", n,
                            bridge.max_checkpoint_bytes);
    }
    wire_end(out, at, AP_FRAME_CHECKPOINT, 0, id);
    if (bridge.stream_sent && bridge.stream_sent(id) != AP_OK)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef checkpoint_def = {"_checkpoint", (PyCFunction)(void (*)(void))checkpoint_py, METH_FASTCALL, NULL};

int checkpoint_init(void)
{
    return hctx_extend(&checkpoint_def, checkpoint_code);
}
