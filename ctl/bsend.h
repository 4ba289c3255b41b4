/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bsend.h - `agentpoolctl send` through the Redis broker (a redis://
 * --socket): see bsend.c.
 */
#ifndef CTL_BSEND_H
#define CTL_BSEND_H

#include "ctl.h"

#include <stddef.h>

/* Is path a broker target (redis://...)? */
int bsend_is_target(const char *path);

/* Sends the request line[0..len) (cmd_send.c's, id 1) through the broker
 * at o->socket_path to o->pool's stream and prints its answer lines as
 * send does.  Returns the exit status (CTL_EXIT_*), having said on
 * stderr what went wrong. */
int bsend_run(const ctl_opts *o, const char *line, size_t len);

#endif
