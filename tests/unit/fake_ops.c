/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fake_ops.c - dlq.c, wprog.c and reload.c for unit tests (see
 * fake_server.h): a dead-letter file that records what it is given, a
 * progress page that says what the test sets, a reload that records, and
 * privs.c without a service user.
 */
#include "fake_server.h"
#include "dlq.h"
#include "privs.h"
#include "reload.h"
#include "wprog.h"

#include <stdio.h>

static char fake_dlq_storage;

/* privs.c: no service user. */
uid_t privs_service_uid(void)
{
    return (uid_t)-1;
}

gid_t privs_service_gid(void)
{
    return (gid_t)-1;
}

dlq *dlq_open(const char *path, uint64_t max_bytes, uid_t trusted, gid_t group, char *err, size_t errlen)
{
    (void)max_bytes;
    (void)trusted;
    (void)group;
    (void)err;
    (void)errlen;
    fake_record("dlq_open", NULL, NULL, 0, path);
    return (dlq *)&fake_dlq_storage;
}

/* Recorded with arg = attempts and text "<nfailures>: <last reason>". */
int dlq_append(dlq *d, const dlq_entry *e, uint64_t *dlq_id_out, char *err, size_t errlen)
{
    char text[200];
    (void)d;
    (void)err;
    (void)errlen;
    snprintf(text, sizeof(text), "%u: %s", (unsigned)e->nfailures, e->nfailures ? e->failures[e->nfailures - 1].reason : "");
    fake_record("dlq_append", NULL, NULL, e->attempts, text);
    if (dlq_id_out)
        *dlq_id_out = 1;
    return AP_OK;
}

uint64_t dlq_count(const dlq *d)
{
    (void)d;
    return 0;
}

const char *dlq_path(const dlq *d)
{
    (void)d;
    return "fake-dead-letters.jsonl";
}

void dlq_close(dlq *d)
{
    (void)d;
    fake_record("dlq_close", NULL, NULL, 0, NULL);
}

int wprog_running(const worker *w, uint64_t *running, uint64_t *last)
{
    fake_record("wprog_running", w, NULL, 0, NULL);
    if (fake_wprog_result == 1) {
        *running = fake_wprog_running;
        *last = fake_wprog_running ? fake_wprog_running : fake_wprog_last;
    }
    return fake_wprog_result;
}

void reload_replacement_failed(pool_t *p)
{
    fake_record("reload_replacement_failed", NULL, NULL, p->index, p->name);
}
