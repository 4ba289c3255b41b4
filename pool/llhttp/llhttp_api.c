/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * llhttp_api.c - compiles llhttp's api.c (the parser's API: llhttp_init,
 * llhttp_execute, llhttp_resume...) as Debian's node-llhttp ships it
 * (LLHTTP_DIR, /usr/share/llhttp), unchanged; see pool/llhttp/README.
 * Built with warnings off (pool/local.mk): it is not this project's code.
 */
#include <api.c>
