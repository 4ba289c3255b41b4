/*
 * flush.h - writing connections' output once per turn of the event loop.
 *
 * A bufferevent writes only when its socket reports writable: each answer
 * costs an epoll_ctl to start watching for that, a turn of the loop, and
 * an epoll_ctl to stop.  An attached bufferevent instead keeps EV_WRITE
 * off; whatever is added to its output marks it dirty, and after every
 * callback active in this turn has run (all answers of a batch are in),
 * one pass writes each dirty connection's output straight to its socket:
 * workers first, so they start sooner, then clients.  Only what the socket
 * does not take (or an error) hands the connection back to libevent's
 * write event until it has drained.
 */
#ifndef AP_FLUSH_H
#define AP_FLUSH_H

#include "queue.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>

typedef struct flushable {
    struct bufferevent *bev;
    struct evbuffer_cb_entry *cb;
    queue_link link;            /* in a dirty list while dirty */
    int dirty;
    int urgent;                 /* flushed before the others (workers) */
    void (*wrote)(void *arg);   /* after a direct write that took bytes */
    void *arg;
} flushable;

/* Creates the per-turn flush event on base. */
int flush_init(struct event_base *base);
void flush_free(void);

/* Starts managing bev's writes (EV_WRITE is turned off here).  `wrote`
 * (may be NULL) runs after a direct write, as a write callback would. */
void flush_attach(flushable *f, struct bufferevent *bev, int urgent, void (*wrote)(void *), void *arg);
/* Before bev is freed: forgets it (pending output is not written). */
void flush_detach(flushable *f);
/* From bev's write callback: libevent wrote; once the output is empty
 * the connection goes back to direct writes. */
void flush_written(flushable *f);

/* Writes every dirty connection now (also run by the event). */
void flush_all(void);

#endif
