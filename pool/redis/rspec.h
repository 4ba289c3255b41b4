/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rspec.h - a Redis server's address: parses what follows "redis://"
 * (a sessionStore spec, the broker's url), HOST[:PORT][/DB].  Pure (no
 * socket, no DNS, no allocation); sstore.c and brokercfg.c check
 * addresses with it, rlink.c connects by it.
 *
 * HOST is a numeric address only: an IPv4 dotted quad, an IPv6 address
 * in brackets ("[::1]"), or "localhost" (taken as 127.0.0.1).  Names are
 * refused here, at configuration time, because resolving one could
 * block the master's loop (getaddrinfo waits on DNS); with numeric
 * addresses hiredis's own getaddrinfo returns at once.  PORT defaults to
 * 6379, DB to 0.  No user or password (AUTH is not supported).
 */
#ifndef AP_RSPEC_H
#define AP_RSPEC_H

#include <stddef.h>

/* INET6_ADDRSTRLEN (46) and a NUL. */
#define RSPEC_HOST_MAX 48
#define RSPEC_DEFAULT_PORT 6379
/* The highest database number accepted (Redis itself refuses one past
 * its `databases` setting, at connect). */
#define RSPEC_DB_MAX 1000000

typedef struct {
    char host[RSPEC_HOST_MAX]; /* numeric, without brackets: what hiredis connects to */
    int ipv6;                         /* host is an IPv6 address (written in brackets in addresses) */
    int port;                         /* 1..65535 */
    int db;                           /* 0..RSPEC_DB_MAX */
} rspec;

/* Parses rest (the spec after "redis://") into *out.  AP_OK, or AP_ERR
 * with err saying what is wrong, naming the setting (what) and quoting
 * the whole spec
 * ("sessionStore 'redis://db.example:6379': 'db.example' is not a
 * numeric address ..."); *out is then undefined. */
int rspec_parse(const char *what, const char *rest, rspec *out, char *err, size_t errlen);

/* Writes "HOST:PORT/DB" ("[::1]:6379/0") into buf: the form logs and
 * reasons name the server by.  Returns snprintf's count. */
int rspec_format(const rspec *r, char *buf, size_t cap);

#endif
