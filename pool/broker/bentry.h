/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bentry.h - the broker's wire forms (docs/scale-out.md, "Wire"): a
 * request entry's fields, a control entry's, the line fed to the
 * admission path, the answer-store key and the made-up final lines.
 * Pure: reads hiredis reply objects and bytes, allocates nothing but
 * what it returns, never logs.  broker.c calls it; it is unit-tested and
 * fuzzed on its own.
 */
#ifndef AP_BENTRY_H
#define AP_BENTRY_H

#include <stddef.h>
#include <stdint.h>

struct redisReply;

/* The longest entry id ("<ms>-<seq>": 20 + 1 + 20 digits). */
#define BENTRY_ID_MAX 41
/* The longest replyTo key accepted. */
#define BENTRY_REPLY_TO_MAX 512

typedef struct {
    const char *ptr;
    size_t len;
} bspan;

/* One entry, pointing into the reply it was read from. */
typedef struct {
    bspan eid;      /* the entry id */
    bspan req;      /* field "req" (len 0: absent) */
    bspan reply_to; /* field "replyTo" (len 0: absent) */
    bspan cancel;   /* field "cancel" (control entries; len 0: absent) */
} bentry;

/* Reads one stream entry [id, [field, value, ...]] (XREADGROUP,
 * XAUTOCLAIM, XREAD) into *out.  Unknown fields are ignored; a repeated
 * one counts by its last.  AP_OK; AP_ERR with why when the shape is not
 * an entry, its id is not an entry id, or a known field is not a string
 * or replyTo is empty or longer than BENTRY_REPLY_TO_MAX.  An entry
 * deleted before it was claimed has a nil field list: AP_OK with every
 * field absent. */
int bentry_read(const struct redisReply *e, bentry *out, char *why, size_t cap);

/* Whether s[0..len) is an entry id: digits '-' digits, at most
 * BENTRY_ID_MAX bytes. */
int bentry_id_ok(const char *s, size_t len);

/* The line fed to the admission path for req: req with ,"pool":"POOL"
 * appended before its closing brace (a repeated member counts by its
 * last, so the stream's pool wins over a "pool" in req); req as it is
 * when it is not an object (it is refused there).  pool is [a-z0-9_-].
 * Allocated; its length in *len. */
char *bentry_line(const char *req, size_t len, const char *pool, size_t *out_len);

/* The answer-store key of a request with an idempotency key: prefix +
 * the key (a request without one keeps no answer: the finish script's
 * XACK tells whether it was answered).  Allocated, NUL-terminated; its
 * length in *len. */
char *bentry_answer_key(const char *prefix, const char *idem, size_t idem_len, size_t *len);

/* The id of a final line the reply module wrote ({"id":ID,REST): sets
 * *id to ID's span and *rest to REST's (what follows the comma, its
 * closing brace included).  AP_ERR when line does not start that way. */
int bentry_split_answer(const char *line, size_t len, size_t rest_off, bspan *id, bspan *rest);

/* The REST of a made-up error answer ("ok":false,"error":{"code":CODE,
 * "message":MSG}}), message escaped.  Allocated; its length in *len. */
char *bentry_error_rest(const char *code, const char *message, size_t *len);

#endif
