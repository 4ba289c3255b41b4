/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * checkpoint.h - ctx.checkpoint(value): a JSON value the master keeps
 * with the running message and gives back as ctx.resume when the message
 * runs again after its worker died (docs/sessions.md, Checkpoints), sent
 * as a CHECKPOINT frame.  Include Python.h first.
 */
#ifndef BRIDGE_CHECKPOINT_H
#define BRIDGE_CHECKPOINT_H

/* Adds _checkpoint and Context.checkpoint to the _agentpool module
 * (after hctx_init).  AP_OK, or AP_ERR with a Python error set. */
int checkpoint_init(void);

#endif
