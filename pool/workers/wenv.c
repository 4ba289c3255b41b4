/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wenv.c - a worker's environment, limits and directory (see wenv.h).
 *
 * Two halves with different rules.  The parent half (wenv_build_envp)
 * may allocate and runs before every fork.  The child half
 * (wenv_apply_child) runs between fork and execve in a copy of a master
 * that may have held locks in other code, so it calls only
 * async-signal-safe functions: umask, setrlimit, chdir, write, _exit, raw
 * setgroups/setresgid/setresuid/capset system calls, and
 * string helpers of its own (no snprintf, no strerror: the errno text
 * comes from glibc's untranslated, static strerrordesc_np table).  No
 * state of its own: both halves read the config in force.
 */
#include "wenv.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_frame.h"

#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the parent half ------------------------------------------------ */

/* Variables that are the master's business only (systemd's), and the
 * one the master sets for each worker itself. */
static const char *const never_passed[] = {
    "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID",
    "AGENTPOOL_WORKER_ID",
};

/* Length of the NAME in "NAME=VALUE" (or of the whole "NAME"). */
static size_t name_len(const char *s)
{
    const char *eq = strchr(s, '=');
    return eq ? (size_t)(eq - s) : strlen(s);
}

static int never_passes(const char *var)
{
    size_t n = name_len(var);
    for (size_t i = 0; i < AP_ARRAY_LEN(never_passed); i++)
        if (strlen(never_passed[i]) == n && memcmp(never_passed[i], var, n) == 0)
            return 1;
    return 0;
}

/* The parent's "NAME=..." entry for name[0..n), or NULL. */
static char *parent_value(char *const *parent_env, const char *name, size_t n)
{
    for (size_t i = 0; parent_env[i]; i++)
        if (strncmp(parent_env[i], name, n) == 0 && parent_env[i][n] == '=')
            return parent_env[i];
    return NULL;
}

char **wenv_build_envp(const config *cfg, char *const *parent_env, char *worker_id_var)
{
    size_t np = 0;
    while (parent_env[np])
        np++;
    size_t cap = (cfg->env.set ? (size_t)cfg->env.n : np) + 2;
    char **envp = ap_malloc(cap * sizeof(char *));
    size_t k = 0;
    if (!cfg->env.set) {
        for (size_t i = 0; i < np; i++)
            if (!never_passes(parent_env[i]))
                envp[k++] = parent_env[i];
    } else {
        for (int i = 0; i < cfg->env.n; i++) {
            char *e = cfg->env.items[i];
            size_t n = name_len(e);
            if (never_passes(e))
                continue;
            /* A later entry for the same name wins. */
            int later = 0;
            for (int j = i + 1; j < cfg->env.n && !later; j++)
                later = name_len(cfg->env.items[j]) == n && strncmp(cfg->env.items[j], e, n) == 0;
            if (later)
                continue;
            char *v = e[n] == '=' ? e : parent_value(parent_env, e, n);
            if (v)
                envp[k++] = v;
        }
    }
    envp[k++] = worker_id_var;
    envp[k] = NULL;
    return envp;
}

/* ---- the child half: async-signal-safe only -------------------------- */

typedef struct {
    char text[512];
    size_t len;
} child_msg;

static void msg_add(child_msg *m, const char *s)
{
    size_t n = strlen(s);
    if (n > sizeof(m->text) - 1 - m->len)
        n = sizeof(m->text) - 1 - m->len;
    memcpy(m->text + m->len, s, n);
    m->len += n;
}

static void msg_add_num(child_msg *m, long long v)
{
    char digits[24], *p = digits + sizeof(digits);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    *--p = '\0';
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    msg_add(m, p);
}

/* Reports "the worker environment could not be set up: WHAT: ERRNO" to
 * the master and exits. */
static AP_NORETURN void child_fail(child_msg *what, int err, int report_fd)
{
    child_msg m = {.len = 0};
    msg_add(&m, "the worker environment could not be set up: ");
    msg_add(&m, what->text);
    msg_add(&m, ": ");
    const char *desc = strerrordesc_np(err);
    msg_add(&m, desc ? desc : "unknown error");
    unsigned char frame[AP_FRAME_HDR_SIZE + sizeof(m.text)];
    ap_frame_hdr h = {(uint32_t)m.len, AP_FRAME_START_FAILED, 0, 0, 0};
    ap_frame_encode(frame, &h);
    memcpy(frame + AP_FRAME_HDR_SIZE, m.text, m.len);
    if (write(report_fd, frame, AP_FRAME_HDR_SIZE + m.len) != (ssize_t)(AP_FRAME_HDR_SIZE + m.len)) {
        msg_add(&m, "\n");
        (void)!write(2, "agentpoold: ", 12);
        (void)!write(2, m.text, m.len);
    }
    _exit(WENV_EXIT_FAILED);
}

static void child_limit(int resource, const char *name, int64_t v, int report_fd)
{
    if (v == CONFIG_LIMIT_UNSET)
        return;
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = v == CONFIG_LIMIT_UNLIMITED ? RLIM_INFINITY : (rlim_t)v;
    if (setrlimit(resource, &rl) != 0) {
        int e = errno;
        child_msg what = {.len = 0};
        msg_add(&what, "setrlimit(");
        msg_add(&what, name);
        msg_add(&what, ", ");
        if (v == CONFIG_LIMIT_UNLIMITED)
            msg_add(&what, "unlimited");
        else
            msg_add_num(&what, v);
        msg_add(&what, ")");
        child_fail(&what, e, report_fd);
    }
}

int wenv_caps_set(uint64_t permitted, uint64_t effective)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    d[0].permitted = (uint32_t)permitted;
    d[1].permitted = (uint32_t)(permitted >> 32);
    d[0].effective = (uint32_t)effective;
    d[1].effective = (uint32_t)(effective >> 32);
    return (int)syscall(SYS_capset, &h, d);
}

