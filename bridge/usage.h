/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * usage.h - what a message cost, told to the master with its answer: the
 * thread CPU time its handler used, in the answer frame's aux
 * (ap_frame_cpu_encode), and what the handler reported with
 * ctx.usage(tokens_in=..., tokens_out=..., cost=..., **other_numbers), as
 * one USAGE frame just before the answer (include/ap_frame.h).  Include
 * Python.h first.
 *
 * CPU is measured with CLOCK_THREAD_CPUTIME_ID (not in the vDSO: each
 * read is a system call).  In the sync model, one read per answer: a
 * message's CPU is what the worker's thread used from the previous
 * answer to its own, that is its handler (a streaming generator's whole
 * run included) and the bridge's work for it (reading, decoding,
 * encoding; a heartbeat answered meanwhile too); time spent waiting for
 * a message uses no CPU, so none is counted.  In the async model, the
 * steps of the message's coroutine timed by usage_step_now (the
 * monotonic clock, no system call: a thread CPU read around every step
 * was most of an async message's system calls) and summed
 * (usage_set_cpu), so other tasks' steps are not counted; in
 * the gevent model not at all (greenlets switch without the bridge
 * seeing it, so a per-message figure would be someone else's time: aux
 * 0, "not measured").  Carrying it in the answer's aux costs no byte and
 * no frame; only a message that reported usage sends a USAGE frame, in
 * the same write as its answer.
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
/* The clock an async message's steps are timed with, ns: monotonic (in
 * the vDSO, no system call; a step's time is its thread's CPU unless the
 * thread was preempted during it). */
uint64_t usage_step_now(void);
/* Message id's handler is called now (not in the gevent model). */
void usage_begin(uint64_t id);
/* Message id's handler used cpu_ns in all (the async model's sum over
 * its steps), to be sent with its answer. */
void usage_set_cpu(uint64_t id, uint64_t cpu_ns);
/* Just before message id's answer frame: appends its USAGE frame to
 * bridge.out when its handler reported usage, and returns the aux for
 * the answer (its CPU time, 0 when not measured).  Never fails: a report
 * that cannot be encoded is logged and dropped. */
uint16_t usage_end(uint64_t id);

#endif
