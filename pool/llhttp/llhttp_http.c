/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * llhttp_http.c - compiles llhttp's http.c (the HTTP semantics the
 * generated parser calls back into: keep-alive, where a body ends) as
 * Debian's node-llhttp ships it (LLHTTP_DIR, /usr/share/llhttp),
 * unchanged; see pool/llhttp/README.
 * Built with warnings off (pool/local.mk): it is not this project's code.
 */
#include <http.c>
