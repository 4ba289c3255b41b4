/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * publish.h - Context.publish(topic, data): events a handler publishes
 * (docs/events.md, "Events agents publish"), sent to the master as EVENT
 * frames.  Include Python.h first.
 */
#ifndef BRIDGE_PUBLISH_H
#define BRIDGE_PUBLISH_H

/* Adds _publish and Context.publish to the _agentpool module (after
 * hctx_init and stream_init).  AP_OK, or AP_ERR with a Python error set. */
int publish_init(void);

#endif
