/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ainput.h - ctx.require_input(prompt): the handler ends its turn asking
 * its caller for more input (A2A's TASK_STATE_INPUT_REQUIRED,
 * docs/a2a.md).  The prompt is kept per message here until the message
 * is answered: msg_reply sends it as the RESULT, flagged
 * AP_FRAME_RESULT_INPUT, in place of the handler's return value.
 * Include Python.h first.
 */
#ifndef BRIDGE_AINPUT_H
#define BRIDGE_AINPUT_H

#include <stdint.h>

/* Adds _require_input and Context.require_input to the _agentpool module
 * (after hctx_init).  AP_OK, or AP_ERR with a Python error set. */
int ainput_init(void);
/* The prompt message id asked for (new reference; forgotten here), or
 * NULL (no error set) when its handler did not call require_input. */
PyObject *ainput_take(uint64_t id);
/* Forgets message id's prompt, if any (it is answered with an error). */
void ainput_forget(uint64_t id);

#endif
