/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procstat.c - the master's process_* metrics (see procstat.h).
 */
#include "procstat.h"
#include "promtext.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

/* Virtual and resident bytes from /proc/self/statm; 0 when unreadable. */
static int read_statm(unsigned long long *vsize, unsigned long long *rss)
{
    char text[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    unsigned long long pages_v, pages_r;
    if (sscanf(text, "%llu %llu", &pages_v, &pages_r) != 2)
        return -1;
    long page = sysconf(_SC_PAGESIZE);
    *vsize = pages_v * (unsigned long long)(page > 0 ? page : 4096);
    *rss = pages_r * (unsigned long long)(page > 0 ? page : 4096);
    return 0;
}

/* Open descriptors: the entries of /proc/self/fd, less the one the
 * directory itself holds; -1 when it cannot be read. */
static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    long n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0;
}

void procstat_prometheus(struct evbuffer *out, double start_s)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                     (double)ru.ru_stime.tv_usec / 1e6;
        promtext_family(out, "process_cpu_seconds_total", "counter",
                        "Total user and system CPU time spent by the master in seconds (workers not included).");
        promtext_double(out, "process_cpu_seconds_total", NULL, 0, cpu);
    }
    unsigned long long vsize, rss;
    if (read_statm(&vsize, &rss) == 0) {
        promtext_family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size of the master in bytes.");
        promtext_u64(out, "process_virtual_memory_bytes", NULL, 0, vsize);
        promtext_family(out, "process_resident_memory_bytes", "gauge", "Resident memory size of the master in bytes.");
        promtext_u64(out, "process_resident_memory_bytes", NULL, 0, rss);
    }
    long fds = count_fds();
    if (fds >= 0) {
        promtext_family(out, "process_open_fds", "gauge", "Number of open file descriptors of the master.");
        promtext_u64(out, "process_open_fds", NULL, 0, (uint64_t)fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        promtext_family(out, "process_max_fds", "gauge", "The master's limit on open file descriptors (soft).");
        promtext_u64(out, "process_max_fds", NULL, 0, rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur);
    }
    promtext_family(out, "process_start_time_seconds", "gauge",
                    "Start time of the master since unix epoch in seconds.");
    promtext_double(out, "process_start_time_seconds", NULL, 0, start_s);
}
