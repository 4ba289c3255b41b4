/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpauth.h - who may use the HTTP front door: the one check every
 * HTTP request passes before it is served (httpfront.c calls it).
 *
 * httpAuth "keys" (the default): a request on a TCP listener must carry
 * an API key (Authorization: Bearer) of apiKeysFile (apikey.h: its pool
 * rights, limits and accounting); a TCP httpListen with httpAuth "keys"
 * and no apiKeysFile refuses to start, so no request is ever served
 * unauthenticated by mistake.  httpAuth "none": no key is asked for
 * (logged as a warning at start).  A unix: listener is guarded by its
 * socket file's permissions (socketMode) and needs no key; a key sent
 * there still applies (metered, as on the NDJSON socket).
 * State: none.  Never blocks, never logs a secret.
 */
#ifndef AP_HTTPAUTH_H
#define AP_HTTPAUTH_H

#include <stddef.h>

struct http1_req;
struct pool;

/* At start, with whether any httpListen address is TCP: AP_OK (a warning
 * logged for httpAuth "none" on TCP), or AP_ERR with err filled when
 * TCP listeners would need keys and no apiKeysFile is set. */
int httpauth_start(int has_tcp, char *err, size_t errlen);
/* For a message: *secret and *len the Bearer secret (NULL when none), to go
 * into the request line as its "key" (the key gate checks it there);
 * 0, or 401 (why filled) when a key is needed and none was given. */
int httpauth_message(struct http1_req *req, int tcp, const char **secret, size_t *len, char *why, size_t cap);
/* Whether req may use pool p (NULL: a request about no one pool, such as
 * GET /v1/pools).  tcp: it came on a TCP listener.  Returns 0 (allowed),
 * 401 (no key, or one not known) or 403 (a key that may not use p), with
 * why filled for the answer. */
int httpauth_check(struct http1_req *req, int tcp, const struct pool *p, char *why, size_t cap);

#endif
