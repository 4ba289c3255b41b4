/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gevent_driver.h - serving a plain def agent on gevent's hub, one
 * greenlet per message (workerModel "gevent").  See gevent_driver.c.
 */
#ifndef BRIDGE_GEVENT_DRIVER_H
#define BRIDGE_GEVENT_DRIVER_H

#include "bridge.h"

/* gevent's monkey.patch_all(), before the agent module is imported.
 * Returns AP_OK, or AP_ERR with a one-line reason in err (gevent is not
 * importable, or patching failed); no Python error is left set. */
int gevent_driver_patch(char *err, size_t cap);

/* Looks up the hub, its loop and what the driver calls later.  Returns
 * AP_OK, or AP_ERR with a Python error set. */
int gevent_driver_init(void);

/* Serves frames until STOP (once every greenlet has answered) or EOF. */
bridge_end gevent_driver_run(void);

void gevent_driver_fini(void);

#endif
