/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore_be.h - what a session store backend implements and may use
 * (sstore.c is the front, sstore_sqlite.c and sstore_redis.c the
 * backends).  Not for the rest of the master: it sees sstore.h only.
 *
 * An operation is allocated by the front with a copy of its key and of
 * its value (or, from sstore_put_ref, a pointer to the caller's, alive
 * until the op completes) and handed to the backend's submit; from then on the backend
 * owns it until it calls sstore_complete (on the loop thread, never
 * from inside submit: sstore_complete_soon defers).  Cancelling only
 * marks it: the backend still completes it, and the front then frees
 * it without calling back.
 */
#ifndef AP_SSTORE_BE_H
#define AP_SSTORE_BE_H

#include "sstore.h"
#include "queue.h"

#include <event2/event.h>

typedef enum { SSTORE_GET = 0, SSTORE_PUT, SSTORE_TOUCH, SSTORE_DEL, SSTORE_LIST, SSTORE_OP_KINDS } sstore_kind;

struct sstore_op {
    sstore *s;
    sstore_kind kind;
    uint8_t cancelled;
    sstore_done_fn fn;
    void *arg;
    queue_link link;        /* the backend's, while it holds the op; the front's soon list after */
    unsigned limit;         /* list */
    size_t key_len;         /* key, or list's `after` */
    size_t val_len;         /* put */
    uint64_t hint;          /* put: sstore_put_ref's hint (0: none) */
    sstore_result res;      /* filled by the backend for sstore_complete_soon */
    void *be;               /* the backend's own per-op data (freed by it before completing) */
    char why[256];          /* res.why points here when the backend wrote a reason */
    const char *val;        /* put: inside this allocation, after key, or the caller's (sstore_put_ref) */
    char key[];             /* NUL-terminated */
};

typedef struct {
    const char *name;
    /* rest: the spec after the scheme ("PATH", "HOST:PORT/DB").  Sets
     * s->be_data.  AP_ERR with err filled (see sstore_open). */
    int (*start)(sstore *s, const char *rest, int wait_ready, char *err, size_t errlen);
    /* Takes op (see above). */
    void (*submit)(sstore *s, sstore_op *op);
    /* Completes every op it holds (sstore_complete, or sstore_complete_soon:
     * the front calls those back after stop), frees s->be_data. */
    void (*stop)(sstore *s);
    void (*set_ttl)(sstore *s);
    /* s->sync changed; NULL: the backend has no such choice */
    void (*set_sync)(sstore *s);
} sstore_backend;

struct sstore {
    const sstore_backend *be;
    void *be_data;
    struct event_base *base;
    uint64_t ttl_ms;
    sstore_sync sync;
    sstore_stats st;         /* the backend keeps up, transactions, transaction_writes, expired */
    queue_link soon;         /* ops completed by sstore_complete_soon, for the next loop turn */
    struct event *soon_ev;
    char pool[];
};

/* Runs op's callback with r (unless cancelled), counts, frees op.  On the
 * loop thread only. */
void sstore_complete(sstore_op *op, const sstore_result *r);
/* Completes op with op->res on the next loop turn (for a backend that
 * knows the outcome inside submit: a store that is down). */
void sstore_complete_soon(sstore_op *op);
/* Fills op->res as UNAVAILABLE with why (copied into op->why) and
 * completes it soon. */
void sstore_fail_soon(sstore_op *op, const char *why);

extern const sstore_backend sstore_sqlite_backend;
extern const sstore_backend sstore_redis_backend;

#endif
