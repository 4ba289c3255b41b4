/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * linein.c - a connection's input, cut into lines (see linein.h).
 *
 * Invariant: between callbacks, data is own (or NULL when nothing is
 * pending); the scratch holds bytes only inside the callback that read
 * them, until linein_keep.  Reads never exceed the caller's room, so the
 * caller's bound on buffered input holds.
 */
#include "linein.h"
#include "ap_alloc.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* One read takes at most this much; the socket's rest waits for the
 * next turn (the event is level-triggered). */
#define LINEIN_SCRATCH (64u * 1024)
/* The smallest own buffer (a partial line is usually short). */
#define LINEIN_OWN_MIN 4096u

static char scratch[LINEIN_SCRATCH];

void linein_init(linein *in)
{
    memset(in, 0, sizeof(*in));
}

size_t linein_pending(const linein *in)
{
    return in->len - in->off;
}

/* Room for at least want more bytes after the pending ones in own. */
static void own_reserve(linein *in, size_t want)
{
    size_t pending = linein_pending(in);
    if (in->off > 0) {
        memmove(in->own, in->own + in->off, pending);
        in->off = 0;
        in->len = pending;
    }
    if (in->cap - pending >= want)
        return;
    size_t cap = in->cap ? in->cap : LINEIN_OWN_MIN;
    while (cap - pending < want)
        cap *= 2;
    in->own = ap_realloc(in->own, cap);
    in->cap = cap;
    in->data = in->own;
}

ssize_t linein_read(linein *in, int fd, size_t room)
{
    if (room > LINEIN_SCRATCH)
        room = LINEIN_SCRATCH;
    if (linein_pending(in) == 0) {
        ssize_t n = read(fd, scratch, room);
        if (n > 0) {
            in->data = scratch;
            in->off = 0;
            in->len = (size_t)n;
            in->scanned = 0;
        }
        return n;
    }
    if (in->data == scratch)
        linein_keep(in); /* read again in the same callback: what is pending moves first */
    /* Leftovers: read after them, in this connection's own buffer. */
    size_t want = room < LINEIN_OWN_MIN ? room : LINEIN_OWN_MIN;
    own_reserve(in, want);
    size_t space = in->cap - in->len;
    ssize_t n = read(fd, in->own + in->len, space < room ? space : room);
    if (n > 0)
        in->len += (size_t)n;
    return n;
}

int linein_line(linein *in, const char **line, size_t *len)
{
    size_t pending = linein_pending(in);
    if (in->scanned >= pending)
        return 0;
    const char *start = in->data + in->off;
    const char *eol = memchr(start + in->scanned, '\n', pending - in->scanned);
    if (eol == NULL) {
        in->scanned = pending;
        return 0;
    }
    *line = start;
    *len = (size_t)(eol - start);
    return 1;
}

void linein_consume(linein *in, size_t n)
{
    in->off += n;
    in->scanned = in->scanned > n ? in->scanned - n : 0;
    if (in->off == in->len)
        in->off = in->len = in->scanned = 0;
}

void linein_keep(linein *in)
{
    size_t pending = linein_pending(in);
    if (pending == 0) {
        ap_free(in->own);
        in->own = in->data = NULL;
        in->cap = 0;
        in->off = in->len = in->scanned = 0;
        return;
    }
    if (in->data != scratch)
        return;
    const char *from = scratch + in->off;
    in->data = in->own;
    in->off = in->len = 0;
    if (in->cap < pending) {
        size_t cap = LINEIN_OWN_MIN;
        while (cap < pending)
            cap *= 2;
        ap_free(in->own);
        in->own = ap_malloc(cap);
        in->cap = cap;
    }
    in->data = in->own;
    memcpy(in->own, from, pending);
    in->len = pending;
}

int linein_end(linein *in)
{
    size_t pending = linein_pending(in);
    if (pending == 0 || in->data[in->len - 1] == '\n')
        return 0;
    if (in->data == scratch)
        linein_keep(in);
    own_reserve(in, 1);
    in->own[in->len++] = '\n';
    return 1;
}

void linein_free(linein *in)
{
    ap_free(in->own);
    linein_init(in);
}
