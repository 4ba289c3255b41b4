/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * queue.h - the pool's one bounded FIFO of messages waiting for a slot.
 *
 * Intrusive: a message carries its own link (queue_link), so pushing and
 * removing never allocate, and a message whose client leaves can be taken
 * out of the middle in O(1).  The bound is checked by queue_push(); the
 * caller decides what overflow means (block or reject).  Pure data
 * structure: no libevent, no clients, no logging.
 */
#ifndef AP_QUEUE_H
#define AP_QUEUE_H

#include <stddef.h>
#include <stdint.h>

typedef struct queue_link {
    struct queue_link *next, *prev;
} queue_link;

typedef struct {
    queue_link head;        /* sentinel: head.next is the oldest */
    size_t depth;
    size_t held;            /* entries kept elsewhere that count against capacity (a session's FIFO: queue_hold) */
    size_t capacity;
    size_t high_watermark;  /* deepest the queue has been */
    uint64_t rejected;      /* pushes refused because the queue was full */
    uint64_t pushed;
} queue;

void queue_init(queue *q, size_t capacity);
/* Appends l (not on any queue) at the tail.  AP_ERR when the queue holds
 * `capacity` messages already: nothing changes except the rejected count
 * when count_reject is set. */
int queue_push(queue *q, queue_link *l, int count_reject);
/* Removes and returns the oldest link, NULL when empty. */
queue_link *queue_pop(queue *q);
/* Oldest link without removing it, NULL when empty. */
queue_link *queue_peek(const queue *q);
/* Unlinks l, which must be on q. */
void queue_remove(queue *q, queue_link *l);
/* Whether depth + held reached capacity. */
int queue_full(const queue *q);
/* Counts one entry kept outside the list (a message waiting in its
 * session's FIFO) against the bound.  AP_ERR when full: nothing changes
 * except the rejected count when count_reject is set. */
int queue_hold(queue *q, int count_reject);
/* Gives back what queue_hold counted. */
void queue_unhold(queue *q);

/* Puts l at the head, ahead of everything queued, whatever the bound: for
 * a message that was accepted before and must not be refused now (a
 * retry).  Counted in depth like any other. */
void queue_push_front(queue *q, queue_link *l);

#define queue_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* Plain circular lists over the same link, for lists without a bound
 * (a connection's messages, a worker's running messages). */
static inline void link_init(queue_link *h) { h->next = h->prev = h; }
static inline int link_empty(const queue_link *h) { return h->next == h; }
static inline void link_add_tail(queue_link *h, queue_link *l)
{
    l->prev = h->prev;
    l->next = h;
    h->prev->next = l;
    h->prev = l;
}
static inline void link_del(queue_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = NULL;
}

#endif
