/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * listener.h - the Unix socket clients connect to.
 *
 * listener_open() binds before any worker is forked, so a second server
 * on the same path is refused before it costs anything: a socket file
 * that answers connect() belongs to a live server (refuse to start); one
 * that refuses is stale, left by a dead server, and is replaced (with
 * socket activation, systemd's socket is used instead and never
 * unlinked).  Accept is a libevent evconnlistener: a peer that
 * allowedUids/allowedGids do not admit (privs.c), and a connection over
 * maxConnections, its admin reserve or maxConnectionsPerUid
 * (connlimit.c), are counted and turned away by refuse.c (one error
 * line, then a bounded linger); the rest go to client.c.  When accept()
 * fails (EMFILE: out of descriptors), accepting pauses for 100 ms
 * instead of spinning, logged at most once a second.
 */
#ifndef AP_LISTENER_H
#define AP_LISTENER_H

#include "config.h"

#include <stddef.h>

/* Binds a non-blocking, close-on-exec Unix stream socket at path with
 * permissions `mode`, listening with `backlog`.  The file is created with
 * that mode and, started as root with `user`, owned by user:group
 * (privs_as_user): never chmod-ed or chowned by path.  A stale socket file is
 * replaced, a live one (or a file that is not a socket) refused.  Returns
 * the descriptor, or -1 with err filled (the path, the call that failed
 * and errno text) and no file left behind by this call. */
int listener_bind_unix(const char *path, long mode, int backlog, char *err, size_t errlen);
/* A listening, non-blocking TCP socket on la (SO_REUSEADDR; IPv6 only
 * for an IPv6 address).  Returns the descriptor, or -1 with err filled
 * ("SETTING SHOWN: bind(): errno text"). */
int listener_bind_tcp(const config_listen_addr *la, const char *setting, const char *shown, int backlog, char *err,
                      size_t errlen);
/* "127.0.0.1:9464" / "[::1]:9464": the address fd is bound to, with the
 * port actually bound (a port 0 asked for any). */
void listener_describe_tcp(int fd, char *buf, size_t cap);
/* Binds and listens on cfg->socket.  AP_ERR with err filled (the path,
 * the call that failed and errno text) when it cannot. */
int listener_open(char *err, size_t errlen);
/* Starts accepting connections (after the event base exists). */
int listener_start(void);
/* Stops accepting and removes the socket file (idempotent). */
void listener_close(void);

#endif
