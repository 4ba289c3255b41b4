/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * connlimit.h - who gets a connection when connections are scarce.
 *
 * Decided at accept, after the peer check (privs.c) and before
 * client.c takes the socket, from the peer's SO_PEERCRED: a connection
 * over maxConnections is refused; past maxConnections minus
 * adminReserveConnections only administrators (privs_peer_is_admin) get
 * in, so `agentpoolctl health` works on a full socket; a uid that holds
 * maxConnectionsPerUid connections (when not 0) is refused its next one.
 * Refusals are too_many_connections lines through refuse.c, counted in
 * server.stats (conns_rejected, and conns_rejected_uid for the per-uid
 * limit).  Owns the per-uid connection counts: client.c calls
 * connlimit_add/connlimit_del as connections open and close.  Never
 * looks a name up, never blocks.
 */
#ifndef AP_CONNLIMIT_H
#define AP_CONNLIMIT_H

#include <sys/types.h>

/* At accept: returns 1 when fd was refused (its line sent, fd taken over
 * by refuse.c, counted and logged), 0 when client_accept may have it.
 * uid is (uid_t)-1 when SO_PEERCRED failed (one shared count). */
int connlimit_refuse(int fd, uid_t uid, gid_t gid);
/* A connection of uid opened / closed (every client_accept and close). */
void connlimit_add(uid_t uid);
void connlimit_del(uid_t uid);
/* Connections uid holds now (tests, logs). */
int connlimit_count(uid_t uid);
/* At exit: frees the counts. */
void connlimit_free(void);

#endif
