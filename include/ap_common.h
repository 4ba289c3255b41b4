/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_common.h - definitions shared by every agentpool program.
 *
 * One return convention for the whole project: functions that can fail
 * return AP_OK (0) or AP_ERR (-1) and say in their comment whether
 * anything changed on failure.  Nothing in this header allocates.
 */
#ifndef AP_COMMON_H
#define AP_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define AP_OK 0
#define AP_ERR -1

#define AP_UNUSED(x) ((void)(x))
#define AP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define AP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define AP_NORETURN __attribute__((noreturn))
#define AP_LIKELY(x) __builtin_expect(!!(x), 1)
#define AP_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define AP_PRINTF(f, a)
#define AP_NORETURN
#define AP_LIKELY(x) (x)
#define AP_UNLIKELY(x) (x)
#endif

/* Exit status of a worker whose agent could not be imported or started.
 * The master treats it as "failed to start", never as a crash. */
#define AP_EXIT_START_FAILED 3

/* The descriptor on which a freshly exec'd worker finds its socketpair. */
#define AP_WORKER_FD 3
/* The descriptor a worker writes its own log lines to (a pipe the master
 * relays), apart from stdout and stderr, which carry agent output: so
 * nothing an agent prints can pass for the worker's own line. */
#define AP_LOG_FD 5

/* Milliseconds from CLOCK_MONOTONIC / CLOCK_REALTIME. */
uint64_t ap_now_ms(void);
uint64_t ap_wall_ms(void);
/* Nanoseconds from CLOCK_MONOTONIC. */
uint64_t ap_now_ns(void);

/* Resident set size of process pid (0: this process) from
 * /proc/PID/statm, in bytes; 0 when it cannot be read. */
uint64_t ap_rss_bytes(int pid);

/* FNV-1a over len bytes: the hash of the small bounded tables. */
static inline uint32_t ap_hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* Writes v in decimal at p (at most 20 bytes, no NUL); returns the end:
 * for hot paths where a formatted print costs hundreds of instructions. */
static inline char *ap_decimal(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

#endif
