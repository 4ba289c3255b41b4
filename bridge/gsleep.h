/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gsleep.h - time.sleep for gevent workers that wakes on time: one
 * timerfd on the hub instead of libev's millisecond-rounded timers.
 * See gsleep.c.
 */
#ifndef BRIDGE_GSLEEP_H
#define BRIDGE_GSLEEP_H

/* Replaces time.sleep (gevent's, after monkey.patch_all()) with the
 * bridge's: call it after patching and before the agent is imported.
 * Returns AP_OK (also when no timerfd could be made: time.sleep then
 * stays gevent's, with a warning logged), or AP_ERR with a Python error
 * set and time.sleep unchanged. */
int gsleep_install(void);

/* Releases the watcher and the timerfd; greenlets still asleep are left
 * alone (the process is ending). */
void gsleep_fini(void);

#endif
