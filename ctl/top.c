/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * top.c - `agentpoolctl top`: a live view of the pool.
 *
 * Every interval (1 s unless --interval) it asks for detailed pool.stats
 * (with --pool, that pool's: ctl_request puts it in the data; a server
 * of named pools gets a block per pool, topview.h) over a fresh
 * connection, has topview.c turn the answer into lines sized
 * to the terminal (TIOCGWINSZ), and redraws: cursor home, each line
 * followed by clear-to-end-of-line, clear-to-end-of-screen, all in one
 * write(2), on the alternate screen with the cursor hidden.  It measures
 * one thing itself: error answers per minute, from the growth of the
 * errors counters between its own samples (topview_rate).  When stdout
 * is not a terminal, frames are printed one after another without
 * escapes; --once prints one frame that way and exits, with the exit
 * status of any other command (3 cannot connect, 4 no answer).  A live
 * top never exits because agentpoold went away: it says so on the screen
 * and tries again at each refresh.
 *
 * The terminal: when stdin is a terminal, its mode is switched off
 * ICANON and ECHO (ISIG stays, so Ctrl-C is SIGINT) to read q at once.
 * The saved mode lives in the one file-level struct `top_term`, because
 * the signal handlers must reach it: SIGINT, SIGTERM and SIGHUP restore
 * the terminal inside the handler (tcsetattr and write are
 * async-signal-safe) and ask the loop to quit, so the terminal is sane
 * even while a request is outstanding; a second one exits at once.
 * SIGTSTP restores it, stops, and takes the screen again on SIGCONT.
 * Every way out of cmd_top goes through top_leave().
 */
#include "ctl.h"
#include "ap_alloc.h"
#include "render.h"
#include "topview.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define TOP_INTERVAL_DEFAULT_MS 1000
/* The silence allowed per frame when --timeout is not given: short, so
 * a stuck agentpoold shows on the screen instead of freezing it. */
#define TOP_TIMEOUT_DEFAULT_MS 5000

/* Terminal escapes: alternate screen and hidden cursor on / off, home,
 * clear to end of line, clear to end of screen. */
#define TOP_ENTER "\033[?1049h\033[?25l"
#define TOP_LEAVE "\033[?25h\033[?1049l"
#define TOP_HOME "\033[H"
#define TOP_EOL "\033[K"
#define TOP_EOS "\033[J"

/* The terminal's state, shared with the signal handlers. */
static struct {
    int tty_fd;                     /* stdin when it is a terminal in our mode, else -1 */
    struct termios saved;           /* its mode before top */
    volatile sig_atomic_t screen;   /* the alternate screen is on */
    volatile sig_atomic_t quit;     /* a signal asked to quit */
    volatile sig_atomic_t redraw;   /* resized or continued: draw now */
} top_term = {.tty_fd = -1};

/* Gives the terminal back: cursor, main screen, the saved mode.
 * Async-signal-safe, and harmless when repeated. */
static void top_restore(void)
{
    if (top_term.screen) {
        ssize_t w = write(STDOUT_FILENO, TOP_LEAVE, sizeof(TOP_LEAVE) - 1);
        (void)w;
        top_term.screen = 0;
    }
    if (top_term.tty_fd >= 0)
        (void)tcsetattr(top_term.tty_fd, TCSANOW, &top_term.saved);
}

/* Takes the terminal: our mode on stdin (when it is a terminal, and was
 * saved), the alternate screen when ansi.  Async-signal-safe. */
static void top_take(int keys, int ansi)
{
    if (keys) {
        struct termios raw = top_term.saved;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
            top_term.tty_fd = STDIN_FILENO;
    }
    if (ansi) {
        ssize_t w = write(STDOUT_FILENO, TOP_ENTER, sizeof(TOP_ENTER) - 1);
        (void)w;
        top_term.screen = 1;
    }
}

static void top_on_quit(int sig)
{
    AP_UNUSED(sig);
    top_restore();
    if (top_term.quit)
        _exit(CTL_EXIT_OK); /* the second one: do not wait for the request */
    top_term.quit = 1;
}

static void top_on_winch(int sig)
{
    AP_UNUSED(sig);
    top_term.redraw = 1;
}

