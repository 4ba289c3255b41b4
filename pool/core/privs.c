/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * privs.c - the privilege drop and the peer check (see privs.h).
 *
 * Owns: the resolved identity to drop to (uid, gid, supplementary
 * groups), the uid the master serves as (an administrator by default),
 * the four resolved peer lists in force (allowedUids, allowedGids,
 * adminUids, adminGids: one array, in that order), and the four
 * resolved by the last reload (or in force before it), each with copies
 * of the setting texts they came from.  Everything that can block (the
 * user database: getpwnam/getgrnam, slow with LDAP or sssd) runs at
 * start-up and when a reload is checked (privs_check_reload), never at
 * accept or at an admin request: the per-accept path is a comparison
 * of the running settings' texts with those two sets (switching to the
 * other one when a reload or its abort changed the settings), a
 * getsockopt and a few comparisons.  The workers' identity (workerUser/workerGroup) is
 * resolved and double-buffered the same way, looked up at start and
 * when a reload changes it, handed to each spawn (privs_worker_ident)
 * for the child to switch to (wenv.c); with it, the drop keeps
 * CAP_SETUID/CAP_SETGID (permitted only) and CAP_KILL (effective).
 * Never forks, never touches a worker itself.
 */
#include "privs.h"
#include "refuse.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "ap_safefile.h"
#include "server.h"
#include "wenv.h"

#include <event2/event.h>

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* Supplementary groups kept when dropping, at most. */
#define PRIVS_MAX_GROUPS 256


typedef struct {
    unsigned *ids;
    int n;
    int set;                    /* a list is in force (possibly empty) */
} id_list;

/* A resolved user and group, with the user's supplementary groups. */
typedef struct {
    uid_t uid;
    gid_t gid;
    char *user_shown;           /* "nobody (uid 65534, gid 65534)" */
    gid_t *groups;
    int ngroups;
} privs_ident;

/* The texts an identity was resolved from (workerUser, workerGroup). */
typedef struct {
    char *user, *group;
} ident_src;

/* The peer lists, in their settings' order. */
enum { PL_ALLOWED_UIDS, PL_ALLOWED_GIDS, PL_ADMIN_UIDS, PL_ADMIN_GIDS, PL_COUNT };

static const char *const pl_keys[PL_COUNT] = {"allowedUids", "allowedGids", "adminUids", "adminGids"};

static struct {
    int drop;                   /* root with `user`: privs_drop() drops */
    privs_ident me;             /* user/group: what the master drops to */
    uid_t self_uid;             /* the uid the master serves as (me.uid after the drop): an admin by default */
    int kept_caps;              /* the drop kept CAP_SETUID/CAP_SETGID/CAP_KILL for workerUser */
    privs_ident wk, alt_wk;     /* workerUser/workerGroup resolved: in force, and by the last reload check */
    ident_src wk_src, alt_wk_src;
    int wk_set, alt_wk_set;     /* ident resolved (workerUser set) */
    wenv_ident wk_child;        /* what the child is given: built from wk at each spawn */
    id_list lists[PL_COUNT];    /* resolved allowed and admin lists, in force */
    config_list src[PL_COUNT];  /* the texts they were resolved from */
    id_list alt[PL_COUNT];      /* resolved by the last reload check, or in force before it */
    config_list alt_src[PL_COUNT];
} privs_state;

static const config_list *pl_setting(const config *cfg, int i)
{
    const config_list *l[PL_COUNT] = {&cfg->allowed_uids, &cfg->allowed_gids, &cfg->admin_uids, &cfg->admin_gids};
    return l[i];
}

static int pl_is_gids(int i)
{
    return i == PL_ALLOWED_GIDS || i == PL_ADMIN_GIDS;
}

/* ---- resolving names ------------------------------------------------ */

