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

void ap_log(ap_log_level level, const char *fmt, ...) AP_PRINTF(2, 3);
/* Writes a multi-line block (a Python traceback) line by line, each with
 * the usual prefix. */
void ap_log_block(ap_log_level level, const char *prefix, const char *text, size_t len);

#define ap_debug(...) ap_log(AP_LOG_DEBUG, __VA_ARGS__)
#define ap_info(...) ap_log(AP_LOG_INFO, __VA_ARGS__)
#define ap_warn(...) ap_log(AP_LOG_WARN, __VA_ARGS__)
#define ap_error(...) ap_log(AP_LOG_ERROR, __VA_ARGS__)

#endif
