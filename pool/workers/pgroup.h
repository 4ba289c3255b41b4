/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pgroup.h - ending the processes agent code starts.
 *
 * A worker's process group is SIGKILLed when the worker is found dead
 * (before it is reaped, so its group id cannot have been reused), and
 * signalled with it at shutdown; the master is a child subreaper, so a
 * process that left its group is re-parented to the master when its
 * parent dies, and killed by the next sweep.  Called from worker.c
 * (reaping, signalling) and server.c (start, exit).
 */
#ifndef AP_PGROUP_H
#define AP_PGROUP_H

#include <sys/types.h>

/* Makes the master a child subreaper (PR_SET_CHILD_SUBREAPER); a failure
 * is logged, not fatal. */
void pgroup_init(void);
/* Sends sig to the process group led by leader, which must be an
 * unreaped child of ours (alive or a zombie: its pid, so its group id,
 * cannot have been reused); to the leader alone when it has no group
 * yet.  AP_ERR (errno set) when neither could be signalled. */
int pgroup_kill(pid_t leader, int sig);
/* SIGKILLs every child of the master for which is_worker() is false: a
 * process an agent started, re-parented to us when its parent died.
 * Returns how many were signalled; they are reaped by the SIGCHLD loop.
 * Never blocks. */
int pgroup_sweep(int (*is_worker)(pid_t));
/* At exit, after the workers were reaped: sweeps and reaps until no
 * child is left (at most about a second); logs a warning if some are. */
void pgroup_sweep_final(int (*is_worker)(pid_t));

#endif
