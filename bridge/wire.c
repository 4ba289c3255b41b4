/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wire.c - frame I/O on the worker's socketpair (see wire.h).
 *
 * Reads are large (at least WIRE_READ_CHUNK bytes of room) so a master
 * that pipelines many requests in one write is drained in one call, and
 * all frames produced meanwhile leave in one write.  A frame larger than
 * the buffer grows it to fit exactly that frame; buffers are shrunk back
 * once empty so one huge message does not pin memory for the worker's
 * life.
 */
#include "wire.h"

#include "ap_common.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#define WIRE_READ_CHUNK (256 * 1024)
#define WIRE_KEEP (1024 * 1024)

static ssize_t read_into(buf_t *in, int fd, int flags)
{
    if (in->off == in->len) {
        in->off = in->len = 0;
        buf_shrink(in, WIRE_KEEP);
    } else if (in->off > 0 && in->cap - in->len < WIRE_READ_CHUNK) {
        buf_compact(in);
    }
    buf_reserve(in, WIRE_READ_CHUNK);
    ssize_t n = recv(fd, in->data + in->len, in->cap - in->len, flags);
    if (n > 0)
        in->len += (size_t)n;
    return n;
}

ssize_t wire_read(buf_t *in, int fd)
{
    return read_into(in, fd, 0);
}

ssize_t wire_read_nowait(buf_t *in, int fd)
{
    return read_into(in, fd, MSG_DONTWAIT);
}

int wire_next(buf_t *in, ap_frame_hdr *h, const unsigned char **payload)
{
    size_t avail = in->len - in->off;
    if (avail < AP_FRAME_HDR_SIZE)
        return 0;
    if (ap_frame_decode(in->data + in->off, h) < 0)
        return -1;
    if (avail - AP_FRAME_HDR_SIZE < h->len) {
        /* make room for the whole frame so the next reads complete it */
        if (in->cap - in->off < AP_FRAME_HDR_SIZE + (size_t)h->len) {
            buf_compact(in);
            buf_reserve(in, AP_FRAME_HDR_SIZE + (size_t)h->len - in->len);
        }
        return 0;
    }
    *payload = in->data + in->off + AP_FRAME_HDR_SIZE;
    in->off += AP_FRAME_HDR_SIZE + (size_t)h->len;
    return 1;
}

size_t wire_count(const buf_t *in, unsigned kind)
{
    size_t n = 0, at = in->off;
    ap_frame_hdr h;
    while (in->len - at >= AP_FRAME_HDR_SIZE) {
        if (ap_frame_decode(in->data + at, &h) < 0 || in->len - at - AP_FRAME_HDR_SIZE < h.len)
            break;
        if (h.kind == kind)
            n++;
        at += AP_FRAME_HDR_SIZE + (size_t)h.len;
    }
    return n;
}

size_t wire_begin(buf_t *out)
{
    size_t at = out->len;
    buf_reserve(out, AP_FRAME_HDR_SIZE);
    out->len += AP_FRAME_HDR_SIZE;
    return at;
}

void wire_end(buf_t *out, size_t at, unsigned kind, uint16_t aux, uint64_t id)
{
    ap_frame_hdr h = {(uint32_t)(out->len - at - AP_FRAME_HDR_SIZE), (uint8_t)kind, 0, aux, id};
    ap_frame_encode(out->data + at, &h);
}

void wire_abort(buf_t *out, size_t at)
{
    out->len = at;
}

void wire_put(buf_t *out, unsigned kind, uint64_t id, const void *payload, size_t len)
{
    size_t at = wire_begin(out);
    if (len)
        buf_append(out, payload, len);
    wire_end(out, at, kind, 0, id);
}

int wire_flush(buf_t *out, int fd)
{
    while (out->off < out->len) {
        ssize_t n = write(fd, out->data + out->off, out->len - out->off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            return AP_ERR;
        }
        out->off += (size_t)n;
    }
    out->off = out->len = 0;
    buf_shrink(out, WIRE_KEEP);
    return AP_OK;
}
