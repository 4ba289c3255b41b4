/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * httpauth.h - who may use the HTTP front door: the one check every
 * HTTP request passes before it is served (httpfront.c calls it).
 *
 * httpAuth "keys" (the default): a request on a TCP listener must carry
 * an API key (Authorization: Bearer; the key file, its limits and its
 * accounting are their own module, still to come: until it exists a TCP
 * httpListen with httpAuth "keys" refuses to start, so no request is
 * ever served unauthenticated by mistake).  httpAuth "none": no key is
 * asked for (logged as a warning at start).  A unix: listener is guarded
 * by its socket file's permissions (socketMode) and needs no key.
 * State: none.  Never blocks, never logs a secret.
 */
#ifndef AP_HTTPAUTH_H
#define AP_HTTPAUTH_H

#include <stddef.h>

struct evhttp_request;
struct pool;

/* At start, with whether any httpListen address is TCP: AP_OK (a warning
 * logged for httpAuth "none" on TCP), or AP_ERR with err filled when
 * TCP listeners would need keys that nothing can check yet. */
int httpauth_start(int has_tcp, char *err, size_t errlen);
/* Whether req may use pool p (NULL: a request about no one pool, such as
 * GET /v1/pools).  tcp: it came on a TCP listener.  Returns 0 (allowed),
 * 401 (no key, or one not known) or 403 (a key that may not use p), with
 * why filled for the answer. */
int httpauth_check(struct evhttp_request *req, int tcp, const struct pool *p, char *why, size_t cap);

#endif
