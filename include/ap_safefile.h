/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ap_safefile.h - opening files root appends to without being redirected
 * by a symbolic link, a hard link or a FIFO planted at the path (see
 * common/safefile.c).
 */
#ifndef AP_SAFEFILE_H
#define AP_SAFEFILE_H

#include <stddef.h>
#include <sys/types.h>

/* No uid besides root and ourselves is trusted. */
#define AP_SAFEFILE_NOBODY_ELSE ((uid_t)-1)

/* Opens path with flags (O_CREAT allowed, with mode) plus O_NOFOLLOW,
 * O_NOCTTY and O_CLOEXEC, then checks the open file: a regular file with
 * one link, owned by root, our euid or `trusted`.  O_NONBLOCK is kept
 * only if flags ask for it.  Returns the descriptor, or -1 with err
 * filled in one line naming path ("PATH: is a symbolic link: refused",
 * "open(PATH): <reason>") and nothing left open (a file O_CREAT just
 * made stays, empty). */
int ap_safefile_open(const char *path, int flags, mode_t mode, uid_t trusted, char *err, size_t errlen);
/* The check alone, on a descriptor the caller opened.  AP_ERR with err
 * filled when fd is not such a file. */
int ap_safefile_check(int fd, const char *path, uid_t trusted, char *err, size_t errlen);

#endif