static int all_digits(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* A decimal id below 2^32 - 1 ((uid_t)-1 means "no change" to set*id). */
static int parse_id(const char *s, unsigned *out)
{
    if (!all_digits(s) || strlen(s) > 10)
        return AP_ERR;
    unsigned long long v = strtoull(s, NULL, 10);
    if (v >= 0xffffffffull)
        return AP_ERR;
    *out = (unsigned)v;
    return AP_OK;
}

static int resolve_uid(const char *s, unsigned *out)
{
    if (parse_id(s, out) == AP_OK)
        return AP_OK;
    const struct passwd *pw = getpwnam(s);
    if (pw == NULL)
        return AP_ERR;
    *out = (unsigned)pw->pw_uid;
    return AP_OK;
}

static int resolve_gid(const char *s, unsigned *out)
{
    if (parse_id(s, out) == AP_OK)
        return AP_OK;
    const struct group *gr = getgrnam(s);
    if (gr == NULL)
        return AP_ERR;
    *out = (unsigned)gr->gr_gid;
    return AP_OK;
}

static void ids_free(id_list *l)
{
    ap_free(l->ids);
    memset(l, 0, sizeof(*l));
}

/* Resolves every entry of src.  AP_ERR with err naming the setting and
 * the entry that does not resolve; *out untouched then. */
static int ids_resolve(const config_list *src, int groups, const char *key, id_list *out, char *err, size_t errlen)
{
    id_list l = {NULL, 0, src->set};
    if (src->n > 0)
        l.ids = ap_calloc((size_t)src->n, sizeof(unsigned));
    for (int i = 0; i < src->n; i++) {
        if ((groups ? resolve_gid : resolve_uid)(src->items[i], &l.ids[l.n]) != AP_OK) {
            snprintf(err, errlen, "%s: \"%.64s\" is neither a number nor a known %s", key, src->items[i],
                     groups ? "group" : "user");
            ap_free(l.ids);
            return AP_ERR;
        }
        l.n++;
    }
    ids_free(out);
    *out = l;
    return AP_OK;
}

static void list_copy(config_list *dst, const config_list *src)
{
    for (int i = 0; i < dst->n; i++)
        ap_free(dst->items[i]);
    ap_free(dst->items);
    dst->items = src->n ? ap_calloc((size_t)src->n, sizeof(char *)) : NULL;
    for (int i = 0; i < src->n; i++)
        dst->items[i] = ap_strdup(src->items[i]);
    dst->n = src->n;
    dst->set = src->set;
}

static int list_equal(const config_list *a, const config_list *b)
{
    if (a->set != b->set || a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->items[i], b->items[i]) != 0)
            return 0;
    return 1;
}

/* Names of the two settings an identity comes from, for error texts. */
typedef struct {
    const char *user, *group;
    const char *root_refusal;   /* why uid 0 is refused */
} ident_keys;

static const ident_keys master_keys = {"user", "group", "which is no drop; remove user to run as root"};
static const ident_keys worker_keys = {"workerUser", "workerGroup",
                                       "and workers never run as root this way; remove workerUser"};

/* user (and group, or the user's own) -> *out, with the user's
 * supplementary groups.  AP_ERR with err naming the setting when a name
 * does not resolve or the user is root; *out untouched then. */
static int ident_resolve(const char *user, const char *group, const ident_keys *k, privs_ident *out, char *err,
                         size_t errlen)
{
    unsigned uid, gid, pw_gid = 0;
    char name[96];
    const struct passwd *pw = all_digits(user) ? NULL : getpwnam(user);
    if (pw == NULL && parse_id(user, &uid) == AP_OK)
        pw = getpwuid((uid_t)uid);
    /* Copied at once: the next lookup may reuse getpw*'s static storage. */
    int has_pw = pw != NULL;
    snprintf(name, sizeof(name), "%.64s", pw ? pw->pw_name : user);
    if (pw) {
        uid = (unsigned)pw->pw_uid;
        pw_gid = (unsigned)pw->pw_gid;
    } else if (parse_id(user, &uid) != AP_OK) {
        snprintf(err, errlen, "%s: \"%.64s\" is neither a number nor a known user", k->user, user);
        return AP_ERR;
    }
    if (uid == 0) {
        snprintf(err, errlen, "%s: \"%.64s\" is root (uid 0), %s", k->user, user, k->root_refusal);
        return AP_ERR;
    }
    if (group) {
        if (resolve_gid(group, &gid) != AP_OK) {
            snprintf(err, errlen, "%s: \"%.64s\" is neither a number nor a known group", k->group, group);
            return AP_ERR;
        }
    } else if (has_pw) {
        gid = pw_gid;
    } else {
        snprintf(err, errlen, "%s: uid %u has no entry in the user database, so it has no group; set %s too",
                 k->user, uid, k->group);
        return AP_ERR;
    }
    privs_ident id = {(uid_t)uid, (gid_t)gid, NULL, NULL, PRIVS_MAX_GROUPS};
    id.groups = ap_calloc(PRIVS_MAX_GROUPS, sizeof(gid_t));
    /* The user's own supplementary groups, as login would set them. */
    if (!has_pw || getgrouplist(name, id.gid, id.groups, &id.ngroups) < 0) {
        if (has_pw)
            ap_warn("user %s is in more than %d groups; keeping only group %u", name, PRIVS_MAX_GROUPS, gid);
        id.groups[0] = id.gid;
        id.ngroups = 1;
    }
    char shown[160];
    snprintf(shown, sizeof(shown), "%s (uid %u, gid %u)", name, uid, gid);
    id.user_shown = ap_strdup(shown);
    ap_free(out->groups);
    ap_free(out->user_shown);
    *out = id;
    return AP_OK;
}

