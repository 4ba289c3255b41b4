/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_client.c - client.c's functions for unit tests (see
 * fake_server.h): no connection exists; calls are recorded.
 */
#include "fake_server.h"
#include "client.h"

#include <string.h>

/* A copy of m takes its place on the connection (client.h's contract);
 * m is left detached with its worker. */
msg *client_take_over(msg *m)
{
    fake_record("client_take_over", m->worker, m, 0, NULL);
    msg *n = msg_new(&server.msgs, m->line, m->line_len, m->type_len);
    memcpy(n->type, m->type, (size_t)m->type_len + 1);
    n->type_len = m->type_len;
    n->pool = m->pool;
    n->id_off = m->id_off;
    n->id_len = m->id_len;
    n->data_off = m->data_off;
    n->data_len = m->data_len;
    n->retry = m->retry;
    n->timeout_ms = m->timeout_ms;
    n->accepted_ns = m->accepted_ns;
    n->attempts = m->attempts;
    n->type_idx = m->type_idx;
    n->fail = m->fail;
    n->nfail = m->nfail;
    m->fail = NULL;
    m->nfail = 0;
    n->client = m->client;
    m->client = NULL;
    m->detached = 1;
    m->outcome_told = 1;
    return n;
}

void client_room_available(pool_t *p)
{
    fake_record("client_room_available", NULL, NULL, p->index, p->name);
}

/* No connection is ever parked here. */
int client_parked(const client *c)
{
    (void)c;
    return 0;
}

void client_note_parked(client *c)
{
    (void)c;
}
