/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * idem.h - idempotency keys: a request that says "idempotencyKey" runs
 * once per pool within idempotencyTtl, however often it is sent.
 *
 * Each pool has a table of keys (idem_table).  An entry holds a hash of
 * the request that made it (its type and its "data" bytes exactly as
 * sent: two requests are "the same" when those bytes are identical) and
 * either its running message, to which later copies are attached, or
 * its finished answer (the result or error JSON as it was written), from
 * which copies are answered with "replayed": true.  Only answers that
 * running again would give again are kept: ok and agent_error.  Any other
 * end (queue_full, timeout, worker_crashed, cancelled, shutting_down,
 * circuit_open, ...) answers the attached copies and forgets the key, so
 * a retry runs.
 *
 * Bounds: finished entries expire idempotencyTtl after they finished (a
 * lookup finds them expired at once; idem_tick frees them, a bounded
 * number per tick); their bytes (entry, key, answer) are capped by
 * idempotencyCacheBytes, oldest finished first out.  Running entries are
 * bounded by the messages in flight and never expire or are evicted.
 *
 * Callers: client.c (idem_admit / idem_bind at admission, idem_keeps_running
 * when a connection leaves), answer.c (idem_end: the one end of a
 * message), retry.c via client_take_over (idem_moved), server.c's cron
 * (idem_tick), pools.c (idem_new / idem_free), control.c and metrics.c
 * (idem_stats).  Never blocks; never touches worker sockets.
 */
#ifndef AP_IDEM_H
#define AP_IDEM_H

#include "answer.h"
#include "scan.h"

#include <stddef.h>
#include <stdint.h>

struct pool;
struct client;
struct msg;
struct idem_table;
struct idem_entry;

/* Counters of one pool's table (pool.stats "idempotency", Prometheus). */
typedef struct {
    uint64_t entries;    /* keys held now (running and finished) */
    uint64_t bytes;      /* their bytes, as counted against idempotencyCacheBytes */
    uint64_t replayed;   /* requests answered from a finished entry */
    uint64_t attached;   /* requests attached to a running one */
    uint64_t mismatched; /* requests refused: the key was used for a different request */
    uint64_t evicted;    /* finished entries dropped for idempotencyCacheBytes */
    uint64_t expired;    /* finished entries dropped after idempotencyTtl */
} idem_stats;

typedef enum {
    IDEM_RUN = 0, /* no live entry for the key: the request runs (idem_bind makes one) */
    IDEM_ATTACH,  /* its copy is running: idem_bind attaches the message to it */
    IDEM_ANSWERED /* answered here (replayed or refused): nothing more to do */
} idem_verdict;

/* A table for one pool.  Never fails (out of memory aborts by policy). */
struct idem_table *idem_new(void);
/* Frees t and what it holds; no message may still point into it. */
void idem_free(struct idem_table *t);

/*
 * Looks up r's idempotencyKey (r->idem_key_len > 0) in p's table, at time
 * now_ms, for the request line `line` received on c.  A finished entry
 * for the same request is replayed to c; one for a different request,
 * or a stream request with a key, is refused bad_request: IDEM_ANSWERED.
 * A running entry for the same request: IDEM_ATTACH with *e set.
 * Otherwise IDEM_RUN (an expired entry is dropped first).
 */
idem_verdict idem_admit(struct pool *p, struct client *c, const char *line, const scan_result *r, uint64_t now_ms,
                        struct idem_entry **e);

/* After idem_admit, once m (p's message for that line, on its
 * connection) exists: with e NULL (IDEM_RUN) m becomes the running
 * message of a new entry for r's key; else m is attached to e and must
 * not be admitted (it is answered when e's message ends). */
void idem_bind(struct pool *p, struct msg *m, const scan_result *r, struct idem_entry *e);

/* Called by answer_end and answer_detach for a message with m->idem set,
 * before its own answer is written: m leaves its entry.  If m is the
 * entry's running message, every attached message is answered with a
 * (an ANSWER_NONE end answers them cancelled), and a is kept if it is
 * ok or agent_error, else the key is forgotten.  m->idem is NULL after. */
void idem_end(struct msg *m, const answer *a);

/* n takes m's place (client_take_over): n becomes what m was to its entry. */
void idem_moved(struct msg *m, struct msg *n);

/* Whether m runs for an idempotency key: its client leaving does not
 * cancel it, so its answer is kept for the client's resend (and reaches
 * the copies attached to it). */
int idem_keeps_running(const struct msg *m);

/* Periodic: drops p's expired entries (at most a fixed number per call)
 * and evicts past idempotencyCacheBytes (a reload may have lowered it). */
void idem_tick(struct pool *p, uint64_t now_ms);

void idem_stats_get(const struct idem_table *t, idem_stats *out);

#endif