static void ident_free(privs_ident *id)
{
    ap_free(id->groups);
    ap_free(id->user_shown);
    memset(id, 0, sizeof(*id));
}

static void src_set(ident_src *s, const config *cfg)
{
    ap_free(s->user);
    ap_free(s->group);
    s->user = cfg->worker_user ? ap_strdup(cfg->worker_user) : NULL;
    s->group = cfg->worker_group ? ap_strdup(cfg->worker_group) : NULL;
}

static int opt_equal(const char *a, const char *b)
{
    return (a == NULL) == (b == NULL) && (a == NULL || strcmp(a, b) == 0);
}

static int src_is(const ident_src *s, const config *cfg)
{
    return opt_equal(s->user, cfg->worker_user) && opt_equal(s->group, cfg->worker_group);
}

/* Can this master start processes as id?  Root can; a master that
 * dropped to `user` only if it kept CAP_SETUID and CAP_SETGID for it; a
 * master that is not root only as itself. */
static int can_become(const privs_ident *id)
{
    if (geteuid() == 0 || privs_state.kept_caps)
        return 1;
    return getuid() == id->uid && geteuid() == id->uid && getgid() == id->gid && getegid() == id->gid;
}

void privs_free(void)
{
    config_list none = {NULL, 0, 0};
    for (int i = 0; i < PL_COUNT; i++) {
        ids_free(&privs_state.lists[i]);
        ids_free(&privs_state.alt[i]);
        list_copy(&privs_state.src[i], &none);
        list_copy(&privs_state.alt_src[i], &none);
    }
    ident_free(&privs_state.me);
    ident_free(&privs_state.wk);
    ident_free(&privs_state.alt_wk);
    config wk_none;
    memset(&wk_none, 0, sizeof(wk_none));
    src_set(&privs_state.wk_src, &wk_none);
    src_set(&privs_state.alt_wk_src, &wk_none);
    memset(&privs_state, 0, sizeof(privs_state));
}

/* Resolves the four peer lists of cfg into out[]; AP_ERR (why in err)
 * at the first that does not resolve, with out[] freed. */
static int pl_resolve_all(const config *cfg, id_list out[PL_COUNT], char *err, size_t errlen)
{
    for (int i = 0; i < PL_COUNT; i++)
        if (ids_resolve(pl_setting(cfg, i), pl_is_gids(i), pl_keys[i], &out[i], err, errlen) != AP_OK) {
            for (int j = 0; j < PL_COUNT; j++)
                ids_free(&out[j]);
            return AP_ERR;
        }
    return AP_OK;
}

/* "2 uids, 0 gids; adminUids/adminGids: 1 uid, 0 gids" for the log. */
static void pl_counts(const id_list l[PL_COUNT], char *buf, size_t cap)
{
    snprintf(buf, cap, "%d uid%s, %d gid%s; adminUids/adminGids: %d uid%s, %d gid%s", l[0].n, l[0].n == 1 ? "" : "s",
             l[1].n, l[1].n == 1 ? "" : "s", l[2].n, l[2].n == 1 ? "" : "s", l[3].n, l[3].n == 1 ? "" : "s");
}

/* 1 when cfg's four lists have the texts of src[]. */
static int pl_texts_equal(const config *cfg, const config_list src[PL_COUNT])
{
    for (int i = 0; i < PL_COUNT; i++)
        if (!list_equal(pl_setting(cfg, i), &src[i]))
            return 0;
    return 1;
}

