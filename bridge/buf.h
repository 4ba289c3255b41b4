/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * buf.h - a growable byte buffer for the worker's frame I/O and JSON.
 *
 * The worker keeps two of these, one for bytes read from the master and
 * one for frames waiting to be written, and pyconv encodes results
 * straight into the output one.  Memory comes from ap_alloc (out of
 * memory aborts by policy), so growing never fails.  `off` is a read
 * cursor used by the input buffer: bytes before it are consumed.
 * Invariant: off <= len <= cap.
 */
#ifndef BRIDGE_BUF_H
#define BRIDGE_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct {
    unsigned char *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
    size_t off; /* consumed prefix (input side) */
} buf_t;

/* Makes an empty buffer with room for `cap` bytes. */
void buf_init(buf_t *b, size_t cap);
/* Releases the memory; the buffer is empty and unusable until buf_init. */
void buf_free(buf_t *b);
/* Grows (never shrinks) so that `extra` more bytes fit after len. */
void buf_grow(buf_t *b, size_t extra);
/* Drops the consumed prefix by moving the unread bytes to the front. */
void buf_compact(buf_t *b);
/* Gives memory back after a large frame: when the buffer is empty and its
 * capacity is above `keep`, it is reallocated to `keep` bytes. */
void buf_shrink(buf_t *b, size_t keep);

static inline void buf_reserve(buf_t *b, size_t extra)
{
    if (b->cap - b->len < extra)
        buf_grow(b, extra);
}

static inline void buf_append(buf_t *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void buf_putc(buf_t *b, unsigned char c)
{
    buf_reserve(b, 1);
    b->data[b->len++] = c;
}

#endif
