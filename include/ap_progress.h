/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_progress.h - what a sync worker is running, in memory the master can
 * read after the worker died.
 *
 * The master creates one small memfd per worker table entry, maps it, and
 * passes it to each process of that entry as fd AP_PROGRESS_FD; the
 * worker maps it and closes the fd.  Before a sync handler runs the
 * worker stores the message's frame id in `started`, after it returns in
 * `finished`: two plain stores, no system call.  When the process dies
 * with started != finished, `started` is the message that was running
 * (the one to charge with the crash); the messages sent before it had
 * finished, even if their answers were still in the worker's buffer.
 * An async or gevent worker adds to `hub_blocked` each time it finds
 * its loop held (bridge/hubwatch.c).  The page is writable by agent code: the master checks it against the
 * messages the process held and bounds deliveries itself (pool/workers/retry.c).
 */
#ifndef AP_PROGRESS_H
#define AP_PROGRESS_H

#include <stdatomic.h>
#include <stdint.h>

#define AP_PROGRESS_FD 4

typedef struct {
    _Atomic uint64_t started;
    _Atomic uint64_t finished;
    /* Times the worker found its event loop held past hubBlockedWarnMs
     * (bridge/hubwatch.c), for hubBlocked in stats: a count only, never
     * acted on. */
    _Atomic uint64_t hub_blocked;
} ap_progress;

#endif