int privs_init(const config *cfg, int check_only, char *err, size_t errlen)
{
    const char *origin = cfg->config_file ? cfg->config_file : "command line";
    char why[320];
    memset(&privs_state, 0, sizeof(privs_state));
    privs_state.self_uid = geteuid(); /* until privs_drop() drops to user */
    if ((cfg->user && ident_resolve(cfg->user, cfg->group, &master_keys, &privs_state.me, why, sizeof(why)) != AP_OK) ||
        (cfg->worker_user &&
         ident_resolve(cfg->worker_user, cfg->worker_group, &worker_keys, &privs_state.wk, why, sizeof(why)) != AP_OK) ||
        pl_resolve_all(cfg, privs_state.lists, why, sizeof(why)) != AP_OK) {
        snprintf(err, errlen, "%s: %s", origin, why);
        privs_free();
        return AP_ERR;
    }
    if (check_only) {
        privs_free();
        return AP_OK;
    }
    for (int i = 0; i < PL_COUNT; i++)
        list_copy(&privs_state.src[i], pl_setting(cfg, i));
    privs_state.wk_set = cfg->worker_user != NULL;
    src_set(&privs_state.wk_src, cfg);
    if (privs_state.wk_set && !can_become(&privs_state.wk)) {
        snprintf(err, errlen,
                 "%s: workerUser: agentpoold runs as uid %u gid %u, not root, so it cannot start its workers as %s; "
                 "start it as root or remove workerUser/workerGroup",
                 origin, (unsigned)geteuid(), (unsigned)getegid(), privs_state.wk.user_shown);
        privs_free();
        return AP_ERR;
    }
    if (cfg->user == NULL)
        return AP_OK;
    if (geteuid() == 0) {
        privs_state.drop = 1;
        return AP_OK;
    }
    /* Not root: fine only if we are that user (and group) already. */
    if (getuid() != privs_state.me.uid || geteuid() != privs_state.me.uid || (cfg->group && (getgid() != privs_state.me.gid || getegid() != privs_state.me.gid))) {
        snprintf(err, errlen,
                 "%s: user: agentpoold runs as uid %u gid %u, not root, so it cannot become %s; start it as root "
                 "or remove user/group",
                 origin, (unsigned)geteuid(), (unsigned)getegid(), privs_state.me.user_shown);
        privs_free();
        return AP_ERR;
    }
    return AP_OK;
}

/* ---- creating files as the user, before the drop ------------------- */

/* Root's own supplementary groups while privs_as_user is in force. */
static struct {
    int on;
    gid_t groups[PRIVS_MAX_GROUPS];
    int ngroups;
} privs_saved;

int privs_as_user(char *err, size_t errlen)
{
    if (!privs_state.drop || geteuid() != 0 || privs_saved.on)
        return AP_OK;
    int n = getgroups(PRIVS_MAX_GROUPS, privs_saved.groups);
    if (n < 0) {
        snprintf(err, errlen, "getgroups(): %s", strerror(errno));
        return AP_ERR;
    }
    privs_saved.ngroups = n;
    if (setgroups((size_t)privs_state.me.ngroups, privs_state.me.groups) != 0) {
        snprintf(err, errlen, "setgroups(%d groups of %s): %s", privs_state.me.ngroups, privs_state.me.user_shown,
                 strerror(errno));
        return AP_ERR;
    }
    if (setresgid((gid_t)-1, privs_state.me.gid, (gid_t)-1) != 0) {
        snprintf(err, errlen, "setresgid(-1, %u, -1) for %s: %s", (unsigned)privs_state.me.gid, privs_state.me.user_shown,
                 strerror(errno));
        privs_saved.on = 1; /* half way: privs_as_root takes it all back (or stops) */
        privs_as_root();
        return AP_ERR;
    }
    if (setresuid((uid_t)-1, privs_state.me.uid, (uid_t)-1) != 0) {
        snprintf(err, errlen, "setresuid(-1, %u, -1) for %s: %s", (unsigned)privs_state.me.uid, privs_state.me.user_shown,
                 strerror(errno));
        privs_saved.on = 1;
        privs_as_root();
        return AP_ERR;
    }
    privs_saved.on = 1;
    return AP_OK;
}

void privs_as_root(void)
{
    if (!privs_saved.on)
        return;
    /* The saved set-user-ID is still 0: these cannot fail; if one did,
     * going on half-privileged would be worse than stopping. */
    if (setresuid((uid_t)-1, 0, (uid_t)-1) != 0 || setresgid((gid_t)-1, 0, (gid_t)-1) != 0 ||
        setgroups((size_t)privs_saved.ngroups, privs_saved.groups) != 0) {
        ap_log(AP_LOG_CRIT, "could not take back root's ids after creating a file as %s: %s", privs_state.me.user_shown,
                strerror(errno));
        _exit(1);
    }
    privs_saved.on = 0;
}

