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
int queue_full(const queue *q);

#define queue_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

#endif
