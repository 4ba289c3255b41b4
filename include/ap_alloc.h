/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_alloc.h - the one allocation wrapper used by C code in agentpool.
 *
 * In agentpoold the allocator underneath is jemalloc (linked in, so it
 * replaces malloc for the whole master) unless configure was told
 * otherwise (--without-jemalloc, or an ASan build); in the worker it is
 * the C library's.  The out-of-memory policy is the same everywhere: log what
 * was asked for and abort, since a half-allocated server cannot keep its
 * promise of one answer per request.  Unit tests build with
 * AP_ALLOC_TEST so cmocka's test_malloc() catches leaks.
 */
#ifndef AP_ALLOC_H
#define AP_ALLOC_H

#include <stddef.h>

#ifdef AP_ALLOC_TEST
#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>
#define ap_malloc(n) test_malloc(n)
#define ap_calloc(n, s) test_calloc(n, s)
#define ap_realloc(p, n) test_realloc(p, n)
#define ap_free(p) test_free(p)
char *ap_strndup(const char *s, size_t n);
#else
#include <stdlib.h>
void *ap_malloc(size_t n);
void *ap_calloc(size_t n, size_t size);
void *ap_realloc(void *p, size_t n);
/* NULL is tested here, inline: jemalloc's free(NULL) is a call of about
 * 40 instructions, and many frees on the master's per-message path are
 * of optional parts that are usually absent. */
static inline void ap_free(void *p)
{
    if (p != NULL)
        free(p);
}
char *ap_strndup(const char *s, size_t n);
#endif
char *ap_strdup(const char *s);
/* a, b and c joined in a new string (key names and the like). */
char *ap_strcat3(const char *a, const char *b, const char *c);

/* Name and version of the allocator in use ("jemalloc 5.3.0", "libc"). */
const char *ap_alloc_name(void);
/* Lets the allocator return freed memory to the kernel as its decay
 * settings allow (jemalloc: arena.<all>.decay); nothing without
 * jemalloc.  Cheap when there is nothing to return.  Never fails. */
void ap_alloc_decay(void);

#endif