static void top_on_tstp(int sig)
{
    int saved_errno = errno;
    int keys = top_term.tty_fd >= 0, ansi = top_term.screen;
    struct sigaction dfl, mine;
    sigset_t set;

    top_restore();
    top_term.tty_fd = -1;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    (void)sigaction(SIGTSTP, &dfl, &mine);
    sigemptyset(&set);
    sigaddset(&set, SIGTSTP);
    (void)sigprocmask(SIG_UNBLOCK, &set, NULL);
    (void)raise(sig); /* stops here until SIGCONT */
    (void)sigprocmask(SIG_BLOCK, &set, NULL);
    (void)sigaction(SIGTSTP, &mine, NULL);
    top_take(keys, ansi);
    top_term.redraw = 1;
    errno = saved_errno;
}

/* Installs the handlers; no SA_RESTART, so poll() returns at once. */
static void top_signals(void)
{
    static const int quit_sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = top_on_quit;
    for (size_t i = 0; i < AP_ARRAY_LEN(quit_sigs); i++)
        (void)sigaction(quit_sigs[i], &sa, NULL);
    sa.sa_handler = top_on_winch;
    (void)sigaction(SIGWINCH, &sa, NULL);
    sa.sa_handler = top_on_tstp;
    (void)sigaction(SIGTSTP, &sa, NULL);
}

/* Leaves the way every exit of cmd_top does: terminal restored. */
static int top_leave(int status)
{
    top_restore();
    top_term.tty_fd = -1;
    return status;
}

/* The terminal's size (0 when unknown). */
static void top_size(int ansi, size_t *cols, size_t *rows)
{
    struct winsize ws;
    *cols = *rows = 0;
    if (ansi && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
        *cols = ws.ws_col;
        *rows = ws.ws_row;
    }
    if (*cols == 0)
        *cols = ctl_out_width();
}

/* 1 when an error answer's code is forbidden. */
static int top_forbidden(jspan error)
{
    cJSON *e = error.p ? cJSON_ParseWithLength(error.p, error.len) : NULL;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    int forbidden = cJSON_IsString(code) && strcmp(code->valuestring, "forbidden") == 0;
    cJSON_Delete(e);
    return forbidden;
}

/* Fetches detailed stats and renders a frame into f (a problem frame
 * when there are none).  Detailed stats are for administrators: a user
 * who is not one gets the plain stats, without the worker rows.
 * Returns the status of the request. */
static int top_frame(const ctl_opts *o, int timeout_ms, topview_rate *rate, size_t cols,
                     size_t rows, topview_frame *f, char *err, size_t errlen)
{
    ctl_answer a;
    topview_opts vo = {.width = cols, .height = rows, .errors_per_min = NAN};
    int status = ctl_request(o, "pool.stats", "{\"detailed\":true}", timeout_ms, CTL_MAX_CAPTURE,
                             &a, err, errlen);
    if (status == CTL_EXIT_ANSWER_ERROR && top_forbidden(a.error)) {
        ctl_answer_free(&a);
        status = ctl_request(o, "pool.stats", NULL, timeout_ms, CTL_MAX_CAPTURE, &a, err, errlen);
    }
    cJSON *res = NULL;
    if (status == CTL_EXIT_OK) {
        res = cJSON_ParseWithLength(a.result.p, a.result.len);
        if (!cJSON_IsObject(res)) {
            snprintf(err, errlen, "pool.stats: malformed answer from agentpoold: %.200s", a.cap.data);
            status = CTL_EXIT_EXCHANGE;
        }
    }
    if (status == CTL_EXIT_OK) {
        topview_rate_add(rate, ap_now_ms(), topview_error_total(res));
        vo.errors_per_min = topview_rate_per_min(rate);
        topview_render(res, &vo, f);
    } else {
        topview_render_problem(o->socket_path, err, &vo, f);
    }
    cJSON_Delete(res);
    ctl_answer_free(&a);
    return status;
}

/* Writes all of buf to stdout, giving up when asked to quit.  Returns
 * AP_OK or AP_ERR (stdout failed). */