uid_t privs_service_uid(void)
{
    return privs_state.drop ? privs_state.me.uid : AP_SAFEFILE_NOBODY_ELSE;
}

gid_t privs_service_gid(void)
{
    return privs_state.drop ? privs_state.me.gid : (gid_t)-1;
}

const char *privs_user_shown(void)
{
    return privs_state.drop ? privs_state.me.user_shown : NULL;
}

/* ---- dropping ------------------------------------------------------- */

int privs_drop(char *err, size_t errlen)
{
    if (geteuid() != 0)
        return AP_OK;
    if (!privs_state.drop && privs_state.wk_set) {
        ap_warn("running as root without user: the master runs as root (its workers as %s); set user (and group) to "
                "drop privileges after binding", privs_state.wk.user_shown);
        return AP_OK;
    }
    if (!privs_state.drop) {
        ap_warn("running as root without user: the workers run as root too; set user (and group) to drop "
                "privileges after binding");
        return AP_OK;
    }
    /* The socket files were born owned by user:group (privs_as_user
     * around bind): nothing is chowned by path here, so a path swapped
     * for a symbolic link cannot make root chown its target. */
    if (setgroups((size_t)privs_state.me.ngroups, privs_state.me.groups) != 0) {
        snprintf(err, errlen, "setgroups(%d groups of %s): %s", privs_state.me.ngroups, privs_state.me.user_shown, strerror(errno));
        return AP_ERR;
    }
    if (setresgid(privs_state.me.gid, privs_state.me.gid, privs_state.me.gid) != 0) {
        snprintf(err, errlen, "setresgid(%u) for %s: %s", (unsigned)privs_state.me.gid, privs_state.me.user_shown, strerror(errno));
        return AP_ERR;
    }
    /* With workerUser the drop keeps the permitted capabilities, cut
     * down to three below. */
    if (privs_state.wk_set && prctl(PR_SET_KEEPCAPS, 1) != 0) {
        snprintf(err, errlen, "prctl(PR_SET_KEEPCAPS) for workerUser: %s", strerror(errno));
        return AP_ERR;
    }
    if (setresuid(privs_state.me.uid, privs_state.me.uid, privs_state.me.uid) != 0) {
        snprintf(err, errlen, "setresuid(%u) for %s: %s", (unsigned)privs_state.me.uid, privs_state.me.user_shown, strerror(errno));
        return AP_ERR;
    }
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (setuid(0) == 0 || seteuid(0) == 0 || getresuid(&r, &e, &s) != 0 || r != privs_state.me.uid || e != privs_state.me.uid ||
        s != privs_state.me.uid || getresgid(&gr, &ge, &gs) != 0 || gr != privs_state.me.gid || ge != privs_state.me.gid || gs != privs_state.me.gid) {
        snprintf(err, errlen, "still able to regain root after dropping to %s; refusing to run", privs_state.me.user_shown);
        return AP_ERR;
    }
    if (privs_state.wk_set) {
        /* Permitted: CAP_SETUID and CAP_SETGID, raised only in a new
         * worker between fork and exec (wenv.c), and CAP_KILL; effective:
         * CAP_KILL alone, to signal workers of another uid. */
        prctl(PR_SET_KEEPCAPS, 0);
        if (wenv_caps_set(WENV_CAP(CAP_SETUID) | WENV_CAP(CAP_SETGID) | WENV_CAP(CAP_KILL), WENV_CAP(CAP_KILL)) != 0) {
            snprintf(err, errlen, "capset(CAP_SETUID, CAP_SETGID, CAP_KILL) for workerUser: %s", strerror(errno));
            return AP_ERR;
        }
        privs_state.kept_caps = 1;
        if (setuid(0) == 0 || seteuid(0) == 0) {
            snprintf(err, errlen, "still able to regain root after dropping to %s; refusing to run", privs_state.me.user_shown);
            return AP_ERR;
        }
    }
    /* The default administrator is now `user`, never workerUser: its
     * capabilities are the master's, not an agent's. */
    privs_state.self_uid = privs_state.me.uid;
#if defined(__SANITIZE_ADDRESS__)
    /* Sanitizer builds only: LeakSanitizer must inspect the process at
     * exit, which the kernel refuses once its ids changed (not dumpable).
     * Release builds stay non-dumpable. */
    prctl(PR_SET_DUMPABLE, 1);
#endif
    if (access(server.worker_binary, X_OK) != 0) {
        snprintf(err, errlen, "the worker binary %s is not executable by %s: %s", server.worker_binary,
                 privs_state.me.user_shown, strerror(errno));
        return AP_ERR;
    }
    if (privs_state.wk_set)
        ap_info("dropped privileges to %s, %d group%s; workers run as workerUser %s (the master keeps CAP_SETUID and "
                "CAP_SETGID to start them, CAP_KILL to signal them)", privs_state.me.user_shown, privs_state.me.ngroups,
                privs_state.me.ngroups == 1 ? "" : "s", privs_state.wk.user_shown);
    else
        ap_info("dropped privileges to %s, %d group%s; workers run as it too", privs_state.me.user_shown,
                privs_state.me.ngroups, privs_state.me.ngroups == 1 ? "" : "s");
    return AP_OK;
}

