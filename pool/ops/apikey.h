/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * apikey.h - API keys (apiKeysFile): who a request is, which pools it may
 * use, and its limits.
 *
 * A caller that has a secret (the Unix socket's "key" member; the HTTP
 * listener's Authorization: Bearer) makes one call, apikey_gate(): the
 * secret is hashed (SHA-256, nettle), looked up, the pool checked
 * against the key's list, and the key's limits applied in this order:
 * maxInFlight (messages of the key not yet ended), tokensPerMinute (no
 * request while the key's usage bucket is in debt), ratePerMinute (one
 * token per request).  Admitted, the caller gets a reference to the key
 * and puts it on the message (msg->key); answer_end() gives it back with
 * apikey_release(), which ends its in-flight count.  Usage reported for
 * the message is charged with apikey_charge() (usage.c).
 *
 * Keys are read from the file at start-up (a bad file refuses the start)
 * and again at every reload (SIGHUP, pool.reload) on a reader thread, so
 * the loop never waits on the file; the new keys replace the old ones at
 * the next tick, or, when the file is bad, the old keys stay and the log
 * says why.  A key id kept across a reload keeps its in-flight count and
 * buckets (new limits apply at once); messages hold their key, so a key
 * removed from the file lives on until its last message ends.
 */
#ifndef AP_APIKEY_H
#define AP_APIKEY_H

#include "reply.h"

#include <stddef.h>
#include <stdint.h>

typedef struct apikey apikey;

/* What apikey_check says of a secret. */
typedef enum { APIKEY_OK = 0, APIKEY_UNAUTHORIZED, APIKEY_FORBIDDEN } apikey_verdict;

/* apikey_gate's answer. */
typedef struct {
    apikey *key;                /* AP_OK: admitted, one reference (msg->key) */
    apikey *found;              /* the key the secret is, admitted or not (borrowed); NULL: unknown */
    reply_code code;            /* AP_ERR: ERR_UNAUTHORIZED, ERR_FORBIDDEN or ERR_RATE_LIMITED */
    uint64_t retry_after_ms;    /* ERR_RATE_LIMITED: when to try again (a hint for maxInFlight) */
    char why[192];              /* AP_ERR: the message for the client (never the secret) */
} apikey_result;

/* Reads path (NULL or "": no keys file; every key is then unknown) at
 * start-up, blocking: AP_ERR with err filled when the file is unusable
 * (world-readable, a symbolic link, a bad line: PATH:LINE: why).
 * Remembers the path for reloads. */
int apikey_init(const char *path, char *err, size_t errlen);
/* Frees every key (waits for a reader thread still running). */
void apikey_free(void);

/* Rereads the file on a reader thread (why: for the log, "SIGHUP").  A
 * reread asked while one runs is done once it ends.  Never blocks. */
void apikey_reload(const char *why);
/* From the server's tick: a finished reread replaces the keys (or is
 * logged as refused). */
void apikey_tick(uint64_t now_ms);
/* Rereads finished so far, and of those refused (tests, stats). */
uint64_t apikey_reloads(void);
uint64_t apikey_reload_failures(void);

/* Which key secret[0..len) is and whether it may use pool `pool`.
 * APIKEY_OK: *out is the key (borrowed: valid until the next tick). */
apikey_verdict apikey_check(const char *secret, size_t len, const char *pool, apikey **out);
/* The one call for a request with a secret: check, then admit (see the
 * top comment).  AP_OK: r->key holds a reference and counts in flight;
 * AP_ERR: r->code, r->why, r->retry_after_ms say why not. */
int apikey_gate(const char *secret, size_t len, const char *pool, uint64_t now_ms, apikey_result *r);
/* The message of key k ended: one fewer in flight, its reference gone.
 * NULL is harmless. */
void apikey_release(apikey *k);
/* Charges n usage tokens (tokens_in + tokens_out) to k's tokensPerMinute. */
void apikey_charge(apikey *k, uint64_t n, uint64_t now_ms);

/* The key's id (as in the file) and its messages in flight now. */
const char *apikey_id(const apikey *k);
uint32_t apikey_inflight(const apikey *k);
/* Keys in the current set. */
unsigned apikey_count(void);

#endif
