/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_keyfile.c - libFuzzer target for the API keys file's line parser
 * (pool/ops/keyfile.c, keyfile_parse_line).
 *
 * Any bytes are one line.  The parser must never read outside them, and
 * what it says must hold: a key has a valid id (1 to 64 bytes of
 * A-Z a-z 0-9 . _ -, not "none" or "other"), at most KEYFILE_POOLS_MAX
 * pools of 1 to 64 bytes or every pool, and limits within their bounds;
 * a refusal has a message that is a NUL-terminated string within
 * KEYFILE_ERR_MAX; a skipped line is blank or a comment.  Whatever it
 * allocated is freed (ASan's leak check runs at exit).
 */
#include "keyfile.h"
#include "ap_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_keyfile: check failed at line %d: %s\n", __LINE__, #cond);                          \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > KEYFILE_ID_MAX || strcmp(id, "none") == 0 || strcmp(id, "other") == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", id[i]))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    keyfile_entry e;
    char err[KEYFILE_ERR_MAX];
    memset(err, 'x', sizeof(err));
    /* a copy of exactly size bytes on the heap, so ASan sees any read past it */
    char *line = malloc(size ? size : 1);
    if (line == NULL)
        return 0;
    memcpy(line, data, size);
    keyfile_line r = keyfile_parse_line(line, size, &e, err);
    switch (r) {
    case KEYFILE_LINE_KEY:
        CHECK(id_ok(e.id));
        CHECK(e.all_pools ? e.npools == 0 : e.npools <= KEYFILE_POOLS_MAX);
        for (unsigned i = 0; i < e.npools; i++)
            CHECK(strlen(e.pools[i]) >= 1 && strlen(e.pools[i]) <= KEYFILE_POOL_MAX);
        CHECK(e.max_inflight <= KEYFILE_MAX_INFLIGHT);
        CHECK(e.rate_per_minute <= 1000000000u && e.tokens_per_minute <= 1000000000u);
        keyfile_entry_free(&e);
        break;
    case KEYFILE_LINE_BAD:
        CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        CHECK(err[0] != '\0');
        CHECK(e.pools == NULL);
        break;
    case KEYFILE_LINE_SKIP: {
        size_t i = 0;
        while (i < size && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
        CHECK(i == size || line[i] == '#');
        break;
    }
    default:
        CHECK(0);
    }
    free(line);
    return 0;
}