/* ---- the peer check --------------------------------------------------- */

/* workerUser/workerGroup of a reload's config: resolved (the only
 * lookups after start-up besides the allowed lists) when their texts
 * changed, kept as the other set.  AP_ERR when they do not resolve, or
 * name someone this master cannot start processes as. */
static int check_reload_worker(const config *nc, char *err, size_t errlen)
{
    if (src_is(&privs_state.wk_src, nc))
        return AP_OK; /* unchanged texts: the running identity stays as resolved */
    privs_ident id;
    memset(&id, 0, sizeof(id));
    if (nc->worker_user && ident_resolve(nc->worker_user, nc->worker_group, &worker_keys, &id, err, errlen) != AP_OK)
        return AP_ERR;
    if (nc->worker_user && !can_become(&id)) {
        snprintf(err, errlen,
                 "workerUser: agentpoold runs as uid %u gid %u without the capabilities to start workers as %s "
                 "(workerUser must be set when it starts as root)",
                 (unsigned)geteuid(), (unsigned)getegid(), id.user_shown);
        ident_free(&id);
        return AP_ERR;
    }
    ident_free(&privs_state.alt_wk);
    privs_state.alt_wk = id;
    privs_state.alt_wk_set = nc->worker_user != NULL;
    src_set(&privs_state.alt_wk_src, nc);
    if (nc->worker_user)
        ap_info("reload: workerUser resolved: %s", id.user_shown);
    return AP_OK;
}

const wenv_ident *privs_worker_ident(const config *cfg)
{
    if (!src_is(&privs_state.wk_src, cfg)) {
        if (!src_is(&privs_state.alt_wk_src, cfg))
            return NULL; /* cannot happen: every config in force went through privs_check_reload */
        privs_ident t = privs_state.wk;
        privs_state.wk = privs_state.alt_wk;
        privs_state.alt_wk = t;
        ident_src ts = privs_state.wk_src;
        privs_state.wk_src = privs_state.alt_wk_src;
        privs_state.alt_wk_src = ts;
        int tset = privs_state.wk_set;
        privs_state.wk_set = privs_state.alt_wk_set;
        privs_state.alt_wk_set = tset;
        ap_info("workerUser changed: new workers run as %s",
                privs_state.wk_set ? privs_state.wk.user_shown : "the master's user");
    }
    wenv_ident *c = &privs_state.wk_child;
    memset(c, 0, sizeof(*c));
    /* A master that is not root and holds no capabilities can only be
     * that user already (checked when it was resolved): nothing to do. */
    if (privs_state.wk_set && (geteuid() == 0 || privs_state.kept_caps)) {
        c->set = 1;
        c->uid = privs_state.wk.uid;
        c->gid = privs_state.wk.gid;
        c->groups = privs_state.wk.groups;
        c->ngroups = privs_state.wk.ngroups;
        c->raise_caps = geteuid() != 0;
    }
    c->drop_caps = privs_state.kept_caps;
    return c;
}

/* The four peer lists are resolved first, into locals, and the
 * workers' identity checked last: it is the only step that keeps
 * something (alt_wk) when it succeeds, so a refused reload keeps
 * nothing of either. */
