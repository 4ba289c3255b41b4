/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sync_driver.c - the loop that serves a sync agent (see sync_driver.h).
 *
 * fd 3 is blocking here.  Each round reads one big chunk (the master may
 * pipeline many requests in one write), handles every complete frame in
 * it in order - one message at a time through handle_message - and
 * writes all the answers produced with one write.  So that pipelining
 * never holds an answer back for long, pending answers are also flushed
 * before a handler runs once they have waited SYNC_HOLD_NS, and whenever
 * they pass SYNC_FLUSH_BYTES.  PING is answered between messages, in
 * stream order.  A running handler cannot be cancelled, but a request the
 * master prefetched can be before it starts.  Every frame that arrives is
 * scanned once for CANCEL as soon as it is read (scanned counts the bytes
 * past the read cursor already seen), and a CANCEL ahead of its request
 * is noted (cancelled[]); a noted request is answered "cancelled" instead
 * of run, and the in-order CANCEL frame clears its note.  So that a
 * CANCEL sent while a handler ran is seen before the next request starts,
 * the driver reads what arrived meanwhile, without blocking, before any
 * frame once SYNC_HOLD_NS have passed since it last read.  (A look-ahead
 * that only ran when the buffer still held requests missed the case where
 * the next request came in a later read than the running one: request and
 * CANCEL then arrived in one read, and the request ran.)
 * Streams (stream.c): a chunk is written at once (sync_stream_sent); the
 * CREDITs the master sends back are applied when the scan first sees
 * them, so a handler whose window is full waits right there, reading
 * fd 3 (the GIL let go) until credit for its own message comes, and a
 * CANCEL of the message it streams (its client left) is raised into the
 * generator at its next chunk as StreamCancelled.  The worker as a whole
 * waits for that one client: the price of the sync model.
 * State: pending_since, last_read_ns, scanned and cancelled[] below, plus
 * the shared `bridge`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sync_driver.h"
#include "hctx.h"
#include "msg.h"
#include "stream.h"
#include "wire.h"

#include "ap_common.h"
#include "ap_log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define SYNC_HOLD_NS (1000 * 1000)      /* 1 ms */
#define SYNC_FLUSH_BYTES (256 * 1024)

#define SYNC_CANCEL_MAX 64

/* When the oldest unwritten answer was produced (0 = nothing pending). */
static uint64_t pending_since;

/* When fd 3 was last read: the next frame waits for a look-ahead once
 * SYNC_HOLD_NS have passed. */
static uint64_t last_read_ns;

/* Bytes after bridge.in.off already scanned for CANCELs: always whole
 * frames, so the scan goes on from a frame boundary. */
static size_t scanned;

/* Ids of held requests the master cancelled (a ring: oldest overwritten). */
static uint64_t cancelled[SYNC_CANCEL_MAX];
static unsigned ncancelled, cancel_next;

static int cancel_find(uint64_t id)
{
    for (unsigned i = 0; i < ncancelled; i++)
        if (cancelled[i] == id)
            return (int)i;
    return -1;
}

static void cancel_note(uint64_t id)
{
    if (cancel_find(id) >= 0)
        return;
    cancelled[cancel_next] = id;
    cancel_next = (cancel_next + 1) % SYNC_CANCEL_MAX;
    if (ncancelled < SYNC_CANCEL_MAX)
        ncancelled++;
}

/* Removes id's note; returns whether there was one. */
static int cancel_take(uint64_t id)
{
    int i = cancel_find(id);
    if (i < 0)
        return 0;
    cancelled[i] = cancelled[--ncancelled];
    cancel_next = ncancelled % SYNC_CANCEL_MAX;
    return 1;
}

