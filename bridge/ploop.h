/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ploop.h - the asyncio event loop async agents run on: the stdlib's
 * SelectorEventLoop with a selector that waits with nanosecond timeouts,
 * so asyncio timers (asyncio.sleep, wait_for) fire on time instead of up
 * to a millisecond late, and that calls a function after each of its
 * iterations.  See ploop.c.
 */
#ifndef AP_PLOOP_H
#define AP_PLOOP_H

#include <Python.h>

/* A new event loop (new reference), or NULL with a Python error set.
 * after: a callable the loop calls with no arguments at the end of every
 * iteration; it must not raise.  Also sets the process's timer slack to
 * 1 ns. */
PyObject *ploop_new_loop(PyObject *after);

#endif
