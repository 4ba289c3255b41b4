/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * addr.h - where the benchmark connects: a Unix socket path, a TCP
 * host:port or a redis:// broker, resolved once at start-up, and a
 * non-blocking connect to the first two (bench/bq.c connects to a broker).
 *
 * Resolution (getaddrinfo) blocks, which is fine before the event loop
 * starts; addr_connect() never blocks.  Errors name the call that failed
 * and the errno text, captured at once.
 */
#ifndef BENCH_ADDR_H
#define BENCH_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

typedef struct {
    struct sockaddr_storage sa;
    socklen_t len;
    int family;        /* AF_UNIX, AF_INET or AF_INET6 */
    char desc[300];    /* "unix:/path" or "tcp:host:port", for reports */
    char host[280];    /* HTTP Host header value; a broker: its numeric address */
    int broker;        /* a redis:// broker (bench/bq.c): host, port, db */
    int port, db;
} addr_target;

/* Fills a for the Unix socket at path.  Returns AP_OK, or AP_ERR with err
 * set (empty or too long a path) and a unspecified. */
int addr_unix(addr_target *a, const char *path, char *err, size_t errlen);
/* Fills a for "HOST:PORT" ("[v6]:PORT" for IPv6 literals), resolving the
 * host (first address returned).  Returns AP_OK, or AP_ERR with err set. */
int addr_tcp(addr_target *a, const char *hostport, char *err, size_t errlen);
/* Fills a for the broker "redis://HOST[:PORT][/DB]" (port 6379 and db 0
 * by default), resolving the host to a numeric address once.  Returns
 * AP_OK, or AP_ERR with err set. */
int addr_redis(addr_target *a, const char *url, char *err, size_t errlen);
/* Starts a non-blocking connect.  Returns the descriptor (close-on-exec,
 * non-blocking, TCP_NODELAY for TCP) with *in_progress set when the
 * connect completes later (wait for writability, then addr_finish()), or
 * -1 with err set and errno kept. */
int addr_connect(const addr_target *a, int *in_progress, char *err, size_t errlen);
/* After a connect in progress became writable: AP_OK when it succeeded,
 * else AP_ERR with err set and errno set to the connect error. */
int addr_finish(const addr_target *a, int fd, char *err, size_t errlen);

#endif
