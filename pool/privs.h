/*
 * privs.h - who agentpoold runs as, and who may talk to it.
 *
 * Dropping: `user` (and optionally `group`) name the identity a master
 * started as root takes once everything that needs root is open (the
 * socket, the metrics listener, log and dead-letter files).  The socket
 * file is chowned to that user and group first, so the clients
 * socketMode lets in can still connect; then supplementary groups, gid
 * and uid are all set (real, effective and saved), and agentpoold checks
 * that it cannot get root back.  Workers are forked after the drop, so
 * they never run as root.  Started as root without `user`, agentpoold
 * warns that its workers run as root.  Not root: `user`/`group` must
 * already be ours, else start-up fails as a configuration error (exit 2).
 *
 * Peers: with allowedUids or allowedGids set, a connection whose peer
 * (SO_PEERCRED) has neither an allowed uid nor an allowed primary gid is
 * told `forbidden` in one error line, closed and counted
 * (connectionsTotal.refusedPeers).  uid 0 has no exemption.  Names are
 * resolved at start and when a reload is checked (privs_check_reload),
 * never at accept: a name that does not resolve refuses the reload, and
 * the running lists stay.
 *
 * Admins: adminUids / adminGids name the peers allowed the admin pool.*
 * requests (control.c marks them); with neither set, root and the uid
 * agentpoold serves as (after the drop) are the admins.  Resolved like
 * the allowed lists, at start and reload, never at a request.
 *
 * Called from main.c (init), server.c (drop, free), reload.c (a new
 * config's lists), listener.c (each accept) and control.c (admin
 * requests).
 */
#ifndef AP_PRIVS_H
#define AP_PRIVS_H

#include "config.h"

#include <stddef.h>
#include <sys/types.h>

/* Resolves user, group, allowedUids and allowedGids to numbers.  With
 * check_only (--check-config) it stops there and keeps nothing;
 * otherwise it also decides whether a drop will happen: AP_ERR with err
 * filled when `user` is set and we are neither root nor already that
 * user (and group).  A failure is a configuration error (exit 2). */
int privs_init(const config *cfg, int check_only, char *err, size_t errlen);
/* Started as root with `user`: chowns the socket file (and a unix:
 * metricsListen socket) to user:group, then drops supplementary groups,
 * gid and uid, and verifies setuid(0) fails and the worker binary is
 * still executable.  Not root, or no `user`: nothing (root without
 * `user` is warned about).  AP_ERR with err filled on any failure: the
 * caller exits 1. */
int privs_drop(char *err, size_t errlen);
/* At accept: returns 1 when fd's peer is not allowed (it was sent the
 * forbidden line, fd is closed and the refusal counted), 0 to go on.
 * Never looks a name up. */
int privs_refuse_peer(int fd);
/* 1 when a peer with these credentials (SO_PEERCRED; (uid_t)-1 when
 * unknown: never an admin) may make admin requests, else 0.  Never looks
 * a name up. */
int privs_peer_is_admin(uid_t uid, gid_t gid);
/* For a reload, before nc is put in force: resolves nc's
 * allowedUids/allowedGids/adminUids/adminGids (the only name lookups after start-up) and
 * keeps them, so the next accept switches to them without a lookup.
 * AP_ERR (why in err) when one names a user or group that does not
 * resolve, so the reload is refused rather than the socket left open or
 * closed by surprise; nothing kept then. */
int privs_check_reload(const config *nc, char *err, size_t errlen);
/* Frees what privs_init resolved. */
void privs_free(void);

#endif
