/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hctx.h - the handler context: what a handler may know about the
 * message it runs (pyagents.context(), or a third parameter).
 *
 * The bridge defines a small Python module, `_agentpool`, holding one
 * contextvars.ContextVar and the Context class (id, type, deadline,
 * remaining(), attempt, worker, pid, pool, session, resume, log; publish.c,
 * checkpoint.c and stream.c add its methods).  Before a handler is
 * called, hctx_enter sets the variable for this message: to a plain tuple
 * (cheap) that pyagents.context() turns into a Context on first use, or
 * to the Context itself when the handler takes it as its third
 * parameter.  Asyncio tasks copy the variable when they are created and
 * greenlets have their own, so the value is right in all three models.
 * Include Python.h first.
 */
#ifndef BRIDGE_HCTX_H
#define BRIDGE_HCTX_H

#include "ap_frame.h"

#include <stdint.h>

/* What the master sent about one message (from its REQUEST meta). */
typedef struct {
    uint64_t id;                 /* the master's frame id */
    uint64_t deadline_ms;        /* CLOCK_MONOTONIC ms, 0: none */
    uint32_t attempt;            /* 1 on the first run */
    const unsigned char *cid;    /* the client's raw JSON id (NULL: none) */
    uint32_t cid_len;
    PyObject *session;           /* ctx.session: the message's sstate.c Session, NULL: None */
    PyObject *resume;            /* ctx.resume: its decoded checkpoint, NULL: None */
} hctx_meta;

/* Makes the _agentpool module and decides whether bridge.handler takes
 * the context as a third parameter (bridge.wants_context).  Call once the
 * agent is loaded.  Returns AP_OK, or AP_ERR with a Python error set. */
int hctx_init(void);

/* Sets the context variable for a message about to run; *arg gets the
 * Context (new reference) when the handler takes it, else NULL.  Returns
 * the token for hctx_leave (new reference), or NULL with an error set. */
PyObject *hctx_enter(const hctx_meta *m, PyObject *type, PyObject **arg);

/* Adds the C function def (under def->ml_name) to the _agentpool module
 * and runs the Python code in it (methods added to Context...): how the
 * context's other modules (publish.c, sstate.c, checkpoint.c) extend it
 * after hctx_init.  AP_OK, or AP_ERR with a Python error set. */
int hctx_extend(PyMethodDef *def, const char *code);

/* The running message's Context object (new reference), made from the
 * variable's tuple when needed, or NULL with an error set. */
PyObject *hctx_context(void);

/* Gives the variable its value from before hctx_enter (token consumed;
 * NULL does nothing).  Must run in the same context as hctx_enter. */
void hctx_leave(PyObject *token);

void hctx_fini(void);

#endif
