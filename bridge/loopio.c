/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * loopio.c - the worker's I/O with the master under an event loop (see
 * loopio.h), shared by the asyncio and gevent drivers.
 *
 * fd 3 is non-blocking and watched for reading with a small C callback
 * (on_readable) that reads one chunk and handles every complete frame in
 * it: REQUEST and CANCEL go to the driver, PING is answered here, CREDIT
 * goes to stream.c, STOP ends the run once nothing is in flight.  Answers
 * go to bridge.out and leave in one write at the end of the loop
 * iteration that produced them: the loop calls loopio_iteration_end after
 * each (ploop), or a flush is scheduled with the loop's call_soon.  When
 * the socket is full a write watcher waits for room, and reading pauses
 * above FLUSH_HIGH bytes of unwritten output until it drains below
 * FLUSH_LOW, libevent-watermark style.  EOF from the master stops both
 * watchers and ends the run at once.  No Python exception escapes into
 * the loop: failures become log lines.  State: the one `lio` struct.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "loopio.h"
#include "bridge.h"
#include "msg.h"
#include "pyerr.h"
#include "stream.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define FLUSH_HIGH (16u * 1024 * 1024) /* stop reading above this much unwritten output */
#define FLUSH_LOW (4u * 1024 * 1024)   /* and resume below this */

static struct {
    loopio_ops ops;
    PyObject *on_readable, *on_writable, *on_flush; /* our callbacks as Python callables */
    int reading, writing, paused, flush_scheduled, woken;
    int flush_each_iteration;
} lio;

static void log_py_error(const char *during)
{
    pyerr_log(AP_LOG_ERROR, "unexpected Python error while %s", during);
}

static void set_reading(int on)
{
    if (on == lio.reading)
        return;
    lio.ops.watch(0, on, lio.on_readable);
    lio.reading = on;
}

static void set_writing(int on)
{
    if (on == lio.writing)
        return;
    lio.ops.watch(1, on, lio.on_writable);
    lio.writing = on;
}

/* Wakes the run when it is time: at EOF, or after STOP once nothing is
 * in flight. */
static void maybe_end(void)
{
    if (lio.woken || !(bridge.eof || (bridge.stopping && bridge.inflight == 0)))
        return;
    if (lio.ops.wake() < 0) {
        log_py_error("waking the driver's run to end it");
        return;
    }
    lio.woken = 1;
}

static void master_gone(void)
{
    if (bridge.eof)
        return;
    bridge.eof = 1;
    ap_debug("the master closed the connection (%zu %s in flight dropped)", bridge.inflight, lio.ops.held);
    set_reading(0);
    set_writing(0);
    lio.paused = 0;
    maybe_end();
}

/* --------------------------------------------------------------- output */

static void flush(void)
{
    if (bridge.eof) {
        bridge.out.len = bridge.out.off = 0;
        return;
    }
    int r = wire_flush(&bridge.out, bridge.fd);
    if (r == AP_ERR) {
        if (errno != EPIPE && errno != ECONNRESET)
            ap_error("write(fd %d) to the master failed: %s", bridge.fd, strerror(errno));
        master_gone();
        return;
    }
    size_t left = wire_pending(&bridge.out);
    set_writing(r == 1);
    if (left > FLUSH_HIGH && lio.reading && !lio.paused) {
        ap_debug("%zu bytes of answers unwritten: pausing reads", left);
        set_reading(0);
        lio.paused = 1;
    } else if (lio.paused && left < FLUSH_LOW) {
        set_reading(1);
        lio.paused = 0;
    }
}

/* One flush at the loop's next turn, so every answer made in this
 * iteration leaves in one write - unless the loop flushes at the end of
 * each iteration anyway, or a write watcher already waits for room. */
static void schedule_flush(void)
{
    if (lio.flush_each_iteration || lio.flush_scheduled || lio.writing || wire_pending(&bridge.out) == 0)
        return;
    if (lio.ops.call_soon(lio.on_flush) < 0) {
        log_py_error("scheduling a flush");
        flush();
        return;
    }
    lio.flush_scheduled = 1;
}

