/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pyhost.h - bringing the embedded CPython up and down.
 *
 * Python starts after the fork from the master, in the freshly exec'd
 * worker, from an explicit PyConfig: no argv parsing, no signal handlers
 * (SIGINT is ignored, SIGTERM kills), the environment (PYTHONPATH,
 * PYTHONHOME, ...) only with --inherit-python-env, sys.executable set to
 * the matching interpreter (AP_PYTHON3) or to the --virtualenv's
 * bin/python3 so its pyvenv.cfg makes the venv's site-packages active
 * (a venv made for another Python version is refused in one line).
 * sys.path then starts with the --python-path directories; a worker
 * running in its build tree puts the source tree (AP_SRCDIR) next, an
 * installed one never does and appends the installed package directory
 * (AP_PYTHONPKGDIR) last instead.  Before the agent is imported, faulthandler
 * dumps stacks to stderr on SIGUSR1, and Python's logging writes records
 * of the worker's log level to stderr as "LEVEL logger: message" unless
 * the agent configures logging itself; the master reads stdout and
 * stderr into its log (pool/workers/wout.c).  Once the agent has
 * started, the heap built so far is frozen out of the garbage collector's
 * full collections (gc.freeze), so they do not pause every message in
 * flight for milliseconds.
 */
#ifndef BRIDGE_PYHOST_H
#define BRIDGE_PYHOST_H

#include <stddef.h>

/* Initialises Python from bridge's configuration.  Returns AP_OK, or
 * AP_ERR with a message in err (Python is then not usable). */
int pyhost_init(char *err, size_t cap);
/* After the agent is imported: routes Python logging to the master's log
 * if the agent uses it (see pyhost.c). */
void pyhost_setup_logging(void);

/* After the agent's on_start(): collects once, then freezes the heap so
 * that later full collections skip it (see pyhost.c). */
void pyhost_freeze_heap(void);

/* Writes the running interpreter's version ("3.11.2") into out. */
void pyhost_version(char *out, size_t cap);

/* Flushes sys.stdout and sys.stderr, ignoring errors. */
void pyhost_flush_stdio(void);

/* Finalizes Python.  Returns AP_OK, or AP_ERR when finalization reported
 * an error (e.g. flushing a stream failed). */
int pyhost_fini(void);

#endif
