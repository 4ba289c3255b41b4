/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rlink.h - one asynchronous connection to a Redis server on the
 * master's loop (hiredis 0.14 on libevent through rev.h), kept up:
 * connect, set up, reconnect with backoff, a deadline on every wait.
 * The Redis session store (sstore_redis.c) and the broker ingress
 * (broker.c) are built on it.
 *
 * States: DOWN -> CONNECTING -> SETUP (SELECT unless db 0, then the
 * owner's set-up commands, e.g. SCRIPT LOAD) -> UP; any -> DOWN on a
 * failure.  While DOWN a timer tries again with backoff (100 ms doubling
 * to 5 s, jittered).  An outage is logged once with the address and the
 * error ("WHAT Redis at ADDR: error; NOTE"), and so is its end ("WHAT
 * Redis at ADDR is back, after N ms").  hiredis 0.14 has no command timeout: one
 * timer is the attempt's deadline while connecting and setting up, and
 * while UP a watchdog: if commands wait and nothing has come from Redis
 * for RLINK_ANSWER_MS (plus the slack a blocking command asks for), the
 * connection is dropped.
 *
 * Commands are pipelined; replies come in the order commands were sent,
 * each to the reply function given with it.  When the connection is lost
 * (or let go, or the link freed), every command still waiting for its
 * reply is told with r == NULL, in the order they were sent, before the
 * owner's down() is called: the owner decides whether to resend or fail
 * them.  Reply functions and down() may send commands (they fail while
 * not UP) but never free the link.
 *
 * hiredis calls back with a per-connection record, not the link: a
 * connection being freed inside hiredis (possibly later than we let go
 * of it) only ever finds an orphaned record, which its last callback
 * frees.  Names are never resolved (rspec.h refuses them), so connecting
 * never blocks.  hiredis writes with write(2): the master ignores SIGPIPE.
 */
#ifndef AP_RLINK_H
#define AP_RLINK_H

#include "rspec.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct redisReply;

/* An attempt's connect + set-up, and the longest Redis may stay silent
 * while commands wait for it (plus a blocking command's slack). */
#define RLINK_ANSWER_MS 5000
#define RLINK_BACKOFF_MIN_MS 100
#define RLINK_BACKOFF_MAX_MS 5000

typedef enum { RLINK_DOWN = 0, RLINK_CONNECTING, RLINK_SETUP, RLINK_UP, RLINK_STATES } rlink_state;

typedef struct rlink rlink;

/* A command's reply (r == NULL: the connection went before it came). */
typedef void rlink_reply_fn(void *owner, void *cookie, struct redisReply *r);

typedef struct rlink_ops {
    /* The owner's set-up commands, run after SELECT at each connect. */
    unsigned (*setup_count)(void *owner);
    /* Command i into argv/len (at most 8 arguments; scratch for numbers): returns argc. */
    int (*setup_cmd)(void *owner, unsigned i, const char **argv, size_t *len, char *scratch, size_t cap);
    /* Checks its reply (keeps a script's SHA1...): AP_OK, or AP_ERR with why. */
    int (*setup_check)(void *owner, unsigned i, const struct redisReply *r, char *why, size_t cap);
    /* UP (each connect): send what waits. */
    void (*up)(void *owner);
    /* DOWN (after the pending replies were told NULL); why names the address. */
    void (*down)(void *owner, const char *why);
    /* Ends the outage's log line ("retrying in the background" when NULL). */
    const char *outage_note;
} rlink_ops;

/* A link to addr for owner; what names it in logs, before "Redis at
 * ADDR" ("pool P: session store").  Nothing is connected until rlink_start.  NULL (err filled)
 * when its timer cannot be made. */
rlink *rlink_new(struct event_base *base, const rspec *addr, const char *what, const rlink_ops *ops, void *owner,
                 char *err, size_t errlen);
/* Starts the first attempt (it may go DOWN at once: then it retries). */
void rlink_start(rlink *l);
/* Start-up only: a synchronous connection runs SELECT and the set-up
 * commands, all within 10 s.  AP_OK, or AP_ERR with err ("WHAT Redis
 * at ADDR: ..."). */
int rlink_probe(rlink *l, char *err, size_t errlen);
/* Sends a command (UP only): AP_OK, or AP_ERR (nothing sent; not UP, or
 * hiredis refused it: the link then goes down soon). */
int rlink_cmd(rlink *l, rlink_reply_fn *fn, void *cookie, int argc, const char **argv, const size_t *len);
/* A blocking command is out: Redis may stay silent that much longer. */
void rlink_set_slack(rlink *l, uint64_t ms);
/* Drops the connection now (why: without the address) and retries. */
void rlink_drop(rlink *l, const char *why);
/* Hands what is written so far to the kernel, without waiting. */
void rlink_flush(rlink *l);
/* Lets go of the connection (pending replies told NULL, no down()) and frees l. */
void rlink_free(rlink *l);

rlink_state rlink_get_state(const rlink *l);
const char *rlink_state_name(rlink_state s);
/* "Redis at ADDR: what failed" while DOWN; "" before the first failure. */
const char *rlink_why(const rlink *l);
/* "HOST:PORT/DB" */
const char *rlink_name(const rlink *l);
/* Commands sent, replies not yet come. */
unsigned rlink_pending(const rlink *l);
/* Since when (monotonic ms) it has been out of UP; 0 while UP. */
uint64_t rlink_down_since_ms(const rlink *l);
/* Connections made (UP reached), ever. */
uint64_t rlink_connects(const rlink *l);

#endif
