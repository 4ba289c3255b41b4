/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_defaults.h - defaults and limits that agentpoold, its workers and
 * agentpoolctl must agree on.
 */
#ifndef AP_DEFAULTS_H
#define AP_DEFAULTS_H

/* The socket path when neither --socket nor the config names one:
 * $AGENTPOOL_SOCKET if set, else this. */
#define AP_DEFAULT_SOCKET "/tmp/agentpool.sock"
#define AP_SOCKET_ENV "AGENTPOOL_SOCKET"

/* Deepest nesting of arrays/objects accepted in a request line. */
#define AP_MAX_JSON_DEPTH 128
/* Longest message type, in bytes after unescaping. */
#define AP_MAX_TYPE_LEN 256
/* streamWindowBytes: chunk bytes a stream may have in flight (the
 * worker's send window) before its handler waits for credit. */
#define AP_DEFAULT_STREAM_WINDOW (256 * 1024)

#endif