static PyObject *on_flush(PyObject *self, PyObject *unused)
{
    lio.flush_scheduled = 0;
    flush();
    log_py_error("flushing answers");
    Py_RETURN_NONE;
}

static PyObject *on_writable(PyObject *self, PyObject *unused)
{
    flush();
    log_py_error("flushing answers");
    Py_RETURN_NONE;
}

void loopio_iteration_end(void)
{
    if (!lio.writing && wire_pending(&bridge.out) > 0) {
        flush();
        log_py_error("flushing answers");
    }
}

void loopio_answered(void)
{
    schedule_flush();
    maybe_end();
}

/* bridge.stream_sent: the chunk leaves with this iteration's answers. */
static int stream_sent(uint64_t id)
{
    (void)id;
    schedule_flush();
    return AP_OK;
}

/* ---------------------------------------------------------------- input */

static void handle_frames(void)
{
    ap_frame_hdr h;
    const unsigned char *payload;
    int r;
    while ((r = wire_next(&bridge.in, &h, &payload)) == 1) {
        switch (h.kind) {
        case AP_FRAME_REQUEST:
            lio.ops.submit(&h, payload);
            break;
        case AP_FRAME_PING:
            msg_pong(h.id);
            break;
        case AP_FRAME_CANCEL:
            lio.ops.cancel(h.id);
            break;
        case AP_FRAME_CREDIT:
            stream_credit(h.id, payload, h.len);
            break;
        case AP_FRAME_STOP:
            if (!bridge.stopping)
                ap_info("STOP received: finishing %zu %s in flight", bridge.inflight, lio.ops.held);
            bridge.stopping = 1;
            maybe_end();
            break;
        default:
            bridge_bad_frame(h.kind, h.len, h.id, 0);
        }
    }
    if (r < 0)
        bridge_bad_frame(h.kind, h.len, h.id, 1);
}

static PyObject *on_readable(PyObject *self, PyObject *unused)
{
    ssize_t n = wire_read(&bridge.in, bridge.fd);
    if (n == 0) {
        master_gone();
    } else if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            ap_error("read(fd %d) from the master failed: %s", bridge.fd, strerror(errno));
            master_gone();
        }
    } else {
        handle_frames();
    }
    schedule_flush();
    log_py_error("reading from the master");
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ lifecycle */

static PyMethodDef readable_def = {"agentpool_readable", on_readable, METH_NOARGS, NULL};
static PyMethodDef writable_def = {"agentpool_writable", on_writable, METH_NOARGS, NULL};
static PyMethodDef flush_def = {"agentpool_flush", on_flush, METH_NOARGS, NULL};

int loopio_init(const loopio_ops *ops, int flush_each_iteration)
{
    lio.ops = *ops;
    lio.flush_each_iteration = flush_each_iteration;
    bridge.stream_sent = stream_sent;
    lio.on_readable = PyCFunction_New(&readable_def, NULL);
    lio.on_writable = PyCFunction_New(&writable_def, NULL);
    lio.on_flush = PyCFunction_New(&flush_def, NULL);
    return lio.on_readable && lio.on_writable && lio.on_flush ? AP_OK : AP_ERR;
}

int loopio_start(void)
{
    int fl = fcntl(bridge.fd, F_GETFL);
    if (fl < 0 || fcntl(bridge.fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        ap_error("fcntl(fd %d, O_NONBLOCK) failed: %s", bridge.fd, strerror(errno));
        return AP_ERR;
    }
    set_reading(1);
    return AP_OK;
}

int loopio_done(void)
{
    return lio.woken;
}

void loopio_fini(void)
{
    if (lio.on_readable && lio.on_writable) {
        set_reading(0);
        set_writing(0);
    }
    Py_CLEAR(lio.on_flush);
    Py_CLEAR(lio.on_writable);
    Py_CLEAR(lio.on_readable);
}
