/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * safefile.c - opening a file that root appends to, in a directory a less
 * trusted user may write, without being redirected to another file.
 *
 * The log files and the dead-letter file are opened by a master started
 * as root before it drops to `user`, usually in directories that user
 * can write (so that it can reopen or roll them later).  That user could
 * plant a symbolic link, a hard link or a FIFO at the path, to make root
 * create, append to, chmod or block on a file of its choosing.  So:
 * ap_safefile_open never follows a symbolic link in the last component
 * (O_NOFOLLOW: a dangling one is not created through either), never
 * takes a controlling terminal (O_NOCTTY), never waits in open() (a FIFO
 * with no reader; O_NONBLOCK, cleared again unless asked for), and then
 * checks the file it opened, never the path again (fstat): a regular
 * file with exactly one link, owned by root, by us, or by the one other
 * uid the caller trusts (the service user).  Anything else is closed and
 * refused with one line naming the path and why.  Keeps no state.
 * Called by common/log.c (logFile), pool/ops/access.c (accessLog) and
 * pool/ops/dlq.c (the dead-letter file and its .1).
 */
#include "ap_common.h"
#include "ap_safefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ap_safefile_check(int fd, const char *path, uid_t trusted, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "fstat(%s): %s", path, strerror(errno));
        return AP_ERR;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file: refused", path);
        return AP_ERR;
    }
    if (st.st_nlink != 1) {
        snprintf(err, errlen, "%s: has %lu links (a hard link to another file?): refused", path,
                 (unsigned long)st.st_nlink);
        return AP_ERR;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid() && st.st_uid != trusted) {
        snprintf(err, errlen, "%s: owned by uid %u, neither root nor the service user: refused", path,
                 (unsigned)st.st_uid);
        return AP_ERR;
    }
    return AP_OK;
}

int ap_safefile_open(const char *path, int flags, mode_t mode, uid_t trusted, char *err, size_t errlen)
{
    int fd = open(path, flags | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC | O_NONBLOCK, mode);
    if (fd < 0) {
        int e = errno;
        struct stat st;
        if (e == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
            snprintf(err, errlen, "%s: is a symbolic link: refused", path);
        else
            snprintf(err, errlen, "open(%s): %s", path, strerror(e));
        errno = e;
        return -1;
    }
    if (ap_safefile_check(fd, path, trusted, err, errlen) != AP_OK) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    if (!(flags & O_NONBLOCK)) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
            snprintf(err, errlen, "fcntl(%s, F_SETFL): %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    return fd;
}
