/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyerr.h - Python exceptions into the worker's log: the one place the
 * bridge formats a traceback and logs it.
 *
 * pyerr_text / pyerr_format turn an exception into traceback text (for
 * the log, and for START_FAILED frames); pyerr_log logs the current
 * exception with a line saying what failed, its traceback indented below
 * at the same level.  pyerr_log_agent is for the exceptions of the
 * agent's own code answering a message (the client gets agent_error):
 * they are logged at error level with their traceback, limited per
 * (message type, exception class) so that a failing agent cannot flood
 * the log: PYERR_BURST of each pair per PYERR_WINDOW_MS, the rest
 * counted, and the count said in the next line of that pair that gets
 * through, when the pair is evicted from the table (PYERR_SLOTS, least
 * recently used), or at exit (pyerr_flush).  Every function needs the
 * GIL; none fails (formatting falls back to a one-line text).  Include
 * Python.h before this header.
 */
#ifndef BRIDGE_PYERR_H
#define BRIDGE_PYERR_H

#include "ap_common.h"
#include "ap_log.h"

#include <stdint.h>

#define PYERR_BURST 5
#define PYERR_WINDOW_MS 60000u

/* The exception (type, value, tb; borrowed, any may be NULL) as
 * traceback text.  Returns a new str; never NULL. */
PyObject *pyerr_format(PyObject *type, PyObject *value, PyObject *tb);

/* The current Python exception as traceback text; the exception is
 * cleared.  Returns a new str; never NULL. */
PyObject *pyerr_text(void);

/* Logs the current Python exception at level: "<what>:" (fmt), then its
 * traceback indented; the exception is cleared.  Logs nothing when no
 * exception is set. */
void pyerr_log(ap_log_level level, const char *fmt, ...) AP_PRINTF(2, 3);

/* Logs an agent's exception while answering message id of type msg_type
 * (a str, borrowed; NULL when unknown): exc_name is the class's
 * qualified name (str, borrowed), (type, value, tb) the exception
 * (borrowed, not cleared).  At error level with the traceback, unless
 * this (msg_type, exc_name) pair already had PYERR_BURST lines in its
 * window: then it is only counted. */
void pyerr_log_agent(uint64_t id, PyObject *msg_type, PyObject *exc_name, PyObject *type,
                     PyObject *value, PyObject *tb);

/* Logs what the limit still holds back, pair by pair, and forgets it
 * (at exit, so that no count is lost). */
void pyerr_flush(void);

#endif
