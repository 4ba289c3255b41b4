/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wenv.h - the environment a worker process starts in.
 *
 * Settings: `workerUser`/`workerGroup` (the identity the worker
 * switches to, resolved by privs.c), `env` (an allow-list: NAME copies the master's value if it
 * has one, NAME=VALUE sets it; everything else is removed before Python
 * starts), `chdir`, `umask`, and `workerLimits` (address space, open
 * files, core size: soft and hard limit both, so agent code cannot raise
 * them).  Whatever the settings, a worker never sees systemd's variables
 * meant for the master (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*), and always
 * gets AGENTPOOL_WORKER_ID.
 *
 * Split in two around fork(): wenv_build_envp() runs in the master
 * before fork and does all the allocating; wenv_apply_child() runs in
 * the child between fork and execve and makes async-signal-safe calls
 * only.  A failure in the child is sent to the master as a START_FAILED
 * frame ("the worker environment could not be set up: chdir(/x): No such
 * file or directory"; on stderr if the frame cannot be written) and the
 * child exits with WENV_EXIT_FAILED, which the master shows as a failure
 * to start.  Called from worker.c only.
 */
#ifndef AP_WENV_H
#define AP_WENV_H

#include "config.h"

#include <stdint.h>
#include <sys/types.h>

/* Who a worker becomes between fork and exec (workerUser/workerGroup,
 * resolved by privs.c before the fork).  set 0: it keeps the master's. */
typedef struct {
    int set;
    uid_t uid;
    gid_t gid;
    const gid_t *groups;        /* supplementary groups, ngroups of them */
    int ngroups;
    int raise_caps;             /* the master is not root: raise the CAP_SETUID/CAP_SETGID it kept first */
    int drop_caps;              /* the master kept capabilities (for workerUser): drop them all, set or not */
} wenv_ident;

/* Bit of capability c in a wenv_caps_set mask. */
#define WENV_CAP(c) ((uint64_t)1 << (c))

/* Exit status of a child whose environment could not be set up
 * (sysexits' EX_OSERR). */
#define WENV_EXIT_FAILED 71

/* The worker's envp: pointers into parent_env and cfg (not copied) plus
 * worker_id_var ("AGENTPOOL_WORKER_ID=worker-3"), NULL-terminated.  The
 * array is allocated (ap_free it after fork); never fails. */
char **wenv_build_envp(const config *cfg, char *const *parent_env, char *worker_id_var);
/* In the child after fork, before execve: umask, setrlimit, the switch
 * to id (supplementary groups, gid, uid; then no capabilities left, in
 * any set), chdir (as the new identity).  The capabilities a master
 * kept for workerUser are dropped even when id->set is 0 (a reload
 * removed workerUser); otherwise capabilities are left as they are.  Returns only on
 * success; on failure reports on report_fd (the worker's socketpair end)
 * and _exits with WENV_EXIT_FAILED.  The caller must set
 * PR_SET_PDEATHSIG again after it: a change of ids clears it. */
void wenv_apply_child(const config *cfg, const wenv_ident *id, int report_fd);
/* Sets this thread's permitted and effective capabilities to these masks
 * (WENV_CAP bits), inheritable to none; async-signal-safe.  Returns 0, or
 * -1 with errno set. */
int wenv_caps_set(uint64_t permitted, uint64_t effective);

#endif
