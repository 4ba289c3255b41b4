/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cfgcheck.c - --check-config's checks of the machine (see cfgcheck.h).
 *
 * The socket's directory: it must exist, be a directory, and let the
 * user the socket is created as (`user` when started as root, else us)
 * create a file in it.  As root with `user`, the test runs in a child
 * that has switched to that user, since root passes every permission
 * test.
 * The agent: one throwaway agentpool-worker per pool (with "pools", each
 * pool's with that pool's settings, every pool checked even after one
 * failed, a line per pool naming it), started with the argv and
 * environment a real worker gets (worker.c's worker_exec_args_build),
 * as workerUser (else user) when root, its socketpair end on fd 3 and
 * its output on /dev/null.  It answers READY (then it is told STOP and
 * reaped) or START_FAILED with the traceback, whose last line is
 * reported; it is killed if it says nothing within CFGCHECK_START_MS.
 * Names are resolved with getpwnam/getgrnam here: privs_init's
 * check-only mode keeps nothing.  Blocking is fine: no loop runs yet.
 */
#include "cfgcheck.h"
#include "server.h"
#include "worker.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_frame.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* How long the throwaway worker may take to import and start the agent. */
#define CFGCHECK_START_MS 60000
/* Traceback bytes read, at most (the rest is not needed: its last line is). */
#define CFGCHECK_TRACE_MAX (64u * 1024)

/* Who a child becomes: uid, gid and the user's groups. */
typedef struct {
    int set;
    uid_t uid;
    gid_t gid;
    char name[64];
} cfgcheck_ident;

/* user (name or number) and group (or the user's own) to ids.  AP_ERR
 * with a reason when one does not resolve. */
static int cfgcheck_resolve(const char *user, const char *group, cfgcheck_ident *id, char *err, size_t errlen)
{
    memset(id, 0, sizeof(*id));
    if (user == NULL || geteuid() != 0)
        return AP_OK;
    struct passwd *pw = getpwnam(user);
    char *end;
    if (pw == NULL) {
        unsigned long n = strtoul(user, &end, 10);
        if (*user && *end == '\0')
            pw = getpwuid((uid_t)n);
    }
    if (pw == NULL) {
        snprintf(err, errlen, "user \"%s\" does not resolve", user);
        return AP_ERR;
    }
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    snprintf(id->name, sizeof(id->name), "%s", pw->pw_name);
    if (group) {
        struct group *gr = getgrnam(group);
        if (gr == NULL) {
            unsigned long n = strtoul(group, &end, 10);
            if (*group && *end == '\0')
                gr = getgrgid((gid_t)n);
        }
        if (gr == NULL) {
            snprintf(err, errlen, "group \"%s\" does not resolve", group);
            return AP_ERR;
        }
        id->gid = gr->gr_gid;
    }
    id->set = 1;
    return AP_OK;
}

/* In a child: become id (nothing when not set).  0, or -1 with errno. */
static int cfgcheck_become(const cfgcheck_ident *id)
{
    if (!id->set)
        return 0;
    if (initgroups(id->name, id->gid) != 0 || setgid(id->gid) != 0 || setuid(id->uid) != 0)
        return -1;
    return 0;
}

/* Waits for pid at most ms milliseconds, then kills it.  Its status. */
static int cfgcheck_reap(pid_t pid, int ms)
{
    int status = 0;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return status;
        if (waited >= ms) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return status;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The socket's directory exists, is a directory, and id (or we) may
 * create files in it. */
static int cfgcheck_socket_dir(const config *cfg, const char *prog)
{
    char dir[4096], err[256];
    const char *slash = strrchr(cfg->socket, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == cfg->socket)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - cfg->socket), cfg->socket);
    struct stat st;
    if (stat(dir, &st) != 0) {
        fprintf(stderr, "%s: check: socket %s: directory %s: %s\n", prog, cfg->socket, dir, strerror(errno));
        return AP_ERR;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: check: socket %s: %s is not a directory\n", prog, cfg->socket, dir);
        return AP_ERR;
    }
    cfgcheck_ident id;
    if (cfgcheck_resolve(cfg->user, cfg->group, &id, err, sizeof(err)) != AP_OK) {
        fprintf(stderr, "%s: check: %s\n", prog, err);
        return AP_ERR;
    }
    int rc;
    if (!id.set) {
        rc = faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0 ? 0 : errno;
    } else {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "%s: check: fork: %s\n", prog, strerror(errno));
            return AP_ERR;
        }
        if (pid == 0) {
            if (cfgcheck_become(&id) != 0)
                _exit(125);
            _exit(faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0 ? 0 : (errno & 0x7f));
        }
        int status = cfgcheck_reap(pid, 10000);
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
        if (rc == 125) {
            fprintf(stderr, "%s: check: cannot switch to user %s to test %s\n", prog, id.name, dir);
            return AP_ERR;
        }
    }
    if (rc != 0) {
        fprintf(stderr, "%s: check: socket %s: directory %s is not writable by %s: %s\n", prog, cfg->socket, dir,
                id.set ? id.name : "this user", strerror(rc));
        return AP_ERR;
    }
    return AP_OK;
}