/* Notes the CANCELs among the complete frames not scanned yet. */
static void scan_cancels(void)
{
    size_t at = bridge.in.off + scanned;
    ap_frame_hdr h;
    while (bridge.in.len - at >= AP_FRAME_HDR_SIZE) {
        if (ap_frame_decode(bridge.in.data + at, &h) < 0 || bridge.in.len - at - AP_FRAME_HDR_SIZE < h.len)
            break;
        if (h.kind == AP_FRAME_CANCEL)
            cancel_note(h.id);
        else if (h.kind == AP_FRAME_CREDIT)
            stream_credit(h.id, bridge.in.data + at + AP_FRAME_HDR_SIZE, h.len);
        at += AP_FRAME_HDR_SIZE + (size_t)h.len;
    }
    scanned = at - bridge.in.off;
}

/* Reads whatever the master sent meanwhile, without waiting, and notes
 * the CANCELs in it.  Reads until the socket is empty: what the master
 * has in flight to one worker is bounded by its prefetch room. */
static void look_ahead(uint64_t now)
{
    last_read_ns = now;
    while (wire_read_nowait(&bridge.in, bridge.fd) > 0)
        ;
    scan_cancels();
}

/* wire_next, keeping `scanned` relative to the read cursor; *seen: the
 * frame was scanned already (scan_cancels applied it if it was a CREDIT). */
static int next_frame(ap_frame_hdr *h, const unsigned char **payload, int *seen)
{
    int r = wire_next(&bridge.in, h, payload);
    if (r == 1) {
        size_t n = AP_FRAME_HDR_SIZE + (size_t)h->len;
        *seen = scanned >= n;
        scanned = scanned > n ? scanned - n : 0;
    }
    return r;
}

/* Messages this worker holds: complete requests still in its read buffer. */
static size_t held_count(void)
{
    return wire_count(&bridge.in, AP_FRAME_REQUEST);
}

/* Writes everything pending.  Returns AP_ERR when the master is gone. */
static int flush_all(void)
{
    pending_since = 0;
    if (wire_pending(&bridge.out) == 0)
        return AP_OK;
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = wire_flush(&bridge.out, bridge.fd);
    Py_END_ALLOW_THREADS
    if (r != AP_OK) {
        if (errno != EPIPE && errno != ECONNRESET)
            ap_error("write(fd %d) to the master failed: %s", bridge.fd, strerror(errno));
        return AP_ERR;
    }
    return AP_OK;
}

/* bridge.stream_sent: writes the chunk just queued and notes what the
 * master sent meanwhile.  AP_ERR with StreamCancelled set when the master
 * cancelled id or is gone. */
static int sync_stream_sent(uint64_t id)
{
    if (flush_all() < 0) {
        stream_raise_cancelled(id);
        return AP_ERR;
    }
    uint64_t now = ap_now_ns();
    if (now - last_read_ns >= SYNC_HOLD_NS)
        look_ahead(now);
    if (AP_UNLIKELY(ncancelled > 0) && cancel_find(id) >= 0) {
        stream_raise_cancelled(id);
        return AP_ERR;
    }
    return AP_OK;
}

/* bridge.stream_wait: reads the socket until credit gives message id's
 * window room.  AP_ERR with StreamCancelled set when the master cancelled
 * id or is gone. */
static int sync_stream_wait(uint64_t id)
{
    for (;;) {
        if (AP_UNLIKELY(ncancelled > 0) && cancel_find(id) >= 0) {
            stream_raise_cancelled(id);
            return AP_ERR;
        }
        if (!stream_full(id))
            return AP_OK;
        ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = wire_read(&bridge.in, bridge.fd);
        Py_END_ALLOW_THREADS
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                ap_error("read(fd %d) from the master failed: %s", bridge.fd, strerror(errno));
            stream_raise_cancelled(id);
            return AP_ERR;
        }
        last_read_ns = ap_now_ns();
        scan_cancels();
    }
}

