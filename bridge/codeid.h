/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * codeid.h - the identity of the agent code a worker runs.
 *
 * Once the agent is imported and started, the worker hashes the files of
 * every Python module it has loaded from outside the standard library
 * (the agent, its packages, what they imported from site-packages,
 * pyagents): SHA-256 over each module's name and the SHA-256 of its
 * source file, in name order.  The master compares it with the identity
 * its generation started with (pool/workers/codeid.c), so a file changed
 * on disk without a reload (a half-finished deploy reaching a respawned
 * worker) is seen.  Called once, by main.c before READY.
 */
#ifndef BRIDGE_CODEID_H
#define BRIDGE_CODEID_H

#include <stddef.h>

/* Writes "HEX16:N" (the first 16 hex digits of the hash, N modules) into
 * out.  On failure (Python could not hash) out is "" and a warning is
 * logged; the worker starts anyway. */
void codeid_compute(char *out, size_t cap);

#endif
