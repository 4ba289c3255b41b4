/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * util.c - clocks and process facts shared by master and workers.
 */
#include "ap_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

uint64_t ap_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ap_now_ms(void)
{
    return ap_now_ns() / 1000000ull;
}

uint64_t ap_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

uint64_t ap_rss_bytes(int pid)
{
    char path[64], text[128];
    if (pid > 0)
        snprintf(path, sizeof(path), "/proc/%d/statm", pid);
    else
        snprintf(path, sizeof(path), "/proc/self/statm");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    unsigned long long size, resident;
    if (sscanf(text, "%llu %llu", &size, &resident) != 2)
        return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}
