/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_log.h - one logging function for master and workers.
 *
 * Every line carries time, level, pid and role ("master", "worker-3"),
 * and is written with a single write(2) so lines from several processes
 * sharing stderr never interleave mid-line.  Lines longer than
 * AP_LOG_LINE_MAX are truncated, never split.  By default a line is
 * written at once (blocking); the master, once its event loop runs,
 * switches to non-blocking output through a bounded buffer
 * (ap_log_async_start).
 */
#ifndef AP_LOG_H
#define AP_LOG_H

#include "ap_common.h"

#include <sys/types.h>

typedef enum { AP_LOG_DEBUG = 0, AP_LOG_INFO, AP_LOG_WARN, AP_LOG_ERROR, AP_LOG_CRIT } ap_log_level;

#define AP_LOG_LINE_MAX 4096
/* Bytes of lines that may wait for a stalled log fd (non-blocking mode). */
#define AP_LOG_BUF_MAX (256 * 1024)
/* At exit, how long waiting lines may take to be written, in all. */
#define AP_LOG_EXIT_FLUSH_MS 1000

/* Sets the role printed on each line (copied) and the minimum level. */
void ap_log_init(const char *role, ap_log_level min_level);
void ap_log_set_level(ap_log_level min_level);
/* Switches to JSON lines (one object per event). */
void ap_log_set_json(int on);
/* Parses "debug" | "info" | "warn" | "error"; AP_ERR when unknown. */
int ap_log_parse_level(const char *s, ap_log_level *out);
/* Directs output to fd (default 2). */
void ap_log_set_fd(int fd);

/* Opens path (append, create 0640, close-on-exec) and dup2()s it onto
 * the log's fd (2 unless ap_log_set_fd said otherwise), so the log, and
 * anything else this process or a child writes to that fd, goes to the
 * file.  A symbolic link, a hard link, anything but a regular file, or a
 * file owned by another uid than root, ours or `trusted` (the service
 * user; AP_SAFEFILE_NOBODY_ELSE for none) is refused, now and at each
 * reopen (ap_safefile.h).  AP_ERR with the reason ("open(PATH): ...",
 * "PATH: is a symbolic link: refused") in err, nothing changed. */
int ap_log_open_file(const char *path, uid_t trusted, char *err, size_t errlen);
/* Reopens the log file by its path (after logrotate renamed it).  No-op
 * AP_OK without a log file.  AP_ERR when it cannot: the old file stays
 * in use and the error (with errno text) is logged. */
int ap_log_reopen(void);
/* The log file's path, or NULL when logging to the inherited fd. */
const char *ap_log_file(void);

/* Rate limit per call site (the format string's address) and message
 * (its text, runs of digits alike): at most burst lines of one message
 * per interval_ms window, and 4 x burst of one call site; the rest are
 * counted and reported as one "(N similar lines suppressed ...: "text")"
 * line at the next such line after the window, or by
 * ap_log_ratelimit_tick().  burst 0: off (the default).  CRIT lines and
 * ap_log_block() are never limited.  Resets the table. */
void ap_log_set_ratelimit(unsigned burst, unsigned interval_ms);
/* Reports suppressed counts of windows that have ended (all != 0: of
 * every site, at exit).  Call it periodically. */
void ap_log_ratelimit_tick(int all);

/* Called by the log when lines wait for fd to become writable (then call
 * ap_log_flush()), or with fd -1 before the fd it watched is closed. */
typedef void (*ap_log_arm_fn)(void *arg, int fd);
/* Non-blocking output from now on (the master, once its event loop
 * exists): a line the fd cannot take now waits in a buffer of
 * AP_LOG_BUF_MAX bytes, and arm(arg, fd) is called so that the caller
 * calls ap_log_flush() when fd is writable; a line that finds the buffer
 * full is dropped and counted.  Registers an atexit flush
 * (ap_log_flush_wait(AP_LOG_EXIT_FLUSH_MS)) and, for fork, a child
 * handler that drops the buffer.  Call again to change the hook. */
void ap_log_async_start(ap_log_arm_fn arm, void *arg);
/* Forgets the arm hook (calling it with -1 first): before the loop is
 * freed.  Lines still buffer; the atexit flush writes them. */
void ap_log_async_unhook(void);
/* Writes what waits without blocking; returns the bytes still waiting
 * (and has re-armed the hook for them). */
size_t ap_log_flush(void);
/* Writes what waits, waiting at most timeout_ms in all for the fd (at
 * exit); forgets the arm hook.  Returns the bytes left unwritten. */
size_t ap_log_flush_wait(unsigned timeout_ms);
/* Lines lost because the log fd could not take them (buffer full, write
 * error), since start. */
uint64_t ap_log_dropped(void);
/* Bytes waiting in the buffer now. */
size_t ap_log_waiting(void);

/* Writes the current UTC time as 2026-11-24T08:00:00.123Z into buf
 * (NUL-terminated); returns its length. */
size_t ap_log_timestamp(char *buf, size_t cap);

void ap_log(ap_log_level level, const char *fmt, ...) AP_PRINTF(2, 3);
/* Writes a multi-line block (a Python traceback) line by line, each with
 * the usual prefix. */
void ap_log_block(ap_log_level level, const char *prefix, const char *text, size_t len);
/* Writes a line that is already a complete log line in this format (a
 * worker's own, relayed by the master from its stderr pipe) as is, plus
 * the newline, with one write(2); at most AP_LOG_LINE_MAX + 256 bytes. */
void ap_log_relay(const char *line, size_t len);

#define ap_debug(...) ap_log(AP_LOG_DEBUG, __VA_ARGS__)
#define ap_info(...) ap_log(AP_LOG_INFO, __VA_ARGS__)
#define ap_warn(...) ap_log(AP_LOG_WARN, __VA_ARGS__)
#define ap_error(...) ap_log(AP_LOG_ERROR, __VA_ARGS__)

#endif
