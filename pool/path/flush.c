/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * flush.c - one direct write per dirty connection per turn (see flush.h).
 *
 * State: two dirty lists (urgent = worker sockets, then clients) and one
 * event with no fd, made active when the first connection of a turn gets
 * dirty.  libevent runs an event activated during a turn after the ones
 * already active, so by then every answer of the batch is in the buffers.
 * A connection's write event is on only between a short write and the
 * write that empties its output; while it is on, flush_mark leaves the
 * connection to it.
 */
#include "flush.h"
#include "ap_common.h"
#include "ap_log.h"
#include "server.h"

#include <errno.h>
#include <string.h>

static struct {
    struct event *ev;
    int scheduled;
    queue_link dirty[2]; /* [0] urgent, [1] the rest */
} flushing;

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    flush_all();
}

int flush_init(struct event_base *base)
{
    link_init(&flushing.dirty[0]);
    link_init(&flushing.dirty[1]);
    flushing.scheduled = 0;
    flushing.ev = event_new(base, -1, 0, flush_cb, NULL);
    if (flushing.ev == NULL) {
        ap_error("flush: event_new failed");
        return AP_ERR;
    }
    return AP_OK;
}

void flush_free(void)
{
    if (flushing.ev)
        event_free(flushing.ev);
    flushing.ev = NULL;
}

/* Writes until the output is empty or the socket full.  Returns 0, or
 * the errno of a failed write. */
static int write_out(flushable *f)
{
    while (evbuffer_get_length(f->out) > 0) {
        int n = evbuffer_write(f->out, f->fd);
        if (n > 0) {
            f->written += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return errno ? errno : EIO;
        break;
    }
    return 0;
}

/* After a write: the write event on while output is left, off once it
 * is empty; the owner told.  Returns 0, or 1 when f's owner may be gone
 * (a failed write). */
static int after_write(flushable *f, int err)
{
    if (err) {
        f->broken = 1;
        if (f->waiting)
            event_del(f->wev);
        f->waiting = 0;
        if (f->failed)
            f->failed(f->arg, err);
        return 1;
    }
    int left = evbuffer_get_length(f->out) > 0;
    if (left != f->waiting) {
        if (left ? event_add(f->wev, NULL) : event_del(f->wev))
            ap_error("flush: event_%s of a write event failed (fd %d)", left ? "add" : "del", f->fd);
        else
            f->waiting = left;
    }
    if (f->wrote)
        f->wrote(f->arg);
    return 0;
}

/* The socket can take more. */
static void writable_cb(evutil_socket_t fd, short what, void *arg)
{
    flushable *f = arg;
    (void)fd;
    (void)what;
    after_write(f, f->broken ? 0 : write_out(f));
}

int flush_open(flushable *f, int fd, int urgent, void (*wrote)(void *), void (*failed)(void *, int), void *arg)
{
    memset(f, 0, sizeof(*f));
    f->fd = fd;
    f->urgent = urgent;
    f->wrote = wrote;
    f->failed = failed;
    f->arg = arg;
    link_init(&f->link);
    f->out = evbuffer_new();
    f->wev = event_new(server.base, fd, EV_WRITE | EV_PERSIST, writable_cb, f);
    if (f->out == NULL || f->wev == NULL) {
        ap_error("flush: evbuffer_new or event_new failed (fd %d)", fd);
        flush_close(f);
        return AP_ERR;
    }
    return AP_OK;
}

int flush_open_sink(flushable *f, size_t (*sink)(void *, struct evbuffer *), void *sink_arg, void (*wrote)(void *),
                    void *arg)
{
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->sink = sink;
    f->sink_arg = sink_arg;
    f->wrote = wrote;
    f->arg = arg;
    link_init(&f->link);
    f->out = evbuffer_new();
    if (f->out == NULL) {
        ap_error("flush: evbuffer_new failed (a sink)");
        return AP_ERR;
    }
    return AP_OK;
}

void flush_close(flushable *f)
{
    if (f->dirty)
        link_del(&f->link);
    f->dirty = 0;
    if (f->wev)
        event_free(f->wev);
    f->wev = NULL;
    f->waiting = 0;
    if (f->out)
        evbuffer_free(f->out);
    f->out = NULL;
}

void flush_mark(flushable *f)
{
    if (f->dirty || f->waiting || f->broken || f->out == NULL)
        return;
    f->dirty = 1;
    link_add_tail(&flushing.dirty[f->urgent ? 0 : 1], &f->link);
    if (!flushing.scheduled) {
        flushing.scheduled = 1;
        event_active(flushing.ev, EV_WRITE, 0);
    }
}

size_t flush_pending(const flushable *f)
{
    return f->out ? evbuffer_get_length(f->out) : 0;
}

void flush_all(void)
{
    flushing.scheduled = 0;
    for (int k = 0; k < 2; k++) {
        while (!link_empty(&flushing.dirty[k])) {
            flushable *f = queue_entry(flushing.dirty[k].next, flushable, link);
            link_del(&f->link);
            f->dirty = 0;
            if (f->sink) {
                f->written += f->sink(f->sink_arg, f->out);
                if (f->wrote)
                    f->wrote(f->arg);
                continue;
            }
            after_write(f, write_out(f));
        }
    }
}
