/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dlqheld.c - dead letters waiting in memory for the file (see
 * dlqheld.h).
 *
 * Owns one FIFO of deep copies of dlq_entry (the strings and the
 * failures copied, so the message they came from may be freed), with
 * its record and byte counts.  Each record names its owner (the pool
 * whose file it is for): the bounds hold for all pools together, the
 * order is kept within each owner.  Invariants: never more than
 * DLQHELD_MAX_RECORDS records nor DLQHELD_MAX_BYTES bytes held; a record
 * leaves only when dlq_append wrote it or at exit; order is kept, so
 * dlqIds follow the order the messages failed in.
 */
#include "dlqheld.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"

#include <string.h>

typedef struct held {
    struct held *next;
    const void *owner;
    dlq_entry e;
    dlq_failure *fails;
    size_t bytes;
} held;

static struct {
    held *head, *tail;
    uint64_t n;
    size_t bytes;
    uint64_t dropped;
} dlqheld;

static char *copy(const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *p = ap_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void held_free(held *h)
{
    for (size_t i = 0; i < h->e.nfailures; i++) {
        ap_free((char *)h->fails[i].worker);
        ap_free((char *)h->fails[i].reason);
    }
    ap_free(h->fails);
    ap_free((char *)h->e.id);
    ap_free((char *)h->e.type);
    ap_free((char *)h->e.data);
    ap_free((char *)h->e.checkpoint);
    ap_free(h);
}

int dlqheld_keep(const void *owner, const dlq_entry *e)
{
    size_t bytes = sizeof(held) + e->id_len + e->type_len + e->data_len + e->checkpoint_len;
    for (size_t i = 0; i < e->nfailures; i++)
        bytes += sizeof(dlq_failure) + (e->failures[i].worker ? strlen(e->failures[i].worker) : 0) +
                 (e->failures[i].reason ? strlen(e->failures[i].reason) : 0);
    if (dlqheld.n >= DLQHELD_MAX_RECORDS || dlqheld.bytes + bytes > DLQHELD_MAX_BYTES) {
        dlqheld.dropped++;
        return AP_ERR;
    }
    held *h = ap_calloc(1, sizeof(*h));
    h->owner = owner;
    h->e = *e;
    h->e.id = copy(e->id, e->id_len);
    h->e.type = copy(e->type, e->type_len);
    h->e.data = copy(e->data, e->data_len);
    h->e.checkpoint = e->checkpoint_len ? copy(e->checkpoint, e->checkpoint_len) : NULL;
    h->e.wall_ms = e->wall_ms ? e->wall_ms : ap_wall_ms(); /* when it failed, not when it was written */
    h->fails = e->nfailures ? ap_calloc(e->nfailures, sizeof(dlq_failure)) : NULL;
    for (size_t i = 0; i < e->nfailures; i++) {
        h->fails[i] = e->failures[i];
        h->fails[i].worker = e->failures[i].worker ? ap_strdup(e->failures[i].worker) : NULL;
        h->fails[i].reason = e->failures[i].reason ? ap_strdup(e->failures[i].reason) : NULL;
    }
    h->e.failures = h->fails;
    h->bytes = bytes;
    if (dlqheld.tail)
        dlqheld.tail->next = h;
    else
        dlqheld.head = h;
    dlqheld.tail = h;
    dlqheld.n++;
    dlqheld.bytes += bytes;
    return AP_OK;
}

/* Unlinks h (whose predecessor is prev, NULL for the head) and frees it. */
static void held_remove(held *prev, held *h)
{
    if (prev)
        prev->next = h->next;
    else
        dlqheld.head = h->next;
    if (dlqheld.tail == h)
        dlqheld.tail = prev;
    dlqheld.n--;
    dlqheld.bytes -= h->bytes;
    held_free(h);
}

unsigned dlqheld_flush(const void *owner, dlq *d, char *err, size_t errlen)
{
    unsigned written = 0;
    held *prev = NULL, *h = dlqheld.head;
    while (d && h) {
        held *next = h->next;
        if (h->owner != owner) {
            prev = h;
        } else if (dlq_append(d, &h->e, NULL, err, errlen) != AP_OK) {
            break;
        } else {
            held_remove(prev, h);
            written++;
        }
        h = next;
    }
    return written;
}

uint64_t dlqheld_count(const void *owner)
{
    if (owner == NULL)
        return dlqheld.n;
    uint64_t n = 0;
    for (const held *h = dlqheld.head; h; h = h->next)
        n += h->owner == owner;
    return n;
}

uint64_t dlqheld_dropped(void)
{
    return dlqheld.dropped;
}

void dlqheld_free(const void *owner, const char *whose)
{
    uint64_t n = dlqheld_count(owner);
    if (n)
        ap_error("%s: %llu dead letter%s the file never took: they are lost (see the ERROR lines above)", whose,
                 (unsigned long long)n, n == 1 ? "" : "s");
    held *prev = NULL, *h = dlqheld.head;
    while (h) {
        held *next = h->next;
        if (h->owner == owner)
            held_remove(prev, h);
        else
            prev = h;
        h = next;
    }
}
