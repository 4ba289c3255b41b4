/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sdnotify.h - systemd's notify protocol and socket activation, spoken
 * directly (no libsystemd).
 *
 * Notify: when $NOTIFY_SOCKET names a Unix datagram socket (a path, or
 * an abstract name written "@name"), the master sends it READY=1 once
 * every initial worker is ready, a STATUS= line with the pool's counts
 * (at most every SDNOTIFY_STATUS_MS, only when it changed), RELOADING=1
 * while a rolling reload runs and READY=1 after it, STOPPING=1 when a
 * shutdown starts, and WATCHDOG=1 at half of $WATCHDOG_USEC.  Without
 * $NOTIFY_SOCKET every call is a no-op.  Sends never block: a datagram
 * systemd cannot take at once is dropped (the next STATUS replaces it).
 *
 * Activation: with $LISTEN_PID equal to our pid and $LISTEN_FDS >= 1,
 * fd 3 is the listening socket: checked (AF_UNIX, SOCK_STREAM,
 * listening), made non-blocking and close-on-exec, and used instead of
 * binding; its file is systemd's, so agentpoold never unlinks it.
 *
 * The master's environment is left as it is; wenv.c keeps NOTIFY_SOCKET,
 * LISTEN_* and WATCHDOG_* away from the workers.  Called from main.c
 * (init, ready, stopping, tick) and listener.c (the passed socket).
 */
#ifndef AP_SDNOTIFY_H
#define AP_SDNOTIFY_H

#include <stddef.h>
#include <stdint.h>

/* The first descriptor systemd passes (SD_LISTEN_FDS_START). */
#define SDNOTIFY_LISTEN_FDS_START 3
/* STATUS= lines are sent at most this often (and only when changed). */
#define SDNOTIFY_STATUS_MS 2000

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC and opens the datagram socket.
 * Never fails: a bad $NOTIFY_SOCKET is logged and notifying is off. */
void sdnotify_init(void);
/* The socket passed by socket activation, if any.  *fd_out is the
 * descriptor (>= 0) or -1 when agentpoold was not socket-activated.
 * want_path is the configured socket: a passed socket bound elsewhere is
 * used anyway, with a warning.  AP_ERR with err filled when $LISTEN_PID
 * is ours but fd 3 is not a listening Unix stream socket. */
int sdnotify_listen_fd(int *fd_out, const char *want_path, char *err, size_t errlen);
/* READY=1 with the first STATUS= line (the pool became ready). */
void sdnotify_ready(void);
/* STOPPING=1 (a shutdown started). */
void sdnotify_stopping(void);
/* From the master's periodic tick: watchdog pings, STATUS= updates, and
 * RELOADING=1 / READY=1 around a rolling reload. */
void sdnotify_tick(uint64_t now_ms);
/* Closes the datagram socket. */
void sdnotify_free(void);
/* Sends one notify datagram (lines of KEY=VALUE).  AP_ERR when notifying
 * is off or the datagram could not be sent now (nothing is retried). */
int sdnotify_send(const char *text);

#endif
