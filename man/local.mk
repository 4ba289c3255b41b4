# SPDX-License-Identifier: BSD-2-Clause
# man pages, written in mdoc: agentpoold(8) and agentpoolctl(1).
# tests/integration/test_manpages.py checks them against --help.
dist_man_MANS = man/agentpoold.8 man/agentpoolctl.1
