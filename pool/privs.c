/*
 * privs.c - the privilege drop and the peer check (see privs.h).
 *
 * Owns: the resolved identity to drop to (uid, gid, supplementary
 * groups), the resolved allowedUids/allowedGids/adminUids/adminGids in
 * force, and the lists
 * resolved by the last reload (or in force before it), each with copies
 * of the setting texts they came from.  Everything that can block (the
 * user database: getpwnam/getgrnam, slow with LDAP or sssd) runs at
 * start-up and when a reload is checked (privs_check_reload), never at
 * accept: the per-accept path is a comparison of the running settings'
 * texts with those two sets (switching to the other one when a reload
 * or its abort changed the settings), a getsockopt and a few
 * comparisons.  Never forks, never touches the workers: they inherit the
 * dropped identity.
 */
#include "privs.h"
#include "refuse.h"
#include "ap_alloc.h"
#include "ap_common.h"
#include "ap_log.h"
#include "server.h"

#include <event2/event.h>

#include <errno.h>
#include <grp.h>
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

/* The peer lists, in their settings' order. */
enum { PL_ALLOWED_UIDS, PL_ALLOWED_GIDS, PL_ADMIN_UIDS, PL_ADMIN_GIDS, PL_COUNT };

static const char *const pl_keys[PL_COUNT] = {"allowedUids", "allowedGids", "adminUids", "adminGids"};

