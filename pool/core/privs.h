/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * privs.h - who agentpoold runs as, and who may talk to it.
 *
 * Dropping: `user` (and optionally `group`) name the identity a master
 * started as root takes once everything that needs root is open (the
 * socket, the metrics listener, log and dead-letter files).  Socket files
 * are created as that user and group (privs_as_user around bind, with the
 * umask giving their final mode), never chowned or chmod-ed by path: the
 * user may own their directory and could swap a path for a symbolic link
 * between a bind and a later call by path.  Then supplementary groups,
 * gid and uid are all set (real, effective and saved), and agentpoold
 * checks that it cannot get root back.  Workers are forked after the drop,
 * so they never run as root.  With `workerUser` (and `workerGroup`) the
 * workers switch to that identity between fork and exec instead, so
 * agent code cannot signal or ptrace its master; a master that drops to
 * `user` keeps CAP_SETUID and CAP_SETGID (permitted only) to start them
 * and CAP_KILL to signal them.  Started as root without `user`, agentpoold
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
 * requests (control.c marks them) and the connections kept in reserve
 * (connlimit.c); with neither set, root and the uid the master serves as
 * (`user` after the drop) are the admins, never `workerUser`: agent code
 * is no administrator.  Resolved like the allowed lists, at start and
 * reload, never at a request.
 *
 * Called from main.c (init), server.c (drop, free), reload.c (a new
 * config's lists and workerUser), listener.c (each accept), connlimit.c
 * (the admin reserve), control.c (admin requests) and worker.c (each
 * spawn: who the worker becomes).
 */
#ifndef AP_PRIVS_H
#define AP_PRIVS_H

#include "config.h"
#include "wenv.h"

#include <stddef.h>
#include <sys/types.h>

/* Resolves user, group, workerUser, workerGroup, allowedUids,
 * allowedGids, adminUids and adminGids to numbers.  With check_only
 * (--check-config) it stops there and keeps nothing; otherwise it also
 * decides whether a drop will happen: AP_ERR with err filled when `user`
 * is set and we are neither root nor already that user (and group), or
 * `workerUser` names someone we cannot start processes as.  A failure is
 * a configuration error (exit 2). */
int privs_init(const config *cfg, int check_only, char *err, size_t errlen);
/* Started as root with `user`, before the drop: sets the effective uid,
 * gid and supplementary groups to the user's (the real and saved ids stay
 * root's), so what is created now is born owned by user:group.  Nothing
 * otherwise (not root, no `user`, already on).  AP_ERR with err filled
 * and the ids unchanged when a call fails. */
int privs_as_user(char *err, size_t errlen);
/* Undoes privs_as_user (nothing if it was not in force).  Cannot fail
 * while the saved uid is 0; if it does anyway, logs and exits 1. */
void privs_as_root(void);
/* The uid files opened before the drop may belong to besides root and
 * us: the user when a drop is due, else AP_SAFEFILE_NOBODY_ELSE. */
uid_t privs_service_uid(void);
/* The group the dead-letter file is handed to with that user, else -1. */
gid_t privs_service_gid(void);
/* "nobody (uid 65534, gid 65534)" when a drop is due, else NULL. */
const char *privs_user_shown(void);
/* Started as root with `user`: drops supplementary groups,
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
 * unknown: never an admin) may make admin requests, else 0: in adminUids,
 * or by primary gid in adminGids; with neither set, uid 0 or the
 * master's own uid.  Never looks a name up. */
int privs_peer_is_admin(uid_t uid, gid_t gid);
/* For a reload, before nc is put in force: resolves nc's
 * allowedUids/allowedGids/adminUids/adminGids and workerUser/workerGroup
 * (the only name lookups after start-up) and keeps them, so the next
 * accept, admin check or spawn switches to them without a lookup.
 * AP_ERR (why in err) when one names a user or group that does not
 * resolve (or a workerUser this master cannot start processes as), so
 * the reload is refused rather than the socket left open or closed by
 * surprise; nothing kept then. */
int privs_check_reload(const config *nc, char *err, size_t errlen);
/* Before each worker's fork: who the worker must become (workerUser and
 * workerGroup of cfg, resolved at start or by the reload that put cfg
 * in force), for wenv_apply_child; ->set is 0 when the worker keeps the
 * master's identity.  NULL only if cfg's workerUser was never resolved
 * (a bug): the caller must not fork then.  The result is valid until the
 * next call. */
const wenv_ident *privs_worker_ident(const config *cfg);
/* Frees what privs_init resolved. */
void privs_free(void);

#endif
