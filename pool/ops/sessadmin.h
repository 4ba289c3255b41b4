/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sessadmin.h - operators' requests on stored session state
 * (docs/sessions.md, Operating): pool.session.get {"session": KEY},
 * pool.session.delete {"session": KEY}, pool.session.list {"after": KEY,
 * "limit": N}, each for one pool ({"pool": NAME} when there are several),
 * administrators only.  Answered when the session store answers.
 */
#ifndef AP_SESSADMIN_H
#define AP_SESSADMIN_H

#include "scan.h"

struct client;
struct pool;

/* Answers (later) the pool.session.* request in line, scanned into r,
 * for pool p. */
void sessadmin_request(struct client *c, const char *line, const scan_result *r, struct pool *p);

#endif
