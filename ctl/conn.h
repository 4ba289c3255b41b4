/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * conn.h - opening agentpoolctl's connection to agentpoold.
 *
 * One job: turn a socket path into a connected, non-blocking Unix stream
 * descriptor, or into a sentence saying why not that names the path and
 * the call that failed.  Reading and writing belong to exchange.c.
 */
#ifndef CTL_CONN_H
#define CTL_CONN_H

#include <stddef.h>

/* Connects to the Unix stream socket at path, waiting at most timeout_ms
 * (0 = no limit) when agentpoold's listen backlog is full.  Returns the descriptor
 * (O_NONBLOCK and FD_CLOEXEC set) or -1 (AP_ERR) with a one-line reason in
 * err, e.g. "cannot connect to /tmp/x.sock: No such file or directory (is
 * agentpoold running? no socket at /tmp/x.sock)".  Nothing is left open on
 * failure. */
int conn_open(const char *path, int timeout_ms, char *err, size_t errlen);

#endif
