/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pgroup.c - the processes agent code starts, ended with their worker
 * (see pgroup.h).
 *
 * Every worker leads its own process group (worker.c makes it one on
 * both sides of fork), so whatever an agent forks is in that group
 * unless it left it (setsid, setpgid).  Two rules end them:
 *
 *  - The group dies with its leader.  worker.c's reaper sees a dead
 *    worker while it is still a zombie (waitid with WNOWAIT) and calls
 *    pgroup_kill(pid, SIGKILL) before reaping it: an unreaped zombie
 *    keeps its pid, and so its process group id, from being reused, so
 *    the signal can only reach processes of that worker's group.  After
 *    the reap it would be unsafe: an empty group's id is free, and a new
 *    worker (or any session) could have taken it.
 *  - Escapees come home.  The master is a child subreaper
 *    (PR_SET_CHILD_SUBREAPER): a process whose parent died is re-parented
 *    to it rather than to init.  Every child of the master that is not a
 *    current worker is therefore something an agent left behind;
 *    pgroup_sweep() sends it SIGKILL (safe: an unreaped child's pid is
 *    ours) and the SIGCHLD loop reaps it (logged at debug).
 *
 * Never blocks but in pgroup_sweep_final (at exit), never allocates,
 * keeps no state: what is a worker is asked of the caller.
 */
#include "pgroup.h"
#include "ap_common.h"
#include "ap_log.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void pgroup_init(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        ap_warn("prctl(PR_SET_CHILD_SUBREAPER): %s; processes agents start and leave behind are not reaped or "
                "killed by agentpoold", strerror(errno));
}

int pgroup_kill(pid_t leader, int sig)
{
    if (leader <= 1)
        return AP_ERR;
    if (kill(-leader, sig) == 0)
        return AP_OK;
    /* No group (yet): the leader alone. */
    return kill(leader, sig) == 0 ? AP_OK : AP_ERR;
}

/* Calls fn for every child of this process listed in
 * /proc/self/task/TID/children; returns how many, or -1 when the kernel
 * does not list children (CONFIG_PROC_CHILDREN). */
static int each_child(void (*fn)(pid_t, void *), void *arg)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return -1;
    int n = 0, listed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/task/%.16s/children", e->d_name);
        FILE *f = fopen(path, "re");
        if (f == NULL)
            continue;
        listed = 1;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1) {
            fn((pid_t)pid, arg);
            n++;
        }
        fclose(f);
    }
    closedir(d);
    return listed ? n : -1;
}

typedef struct {
    int (*is_worker)(pid_t);
    int killed;
} sweep_ctx;

static void kill_stray(pid_t pid, void *arg)
{
    sweep_ctx *c = arg;
    if (c->is_worker(pid))
        return;
    if (kill(pid, SIGKILL) == 0) {
        c->killed++;
        ap_debug("killed pid %d, left behind by an agent (re-parented to agentpoold)", (int)pid);
    }
}

int pgroup_sweep(int (*is_worker)(pid_t))
{
    sweep_ctx c = {is_worker, 0};
    if (each_child(kill_stray, &c) < 0)
        return 0;
    return c.killed;
}

static void count_child(pid_t pid, void *arg)
{
    (void)pid;
    (*(int *)arg)++;
}

void pgroup_sweep_final(int (*is_worker)(pid_t))
{
    /* Killing one can re-parent its own children to us: a few rounds,
     * each waiting briefly for what it killed.  Bounded: 50 rounds of at
     * most 20 ms. */
    for (int round = 0; round < 50; round++) {
        pgroup_sweep(is_worker);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        int left = 0;
        if (each_child(count_child, &left) <= 0 || left == 0)
            return;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ap_warn("processes left behind by agents were still alive at exit");
}
