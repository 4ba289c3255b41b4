/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rev.c - hiredis's event hooks on libevent with a persistent read event
 * and end-of-turn writes (see rev.h).
 *
 * State per context: `reading` (the read event is added), `writing` (the
 * write event is added: a write that did not take everything, or the
 * connect in progress) and `flush_due` (the end-of-turn write is
 * activated).  hiredis calls add_write for every command; the first one
 * of a turn activates the flush, which writes what hiredis buffered with
 * redisBufferWrite (which never frees anything) and falls back to the
 * write event when the socket did not take it all or the write failed
 * (the write event's handler, hiredis's, then reports the error).
 */
#include "rev.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <event2/event.h>

typedef struct {
    redisAsyncContext *ac;
    struct event *rev, *wev, *fev;
    int reading, writing, flush_due;
} rev_conn;

static void rev_read_cb(evutil_socket_t fd, short what, void *arg)
{
    rev_conn *e = arg;
    (void)fd;
    (void)what;
    redisAsyncHandleRead(e->ac); /* may free e */
}

static void rev_write_cb(evutil_socket_t fd, short what, void *arg)
{
    rev_conn *e = arg;
    (void)fd;
    (void)what;
    redisAsyncHandleWrite(e->ac); /* may free e */
}

/* Adds the write event (hiredis's handler takes it from there). */
static void rev_want_writable(rev_conn *e)
{
    if (!e->writing && event_add(e->wev, NULL) == 0)
        e->writing = 1;
}

static void rev_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    rev_conn *e = arg;
    (void)fd;
    (void)what;
    e->flush_due = 0;
    if (e->writing)
        return; /* the write event has it */
    int done = 0;
    if (redisBufferWrite(&e->ac->c, &done) == REDIS_ERR || !done)
        rev_want_writable(e);
}

static void rev_add_read(void *privdata)
{
    rev_conn *e = privdata;
    if (!e->reading && event_add(e->rev, NULL) == 0)
        e->reading = 1;
}

static void rev_del_read(void *privdata)
{
    rev_conn *e = privdata;
    if (e->reading) {
        event_del(e->rev);
        e->reading = 0;
    }
}

static void rev_add_write(void *privdata)
{
    rev_conn *e = privdata;
    if (e->writing || e->flush_due)
        return;
    if (!(e->ac->c.flags & REDIS_CONNECTED)) {
        rev_want_writable(e); /* the connect's completion comes as "writable" */
        return;
    }
    e->flush_due = 1;
    event_active(e->fev, 0, 0);
}

static void rev_del_write(void *privdata)
{
    rev_conn *e = privdata;
    if (e->writing) {
        event_del(e->wev);
        e->writing = 0;
    }
}

static void rev_cleanup(void *privdata)
{
    rev_conn *e = privdata;
    event_free(e->rev);
    event_free(e->wev);
    event_free(e->fev);
    ap_free(e);
}

int rev_attach(redisAsyncContext *ac, struct event_base *base)
{
    if (ac->ev.data != NULL)
        return AP_ERR;
    rev_conn *e = ap_calloc(1, sizeof(*e));
    e->ac = ac;
    e->rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, rev_read_cb, e);
    e->wev = event_new(base, ac->c.fd, EV_WRITE | EV_PERSIST, rev_write_cb, e);
    e->fev = event_new(base, -1, 0, rev_flush_cb, e);
    if (e->rev == NULL || e->wev == NULL || e->fev == NULL) {
        if (e->rev)
            event_free(e->rev);
        if (e->wev)
            event_free(e->wev);
        if (e->fev)
            event_free(e->fev);
        ap_free(e);
        return AP_ERR;
    }
    ac->ev.addRead = rev_add_read;
    ac->ev.delRead = rev_del_read;
    ac->ev.addWrite = rev_add_write;
    ac->ev.delWrite = rev_del_write;
    ac->ev.cleanup = rev_cleanup;
    ac->ev.data = e;
    rev_add_read(e);
    rev_want_writable(e); /* the connect in progress */
    return AP_OK;
}
