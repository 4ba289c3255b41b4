/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * refuse.h - turning a connection away with one error line.
 *
 * Closing a socket whose peer has sent input we did not read makes the
 * kernel answer with a reset, and the peer's read fails (ECONNRESET)
 * before it sees our line.  So a refused connection gets its line, our
 * side shut down, and is kept while its input is read and dropped, until
 * the peer closes or a second passes, however much it sends (bounded:
 * 64 at once, a second each, at most 64 KiB read per wake-up).
 * Used for too_many_connections (listener.c) and forbidden (privs.c).
 */
#ifndef AP_REFUSE_H
#define AP_REFUSE_H

/* Writes line (one JSON line with its '\n') to fd and takes fd over:
 * it is closed here, now or after the linger. */
void refuse_conn(int fd, const char *line);
/* At exit, before the event base goes: closes what still lingers. */
void refuse_free(void);

#endif
