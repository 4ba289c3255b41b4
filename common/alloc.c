/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * alloc.c - the allocation wrapper (see include/ap_alloc.h).
 *
 * Out of memory is fatal by policy: the message saying how much was asked
 * for goes straight to stderr, then abort().  When agentpoold links
 * jemalloc (configure's default), malloc itself is jemalloc's and
 * ap_alloc_name() asks it for its version through mallctl.
 *
 * Returning memory after a spike: jemalloc keeps freed pages ("dirty")
 * and gives them back to the kernel on a decay curve, but only when the
 * allocator is used: an idle master kept a spike's pages resident for
 * good.  The master's malloc_conf shortens the curve to 1 s (dirty pages
 * are purged with MADV_DONTNEED at once, no muzzy stage), and
 * ap_alloc_decay(), called once a second from the master's tick, lets
 * jemalloc purge what the curve allows even when nothing else allocates.
 * MALLOC_CONF in the environment still overrides malloc_conf.
 */
#include "ap_alloc.h"
#include "ap_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>

/* Read by jemalloc at its initialisation (only the master links it). */
const char *malloc_conf = "dirty_decay_ms:1000,muzzy_decay_ms:0";
#endif

#ifndef AP_ALLOC_TEST
static void oom(size_t n)
{
    char buf[128];
    int len = snprintf(buf, sizeof(buf), "agentpool: out of memory allocating %zu bytes\n", n);
    if (len > 0)
        (void)!write(2, buf, (size_t)len);
    abort();
}

void *ap_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (AP_UNLIKELY(p == NULL))
        oom(n);
    return p;
}

void *ap_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (AP_UNLIKELY(p == NULL))
        oom(n * size);
    return p;
}

void *ap_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (AP_UNLIKELY(q == NULL))
        oom(n);
    return q;
}

#endif

char *ap_strndup(const char *s, size_t n)
{
    char *p = ap_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ap_strdup(const char *s)
{
    return ap_strndup(s, strlen(s));
}

char *ap_strcat3(const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *p = ap_malloc(la + lb + lc + 1);
    memcpy(p, a, la);
    memcpy(p + la, b, lb);
    memcpy(p + la + lb, c, lc + 1);
    return p;
}

const char *ap_alloc_name(void)
{
#ifdef HAVE_JEMALLOC
    static char name[64];
    const char *v = NULL;
    size_t sz = sizeof(v);
    if (mallctl("version", &v, &sz, NULL, 0) == 0 && v) {
        snprintf(name, sizeof(name), "jemalloc %s", v);
        return name;
    }
    return "jemalloc (version unknown)";
#else
    return "libc";
#endif
}

void ap_alloc_decay(void)
{
#ifdef HAVE_JEMALLOC
    char name[32];
    snprintf(name, sizeof(name), "arena.%u.decay", (unsigned)MALLCTL_ARENAS_ALL);
    (void)mallctl(name, NULL, NULL, NULL, 0);
#endif
}
