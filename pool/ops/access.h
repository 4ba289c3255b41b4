/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * access.h - the master's log files: logFile, the access log, SIGUSR1.
 *
 * access_start() puts the master's log on logFile (when set), turns on
 * the per-call-site rate limit of its own lines, and opens accessLog.
 * The access log gets one line per message answered to a client (ok or
 * any error, including lines refused before they became messages), in
 * text or JSON lines like the main log.  Lines go into a bounded buffer
 * (ACCESS_BUF_MAX) written with one non-blocking write(2) when it is
 * full or at the next tick (every 100 ms), and at exit (waiting at most
 * AP_LOG_EXIT_FLUSH_MS); a line that finds the buffer full while writes
 * fail or would wait is dropped and counted, never waited for.
 * access_loop_start() makes the master's own log non-blocking too
 * (common/log.c's buffer, written when an EV_WRITE event says the fd
 * takes more).
 * SIGUSR1 reopens both files by name (logrotate: rename, then signal).
 * server.access is NULL while the access log is off, so callers pay one
 * branch: `if (server.access) access_msg(m, code);`.
 */
#ifndef AP_ACCESS_H
#define AP_ACCESS_H

#include "config.h"
#include "reply.h"

#include <stddef.h>
#include <stdint.h>

struct msg;
struct client;

#define ACCESS_BUF_MAX (64 * 1024)
/* Ids longer than this are cut (and marked "...") in access lines. */
#define ACCESS_ID_MAX 256
/* Lines per call site per window before the master's log suppresses. */
#define ACCESS_RATELIMIT_BURST 100
#define ACCESS_RATELIMIT_INTERVAL_MS 10000

/* Opens cfg's logFile (the log moves there) and accessLog, and sets the
 * log's rate limit.  AP_ERR (logged) when a file cannot be opened: the
 * caller exits.  Call once, after `server` is initialised. */
int access_start(const config *cfg);
/* Once the event loop exists: the master's log stops blocking (its
 * lines wait in common/log.c's bounded buffer for an EV_WRITE event on
 * the log fd; full: dropped and counted). */
void access_loop_start(void);
/* Before the event loop is freed: the log forgets its event; what still
 * waits is written at exit (bounded, see ap_log_async_start). */
void access_loop_stop(void);
/* Lines of the master's log dropped because its fd could not take them
 * (pool.stats logWriteDropped), and access lines dropped because the
 * access log could not (accessLogDropped); both since start. */
uint64_t access_log_dropped(void);
uint64_t access_access_dropped(void);
/* SIGUSR1: reopens the log file and the access log by their paths.  A
 * file that cannot be reopened is logged and the old one kept. */
void access_reopen_logs(void);
/* The periodic tick: writes buffered access lines, reports suppressed
 * log lines whose window ended. */
void access_tick(uint64_t now_ms);
/* At exit: writes what is buffered, reports every suppressed count,
 * closes the access log. */
void access_stop(void);

/* One access line for m, being answered now: code < 0 for ok, else its
 * reply_code.  Call only while server.access is set and m->client is
 * the connection it is answered on. */
void access_msg(const struct msg *m, int code);
/* One access line for a request answered before it became a message:
 * id (raw JSON, id_len 0: null) and type (NULL: unknown). */
void access_reject(const struct client *c, const char *id, size_t id_len, const char *type, reply_code code);

#endif
