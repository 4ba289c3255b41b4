/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * queue.c - bounded intrusive FIFO (see queue.h).
 * Invariant: depth equals the number of links between head.next and
 * head.prev, and never exceeds capacity.
 */
#include "queue.h"
#include "ap_common.h"

#include <assert.h>

void queue_init(queue *q, size_t capacity)
{
    q->head.next = q->head.prev = &q->head;
    q->depth = 0;
    q->held = 0;
    q->capacity = capacity;
    q->high_watermark = 0;
    q->rejected = 0;
    q->pushed = 0;
}

int queue_full(const queue *q)
{
    return q->depth + q->held >= q->capacity;
}

int queue_hold(queue *q, int count_reject)
{
    if (queue_full(q)) {
        if (count_reject)
            q->rejected++;
        return AP_ERR;
    }
    q->held++;
    return AP_OK;
}

void queue_unhold(queue *q)
{
    if (q->held > 0)
        q->held--;
}

int queue_push(queue *q, queue_link *l, int count_reject)
{
    if (queue_full(q)) {
        if (count_reject)
            q->rejected++;
        return AP_ERR;
    }
    l->prev = q->head.prev;
    l->next = &q->head;
    q->head.prev->next = l;
    q->head.prev = l;
    q->depth++;
    q->pushed++;
    if (q->depth > q->high_watermark)
        q->high_watermark = q->depth;
    return AP_OK;
}

void queue_push_front(queue *q, queue_link *l)
{
    l->next = q->head.next;
    l->prev = &q->head;
    q->head.next->prev = l;
    q->head.next = l;
    q->depth++;
    q->pushed++;
    if (q->depth > q->high_watermark)
        q->high_watermark = q->depth;
}

queue_link *queue_peek(const queue *q)
{
    return q->depth ? q->head.next : NULL;
}

void queue_remove(queue *q, queue_link *l)
{
    assert(q->depth > 0);
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = NULL;
    q->depth--;
}

queue_link *queue_pop(queue *q)
{
    queue_link *l = queue_peek(q);
    if (l)
        queue_remove(q, l);
    return l;
}
