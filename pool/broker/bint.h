/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bint.h - the broker ingress's insides, shared by its three files and
 * nothing else: broker.c (the pool's broker: links, reading, claims,
 * heartbeats, the control stream, stats), bjob.c (one entry held here:
 * ingested, checked, run, finished) and bcmd.c (the command FIFO on the
 * command connection: sent in order, resent in order after a reconnect).
 * See broker.c's top comment for the design.
 */
#ifndef AP_BINT_H
#define AP_BINT_H

#include "bcancel.h"
#include "bentry.h"
#include "broker.h"
#include "brokercfg.h"
#include "hist.h"
#include "idmap.h"
#include "pools.h"
#include "queue.h"
#include "rlink.h"

#include <event2/event.h>

#include <stddef.h>
#include <stdint.h>

struct client;
struct redisReply;

/* Chunk bytes taken from clients, not yet accepted by Redis. */
#define BROKER_OUT_HIGH ((size_t)4 << 20)
/* XREADGROUP / XREAD BLOCK, ms (within rlink's watchdog slack). */
#define BROKER_BLOCK_MS 1000
/* Entries read or claimed at once, at most. */
#define BROKER_READ_MAX 512
/* Cancels of entries not held here, remembered at once. */
#define BROKER_CANCELS_MAX 4096
/* Entry ids per heartbeat XCLAIM. */
#define BROKER_BEAT_BATCH 256
/* Finishes per call of the finish script, at most. */
#define BROKER_FINISH_BATCH 64

/* The Lua scripts (broker.c loads them at each connect; their SHA1s in b->sha). */
enum { SC_FINISH = 0, SC_CHUNK, SC_CLAIM, SC_COUNT };

/* A job's state (bjob.c). */
typedef enum { BJ_CHECKING = 0, BJ_RUNNING, BJ_FINISHING, BJ_DONE, BJ_ABANDONED, BJ_STATES } bj_state;

typedef struct broker broker;

typedef struct bjob {
    broker *b;
    bj_state state;
    char eid[BENTRY_ID_MAX + 1];
    uint32_t eid_len;
    char *reply_to;
    char *req;
    size_t req_len;
    char *akey;                 /* the answer-store key (NULL: no idempotencyKey, none kept) */
    char *id;                   /* the request's id as written ("null" when none) */
    struct client *c;           /* its origin client while it runs */
    int refs;                   /* commands that name it */
    int stalled;                /* in b->stalled: stopped taking chunk lines */
    uint64_t read_ns;
    queue_link link;            /* in b->jobs */
    queue_link stall_link;
} bjob;

typedef enum { BC_FINISH = 0, BC_CHUNK, BC_DROP, BC_CLAIM, BC_BEAT, BC_INFO, BC_GROUP } bc_kind;

typedef struct bcmd {
    bc_kind kind;
    bjob *j;                    /* FINISH, CHUNK, DROP */
    char *data;                 /* FINISH: rest; CHUNK: the line; DROP: entry id */
    size_t len;
    int have_rest;              /* FINISH: data is the answer (else: only from the store) */
    int dead_letter;            /* FINISH: a dead letter */
    uint64_t sent_ns;
    struct bcmd *batch_next;    /* FINISH, sent: the next finish of the same call (the first one is rlink's cookie) */
    queue_link link;            /* in b->waiting or b->resend */
} bcmd;

struct broker {
    pool_t *p;
    brokercfg cfg;
    char *stream, *control, *group, *consumer, *akey_prefix, *maxlen_key;
    uint64_t claim_idle_ms, answer_ttl_ms;
    rlink *cmd, *rd, *ctl;
    char sha[SC_COUNT][41];
    int reading;                /* an XREADGROUP is out on rd */
    int ctl_reading;            /* an XREAD is out on ctl */
    int claiming, infoing;      /* a claim / XINFO is out */
    uint64_t read_after_ms;     /* no read before (NOGROUP: the group is being made again) */
    char ctl_last[BENTRY_ID_MAX + 1]; /* the last control entry read ("$": none yet) */
    char claim_cursor[BENTRY_ID_MAX + 1]; /* where the next XAUTOCLAIM starts ("0-0": the start) */
    queue_link jobs;
    idmap by_eid;               /* the jobs of b->jobs by entry id (keys: their eid) */
    unsigned njobs, nchecking, nfinishing;
    queue_link waiting;         /* commands not yet sent, in order */
    struct event *pump_ev;      /* sends what waits at the end of the loop's turn (bc_queue) */
    int pump_scheduled;
    queue_link resend;          /* commands sent and lost with the connection, in send order */
    unsigned nwaiting;
    size_t out_bytes;           /* chunk bytes taken from clients and not yet accepted by Redis */
    queue_link stalled;         /* jobs that stopped taking chunk lines */
    uint64_t next_claim_ms, next_beat_ms;
    bcancel_ring cancels;       /* cancels of entries not held here */
    int was_up;
    int closing;                /* b_free runs: jobs are freed by it, nothing new starts */
    int64_t lag, pending;
    broker_stats st;
    hist_window rtt;            /* command round trips, ns */
};


/* ---- bjob.c ---- */
void bj_set_state(bjob *j, bj_state to);
/* Frees j when nothing holds it any more (not while the broker closes). */
void bj_maybe_free(bjob *j);
/* The job of entry id eid[0..len), or NULL. */
bjob *bj_find(broker *b, const char *eid, size_t len);
/* One entry read (claimed: by XAUTOCLAIM, delivered `deliveries` times). */
void bj_ingest(broker *b, const struct redisReply *er, int claimed, long long deliveries);
/* A control entry: cancel the entry it names, here or later. */
void bj_cancel(broker *b, const bentry *e);
/* The finish script's reply for c (a BC_FINISH). */
void bj_finish_reply(broker *b, bcmd *c, const struct redisReply *r);

/* ---- bcmd.c ---- */
/* A command (data copied; a CHUNK's bytes counted in b->out_bytes). */
bcmd *bc_new(broker *b, bc_kind kind, bjob *j, const char *data, size_t len);
/* Queued at the tail of b->waiting; what waits is sent at the end of the
 * loop's turn, so the finishes of one turn go as one call. */
void bc_queue(broker *b, bcmd *c);
void bc_free(broker *b, bcmd *c);
/* Sends what waits, in order, while cmd is up (consecutive finishes in
 * calls of up to BROKER_FINISH_BATCH). */
void bc_pump(broker *b);
/* pump_ev's callback. */
void bc_pump_cb(evutil_socket_t fd, short what, void *arg);
/* rlink's reply function for every command on cmd. */
void bc_reply(void *owner, void *cookie, struct redisReply *r);
/* cmd went down: what was lost goes back in front of what waits, in order. */
void bc_down(void *owner, const char *why);

/* ---- broker.c ---- */
/* Reads up to the free slots' worth of new entries (one read out at a time). */
void bk_read(broker *b);
void bk_claim_reply(broker *b, const struct redisReply *r);
void bk_info_reply(broker *b, const struct redisReply *r);

#endif
