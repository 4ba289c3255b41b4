/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rev.h - hiredis's asynchronous event hooks on a libevent base, doing
 * fewer system calls than hiredis's own libevent adapter
 * (hiredis/adapters/libevent.h), which re-adds its one-shot read event
 * after every read and adds, then removes, its write event for every
 * burst of commands: two epoll_ctl per read and per write, and a loop
 * turn spent waiting for "writable" before each write.
 *
 * Here the read event is persistent (added once); commands queued during
 * a turn are written at the end of that turn (an event with no fd,
 * activated by the first command, so a turn's commands still leave in
 * one write), and the write event is added only when that write could
 * not take everything (or while connecting), and removed once hiredis
 * has written all.  rlink.c (the master's Redis links) and
 * agentpool-bench --redis (bench/bq.c) attach their contexts with it.
 * Never touches a context after handing it to hiredis's handlers, which
 * may free it (and with it this adapter's record, through cleanup).
 */
#ifndef AP_REV_H
#define AP_REV_H

struct event_base;
struct redisAsyncContext;

/* Attaches ac to base.  AP_OK, or AP_ERR (nothing attached) when ac has
 * an adapter already or an event cannot be made. */
int rev_attach(struct redisAsyncContext *ac, struct event_base *base);

#endif
