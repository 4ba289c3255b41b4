/*
 * flush.c - one direct write per dirty connection per turn (see flush.h).
 *
 * State: two dirty lists (urgent = worker sockets, then clients) and one
 * event with no fd, made active when the first connection of a turn gets
 * dirty.  libevent runs an event activated during a turn after the ones
 * already active, so by then every answer of the batch is in the buffers.
 * A connection is in libevent's hands (EV_WRITE on) only between a short
 * write and the write callback that sees its output empty.
 */
#include "flush.h"
#include "ap_common.h"
#include "ap_log.h"

#include <errno.h>
#include <string.h>
#include <event2/event.h>

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

static void added_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    flushable *f = arg;
    (void)buf;
    if (info->n_added == 0 || f->dirty || (bufferevent_get_enabled(f->bev) & EV_WRITE))
        return;
    f->dirty = 1;
    link_add_tail(&flushing.dirty[f->urgent ? 0 : 1], &f->link);
    if (!flushing.scheduled) {
        flushing.scheduled = 1;
        event_active(flushing.ev, EV_WRITE, 0);
    }
}

void flush_attach(flushable *f, struct bufferevent *bev, int urgent, void (*wrote)(void *), void *arg)
{
    f->bev = bev;
    f->dirty = 0;
    f->urgent = urgent;
    f->wrote = wrote;
    f->arg = arg;
    link_init(&f->link);
    bufferevent_disable(bev, EV_WRITE);
    f->cb = evbuffer_add_cb(bufferevent_get_output(bev), added_cb, f);
}

void flush_detach(flushable *f)
{
    if (f->bev == NULL)
        return;
    if (f->dirty)
        link_del(&f->link);
    f->dirty = 0;
    if (f->cb)
        evbuffer_remove_cb_entry(bufferevent_get_output(f->bev), f->cb);
    f->cb = NULL;
    f->bev = NULL;
}

void flush_written(flushable *f)
{
    if (f->bev && evbuffer_get_length(bufferevent_get_output(f->bev)) == 0)
        bufferevent_disable(f->bev, EV_WRITE);
}

/* Writes f's output; what the socket does not take goes to libevent. */
static void flush_one(flushable *f)
{
    struct evbuffer *out = bufferevent_get_output(f->bev);
    int n = 0;
    /* A socket bufferevent keeps its output's start frozen except while
     * it writes itself: likewise here. */
    evbuffer_unfreeze(out, 1);
    while (evbuffer_get_length(out) > 0) {
        n = evbuffer_write(out, bufferevent_getfd(f->bev));
        if (n <= 0)
            break;
    }
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0) {
        /* The socket is full (EAGAIN) or failing: libevent's write event
         * goes on, and reports a real error through the event callback. */
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            ap_debug("flush: write(fd %d): %s; left to the write event", (int)bufferevent_getfd(f->bev),
                     strerror(errno));
        bufferevent_enable(f->bev, EV_WRITE);
    }
    if (f->wrote)
        f->wrote(f->arg);
}

void flush_all(void)
{
    flushing.scheduled = 0;
    for (int k = 0; k < 2; k++) {
        while (!link_empty(&flushing.dirty[k])) {
            flushable *f = queue_entry(flushing.dirty[k].next, flushable, link);
            link_del(&f->link);
            f->dirty = 0;
            flush_one(f);
        }
    }
}