int privs_check_reload(const config *nc, char *err, size_t errlen)
{
    id_list l[PL_COUNT];
    memset(l, 0, sizeof(l));
    if (pl_resolve_all(nc, l, err, errlen) != AP_OK)
        return AP_ERR;
    if (check_reload_worker(nc, err, errlen) != AP_OK) {
        for (int i = 0; i < PL_COUNT; i++)
            ids_free(&l[i]);
        return AP_ERR;
    }
    if (pl_texts_equal(nc, privs_state.src)) {
        for (int i = 0; i < PL_COUNT; i++)
            ids_free(&l[i]); /* unchanged texts: the running lists stay as resolved */
        return AP_OK;
    }
    for (int i = 0; i < PL_COUNT; i++) {
        ids_free(&privs_state.alt[i]);
        privs_state.alt[i] = l[i];
        list_copy(&privs_state.alt_src[i], pl_setting(nc, i));
    }
    char counts[160];
    pl_counts(l, counts, sizeof(counts));
    ap_info("reload: allowedUids/allowedGids resolved: %s", counts);
    return AP_OK;
}

static void swap_ids(id_list *a, id_list *b)
{
    id_list t = *a;
    *a = *b;
    *b = t;
}

static void swap_texts(config_list *a, config_list *b)
{
    config_list t = *a;
    *a = *b;
    *b = t;
}

/* At accept and at an admin request: the running settings' lists are
 * the ones in force, or the other set (a reload applied them, or its
 * abort brought the old ones back): then the two swap, all four lists
 * together.  No name is looked up here. */
static void privs_sync(const config *cfg)
{
    if (pl_texts_equal(cfg, privs_state.src))
        return;
    if (!pl_texts_equal(cfg, privs_state.alt_src))
        return; /* cannot happen: every config put in force went through privs_check_reload */
    for (int i = 0; i < PL_COUNT; i++) {
        swap_ids(&privs_state.lists[i], &privs_state.alt[i]);
        swap_texts(&privs_state.src[i], &privs_state.alt_src[i]);
    }
    char counts[160];
    pl_counts(privs_state.lists, counts, sizeof(counts));
    ap_info("allowedUids/allowedGids changed: %s", counts);
}

static int id_in(const id_list *l, unsigned id)
{
    for (int i = 0; i < l->n; i++)
        if (l->ids[i] == id)
            return 1;
    return 0;
}

int privs_refuse_peer(int fd)
{
    privs_sync(server.cfg);
    const id_list *uids = &privs_state.lists[PL_ALLOWED_UIDS], *gids = &privs_state.lists[PL_ALLOWED_GIDS];
    if (!uids->set && !gids->set)
        return 0;
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    char line[256];
    int known = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0;
    if (known && (id_in(uids, (unsigned)cred.uid) || id_in(gids, (unsigned)cred.gid)))
        return 0;
    if (known)
        snprintf(line, sizeof(line),
                 "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"forbidden\",\"message\":\"uid %u is not allowed "
                 "on this socket\"}}\n",
                 (unsigned)cred.uid);
    else
        snprintf(line, sizeof(line),
                 "{\"id\":null,\"ok\":false,\"error\":{\"code\":\"forbidden\",\"message\":\"the peer's credentials "
                 "could not be read\"}}\n");
    server.stats.conns_refused_peer++;
    server.stats.errors[ERR_FORBIDDEN]++;
    uint64_t n = server.stats.conns_refused_peer;
    if (n == 1 || n % 1000 == 0) {
        if (known)
            ap_warn("refused a connection from pid %d uid %u gid %u: not in allowedUids/allowedGids (%llu refused "
                    "so far)", (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid, (unsigned long long)n);
        else
            ap_warn("refused a connection: SO_PEERCRED: %s (%llu refused so far)", strerror(errno),
                    (unsigned long long)n);
    }
    refuse_conn(fd, line); /* the line, then a bounded linger: refuse.c */
    return 1;
}

int privs_peer_is_admin(uid_t uid, gid_t gid)
{
    privs_sync(server.cfg);
    const id_list *uids = &privs_state.lists[PL_ADMIN_UIDS], *gids = &privs_state.lists[PL_ADMIN_GIDS];
    if (uid == (uid_t)-1)
        return 0; /* SO_PEERCRED failed: nobody we know */
    if (!uids->set && !gids->set)
        return uid == 0 || uid == privs_state.self_uid;
    return id_in(uids, (unsigned)uid) || (gid != (gid_t)-1 && id_in(gids, (unsigned)gid));
}