/* Reads exactly n bytes before deadline_ms passes (monotonic).  0, or -1. */
static int cfgcheck_read(int fd, void *buf, size_t n, int64_t deadline_ms)
{
    size_t got = 0;
    while (got < n) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = deadline_ms - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

/* The last non-empty line of text (cut in place). */
static const char *cfgcheck_last_line(char *text)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
        text[--n] = '\0';
    char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

/* One throwaway worker: does the agent of cfg (the config of the pool
 * named pool, or the only one when pool is NULL) import and start?
 * Failures are reported as "PROG: check: [pool NAME: ]...". */
static int cfgcheck_agent(const config *cfg, const char *prog_name, const char *pool)
{
    char err[256], prog[160];
    if (pool)
        snprintf(prog, sizeof(prog), "%s: check: pool %s", prog_name, pool);
    else
        snprintf(prog, sizeof(prog), "%s: check", prog_name);
    cfgcheck_ident id;
    const char *who = cfg->worker_user ? cfg->worker_user : cfg->user;
    const char *grp = cfg->worker_user ? cfg->worker_group : cfg->group;
    if (cfgcheck_resolve(who, grp, &id, err, sizeof(err)) != AP_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return AP_ERR;
    }
    char *binary = server_find_worker_binary(cfg);
    if (access(binary, X_OK) != 0) {
        fprintf(stderr, "%s: worker binary %s: %s (set workerBinary)\n", prog, binary, strerror(errno));
        ap_free(binary);
        return AP_ERR;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        fprintf(stderr, "%s: socketpair: %s\n", prog, strerror(errno));
        ap_free(binary);
        return AP_ERR;
    }
    worker_exec_args a;
    worker_exec_args_build(&a, cfg, binary, "check-config");
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
        close(sv[0]);
        close(sv[1]);
        ap_free(a.envp);
        ap_free(binary);
        return AP_ERR;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        /* fd 3 without close-on-exec (dup2 onto itself would keep it) */
        int on3 = sv[1] == AP_WORKER_FD ? fcntl(sv[1], F_SETFD, 0) : dup2(sv[1], AP_WORKER_FD) - AP_WORKER_FD;
        if (null < 0 || on3 != 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 ||
            cfgcheck_become(&id) != 0)
            _exit(126);
        if (cfg->worker_chdir && chdir(cfg->worker_chdir) != 0)
            _exit(126);
        execve(a.argv[0], a.argv, a.envp);
        _exit(127);
    }
    close(sv[1]);
    ap_free(a.envp);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t deadline = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + CFGCHECK_START_MS;
    unsigned char hdrbuf[AP_FRAME_HDR_SIZE];
    ap_frame_hdr h;
    int rc = AP_ERR;
    if (cfgcheck_read(sv[0], hdrbuf, sizeof(hdrbuf), deadline) != 0 || ap_frame_decode(hdrbuf, &h) != AP_OK) {
        kill(pid, SIGKILL);
        int status = cfgcheck_reap(pid, 5000);
        if (WIFEXITED(status))
            fprintf(stderr, "%s: agent %s: the worker %s exited with status %d before it was ready\n", prog,
                    cfg->agent, binary, WEXITSTATUS(status));
        else
            fprintf(stderr, "%s: agent %s: the worker %s said nothing within %d s (killed)\n", prog,
                    cfg->agent, binary, CFGCHECK_START_MS / 1000);
    } else if (h.kind == AP_FRAME_READY) {
        unsigned char stop[AP_FRAME_HDR_SIZE];
        ap_frame_hdr sh = {.kind = AP_FRAME_STOP};
        ap_frame_encode(stop, &sh);
        (void)!write(sv[0], stop, sizeof(stop)); /* if this fails, the EOF below stops it too */
        cfgcheck_reap(pid, 10000);
        rc = AP_OK;
    } else {
        size_t n = h.len < CFGCHECK_TRACE_MAX ? h.len : CFGCHECK_TRACE_MAX;
        char *trace = ap_malloc(n + 1);
        if (cfgcheck_read(sv[0], trace, n, deadline) != 0)
            n = 0;
        trace[n] = '\0';
        kill(pid, SIGKILL);
        cfgcheck_reap(pid, 5000);
        fprintf(stderr, "%s: agent %s does not start in a worker: %s\n", prog, cfg->agent,
                n ? cfgcheck_last_line(trace) : "(no traceback)");
        ap_free(trace);
    }
    close(sv[0]);
    ap_free(binary);
    return rc;
}

int cfgcheck_run(const config *cfg, const char *prog)
{
    int rc = AP_OK;
    if (cfgcheck_socket_dir(cfg, prog) != AP_OK)
        rc = AP_ERR;
    if (!cfg->pools_named)
        return cfgcheck_agent(cfg, prog, NULL) == AP_OK ? rc : AP_ERR;
    /* every pool's agent, with its own python settings; one failing does not stop the others */
    for (int i = 0; i < cfg->npools; i++) {
        const config *pc = cfg->pools[i].cfg;
        if (cfgcheck_agent(pc, prog, cfg->pools[i].name) == AP_OK)
            printf("%s: check: pool %s: agent %s starts in a worker\n", prog, cfg->pools[i].name, pc->agent);
        else
            rc = AP_ERR; /* its line, naming the pool, is on stderr */
    }
    return rc;
}
