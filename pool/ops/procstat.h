/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procstat.h - the standard process_* metrics of the master process, as
 * Prometheus's client libraries export them: process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds.
 *
 * Read when /metrics is asked for, never cached: getrusage(2) and
 * getrlimit(2), /proc/self/statm, and one pass over /proc/self/fd (bounded
 * by the open-file limit; procfs reads do not block).  A figure that
 * cannot be read is left out rather than shown as 0.  Called by
 * metrics.c only; touches no server state.
 */
#ifndef AP_PROCSTAT_H
#define AP_PROCSTAT_H

struct evbuffer;

/* Appends the process_* families; start_s is when the master started
 * (seconds since the epoch). */
void procstat_prometheus(struct evbuffer *out, double start_s);

#endif
