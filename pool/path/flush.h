/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * flush.h - a connection's output, written once per turn of the event loop.
 *
 * A flushable owns a socket's output: an evbuffer its owner writes into
 * (then calls flush_mark), and a write event that is on only while the
 * socket is full.  Marked connections are written after every callback
 * active in this turn has run (all answers of a batch are in): one
 * writev per connection, workers first, so they start sooner, then
 * clients.  What the socket does not take waits for the write event,
 * which writes as the socket drains and turns itself off once the output
 * is empty.  No bufferevent: its evbuffer callbacks (run on every add and
 * drain) and its FIONREAD cost more than the writing.
 * A failed write (not EAGAIN) calls the owner's `failed`, once; the
 * flushable then writes no more (its output is kept, unsent, until
 * flush_close).  Never blocks; never closes the socket.
 *
 * A flushable may have a sink instead of a socket (flush_open_sink): the
 * output of a client that is not a socket (an HTTP exchange, httpx.c).
 * At the same point of the turn the sink is called; it takes what it can
 * pass on out of f->out and says how much, which counts as written (the
 * owner's `wrote` follows, as after a socket write).  A sink that cannot
 * take more now (its own peer is slow) leaves the rest and calls
 * flush_mark again when it can.
 */
#ifndef AP_FLUSH_H
#define AP_FLUSH_H

#include "queue.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdint.h>

typedef struct flushable {
    struct evbuffer *out;       /* NULL: not open */
    struct event *wev;          /* EV_WRITE on fd, added only while the socket is full */
    int fd;
    queue_link link;            /* in a dirty list while dirty */
    int dirty;
    int waiting;                /* wev is added */
    int broken;                 /* a write failed: no more writes */
    int urgent;                 /* flushed before the others (workers) */
    uint64_t written;           /* bytes the socket took since open: a byte added to out when
                                 * written + pending == P is taken once written >= P + 1 */
    size_t (*sink)(void *sink_arg, struct evbuffer *out); /* not a socket: takes bytes from out, returns how many */
    void *sink_arg;
    void (*wrote)(void *arg);   /* after each attempt to write (may be NULL) */
    void (*failed)(void *arg, int err); /* a write failed with errno err (may free the owner) */
    void *arg;
} flushable;

/* Creates the per-turn flush event on base. */
int flush_init(struct event_base *base);
void flush_free(void);

/* Opens f on fd (not owned: the caller closes it after flush_close).
 * Returns AP_ERR, logged, with nothing left to free, when it cannot. */
int flush_open(flushable *f, int fd, int urgent, void (*wrote)(void *), void (*failed)(void *, int), void *arg);
/* Opens f with a sink instead of a socket (fd -1, no write event).
 * Returns AP_ERR, logged, when it cannot. */
int flush_open_sink(flushable *f, size_t (*sink)(void *, struct evbuffer *), void *sink_arg, void (*wrote)(void *),
                    void *arg);
/* Frees f (pending output is not written); nothing if not open. */
void flush_close(flushable *f);
/* Bytes were added to f->out: written at the end of this turn. */
void flush_mark(flushable *f);
/* Bytes not yet taken by the socket. */
size_t flush_pending(const flushable *f);

/* Writes every dirty connection now (also run by the event). */
void flush_all(void);

#endif
