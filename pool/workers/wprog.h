/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wprog.h - the master's side of include/ap_progress.h: one shared page
 * per worker table entry telling which message a sync worker was running
 * when it died, so a crash is charged to that message only.
 */
#ifndef AP_WPROG_H
#define AP_WPROG_H

#include <stdint.h>

struct pool;

struct worker;

/* Before a spawn: maps w's page if not yet (reset to zero) and returns
 * the fd to pass as AP_PROGRESS_FD, or -1 when it cannot (logged once;
 * then deaths are judged without it). */
int wprog_prepare(struct worker *w);
/* After w's process died: 1, *running = the frame id of the message it
 * was running, or 0 when it was between messages, and *last = the last
 * message it started (0: none); -1 when unknown.  What the page says is
 * the worker's word, written by a process that runs agent code: the
 * caller checks it against the messages that process held. */
int wprog_running(const struct worker *w, uint64_t *running, uint64_t *last);
/* Times w's current (or last) process reported its event loop held past
 * hubBlockedWarnMs (the worker's word: a count shown, never acted on);
 * 0 without a page. */
uint64_t wprog_hub_blocked(const struct worker *w);
/* hubBlocked of every process since start: the pages' counts plus those
 * folded in before a page was reset for a new process. */
uint64_t wprog_hub_blocked_total(const struct pool *p);
/* At exit. */
void wprog_free(struct worker *w);

#endif
