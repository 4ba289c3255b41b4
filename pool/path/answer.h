/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * answer.h - the one end of a message, and the one refusal of a request.
 *
 * Every accepted message ends in answer_end(), whatever ends it: a
 * worker's result or error, an error the master decides (timeout, crash
 * after its retries, queue full, shutdown), or no answer at all (its
 * client left while it waited, or it was answered already).  answer_end
 * first lets its idempotency key know (idem.c: copies attached to it are
 * answered with the same answer, which is kept or the key forgotten), then
 * writes the line to the client if it is still connected and counts it
 * (server stats, per-type metrics, access log), tells the type's breaker
 * how it went (once), ends its stream's state (stream.c: counted by code),
 * disarms its timer, takes it off its worker, the
 * queue or the retry list, releases its pending bytes, unlinks it from
 * its connection, frees it and asks for a queue pump on this loop turn.
 * A path that ends a message cannot forget a step: there is no other way
 * to free one.  answer_detach is the one exception, by design: a running
 * message that timed out is answered now and stays with its worker until
 * the worker lets go of it (its later answer ends it, counted late).
 *
 * answer_refuse answers a request line that never became a message (bad
 * request, duplicate id, circuit open, a pool.* request it cannot do),
 * echoing the id it carried, and counts it.  answer_later answers a
 * request by its connection's serial once its work is done (pool.reload).
 *
 * Never touches worker sockets or reads client sockets.
 */
#ifndef AP_ANSWER_H
#define AP_ANSWER_H

#include "reply.h"
#include "scan.h"

#include <stddef.h>
#include <stdint.h>

struct msg;
struct client;
struct pool;
struct evbuffer;

typedef enum {
    ANSWER_OK = 0,      /* body: the worker's result JSON */
    ANSWER_WORKER_ERROR,/* body: the worker's error object, code read from it once */
    ANSWER_ERROR,       /* code + message (+ extra members) decided by the master */
    ANSWER_NONE         /* nobody is told: the client left or was answered already */
} answer_kind;

typedef struct {
    answer_kind kind;
    reply_code code;            /* WORKER_ERROR, ERROR */
    const char *body;           /* OK, WORKER_ERROR */
    size_t len;
    const char *message;        /* ERROR: escaped into the line */
    const char *extra;          /* ERROR: raw members starting with a comma, or NULL */
    struct evbuffer *src;       /* OK, when not NULL: the body is src's first len bytes, moved
                                 * to the client rather than copied (left in src if nobody is told) */
} answer;

/* Ends m as described above.  m is freed on return. */
void answer_end(struct msg *m, const answer *a);

static inline void answer_ok(struct msg *m, const char *result, size_t len)
{
    answer a = {ANSWER_OK, ERR_OTHER, result, len, NULL, NULL, NULL};
    answer_end(m, &a);
}

/* answer_ok for a result still in src (the worker's input): its first
 * len bytes are moved into the client's output, chain by chain, never
 * copied whole.  If m has no client they stay in src: the caller drains
 * what is left of the frame. */
static inline void answer_ok_moved(struct msg *m, struct evbuffer *src, size_t len)
{
    answer a = {ANSWER_OK, ERR_OTHER, NULL, len, NULL, NULL, src};
    answer_end(m, &a);
}
static inline void answer_worker_error(struct msg *m, reply_code code, const char *err, size_t len)
{
    answer a = {ANSWER_WORKER_ERROR, code, err, len, NULL, NULL, NULL};
    answer_end(m, &a);
}

static inline void answer_error(struct msg *m, reply_code code, const char *message, const char *extra)
{
    answer a = {ANSWER_ERROR, code, NULL, 0, message, extra, NULL};
    answer_end(m, &a);
}

static inline void answer_drop(struct msg *m)
{
    answer a = {ANSWER_NONE, ERR_OTHER, NULL, 0, NULL, NULL, NULL};
    answer_end(m, &a);
}

/* Answers m (code + message) and counts it, but keeps it alive and
 * RUNNING on its worker, marked detached; its client no longer knows it. */
void answer_detach(struct msg *m, reply_code code, const char *message, const char *extra);

/* Answers the request line `line` (scanned into r, or r NULL when it
 * could not be: its id is then null) with an error on connection c, and
 * counts it (for pool p, or the server's own when NULL: the request
 * named no pool that exists); extra as for answer_error.  type_idx >= 0
 * also counts it for that message type of p. */
void answer_refuse(struct client *c, const char *line, const scan_result *r, reply_code code, const char *why,
                   const char *extra, struct pool *p, int type_idx);

/* answer_refuse for a pool.* request: counted as a control error
 * (errors[code] and control_errors[code]), never for a message type. */
void answer_control_refuse(struct client *c, const char *line, const scan_result *r, reply_code code,
                           const char *why);

/* Answers the request line `line` (scanned into r) on connection c with
 * result (JSON) and counts it: the answer to a pool.* request (control_ok,
 * not a message's answered_ok). */
void answer_request_ok(struct client *c, const char *line, const scan_result *r, const char *result, size_t len);

/* Answers a pool.* request later, on connection `serial` if it is still
 * open: result (JSON) when not NULL, else code + message + extra.
 * Counted as control (a failed reload is a control agent_error). */
void answer_later(uint64_t serial, const char *id, size_t id_len, const char *result, reply_code code,
                  const char *message, const char *extra);

#endif
