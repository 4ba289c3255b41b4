/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sync_driver.h - serving a sync agent: a plain C loop over fd 3.
 */
#ifndef BRIDGE_SYNC_DRIVER_H
#define BRIDGE_SYNC_DRIVER_H

#include "bridge.h"

/* Serves requests one at a time until STOP (everything before it is
 * answered and flushed) or until the master goes away. */
bridge_end sync_driver_run(void);

#endif
