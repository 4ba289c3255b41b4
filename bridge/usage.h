/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * usage.h - what a message cost, sent to the master as one USAGE frame
 * (include/ap_frame.h): the thread CPU time its handler used, and what
 * the handler reported with ctx.usage(tokens_in=..., tokens_out=...,
 * cost=..., **other_numbers).  Include Python.h first.
 *
 * CPU is measured with CLOCK_THREAD_CPUTIME_ID (two reads per message:
 * the handler runs on the worker's one thread): in the sync model from
 * the handler's call to its answer (a streaming generator's whole run
 * included); in the async model summed over the steps of the message's
 * coroutine (usage_step_*), so other tasks' steps are not counted; in
 * the gevent model not at all (greenlets switch without the bridge
 * seeing it, so a per-message figure would be someone else's time: the
 * frame says "not measured").  The frame leaves with the answer, in the
 * same write: no extra system call but the clock reads.
 */
#ifndef BRIDGE_USAGE_H
#define BRIDGE_USAGE_H

#include <stdint.h>

/* Adds Context.usage to the _agentpool module (after hctx_init).  AP_OK,
 * or AP_ERR with a Python error set. */
int usage_init(void);
void usage_fini(void);

/* The calling thread's CPU time, ns. */
uint64_t usage_cpu_now(void);
/* Message id's handler is called now (not in the gevent model). */
void usage_begin(uint64_t id);
/* Message id's handler used cpu_ns in all (the async model's sum over
 * its steps), to be sent with its answer. */
void usage_set_cpu(uint64_t id, uint64_t cpu_ns);
/* Just before message id's answer frame: appends its USAGE frame to
 * bridge.out when there is anything to say (CPU measured, or usage
 * reported).  Never fails: a report that cannot be encoded is logged
 * and dropped. */
void usage_send(uint64_t id);

#endif