static int top_write(const char *buf, size_t len)
{
    while (len > 0 && !top_term.quit) {
        ssize_t w = write(STDOUT_FILENO, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return AP_ERR;
        buf += w;
        len -= (size_t)w;
    }
    return AP_OK;
}

/* Draws f: over the previous frame with escapes, or as plain lines
 * ending in a blank line (batch) or nothing (once). */
static int top_draw(const topview_frame *f, int ansi, int separator)
{
    size_t cap = 16, len = 0;
    for (size_t i = 0; i < f->n; i++)
        cap += strlen(f->lines[i]) + sizeof(TOP_EOL) + 2;
    char *buf = ap_malloc(cap + sizeof(TOP_HOME) + sizeof(TOP_EOS));
    if (ansi) {
        memcpy(buf, TOP_HOME, sizeof(TOP_HOME) - 1);
        len = sizeof(TOP_HOME) - 1;
    }
    for (size_t i = 0; i < f->n; i++) {
        size_t n = strlen(f->lines[i]);
        memcpy(buf + len, f->lines[i], n);
        len += n;
        if (ansi) {
            memcpy(buf + len, TOP_EOL, sizeof(TOP_EOL) - 1);
            len += sizeof(TOP_EOL) - 1;
        }
        /* On the screen the last line ends without a newline: one more
         * would scroll a frame that fills it. */
        if (!ansi || i + 1 < f->n)
            buf[len++] = '\n';
    }
    if (ansi) {
        memcpy(buf + len, TOP_EOS, sizeof(TOP_EOS) - 1);
        len += sizeof(TOP_EOS) - 1;
    } else if (separator) {
        buf[len++] = '\n';
    }
    int rc = top_write(buf, len);
    ap_free(buf);
    return rc;
}

/* Says that stdout failed.  Returns CTL_EXIT_EXCHANGE. */
static int top_write_failed(void)
{
    ctl_warn("writing to stdout: %s", errno ? strerror(errno) : "nothing written");
    return CTL_EXIT_EXCHANGE;
}

/* Waits until the next frame is due, a key is read or a signal came.
 * Returns 1 when asked to quit. */
static int top_wait(uint64_t due_ms, int keys)
{
    while (!top_term.quit && !top_term.redraw) {
        uint64_t now = ap_now_ms();
        if (now >= due_ms)
            return 0;
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int n = poll(&pfd, keys ? 1 : 0, (int)(due_ms - now));
        if (n < 0 && errno != EINTR)
            return 1;
        if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            char c[64];
            ssize_t r = read(STDIN_FILENO, c, sizeof(c));
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
                return 1; /* the terminal went away */
            for (ssize_t i = 0; i < r; i++) {
                if (c[i] == 'q' || c[i] == 'Q' || c[i] == 3 /* Ctrl-C without ISIG */)
                    return 1;
                if (c[i] == ' ' || c[i] == '\f')
                    return 0; /* refresh now */
            }
        }
    }
    return top_term.quit != 0;
}

/* top [--once] [--interval MS]: see the top of this file. */
int cmd_top(const ctl_opts *o, int argc, char **argv)
{
    char err[512];
    topview_rate rate = {.n = 0};
    topview_frame f = {0};
    size_t cols, rows;
    AP_UNUSED(argc);
    AP_UNUSED(argv);
    int interval = (o->given & CTL_TAKES_INTERVAL) ? o->interval_ms : TOP_INTERVAL_DEFAULT_MS;
    int timeout = o->timeout_given ? o->timeout_ms : TOP_TIMEOUT_DEFAULT_MS;

    if (o->once) {
        top_size(0, &cols, &rows);
        int status = top_frame(o, timeout, &rate, cols, 0, &f, err, sizeof(err));
        if (status != CTL_EXIT_OK)
            ctl_warn("%s", err);
        else if (top_draw(&f, 0, 0) != AP_OK)
            status = top_write_failed();
        topview_frame_free(&f);
        return status;
    }

    int ansi = isatty(STDOUT_FILENO);
    int keys = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &top_term.saved) == 0;
    top_signals();
    top_take(keys, ansi);
    int status = CTL_EXIT_OK;
    while (!top_term.quit) {
        uint64_t due = ap_now_ms() + (uint64_t)interval;
        top_term.redraw = 0;
        top_size(ansi, &cols, &rows);
        (void)top_frame(o, timeout, &rate, cols, ansi ? rows : 0, &f, err, sizeof(err));
        if (top_term.quit)
            break;
        if (top_draw(&f, ansi, 1) != AP_OK) {
            top_leave(CTL_EXIT_OK);
            status = top_write_failed();
            break;
        }
        topview_frame_free(&f);
        if (top_wait(due, top_term.tty_fd >= 0))
            break;
    }
    topview_frame_free(&f);
    return top_leave(status);
}
