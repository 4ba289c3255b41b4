/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * client.h - client connections: line framing, admission, answers.
 *
 * A connection's lifecycle is one enum changed only by
 * client_set_state():
 *
 *   READING  -> BLOCKED (one or more reasons) -> READING
 *   READING | BLOCKED -> CLOSING (peer gone, error, idle) -> freed
 *
 * Half-close is not leaving: at EOF on its socket, a peer that shut only
 * its writing side (shutdown(SHUT_WR), as `nc -N` and socat do; the
 * socket reports no hang-up) is marked half_closed, no longer read, and
 * keeps being answered: its last bytes (a last line without '\n' too)
 * are handled, and once nothing it sent is unanswered (in flight, held,
 * streams, deferred pool.* answers) and its output is written, it is
 * closed.  A peer that is gone (hang-up at EOF or later, seen on the
 * tick; a write failing with EPIPE or ECONNRESET) is closed at once and
 * its work cancelled, as for any leaving client.
 *
 * BLOCKED means its lines are not being handled, for one or more reasons
 * kept as bits: it holds a message waiting for queue room (overflow
 * "block"), it has maxInFlightPerConnection messages unanswered, or its
 * unread output passed the high watermark (it does not read its
 * answers), or the master holds maxBufferedBytes of answers for all
 * connections while this one has answers unread or has never read one
 * (see client_parked).  One exception while it waits only for queue room
 * or at maxInFlightPerConnection: a pool.cancel that is its next line is
 * handled, so a client can cancel what it waits for (pool.cancel, cancel.h).
 * Its socket is still read, so its EOF is seen at once, but
 * only until 64 KiB wait unhandled (the kernel keeps the rest): pausing
 * and resuming cost no system call.  Lines are cut with a bounded search: a line over
 * maxMessageBytes is answered too_large and discarded without being
 * buffered whole.  At most CLIENT_LINES_PER_WAKE lines are handled per
 * callback so one pipelining client cannot starve the rest.
 *
 * A client need not be a socket.  An origin client (client_open_origin)
 * is how another front door (HTTP: httpx.c) puts a request through this
 * same admission path: its owner hands it one request line
 * (client_feed, which is client_line, the code a socket line goes
 * through: scan, refusals, idempotency, sessions, scheduling), its
 * answer, chunk and heartbeat lines are written to its output like any
 * client's, and the owner's take() takes them from there at the end of
 * the turn (flush.c's sink) and turns them into its own protocol.  It
 * counts as half-closed from the start: once nothing it was fed is
 * unanswered and its output is taken, it is closed, and the owner's
 * closed() is told; unless its owner keeps it (client_keep_open: an HTTP
 * connection feeds its one client a line per request), then it stays
 * open, idle (client_idle) between lines, until its owner drops it.
 * client_drop is its owner's peer leaving: like a socket that closes,
 * its work is cancelled.  It is not a connection: not in nclients or the
 * per-uid counts (its owner counts its own), and never closed for
 * idleConnectionTimeout (its owner bounds its life).
 */
#ifndef AP_CLIENT_H
#define AP_CLIENT_H

#include "flush.h"
#include "idmap.h"
#include "linein.h"
#include "queue.h"
#include "reply.h"

#include <stdint.h>
#include <sys/types.h>

struct evbuffer;
struct event;
struct events_sub;
struct msg;
struct pool;
struct ucred;

typedef enum { CLIENT_READING = 0, CLIENT_BLOCKED, CLIENT_CLOSING, CLIENT_STATE_COUNT } client_state;

enum {
    CLIENT_BLOCK_ROOM = 1,      /* holds a message, waiting for queue room */
    CLIENT_BLOCK_INFLIGHT = 2,  /* maxInFlightPerConnection reached */
    CLIENT_BLOCK_OUTPUT = 4,    /* its answers are not being read */
    CLIENT_BLOCK_BUDGET = 8,    /* maxBufferedBytes passed while it has unread answers */
};

#define CLIENT_LINES_PER_WAKE 128

/* The owner of an origin client (see above). */
typedef struct client_origin {
    /* Takes answer lines from out (all or some), returns the bytes taken. */
    size_t (*take)(void *arg, struct evbuffer *out);
    /* The client is being freed: its owner forgets it. */
    void (*closed)(void *arg);
} client_origin;

typedef struct client {
    uint64_t serial;            /* "client-N" in logs */
    const client_origin *origin;/* not a socket: its owner (NULL for a socket) */
    void *origin_arg;
    int keep;                   /* an origin client kept open by its owner when all it was fed is answered */
    int fd;
    struct event *rev;          /* EV_READ on fd, added while reading is on */
    int reading;                /* rev is added */
    int half_closed;            /* the peer shut its writing side: nothing more is read; closed once all is answered */
    struct event *pev;          /* timer of 0: handle buffered lines next turn */
    linein in;                  /* read, not yet handled */
    uint64_t turn_ns;           /* clock at the start of the callback handling its lines (their accepted_ns) */
    flushable out;              /* answers written once per loop turn (flush.c) */
    client_state state;
    unsigned blocked;           /* CLIENT_BLOCK_* bits */
    int discarding;             /* inside a too-long line, dropping until '\n' */
    int head_seen;              /* blocked: its next line was looked at for a pool.cancel (client_cancel_ahead) */
    pid_t peer_pid;
    uid_t peer_uid;
    gid_t peer_gid;
    idmap ids;                  /* request ids in flight -> msg */
    queue_link msgs;            /* sentinel: its messages (held, queued, running) */
    queue_link streams;         /* sentinel: its streams whose chunk lines are not all taken yet (stream.c) */
    size_t out_counted;         /* its output's bytes counted in server.out_bytes */
    int has_read;               /* its output has drained to empty at least once */
    int park_told;              /* its messages waiting was logged (until its output drains) */
    uint64_t out_progress_ms;   /* its output last became non-empty or had bytes taken */
    int in_flight;              /* accepted, not yet answered */
    struct msg *held;           /* CLIENT_BLOCK_ROOM: the message waiting */
    queue_link room_link;       /* in server.room_waiters while BLOCK_ROOM */
    queue_link link;            /* in server.clients */
    uint64_t accepted_ms;
    uint64_t active_ms;         /* last byte read or answer written (idleConnectionTimeout) */
    int deferred;               /* pool.* answers due later (answer_later) */
    uint64_t requests;
    uint64_t bad;               /* requests answered bad_request */
    struct events_sub *sub;     /* its pool.subscribe, NULL when none (events.c) */
} client;

/* Takes over an accepted, non-blocking socket.  Never fails: on error
 * the socket is closed and the reason logged. */
void client_accept(int fd, const struct ucred *cred);
/* An origin client for o (see above); peer_uid is uid (-1: none known),
 * peer_pid pid.  NULL, logged, when it cannot be made. */
client *client_open_origin(const client_origin *o, void *arg, pid_t pid, uid_t uid);
/* What an origin client's owner says of a line beside its bytes: those
 * members of the line are not read (any value is taken, as an unknown
 * member's), these count instead. */
typedef struct client_given {
    struct pool *pool;          /* its pool ("pool"); NULL: the line's own */
    int stream;                 /* its "stream", 0 or 1; -1: the line's own */
    int no_id;                  /* its "id" is not read: its lines carry none (an owner that feeds one line at a time) */
} client_given;

/* One request line for an origin client: handled now, as a socket's
 * line is (answered, refused or admitted); g (NULL: nothing) what its
 * owner gives beside it. */
void client_feed(client *c, const char *line, size_t len, const client_given *g);
/* The origin client c is not closed when all it was fed is answered: its
 * owner feeds it again, and closes it with client_drop. */
void client_keep_open(client *c);
/* Whether nothing c was fed is unanswered (in flight, held, a stream's
 * lines, a deferred answer), its output is all taken and it is open:
 * a kept origin client can take its owner's next line as a new one. */
int client_idle(const client *c);
/* An origin client's owner lost its peer: c is closed (its waiting
 * messages cancelled, its running ones abandoned) and freed; the owner's
 * closed() is called first. */
void client_drop(client *c, const char *why);
/* Its output buffer, where answers are written (answer.c). */
struct evbuffer *client_output(client *c);
/* After an answer was written to client_output: counts it, has it
 * written at the end of this turn, and stops reading c while its unread
 * answers pass the high watermark. */
void client_check_output(client *c);
/* Whether c's messages wait rather than go to a worker: its own unread
 * answers passed the high watermark, or the master holds more than
 * maxBufferedBytes of answers and c has answers unread or has never read
 * one.  Readers (empty output, read before) are never parked. */
int client_parked(const client *c);
/* One of c's messages was kept from workers: logged once per pause. */
void client_note_parked(client *c);
/* Whether the master holds more than maxBufferedBytes of answers for
 * its peers (server.out_bytes). */
int client_budget_over(void);
/* Another holder of answers for a peer (an HTTP connection's output,
 * http1.c) counts in maxBufferedBytes too: its unsent bytes, last
 * counted as *counted, are now len.  Dropping under the budget wakes
 * the messages parked for it and the connections paused for it. */
void client_budget_move(size_t *counted, size_t len);
/* Takes m off its connection (ids, list, in-flight count, held slot) and
 * clears m->client; a connection paused at maxInFlightPerConnection may
 * resume.  Nothing when m has no client. */
void client_forget(struct msg *m);
/* A copy of m (state NEW, not admitted) that takes m's place on its
 * connection, with its failures and its checkpoint; m stays with its
 * worker, answered for (detached).  For a timed-out message that is to
 * be retried while its worker lets go. */
struct msg *client_take_over(struct msg *m);
/* p's queue has room again: admit messages held for it, oldest waiter first. */
void client_room_available(struct pool *p);
/* Answers every message held for p (by a connection waiting for room)
 * with code: shutdown, or p could not start.  Returns how many. */
unsigned client_fail_held(struct pool *p, reply_code code, const char *why);
/* The open connection with that serial, or NULL (0: none). */
client *client_by_serial(uint64_t serial);
/* On the tick: closes the connections idle for idleConnectionTimeout
 * (nothing in flight, no answer waiting to be written or sent later, no
 * byte read or written; counted in conns_idle_closed), and those whose
 * answers wait while their socket took none for clientWriteTimeout
 * (their waiting messages cancelled, logged, counted in write_timeouts).
 * Nothing when both settings are 0. */
void client_tick(uint64_t now);
/* A deferred pool.* answer (detailed stats, reload) is due to c: it is
 * not idle until answer_later writes it (answer.c calls client_deferred(c, -1)). */
void client_deferred(client *c, int delta);
/* Frees every connection (at exit). */
void client_close_all(void);
/* True when no connection has unwritten output. */
int client_all_flushed(void);
const char *client_state_name(client_state s);

#endif
