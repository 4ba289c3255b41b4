/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reload.h - rolling reload (SIGHUP, pool.reload).
 *
 * The config file is read again and validated with the same command-line
 * flags over it; an invalid one aborts the reload and the running
 * settings stay.  Settings that cannot change without a restart (the
 * socket, the table sizes, ...) keep their running values and are
 * reported.  Then every worker is replaced by a fresh process that
 * imports the agent anew, one at a time, make before break (the recycle
 * hand-over).  If a new worker cannot start, the reload is aborted: the
 * old workers keep serving, the old settings come back, and whoever asked
 * gets the traceback.  A bad deploy never takes the pool down.
 */
#ifndef AP_RELOAD_H
#define AP_RELOAD_H

#include <stddef.h>
#include <stdint.h>

/* Starts a reload.  waiter_serial/id: the pool.reload request to answer
 * when it ends (serial 0: nobody, e.g. SIGHUP).  On a refusal (bad
 * config, a reload already running) the waiter is answered at once. */
void reload_start(const char *why, uint64_t waiter_serial, const char *id, size_t id_len);
/* Periodic and after each hand-over: replaces the next worker. */
void reload_step(void);
/* A replacement died before it was ready (its traceback, if any, was
 * logged and kept): aborts a reload in progress. */
void reload_replacement_failed(void);
/* Keeps the last start-up traceback, for pool.reload's error. */
void reload_note_start_failure(const char *text, size_t len);
int reload_in_progress(void);
/* Remembers argv, so a reload reads the config file with the same flags. */
void reload_init(int argc, char **argv);
void reload_free(void);

#endif
