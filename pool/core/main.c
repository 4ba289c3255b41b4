/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * main.c - agentpoold's entry point: settings from the config file, the
 * environment and flags, the early actions (--help, --version,
 * --print-config, --check-config with cfgcheck.c's checks, privileges),
 * the log, then server.c's start, loop and release.
 */
#include "ap_common.h"
#include "ap_log.h"
#include "cfgcheck.h"
#include "config.h"
#include "privs.h"
#include "server.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Makes sure 0, 1 and 2 are open, so no socket of ours ever becomes a
 * worker's stdout or stderr by accident. */
static void ensure_std_fds(void)
{
    int fd;
    while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2)
        ;
    if (fd > 2)
        close(fd);
}

int main(int argc, char **argv)
{
    static config cfg;
    char err[512];
    config_action action;
    ensure_std_fds();
    /* A logrotate SIGUSR1 before the signal event exists must not kill us. */
    signal(SIGUSR1, SIG_IGN);
    config_init(&cfg);
    if (config_parse_args(&cfg, argc, argv, &action, err, sizeof(err)) != AP_OK) {
        fprintf(stderr, "agentpoold: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    if (action == CONFIG_HELP) {
        config_print_help(argv[0], stdout);
        config_free(&cfg);
        return 0;
    }
    if (action == CONFIG_VERSION) {
        printf("agentpoold %s\n", PACKAGE_VERSION);
        config_free(&cfg);
        return 0;
    }
    if (cfg.print_config)
        config_print(&cfg, stdout);
    if (action == CONFIG_PRINT) {
        config_free(&cfg);
        return 0;
    }
    if (privs_init(&cfg, action == CONFIG_CHECK, err, sizeof(err)) != AP_OK) {
        fprintf(stderr, "agentpoold: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    if (action == CONFIG_CHECK) {
        config_print_warnings(&cfg, stderr);
        int rc = cfgcheck_run(&cfg, "agentpoold");
        if (rc == AP_OK)
            printf("%s: configuration OK\n", cfg.config_file ? cfg.config_file : "defaults and flags");
        config_free(&cfg);
        return rc == AP_OK ? 0 : 1;
    }
    ap_log_level level = AP_LOG_INFO;
    ap_log_parse_level(cfg.log_level, &level);
    ap_log_init("master", level);
    ap_log_set_json(strcmp(cfg.log_format, "json") == 0);

    if (server_start(&cfg, argc, argv) != AP_OK)
        return 1;
    server_run();
    server_free();
    return server.exit_code;
}
