/*
 * ap_log.h - one logging function for master and workers.
 *
 * Every line carries time, level, pid and role ("master", "worker-3"),
 * and is written with a single write(2) so lines from several processes
 * sharing stderr never interleave mid-line.  Lines longer than
 * AP_LOG_LINE_MAX are truncated, never split.
 */
#ifndef AP_LOG_H
#define AP_LOG_H

#include "ap_common.h"

typedef enum { AP_LOG_DEBUG = 0, AP_LOG_INFO, AP_LOG_WARN, AP_LOG_ERROR, AP_LOG_CRIT } ap_log_level;

#define AP_LOG_LINE_MAX 4096

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
 * file.  AP_ERR with the reason ("open(PATH): ...") in err, nothing
 * changed. */
int ap_log_open_file(const char *path, char *err, size_t errlen);
/* Reopens the log file by its path (after logrotate renamed it).  No-op
 * AP_OK without a log file.  AP_ERR when it cannot: the old file stays
 * in use and the error (with errno text) is logged. */
int ap_log_reopen(void);
/* The log file's path, or NULL when logging to the inherited fd. */
const char *ap_log_file(void);

/* Rate limit per call site (the format string's address): at most burst
 * lines per interval_ms window; the rest are counted and reported as one
 * "(N similar lines suppressed ...)" line at the site's next line after
 * the window, or by ap_log_ratelimit_tick().  burst 0: off (the
 * default).  CRIT lines and ap_log_block() are never limited.  Resets
 * the table. */
void ap_log_set_ratelimit(unsigned burst, unsigned interval_ms);
/* Reports suppressed counts of windows that have ended (all != 0: of
 * every site, at exit).  Call it periodically. */
void ap_log_ratelimit_tick(int all);

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
