/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * llhttp_core.c - compiles llhttp's llhttp.c (the generated state
 * machine) as Debian's node-llhttp ships it (LLHTTP_DIR,
 * /usr/share/llhttp), unchanged; see pool/llhttp/README.
 * Built with warnings off (pool/local.mk): it is not this project's code.
 */
#include <llhttp.c>
