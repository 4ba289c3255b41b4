/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wire.h - the worker's side of the frame stream on fd 3.
 *
 * Reading: wire_read appends whatever the socket has to the input buffer
 * and wire_next hands out complete frames one by one, pointing into the
 * buffer (no copy).  Writing: frames are appended to the output buffer
 * (results are encoded in place between wire_begin and wire_end) and
 * wire_flush writes as much as the socket takes; the output buffer's
 * `off` is its write cursor.  Header layout and limits: ap_frame.h.
 * Nothing here touches Python.
 */
#ifndef BRIDGE_WIRE_H
#define BRIDGE_WIRE_H

#include "ap_frame.h"
#include "buf.h"

#include <stdint.h>
#include <sys/types.h>

/* Reads once from fd into in (compacting and growing it as needed).
 * Returns the bytes read, 0 at end of stream, or -1 with errno set
 * (EAGAIN/EINTR included; nothing changed). */
ssize_t wire_read(buf_t *in, int fd);
/* The same without waiting: -1 with EAGAIN when nothing is there. */
ssize_t wire_read_nowait(buf_t *in, int fd);

/* Takes the next complete frame off `in`.  Returns 1 and fills *h and
 * *payload (valid until the next wire_read), 0 when the frame is not all
 * there yet, or -1 when the header is corrupt (unknown kind, length above
 * AP_FRAME_MAX_PAYLOAD; *h holds what was seen, nothing consumed). */
int wire_next(buf_t *in, ap_frame_hdr *h, const unsigned char **payload);

/* Counts the complete frames of `kind` still waiting in `in`. */
size_t wire_count(const buf_t *in, unsigned kind);

/* Starts a frame whose payload will be appended next; returns its offset
 * for wire_end / wire_abort. */
size_t wire_begin(buf_t *out);
/* Finishes the frame begun at `at`: its payload is everything after the
 * header up to out->len. */
void wire_end(buf_t *out, size_t at, unsigned kind, uint16_t aux, uint64_t id);
/* Sets the flags of the frame begun at `at`. */
static inline void wire_set_flags(buf_t *out, size_t at, uint8_t flags)
{
    out->data[at + 5] = flags;
}
/* Forgets the frame begun at `at`. */
void wire_abort(buf_t *out, size_t at);
/* Appends a whole frame. */
void wire_put(buf_t *out, unsigned kind, uint64_t id, const void *payload, size_t len);

/* Writes pending output to fd until done or the socket is full.  Returns
 * AP_OK when everything is written, 1 when some is left (EAGAIN), or
 * AP_ERR with errno set (EPIPE when the master is gone). */
int wire_flush(buf_t *out, int fd);

/* Bytes of output not yet written. */
static inline size_t wire_pending(const buf_t *out)
{
    return out->len - out->off;
}

#endif
