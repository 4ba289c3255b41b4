/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wprog.c - per-entry progress pages for sync workers (see wprog.h and
 * include/ap_progress.h).
 *
 * A page is a memfd made once per worker table entry (kept at fd 10 or
 * above, so the child's dup2s onto fds 0-4 never meet it), mapped shared
 * in the master for the master's whole life and reset before each
 * process of the entry starts.  The master reads it only after waitpid said the process
 * is gone, so no ordering beyond the process's death is needed.
 */
#include "wprog.h"
#include "ap_log.h"
#include "ap_progress.h"
#include "server.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int warned;

int wprog_prepare(worker *w)
{
    if (w->prog == NULL) {
        int fd = memfd_create("agentpool-progress", MFD_CLOEXEC);
        int hi = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 10) : -1;
        if (fd >= 0)
            close(fd);
        void *p = MAP_FAILED;
        if (hi >= 0 && ftruncate(hi, sizeof(ap_progress)) == 0)
            p = mmap(NULL, sizeof(ap_progress), PROT_READ | PROT_WRITE, MAP_SHARED, hi, 0);
        if (p == MAP_FAILED) {
            if (!warned++)
                ap_warn("%s: no progress page (%s): a sync worker's crash is charged to the first message it "
                        "held", w->name, strerror(errno));
            if (hi >= 0)
                close(hi);
            return -1;
        }
        w->prog = p;
        w->prog_fd = hi;
    }
    atomic_store(&w->prog->started, 0);
    atomic_store(&w->prog->finished, 0);
    w->pool->stats.hub_blocked_past += atomic_exchange(&w->prog->hub_blocked, 0);
    return w->prog_fd;
}

int wprog_running(const worker *w, uint64_t *running, uint64_t *last)
{
    if (w->prog == NULL)
        return -1;
    uint64_t s = atomic_load(&w->prog->started), f = atomic_load(&w->prog->finished);
    *running = s != f ? s : 0;
    *last = s;
    return 1;
}

uint64_t wprog_hub_blocked(const worker *w)
{
    return w->prog ? atomic_load(&w->prog->hub_blocked) : 0;
}

uint64_t wprog_hub_blocked_total(const pool_t *p)
{
    uint64_t n = p->stats.hub_blocked_past;
    for (int i = 0; i < p->nworkers; i++)
        n += wprog_hub_blocked(&p->workers[i]);
    return n;
}

void wprog_free(worker *w)
{
    if (w->prog) {
        munmap(w->prog, sizeof(ap_progress));
        close(w->prog_fd);
    }
    w->prog = NULL;
    w->prog_fd = -1;
}