static struct {
    int drop;                   /* root with `user`: privs_drop() drops */
    uid_t uid;
    gid_t gid;
    uid_t self_uid;             /* the uid we serve as (after the drop): an admin by default */
    char *user_shown;           /* "nobody (uid 65534)" */
    gid_t *groups;
    int ngroups;
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

/* user/group -> privs_state.uid, privs_state.gid, privs_state.groups. */
static int resolve_identity(const config *cfg, char *err, size_t errlen)
{
    unsigned uid, gid, pw_gid = 0;
    char name[96];
    const struct passwd *pw = all_digits(cfg->user) ? NULL : getpwnam(cfg->user);
    if (pw == NULL && parse_id(cfg->user, &uid) == AP_OK)
        pw = getpwuid((uid_t)uid);
    /* Copied at once: the next lookup may reuse getpw*'s static storage. */
    int has_pw = pw != NULL;
    snprintf(name, sizeof(name), "%.64s", pw ? pw->pw_name : cfg->user);
    if (pw) {
        uid = (unsigned)pw->pw_uid;
        pw_gid = (unsigned)pw->pw_gid;
    } else if (parse_id(cfg->user, &uid) != AP_OK) {
        snprintf(err, errlen, "user: \"%.64s\" is neither a number nor a known user", cfg->user);
        return AP_ERR;
    }
    if (uid == 0) {
        snprintf(err, errlen, "user: \"%.64s\" is root (uid 0), which is no drop; remove user to run as root",
                 cfg->user);
        return AP_ERR;
    }
    if (cfg->group) {
        if (resolve_gid(cfg->group, &gid) != AP_OK) {
            snprintf(err, errlen, "group: \"%.64s\" is neither a number nor a known group", cfg->group);
            return AP_ERR;
        }
    } else if (has_pw) {
        gid = pw_gid;
    } else {
        snprintf(err, errlen, "user: uid %u has no entry in the user database, so it has no group; set group too",
                 uid);
        return AP_ERR;
    }
    privs_state.uid = (uid_t)uid;
    privs_state.gid = (gid_t)gid;
    privs_state.groups = ap_calloc(PRIVS_MAX_GROUPS, sizeof(gid_t));
    privs_state.ngroups = PRIVS_MAX_GROUPS;
    /* The user's own supplementary groups, as login would set them. */
    if (!has_pw || getgrouplist(name, privs_state.gid, privs_state.groups, &privs_state.ngroups) < 0) {
        if (has_pw)
            ap_warn("user %s is in more than %d groups; keeping only group %u", name, PRIVS_MAX_GROUPS, gid);
        privs_state.groups[0] = privs_state.gid;
        privs_state.ngroups = 1;
    }
    char shown[160];
    snprintf(shown, sizeof(shown), "%s (uid %u, gid %u)", name, uid, gid);
    privs_state.user_shown = ap_strdup(shown);
    return AP_OK;
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
    ap_free(privs_state.groups);
    ap_free(privs_state.user_shown);
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
    privs_state.self_uid = geteuid();
    if ((cfg->user && resolve_identity(cfg, why, sizeof(why)) != AP_OK) ||
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
    if (cfg->user == NULL)
        return AP_OK;
    if (geteuid() == 0) {
        privs_state.drop = 1;
        return AP_OK;
    }
    /* Not root: fine only if we are that user (and group) already. */
    if (getuid() != privs_state.uid || geteuid() != privs_state.uid || (cfg->group && (getgid() != privs_state.gid || getegid() != privs_state.gid))) {
        snprintf(err, errlen,
                 "%s: user: agentpoold runs as uid %u gid %u, not root, so it cannot become %s; start it as root "
                 "or remove user/group",
                 origin, (unsigned)geteuid(), (unsigned)getegid(), privs_state.user_shown);
        privs_free();
        return AP_ERR;
    }
    return AP_OK;
}

/* ---- dropping ------------------------------------------------------- */

int privs_drop(char *err, size_t errlen)
{
    if (geteuid() != 0)
        return AP_OK;
    if (!privs_state.drop) {
        ap_warn("running as root without user: the workers run as root too; set user (and group) to drop "
                "privileges after binding");
        return AP_OK;
    }
    const config *cfg = server.cfg;
    if (server.owns_socket_file && chown(cfg->socket, privs_state.uid, privs_state.gid) != 0) {
        snprintf(err, errlen, "chown(%s, %u, %u): %s", cfg->socket, (unsigned)privs_state.uid, (unsigned)privs_state.gid,
                 strerror(errno));
        return AP_ERR;
    }
    config_listen_addr la;
    char why[256];
    if (cfg->metrics_listen && config_parse_listen(cfg->metrics_listen, &la, why, sizeof(why)) == AP_OK &&
        la.family == AF_UNIX && chown(la.path, privs_state.uid, privs_state.gid) != 0) {
        snprintf(err, errlen, "chown(%s, %u, %u) (metricsListen): %s", la.path, (unsigned)privs_state.uid, (unsigned)privs_state.gid,
                 strerror(errno));
        return AP_ERR;
    }
    if (setgroups((size_t)privs_state.ngroups, privs_state.groups) != 0) {
        snprintf(err, errlen, "setgroups(%d groups of %s): %s", privs_state.ngroups, privs_state.user_shown, strerror(errno));
        return AP_ERR;
    }
    if (setresgid(privs_state.gid, privs_state.gid, privs_state.gid) != 0) {
        snprintf(err, errlen, "setresgid(%u) for %s: %s", (unsigned)privs_state.gid, privs_state.user_shown, strerror(errno));
        return AP_ERR;
    }
    if (setresuid(privs_state.uid, privs_state.uid, privs_state.uid) != 0) {
        snprintf(err, errlen, "setresuid(%u) for %s: %s", (unsigned)privs_state.uid, privs_state.user_shown, strerror(errno));
        return AP_ERR;
    }
    uid_t r, e, s;
    gid_t gr, ge, gs;
    if (setuid(0) == 0 || seteuid(0) == 0 || getresuid(&r, &e, &s) != 0 || r != privs_state.uid || e != privs_state.uid ||
        s != privs_state.uid || getresgid(&gr, &ge, &gs) != 0 || gr != privs_state.gid || ge != privs_state.gid || gs != privs_state.gid) {
        snprintf(err, errlen, "still able to regain root after dropping to %s; refusing to run", privs_state.user_shown);
        return AP_ERR;
    }
    privs_state.self_uid = privs_state.uid;
#if defined(__SANITIZE_ADDRESS__)
    /* Sanitizer builds only: LeakSanitizer must inspect the process at
     * exit, which the kernel refuses once its ids changed (not dumpable).
     * Release builds stay non-dumpable. */
    prctl(PR_SET_DUMPABLE, 1);
#endif
    if (access(server.worker_binary, X_OK) != 0) {
        snprintf(err, errlen, "the worker binary %s is not executable by %s: %s", server.worker_binary,
                 privs_state.user_shown, strerror(errno));
        return AP_ERR;
    }
    ap_info("dropped privileges to %s, %d group%s; workers run as it too", privs_state.user_shown, privs_state.ngroups,
            privs_state.ngroups == 1 ? "" : "s");
    return AP_OK;
}

/* ---- the peer check --------------------------------------------------- */

int privs_check_reload(const config *nc, char *err, size_t errlen)
{
    id_list l[PL_COUNT];
    memset(l, 0, sizeof(l));
    if (pl_resolve_all(nc, l, err, errlen) != AP_OK)
        return AP_ERR;
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
 * abort brought the old ones back): then the two swap.  No name is
 * looked up here. */
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
