/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * buf.c - the growable byte buffer (see buf.h).
 *
 * Growth doubles the capacity so appending n bytes one piece at a time
 * costs O(n) copies.  No function here fails: allocation failure aborts
 * inside ap_alloc, which is the project's out-of-memory policy.
 */
#include "buf.h"

#include "ap_alloc.h"

void buf_init(buf_t *b, size_t cap)
{
    b->data = ap_malloc(cap);
    b->len = 0;
    b->cap = cap;
    b->off = 0;
}

void buf_free(buf_t *b)
{
    ap_free(b->data);
    b->data = NULL;
    b->len = b->cap = b->off = 0;
}

void buf_grow(buf_t *b, size_t extra)
{
    size_t need = b->len + extra;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    b->data = ap_realloc(b->data, cap);
    b->cap = cap;
}

void buf_compact(buf_t *b)
{
    if (b->off == 0)
        return;
    size_t rest = b->len - b->off;
    if (rest)
        memmove(b->data, b->data + b->off, rest);
    b->len = rest;
    b->off = 0;
}

void buf_shrink(buf_t *b, size_t keep)
{
    if (b->len == b->off && b->cap > keep) {
        b->data = ap_realloc(b->data, keep);
        b->cap = keep;
        b->len = b->off = 0;
    }
}
