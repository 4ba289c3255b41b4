/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * linein.h - a connection's input, cut into lines, read without libevent's
 * per-read FIONREAD.
 *
 * A bufferevent asks the kernel how much is readable (ioctl FIONREAD)
 * before every read and reads at most 4 KiB: two system calls per read
 * where one does.  Here one read(2) takes whatever is there, up to the
 * room the caller allows.  While nothing is left over from before, bytes
 * are read into one scratch buffer shared by every connection and lines
 * are handed out where they lie (no copy); what the caller leaves
 * unhandled (a partial line, or lines of a paused connection) is copied
 * into the connection's own buffer by linein_keep before the callback
 * returns, and that buffer is freed when it empties, so an idle
 * connection holds no input memory.
 * Never blocks (the socket is non-blocking); never grows past the room
 * the caller passes to linein_read.
 */
#ifndef AP_LINEIN_H
#define AP_LINEIN_H

#include <stddef.h>
#include <sys/types.h>

typedef struct linein {
    char *own;          /* this connection's buffer, or NULL */
    size_t cap;         /* its size */
    char *data;         /* where the unhandled bytes are: own or the scratch */
    size_t off, len;    /* unhandled bytes: data[off .. len) */
    size_t scanned;     /* bytes after off already searched for '\n' */
} linein;

/* An empty input. */
void linein_init(linein *in);
/* Unhandled bytes. */
size_t linein_pending(const linein *in);
/* One read(2) of at most room bytes (room > 0) from fd.  Returns the
 * bytes read, 0 at end of file, -1 with errno set (EAGAIN included);
 * nothing changes but on success. */
ssize_t linein_read(linein *in, int fd, size_t room);
/* The next complete line (without its '\n', not NUL-terminated): 1 and
 * *line, *len set, valid until the next linein_* call on in; 0 when no
 * '\n' is buffered (bytes already searched are not searched again). */
int linein_line(linein *in, const char **line, size_t *len);
/* Drops n unhandled bytes (n <= linein_pending) from the front. */
void linein_consume(linein *in, size_t n);
/* Before the callback that read returns: bytes left in the shared
 * scratch move to the connection's own buffer; an empty input frees it. */
void linein_keep(linein *in);
/* The peer sent its last byte (EOF): a last line without its '\n' gets
 * one, so it is handled like the lines before it.  Returns 1 when one
 * was added, 0 when nothing is pending or the last byte is a '\n'. */
int linein_end(linein *in);
/* Frees what in holds. */
void linein_free(linein *in);

#endif
