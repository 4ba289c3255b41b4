/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * session.h - a pool's table of sessions: the conversations its requests
 * name with "session", each with its state, its running message, its
 * FIFO of waiting ones and the worker it last ran on.
 *
 * Pure bookkeeping: it never answers, sends or frees a message (sessrun.c
 * does, calling this).  Messages are opaque here: the running one is a
 * pointer, the waiting ones are links the caller embeds.  A session's
 * lifecycle (session_set_state, counted per state):
 *
 *   IDLE (nothing admitted) -> RUNNING (one message admitted: queued,
 *   sent, retried or letting go; later ones wait in its FIFO) -> IDLE
 *
 * Entries are kept while a message names them (refs: held for room,
 * waiting, running) and, once none does, on an idle list in least
 * recently used order only for affinity: the table never tracks more
 * than its bound (maxSessions); a new session past it forgets the least
 * recently used idle one, and is refused when none is idle.  Session
 * state (ctx.session) is cached on the session by sessstate.c; this file
 * only frees it with the session and counts its bytes.
 */
#ifndef AP_SESSION_H
#define AP_SESSION_H

#include "keytab.h"
#include "queue.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { SESSION_IDLE = 0, SESSION_RUNNING, SESSION_STATE_COUNT } session_state;

/* Where the session's state (ctx.session) is, in the master (sessstate.c):
 * UNKNOWN (not read: new here, forgotten, dropped from the cache, or the
 * last read failed) -> LOADING (a store read in flight) -> READY (state
 * json holds the last committed state) -> UNKNOWN (dropped) ... */
typedef enum { SSTATE_UNKNOWN = 0, SSTATE_LOADING, SSTATE_READY } session_sstate;

typedef struct session {
    keytab_node node;           /* in its table, by key */
    session_state state;
    void *current;              /* RUNNING: the message it runs, else NULL */
    queue_link waiting;         /* the caller's links of messages waiting their turn, oldest first */
    uint32_t nwaiting;
    uint32_t refs;              /* messages that name it */
    queue_link lru;             /* on the table's idle list while refs is 0 */
    int worker;                 /* worker table entry its last message went to, -1: none yet */
    int worker_slot;            /* that entry's slot then */
    /* its state (sessstate.c) */
    char *json;                 /* READY: the last committed state, a JSON object; else NULL */
    uint32_t json_len;
    uint8_t sstate;             /* session_sstate */
    uint8_t fail;               /* its running message's state could not be committed: reply code + 1, 0: none */
    uint16_t commits;           /* state writes in flight (sessstate.c keeps it at most 1) */
    void *next_commit;          /* the newest state waiting for the write in flight (sessstate.c), or NULL */
    uint64_t touched_ms;        /* monotonic ms of its state's last write or touch in the store */
    uint64_t store_hint;        /* what the store last said of where it keeps the state (sstore_result.hint) */
    char *fail_why;             /* with fail: why, for the answer */
    uint16_t key_len;
    char key[];                 /* NUL-terminated */
} session;

/* Counters behind pool.stats "sessions" and the Prometheus series. */
typedef struct {
    uint64_t hits;              /* messages sent to the worker that ran their session's previous one */
    uint64_t moves;             /* messages sent elsewhere although their session had run on a worker */
    uint64_t busy_rejected;     /* answered session_busy (sessionBusy reject) */
    uint64_t interrupted;       /* messages cancelled by a later one (sessionBusy interrupt) */
    uint64_t refused;           /* new sessions refused: maxSessions tracked, none idle (too_many_sessions) */
    uint64_t forgotten;         /* idle sessions forgotten to make room for new ones */
    uint64_t loads;             /* states read from the store (found or not) */
    uint64_t commits;           /* states committed */
    uint64_t store_failures;    /* reads and commits the store could not do (store_unavailable) */
    uint64_t dropped;           /* idle states dropped from the cache past sessionCacheBytes */
    uint64_t state_dropped;     /* states a message sent after it was answered timeout or cancelled: not committed */
    uint64_t coalesced;         /* states replaced by a newer one of the same session before they were written */
} session_counters;

typedef struct session_table {
    keytab keys;
    uint32_t count;             /* sessions tracked */
    uint32_t max;               /* maxSessions */
    uint32_t by_state[SESSION_STATE_COUNT];
    uint32_t waiting;           /* messages waiting in every session's FIFO */
    queue_link idle;            /* sessions no message names, least recently used first */
    uint64_t state_bytes;       /* bytes of the states cached on its sessions */
    session_counters n;
} session_table;

/* A table for at most max sessions.  Never fails (out of memory aborts). */
session_table *session_table_new(uint32_t max);
/* Frees t and every session in it; no message may name one any more. */
void session_table_free(session_table *t);
/* A reload changed maxSessions: idle sessions past it are forgotten now;
 * busy ones stay until they are idle. */
void session_table_set_max(session_table *t, uint32_t max);

/* The session keyed key[0..len), or NULL. */
session *session_find(const session_table *t, const char *key, size_t len);
/* The session keyed key[0..len) (1..65535 bytes), found or made IDLE
 * (forgetting the least recently used idle one when max are tracked),
 * with one more reference taken.  NULL (counted refused, nothing
 * changed) when max are tracked and every one is referenced. */
session *session_ref(session_table *t, const char *key, size_t len);
/* Drops a reference; at 0 the session goes to the idle list's tail. */
void session_unref(session_table *t, session *s);
/* Whether a message of s admitted now would have to wait. */
static inline int session_busy(const session *s)
{
    return s->state != SESSION_IDLE;
}

/* IDLE -> RUNNING with cur as its running message. */
void session_begin(session_table *t, session *s, void *cur);
/* cur (s's running message) ended: the oldest waiting link is taken off
 * the FIFO and returned (s stays RUNNING; the caller makes its message
 * current with session_begin_next), or NULL and s is IDLE. */
queue_link *session_end(session_table *t, session *s, void *cur);
/* The message of link l (returned by session_end) is s's running one. */
void session_begin_next(session_table *t, session *s, void *cur);
/* Replaces s's running message (a copy takes its place: retryOnTimeout). */
void session_replace(session *s, void *old, void *cur);
/* Appends l to s's FIFO (s RUNNING). */
void session_wait(session_table *t, session *s, queue_link *l);
/* Takes l out of s's FIFO (its message ended while it waited). */
void session_unwait(session_table *t, session *s, queue_link *l);

/* Frees s's cached state (back to SSTATE_UNKNOWN). */
void session_drop_state(session_table *t, session *s);

/* The worker entry s should go to (its last), or -1. */
static inline int session_worker(const session *s)
{
    return s->worker;
}
/* s's message goes to worker entry `index` (slot `slot`): counts a hit
 * (same entry and slot as last), or a move (it had run elsewhere). */
void session_sent_to(session_table *t, session *s, int index, int slot);

const char *session_state_name(session_state st);

#endif
