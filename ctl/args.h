/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * args.h - agentpoolctl's command line: options, and finding the command.
 *
 * Options may come before or after the command's name, and after its
 * arguments too (scale 3 --json), except where the command's row says
 * its first argument ends them: for send they end at TYPE, so DATA such
 * as -1 is never taken for an option, and dlq hands what follows its
 * sub-command's name to that sub-command's own row.  Every
 * option is parsed into one ctl_opts; a command then refuses those it
 * does not take, by name, so `ping --json` is a usage error rather than
 * silently ignored.  Nothing here connects or prints results: usage
 * errors go to stderr and become CTL_EXIT_USAGE.
 */
#ifndef CTL_ARGS_H
#define CTL_ARGS_H

#include "ctl.h"

#include <stddef.h>

/* Parses the options in argv[1..]: up to the first non-option when
 * options_end, else all of them, moving the arguments after them (GNU
 * getopt's permutation).  Returns -1 to go on (with *next = index of the
 * first argument), else the exit status to leave with (help, version,
 * usage error). */
int args_parse(int argc, char **argv, int options_end, ctl_opts *o, int *next);

/* Runs the command argv[0] of the table cmds ("dlq" names the group in
 * messages; "" at the top level): parses the options after its name
 * into *o, checks that it takes them and its argument count.  Returns
 * the command's exit status, or CTL_EXIT_USAGE after a usage error
 * (nothing sent). */
int args_dispatch(const ctl_command *cmds, size_t ncmds, const char *group, ctl_opts *o, int argc,
                  char **argv);

#endif