static void handle_request(const ap_frame_hdr *h, const unsigned char *payload)
{
    PyObject *type, *token;
    PyObject *res = msg_call_handler(h, payload, held_count, &type, &token);
    if (res == NULL)
        return;
    hctx_leave(token);
    msg_reply_plain(h->id, res, type);
    Py_DECREF(res);
    Py_DECREF(type);
}

/* Handles every complete frame in the input buffer.  Returns AP_ERR when
 * the master went away while answers were being written. */
static int handle_frames(void)
{
    ap_frame_hdr h;
    const unsigned char *payload;
    uint64_t now;
    int r, seen = 0;
    for (;;) {
        /* Before anything that may start a request: a CANCEL that came
         * while the last handler ran must be seen first.  (payload points
         * into the buffer, so the read happens before the frame is taken.) */
        now = ap_now_ns();
        if (now - last_read_ns >= SYNC_HOLD_NS && bridge.in.off < bridge.in.len)
            look_ahead(now);
        if ((r = next_frame(&h, &payload, &seen)) != 1)
            break;
        switch (h.kind) {
        case AP_FRAME_REQUEST:
            if (AP_UNLIKELY(ncancelled > 0) && cancel_take(h.id)) {
                msg_reply_error(h.id, BRIDGE_CODE_CANCELLED, "cancelled by the master before it started", NULL);
                break;
            }
            if (pending_since && now - pending_since >= SYNC_HOLD_NS && flush_all() < 0)
                return AP_ERR;
            if (bridge.progress) /* for the master, should this process die */
                atomic_store_explicit(&bridge.progress->started, h.id, memory_order_relaxed);
            handle_request(&h, payload);
            if (bridge.progress)
                atomic_store_explicit(&bridge.progress->finished, h.id, memory_order_relaxed);
            break;
        case AP_FRAME_PING:
            msg_pong(h.id);
            break;
        case AP_FRAME_CANCEL:
            if (!cancel_take(h.id))
                ap_debug("CANCEL %llu: not held (running or answered already)", (unsigned long long)h.id);
            break;
        case AP_FRAME_CREDIT: /* applied when scan_cancels first saw it, else now */
            if (!seen)
                stream_credit(h.id, payload, h.len);
            break;
        case AP_FRAME_STOP:
            if (!bridge.stopping)
                ap_info("STOP received: finishing");
            bridge.stopping = 1;
            break;
        default:
            bridge_bad_frame(h.kind, h.len, h.id, 0);
        }
        if (wire_pending(&bridge.out)) {
            if (pending_since == 0)
                pending_since = ap_now_ns();
            if (wire_pending(&bridge.out) >= SYNC_FLUSH_BYTES && flush_all() < 0)
                return AP_ERR;
        }
    }
    if (r < 0)
        bridge_bad_frame(h.kind, h.len, h.id, 1);
    return AP_OK;
}

bridge_end sync_driver_run(void)
{
    int fl = fcntl(bridge.fd, F_GETFL);
    if (fl >= 0 && (fl & O_NONBLOCK))
        fcntl(bridge.fd, F_SETFL, fl & ~O_NONBLOCK);
    bridge.stream_sent = sync_stream_sent;
    bridge.stream_wait = sync_stream_wait;
    for (;;) {
        if (flush_all() < 0)
            return BRIDGE_END_EOF;
        if (bridge.stopping)
            return BRIDGE_END_STOP;
        /* The GIL is let go while waiting, so threads the agent started
         * (a background flusher, a client pool) run between messages. */
        ssize_t n;
        Py_BEGIN_ALLOW_THREADS
        n = wire_read(&bridge.in, bridge.fd);
        Py_END_ALLOW_THREADS
        if (n == 0)
            return BRIDGE_END_EOF;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ap_error("read(fd %d) from the master failed: %s", bridge.fd, strerror(errno));
            return BRIDGE_END_EOF;
        }
        last_read_ns = ap_now_ns();
        scan_cancels();
        if (handle_frames() < 0)
            return BRIDGE_END_EOF;
    }
}
