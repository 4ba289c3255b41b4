/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wout.h - what worker processes write to stdout and stderr, into the
 * master's log.
 *
 * Each worker process gets three pipes, made by wout_pipes_open() before
 * the fork: the child puts their write ends on fd 1, 2 and AP_LOG_FD
 * (wout_pipes_child(), async-signal-safe), the master keeps the read ends
 * (non-blocking, close-on-exec) and reads them from the event loop
 * (wout_attach()) into one bounded line buffer per stream.  Each complete
 * line becomes one log line carrying the worker's name, pid and stream:
 *
 *   worker-2 (pid 1234) stdout: hello
 *
 * so output of different workers never interleaves mid-line.  Lines the
 * worker's own logging wrote on AP_LOG_FD (already in the log's format,
 * with this worker's role and pid) are relayed as they are; on stdout
 * and stderr nothing is, whatever it looks like.  The master always
 * reads everything, so a worker never blocks on a full pipe; past
 * workerLogRate lines per second (burst workerLogBurst) lines are
 * dropped, counted per slot and in total, and summarised in a warning at
 * most once a second per worker.  wout_detach() drains the pipes when
 * the process is gone and closes them.  Nothing here ever blocks, forks
 * or touches messages.
 */
#ifndef AP_WOUT_H
#define AP_WOUT_H

#include <stdint.h>
#include <sys/types.h>

struct evbuffer;
struct worker;
struct pool;

/* The two pipes of one process being spawned: [stream][0 read, 1 write]. */
typedef struct {
    int fd[3][2];               /* stdout, stderr, the worker's own log (AP_LOG_FD) */
} wout_pipes;

/* Sizes the per-entry state for the worker table (server.nworkers
 * entries).  Call once, after the table exists. */
void wout_init(struct pool *p);
/* Closes every pipe still open (without draining) and frees the state. */
void wout_free(struct pool *p);

/* Makes the pipes for w's next process: every end close-on-exec, the
 * read ends non-blocking, the write ends above fd 3.  AP_ERR (logged with
 * w's name) when pipe2 or fcntl failed; nothing is left open then. */
int wout_pipes_open(wout_pipes *p, const struct worker *w);
/* In the child between fork and exec (async-signal-safe): puts the write
 * ends on fd 1 and 2.  Returns -1 when dup2 failed. */
int wout_pipes_child(const wout_pipes *p);
/* Closes all four ends (the fork failed). */
void wout_pipes_close(wout_pipes *p);
/* In the master after a successful fork: closes the write ends and
 * starts reading the read ends for w (w->pid, w->name, w->slot must be
 * set).  AP_ERR (logged) when the events could not be made: the read
 * ends are closed, and the caller must kill the process, whose output
 * would go nowhere. */
int wout_attach(struct worker *w, wout_pipes *p);
/* w's process is gone: reads what is left in its pipes, logs a last
 * line that had no newline and the pending drop summary, closes the
 * pipes.  Does nothing when they are closed already. */
void wout_detach(struct worker *w);

/* Output lines dropped for slot w->slot since start (all its processes). */
uint64_t wout_dropped(const struct worker *w);
/* Output lines dropped for every worker of p since start. */
uint64_t wout_dropped_total(const struct pool *p);
/* Writes the agentpool_worker_log_lines_dropped_total family (by pool
 * and worker slot, for the slots that have had a process). */
void wout_prometheus(struct evbuffer *out);

#endif
