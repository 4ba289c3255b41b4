/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reload.h - rolling reload (SIGHUP, pool.reload), of every pool or of one.
 *
 * The config file is read again and validated with the same command-line
 * flags over it; an invalid one aborts the reload and the running
 * settings stay.  Settings that cannot change without a restart (the
 * socket, a pool's table sizes, ...) keep their running values and are
 * reported.  Then the pools are reloaded one after another: each pool's
 * workers are replaced by fresh processes that import its agent anew, one
 * at a time, make before break (the recycle hand-over); a pool new in the
 * config is started, a pool gone from it drains and stops.  If a pool's
 * new workers cannot start, that pool's reload is aborted: its old
 * workers keep serving with its old settings, and the other pools are
 * reloaded all the same; the answer names the pools that failed, with the
 * traceback.  A bad deploy never takes a pool down.
 */
#ifndef AP_RELOAD_H
#define AP_RELOAD_H

#include <stddef.h>
#include <stdint.h>

struct pool;
struct worker;

/* Starts a reload of every pool (pool NULL) or of the pool named pool.
 * waiter_serial/id: the pool.reload request to answer when it ends
 * (serial 0: nobody, e.g. SIGHUP).  On a refusal (bad config, another
 * reload running, an unknown pool) the waiter is answered at once. */
void reload_start(const char *why, const char *pool, uint64_t waiter_serial, const char *id, size_t id_len);
/* Periodic and after each hand-over: the next worker, the next pool. */
void reload_step(void);
/* A replacement of p's died before it was ready (its traceback, if any,
 * was logged and kept): aborts p's reload if it is in progress. */
void reload_replacement_failed(struct pool *p);
/* Keeps w's start-up traceback, for pool.reload's error (when w's pool
 * is being reloaded). */
void reload_note_start_failure(const struct worker *w, const char *text, size_t len);
int reload_in_progress(void);
/* Remembers argv, so a reload reads the config file with the same flags. */
void reload_init(int argc, char **argv);
void reload_free(void);

#endif
