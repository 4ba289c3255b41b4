/*
 * log.c - the single logging function (see include/ap_log.h).
 *
 * Each line is formatted into a stack buffer and written with one
 * write(2), so master and workers sharing a descriptor never interleave
 * mid-line.  Text format:
 *   2026-11-24T08:00:00.123Z INFO  [master 1234] message
 * JSON format: {"ts":"...","level":"info","role":"master","pid":1234,"msg":"..."}
 * The state here (role, level, fd) is set once at start-up by each
 * process and read-only afterwards.
 */
#include "ap_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    char role[32];
    ap_log_level min;
    int fd;
    int json;
} logcfg = {"agentpool", AP_LOG_INFO, 2, 0};

static const char *const level_names[] = {"debug", "info", "warn", "error", "crit"};
static const char *const level_tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR", "CRIT "};

void ap_log_init(const char *role, ap_log_level min_level)
{
    snprintf(logcfg.role, sizeof(logcfg.role), "%s", role);
    logcfg.min = min_level;
}

void ap_log_set_level(ap_log_level min_level) { logcfg.min = min_level; }
void ap_log_set_json(int on) { logcfg.json = on; }
void ap_log_set_fd(int fd) { logcfg.fd = fd; }

int ap_log_parse_level(const char *s, ap_log_level *out)
{
    for (size_t i = 0; i < AP_ARRAY_LEN(level_names); i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (ap_log_level)i;
            return AP_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = AP_LOG_WARN;
        return AP_OK;
    }
    return AP_ERR;
}

static size_t fmt_time(char *buf, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
    return n + (m > 0 ? (size_t)m : 0);
}

/* Appends s to buf as JSON string content (no quotes), bounded. */
static size_t json_escape(char *buf, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c < 0x20) {
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    return o;
}

static void emit(ap_log_level level, const char *msg, size_t mlen)
{
    char line[AP_LOG_LINE_MAX + 256];
    char ts[48];
    size_t cap = sizeof(line) - 1, n;
    fmt_time(ts, sizeof(ts));
    if (logcfg.json) {
        int h = snprintf(line, cap, "{\"ts\":\"%s\",\"level\":\"%s\",\"role\":\"%s\",\"pid\":%d,\"msg\":\"",
                         ts, level_names[level], logcfg.role, (int)getpid());
        n = h > 0 ? (size_t)h : 0;
        n += json_escape(line + n, cap - n - 3, msg, mlen);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        int h = snprintf(line, cap, "%s %s [%s %d] ", ts, level_tags[level], logcfg.role, (int)getpid());
        n = h > 0 ? (size_t)h : 0;
        if (mlen > cap - n)
            mlen = cap - n;
        memcpy(line + n, msg, mlen);
        n += mlen;
    }
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(logcfg.fd, line, n);
    } while (w < 0 && errno == EINTR);
}

void ap_log(ap_log_level level, const char *fmt, ...)
{
    if (level < logcfg.min)
        return;
    int saved = errno;
    char msg[AP_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(msg))
        n = sizeof(msg) - 1;
    emit(level, msg, (size_t)n);
    errno = saved;
}

void ap_log_block(ap_log_level level, const char *prefix, const char *text, size_t len)
{
    if (level < logcfg.min)
        return;
    size_t start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && text[end] != '\n')
            end++;
        char msg[AP_LOG_LINE_MAX];
        int n = snprintf(msg, sizeof(msg), "%s%.*s", prefix, (int)(end - start), text + start);
        if (n < 0)
            n = 0;
        if ((size_t)n >= sizeof(msg))
            n = sizeof(msg) - 1;
        emit(level, msg, (size_t)n);
        start = end + 1;
    }
}
