/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sstore_rspec.h - the Redis session store's address: parses what
 * follows "redis://" in a sessionStore spec, HOST[:PORT][/DB].  Pure
 * (no socket, no DNS, no allocation); sstore.c checks specs with it and
 * sstore_redis.c connects by it.
 *
 * HOST is a numeric address only: an IPv4 dotted quad, an IPv6 address
 * in brackets ("[::1]"), or "localhost" (taken as 127.0.0.1).  Names are
 * refused here, at configuration time, because resolving one could
 * block the master's loop (getaddrinfo waits on DNS); with numeric
 * addresses hiredis's own getaddrinfo returns at once.  PORT defaults to
 * 6379, DB to 0.  No user or password (AUTH is not supported).
 */
#ifndef AP_SSTORE_RSPEC_H
#define AP_SSTORE_RSPEC_H

#include <stddef.h>

/* INET6_ADDRSTRLEN (46) and a NUL. */
#define SSTORE_RSPEC_HOST_MAX 48
#define SSTORE_RSPEC_DEFAULT_PORT 6379
/* The highest database number accepted (Redis itself refuses one past
 * its `databases` setting, at connect). */
#define SSTORE_RSPEC_DB_MAX 1000000

typedef struct {
    char host[SSTORE_RSPEC_HOST_MAX]; /* numeric, without brackets: what hiredis connects to */
    int ipv6;                         /* host is an IPv6 address (written in brackets in addresses) */
    int port;                         /* 1..65535 */
    int db;                           /* 0..SSTORE_RSPEC_DB_MAX */
} sstore_rspec;

/* Parses rest (the spec after "redis://") into *out.  AP_OK, or AP_ERR
 * with err saying what is wrong, quoting the whole spec
 * ("sessionStore 'redis://db.example:6379': 'db.example' is not a
 * numeric address ..."); *out is then undefined. */
int sstore_rspec_parse(const char *rest, sstore_rspec *out, char *err, size_t errlen);

/* Writes "HOST:PORT/DB" ("[::1]:6379/0") into buf: the form logs and
 * reasons name the server by.  Returns snprintf's count. */
int sstore_rspec_format(const sstore_rspec *r, char *buf, size_t cap);

#endif
