/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * loopio.h - the worker's I/O with the master for the two drivers that
 * run an event loop (async_driver.c on asyncio, gevent_driver.c on
 * gevent's hub): watching fd 3, reading and dispatching frames, writing
 * answers once per loop iteration with read pausing above a high
 * watermark, and telling the driver when to end.
 *
 * A driver gives its loop's ways of watching fd 3, running a callback
 * at the next turn and waking its run, and its own submit and cancel;
 * everything else of the I/O lives here once.  Include Python.h first.
 */
#ifndef BRIDGE_LOOPIO_H
#define BRIDGE_LOOPIO_H

#include "ap_frame.h"

#include <stdint.h>

typedef struct {
    /* Starts (on) or stops watching fd 3 for writing (write) or reading,
     * calling cb when it is ready; logs its own failures. */
    void (*watch)(int write, int on, PyObject *cb);
    /* Runs cb at the loop's next turn: 0, or -1 with a Python error set. */
    int (*call_soon)(PyObject *cb);
    /* Wakes the driver's run so it returns: 0, or -1 with a Python error set. */
    int (*wake)(void);
    /* A REQUEST frame, and a CANCEL for message id. */
    void (*submit)(const ap_frame_hdr *h, const unsigned char *payload);
    void (*cancel)(uint64_t id);
    /* What the driver holds in flight, for the log ("messages", "greenlets"). */
    const char *held;
} loopio_ops;

/* Makes the callbacks; flush_each_iteration: the loop calls
 * loopio_iteration_end after each iteration, so no flush is scheduled.
 * Sets bridge.stream_sent.  AP_OK, or AP_ERR with a Python error set. */
int loopio_init(const loopio_ops *ops, int flush_each_iteration);
/* Makes fd 3 non-blocking and starts reading it; AP_ERR (logged) if the
 * fd cannot be made non-blocking. */
int loopio_start(void);
/* Stops watching fd 3 and drops the callbacks. */
void loopio_fini(void);
/* Nonzero once the driver's run should return (EOF, or STOP with
 * nothing in flight, and the driver was woken). */
int loopio_done(void);
/* The driver answered or forgot a message: its answers leave at the end
 * of this iteration, and the run ends if that was the last after STOP. */
void loopio_answered(void);
/* The loop finished an iteration (flush_each_iteration loops). */
void loopio_iteration_end(void);

#endif
