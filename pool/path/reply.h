/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reply.h - response lines and the protocol's error codes.
 *
 * Responses are assembled from pieces straight into the client's output
 * buffer with one reserve/commit: the id bytes exactly as the client
 * wrote them, and the worker's result JSON as it came, never
 * re-serialised.  The error codes are the protocol's stable vocabulary
 * (docs/protocol.md); reply_code indexes the per-code counters.  The
 * other half, reply_read and reply_next, reads those lines back for the
 * front doors that hold an origin client (HTTP, A2A, the broker) and
 * turn its lines into their own protocol.
 */
#ifndef AP_REPLY_H
#define AP_REPLY_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

typedef enum {
    ERR_BAD_REQUEST = 0,
    ERR_TOO_LARGE,
    ERR_QUEUE_FULL,
    ERR_AGENT_ERROR,
    ERR_SHUTTING_DOWN,
    ERR_WORKER_CRASHED,
    ERR_TIMEOUT,
    ERR_TOO_MANY_CONNECTIONS,
    ERR_CANCELLED,
    ERR_CIRCUIT_OPEN,
    ERR_FORBIDDEN,              /* a peer not allowed: on the socket (privs.c) or an admin request (control.c) */
    ERR_SESSION_BUSY,           /* its session runs another message and sessionBusy is reject (session.c) */
    ERR_TOO_MANY_SESSIONS,      /* a new session past maxSessions while every tracked one is busy (session.c) */
    ERR_STORE_UNAVAILABLE,      /* the session store could not read or commit its session's state (sessstate.c) */
    ERR_UNAUTHORIZED,           /* a "key" (API key) that is not in apiKeysFile (apikey.c) */
    ERR_RATE_LIMITED,           /* its API key is at maxInFlight, ratePerMinute or tokensPerMinute (apikey.c) */
    ERR_OTHER,                  /* a code from a worker that we do not know */
    ERR_COUNT
} reply_code;

const char *reply_code_name(reply_code c);
/* Maps a code string to its enum; ERR_OTHER when unknown. */
reply_code reply_code_from(const char *s, size_t len);
/* Reads the "code" member a worker's error object starts with
 * ({"code":"agent_error",...}); ERR_OTHER when absent. */
reply_code reply_code_of_error_json(const char *json, size_t len);

/* {"id":ID,"ok":true,"result":RESULT}\n; id_len 0 writes null. */
void reply_ok(struct evbuffer *out, const char *id, size_t id_len, const char *result, size_t len);
/* reply_ok for a result that is the first len (> 0) bytes of src: they
 * are moved into out (evbuffer_remove_buffer: whole chains relinked, only
 * a partial last chain copied), not copied, so a result of hundreds of
 * megabytes costs the loop no large memcpy and no second copy in memory.
 * If src cannot give them up (its start frozen), they are copied and
 * left in src: the caller drains what is left either way. */
void reply_ok_move(struct evbuffer *out, const char *id, size_t id_len, struct evbuffer *src, size_t len);
/* {"id":ID,"ok":true,"inputRequired":true,"result":PROMPT}\n: the
 * handler called ctx.require_input(PROMPT) (docs/a2a.md); the prompt is
 * body, or src's first len bytes (copied: a prompt is small; the caller
 * drains what is left of src either way). */
void reply_ok_input(struct evbuffer *out, const char *id, size_t id_len, struct evbuffer *src, const char *body,
                    size_t len);
/* An answer kept for an idempotency key (idem.c), written again:
 * {"id":ID,"ok":true,"result":BODY,"replayed":true}\n, or with ok 0
 * {"id":ID,"ok":false,"error":BODY,"replayed":true}\n. */
void reply_replayed(struct evbuffer *out, const char *id, size_t id_len, int ok, const char *body, size_t len);
/* {"id":ID,"chunk":CHUNK,"seq":SEQ}\n: one chunk of a stream, CHUNK the
 * worker's JSON as it came (len > 0). */
void reply_chunk(struct evbuffer *out, const char *id, size_t id_len, const char *chunk, size_t len, uint32_t seq);
/* {"id":ID,"heartbeat":true}\n */
void reply_heartbeat(struct evbuffer *out, const char *id, size_t id_len);
/* {"id":ID,"ok":false,"error":ERR}\n with ERR a JSON object as given. */
void reply_error_json(struct evbuffer *out, const char *id, size_t id_len, const char *err, size_t len);
/* {"id":ID,"ok":false,"error":{"code":CODE,"message":MESSAGE<extra>}}\n;
 * message is escaped (ap_json_escape, cut to 1023 bytes); extra, when not NULL, is raw JSON members starting
 * with a comma (",\"signal\":9"). */
void reply_error(struct evbuffer *out, const char *id, size_t id_len, reply_code code,
                 const char *message, const char *extra);

/* What reply_read found in one line this module wrote. */
typedef enum { REPLY_LINE_ANSWER = 0, REPLY_LINE_CHUNK, REPLY_LINE_HEARTBEAT } reply_line_kind;

typedef struct {
    reply_line_kind kind;
    int ok;                     /* ANSWER: "ok":true */
    int input_required;         /* ANSWER with ok: "inputRequired":true (reply_ok_input) */
    reply_code code;            /* ANSWER with ok 0: the error's code */
    size_t rest_off;            /* ANSWER: the members after the id: the answer without its id is
                                 * "{" + line[rest_off..len) */
    size_t value_off, value_len; /* ANSWER: its result (or error, or prompt) JSON as the worker wrote it */
    size_t payload_off, payload_len; /* CHUNK: the chunk's JSON as the worker wrote it */
    uint32_t seq;               /* CHUNK */
    uint64_t retry_after_ms;    /* ANSWER with ok 0: its "retryAfterMs" (circuit_open), 0 when none */
} reply_line;

/* Reads back one line written by the functions above (without its '\n'),
 * whatever its id (null, an integer, a string): the other half of
 * this module's formats, for a front door that turns answer lines into
 * its own protocol (httpx.c).  AP_OK with out filled; AP_ERR when the
 * line is none of them. */
int reply_read(const char *line, size_t len, reply_line *out);

/* The first whole line of out (an origin client's output, as flush.h's
 * sink takes it), read with reply_read: 0 when out holds no whole line;
 * 1 with *line (*len bytes, its '\n' not counted) and *rl filled; -1
 * when the line cannot be read (*line may be NULL).  Either way the
 * caller drains *len + 1 bytes when done with it. */
int reply_next(struct evbuffer *out, const char **line, size_t *len, reply_line *rl);

#endif
