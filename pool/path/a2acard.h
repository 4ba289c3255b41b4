/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * a2acard.h - the A2A Agent Card of a pool with "a2a": true (docs/a2a.md).
 *
 * The card is built from what the master knows itself (the pool's name,
 * the front door's URL from the request's Host header, the methods
 * agentpool serves) and from the agent class's optional `card` attribute,
 * which its worker sends in its READY payload (the master never runs
 * Python).  That attribute is untrusted input: only its known fields
 * (name, description, skills with id/name/description/tags, default
 * input and output modes), checked and bounded, are kept, as JSON text
 * on the pool (p->a2a_card).  Answers carry Cache-Control and an ETag
 * (a hash of the card's text); If-None-Match with it is answered 304.
 */
#ifndef AP_A2ACARD_H
#define AP_A2ACARD_H

struct cJSON;
struct http1_req;
struct pool;

/* A worker of p (named wname, for the log) said READY with card (its
 * READY's "card", NULL when absent): the fields kept replace p's; a card
 * that is not an object, or a field of the wrong shape, is logged and
 * left out. */
void a2acard_worker_ready(struct pool *p, const char *wname, const struct cJSON *card);
/* Frees p's card fields (idempotent). */
void a2acard_pool_free(struct pool *p);
/* Answers GET .../agent-card.json for p (200 with the card, or 304). */
void a2acard_answer(struct http1_req *req, struct pool *p);

#endif
