/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bgjob.c - one function on a thread of its own (see ap_bgjob.h).
 *
 * The thread blocks every signal first: signals are the event loop's
 * (libevent's evsignal), and a handler run on this thread would be
 * surprising.  `done` is the only state shared with the loop, written
 * once by the thread (release) and read by the loop (acquire).
 */
#include "ap_bgjob.h"
#include "ap_alloc.h"
#include "ap_common.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct ap_bgjob {
    pthread_t thread;
    void (*fn)(void *);
    void *arg;
    atomic_int done;
};

static void *bgjob_main(void *p)
{
    ap_bgjob *j = p;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    j->fn(j->arg);
    atomic_store_explicit(&j->done, 1, memory_order_release);
    return NULL;
}

ap_bgjob *ap_bgjob_start(void (*fn)(void *), void *arg, char *err, size_t errlen)
{
    ap_bgjob *j = ap_calloc(1, sizeof(*j));
    j->fn = fn;
    j->arg = arg;
    atomic_init(&j->done, 0);
    /* created with every signal blocked, so none lands on it before
     * bgjob_main blocks them for good */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&j->thread, NULL, bgjob_main, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "pthread_create: %s", strerror(rc));
        ap_free(j);
        return NULL;
    }
    return j;
}

int ap_bgjob_done(const ap_bgjob *j)
{
    return atomic_load_explicit(&((ap_bgjob *)j)->done, memory_order_acquire);
}

void ap_bgjob_join(ap_bgjob *j)
{
    pthread_join(j->thread, NULL);
    ap_free(j);
}