static AP_NORETURN void child_fail_call(const char *call, long long arg, int err, int report_fd)
{
    child_msg what = {.len = 0};
    msg_add(&what, call);
    msg_add(&what, "(");
    msg_add_num(&what, arg);
    msg_add(&what, ")");
    child_fail(&what, err, report_fd);
}

/* workerUser: groups, gid, uid (raw system calls: this process has one
 * thread, and glibc's wrappers are not async-signal-safe), then every
 * capability dropped. */
static void child_switch(const wenv_ident *id, int report_fd)
{
    if (id->set) {
        uint64_t need = WENV_CAP(CAP_SETUID) | WENV_CAP(CAP_SETGID);
        if (id->raise_caps && wenv_caps_set(need, need) != 0)
            child_fail_call("capset(CAP_SETUID|CAP_SETGID)", (long long)need, errno, report_fd);
        if (syscall(SYS_setgroups, (size_t)id->ngroups, id->groups) != 0)
            child_fail_call("setgroups", id->ngroups, errno, report_fd);
        if (syscall(SYS_setresgid, id->gid, id->gid, id->gid) != 0)
            child_fail_call("setresgid", (long long)id->gid, errno, report_fd);
        if (syscall(SYS_setresuid, id->uid, id->uid, id->uid) != 0)
            child_fail_call("setresuid", (long long)id->uid, errno, report_fd);
    }
    if (id->drop_caps) {
        /* What the master kept for workerUser stays with no worker
         * (execve would clear it as well: no file capabilities). */
        if (wenv_caps_set(0, 0) != 0)
            child_fail_call("capset", 0, errno, report_fd);
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    }
}

void wenv_apply_child(const config *cfg, const wenv_ident *id, int report_fd)
{
    if (cfg->worker_umask >= 0)
        umask((mode_t)cfg->worker_umask);
    child_limit(RLIMIT_AS, "RLIMIT_AS", cfg->worker_limits.address_space, report_fd);
    child_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", cfg->worker_limits.open_files, report_fd);
    child_limit(RLIMIT_CORE, "RLIMIT_CORE", cfg->worker_limits.core_size, report_fd);
    child_switch(id, report_fd);
    if (cfg->worker_chdir && chdir(cfg->worker_chdir) != 0) {
        int e = errno;
        child_msg what = {.len = 0};
        msg_add(&what, "chdir(");
        msg_add(&what, cfg->worker_chdir);
        msg_add(&what, ")");
        child_fail(&what, e, report_fd);
    }
}
