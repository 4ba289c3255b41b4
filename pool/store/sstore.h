/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore.h - the session store: where a pool's session states live so
 * they survive a worker's death, a recycle, a reload and a restart of
 * agentpoold (docs/sessions.md).
 *
 * One interface, two backends chosen by the pool's sessionStore:
 *   "sqlite:PATH"          sstore_sqlite.c: an embedded SQLite database
 *                          (WAL) on a store thread of its own, with group
 *                          commit: every write queued while a transaction
 *                          runs goes into the next one;
 *   "redis://HOST:PORT/DB" sstore_redis.c: hiredis through its libevent
 *                          adapter, non-blocking in the loop;
 * and "none" (no store: no session state).  The event loop never waits
 * on either.
 *
 * Every operation is asynchronous: it returns a handle at once and its
 * callback runs later on the loop thread (never from inside the call
 * that started it), exactly once, unless the handle was cancelled
 * first (sstore_cancel: then never).  Operations on one key complete in
 * the order they were started.  A store that is down or failing
 * completes operations SSTORE_UNAVAILABLE with a reason; it is retried
 * in the background and operations succeed again once it is back.
 *
 * Keys are the session keys of one pool (1 to 256 bytes, any bytes but
 * NUL): the backend keeps pools apart (a column, a key prefix).  Values
 * are the session states, JSON object texts, stored as given.  Each
 * state is kept sessionTtl after it was last written or touched; the
 * backend deletes expired ones itself (a periodic sweep on the store
 * thread; Redis expiry), never on the loop.
 */
#ifndef AP_SSTORE_H
#define AP_SSTORE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef enum {
    SSTORE_OK = 0,
    SSTORE_MISSING,     /* get: no state under that key (new, deleted or expired) */
    SSTORE_UNAVAILABLE, /* the store could not do it now: r->why says why */
} sstore_status;

/* One session in a listing. */
typedef struct {
    const char *key;
    size_t key_len;
    uint64_t updated_ms; /* wall clock (ms since the epoch) of its last write or touch */
    size_t bytes;        /* its state's length */
} sstore_entry;

/* What an operation's callback gets; everything in it lives only for
 * the callback's duration. */
typedef struct {
    sstore_status status;
    const char *val;              /* get, OK: the state */
    size_t len;
    uint64_t updated_ms;          /* get, OK: as in sstore_entry */
    uint64_t hint;                /* get and put, OK: where the backend keeps the key's state (SQLite: its
                                   * rowid), for the next sstore_put_ref of the key; 0: nothing to say */
    const char *why;              /* UNAVAILABLE: what failed ("database is locked", "Connection refused") */
    const sstore_entry *entries;  /* list, OK: keys after `after`, in key order */
    size_t nentries;
    int more;                     /* list: more keys follow the last one */
} sstore_result;

typedef void (*sstore_done_fn)(void *arg, const sstore_result *r);

typedef struct sstore sstore;
typedef struct sstore_op sstore_op;

/* Counters for pool.stats "sessions.store" and the Prometheus series. */
typedef struct {
    const char *backend;          /* "sqlite", "redis", "none" */
    int up;                       /* 1: the last attempt to reach it worked */
    uint64_t gets, puts, touches, deletes, lists;
    uint64_t failures;            /* operations completed UNAVAILABLE */
    uint64_t transactions;        /* sqlite: write transactions committed */
    uint64_t transaction_writes;  /* sqlite: puts, touches and deletes in them (writes / transactions:
                                   * the group commit's batch) */
    uint64_t expired;             /* states deleted by the TTL sweep (sqlite; Redis expires them itself) */
    uint32_t pending;             /* operations started and not completed */
} sstore_stats;

/* Whether spec names a store this build can open: AP_OK, or AP_ERR with
 * err saying why ("unknown sessionStore scheme 'x' (sqlite:PATH,
 * redis://HOST:PORT/DB or none)").  Parses only; opens nothing. */
int sstore_spec_check(const char *spec, char *err, size_t errlen);

/* Starts pool `pool`'s store per spec (checked already), keeping states
 * ttl_ms after their last write or touch.  Never blocks: the database
 * is opened, or the server connected, in the background; until it is,
 * operations complete UNAVAILABLE ... except that with wait_ready (at
 * start-up, before the loop serves anyone) it waits up to 10 s for the
 * first attempt and fails when that does.  Returns NULL with err filled
 * when it cannot start (thread, memory) or, with wait_ready, reach the
 * store. */
sstore *sstore_open(struct event_base *base, const char *spec, const char *pool, uint64_t ttl_ms, int wait_ready,
                    char *err, size_t errlen);

/* A reload changed sessionTtl. */
void sstore_set_ttl(sstore *s, uint64_t ttl_ms);

/* How a commit is made durable (sessionSync), for the SQLite store:
 * FULL (the default) syncs the write-ahead log at every transaction, so
 * a committed state survives a crash of the machine; NORMAL syncs it only
 * at checkpoints, so a committed state survives a crash of agentpoold
 * but the last transactions may be lost if the machine itself goes down.
 * The Redis store ignores it (the server's persistence decides). */
typedef enum { SSTORE_SYNC_FULL = 0, SSTORE_SYNC_NORMAL } sstore_sync;
void sstore_set_sync(sstore *s, sstore_sync sync);

/* The state under key: OK with val, or MISSING. */
sstore_op *sstore_get(sstore *s, const char *key, size_t key_len, sstore_done_fn fn, void *arg);
/* Stores val (copied) under key and marks it written now: OK. */
sstore_op *sstore_put(sstore *s, const char *key, size_t key_len, const char *val, size_t len, sstore_done_fn fn,
                      void *arg);
/* As sstore_put, without the copy: val must stay valid and unchanged
 * until fn (not NULL) runs, so the op is never cancelled (sstore_close
 * runs it too).  hint is what the key's last get or put answered
 * (r->hint), or 0: with it the backend finds the key's state without its
 * index (a hint that no longer holds costs only that lookup). */
sstore_op *sstore_put_ref(sstore *s, const char *key, size_t key_len, const char *val, size_t len, uint64_t hint,
                          sstore_done_fn fn, void *arg);
/* Marks key's state used now (its TTL restarts) without rewriting it:
 * OK (also when there is none). */
sstore_op *sstore_touch(sstore *s, const char *key, size_t key_len, sstore_done_fn fn, void *arg);
/* Deletes key's state: OK, or MISSING when there was none. */
sstore_op *sstore_del(sstore *s, const char *key, size_t key_len, sstore_done_fn fn, void *arg);
/* Up to limit (1..1000) keys after `after` (after_len 0: from the
 * first), in key order (bytewise): OK with entries and more. */
sstore_op *sstore_list(sstore *s, const char *after, size_t after_len, unsigned limit, sstore_done_fn fn, void *arg);

/* op's callback will not run.  A put, touch or delete already handed to
 * the backend may still happen. */
void sstore_cancel(sstore_op *op);

void sstore_get_stats(const sstore *s, sstore_stats *out);

/* Stops the store.  Every operation not called back yet is called back
 * now, so its caller can free what it gave as arg: with its result when
 * the backend finished it (the SQLite thread finishes its queue, then
 * is joined), else UNAVAILABLE ("the store is closing").  Callbacks must
 * not start operations on s from there.  NULL does nothing. */
void sstore_close(sstore *s);

#endif
