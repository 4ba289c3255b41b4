# SPDX-License-Identifier: BSD-2-Clause
# Test suite: cmocka unit tests, Python unit tests, libFuzzer targets run
# briefly, and integration tests against the real agentpoold.
include $(srcdir)/tests/unit/pool.mk
include $(srcdir)/tests/unit/master.mk
include $(srcdir)/tests/unit/dlq.mk
include $(srcdir)/tests/unit/breaker.mk
include $(srcdir)/tests/unit/scan.mk
include $(srcdir)/tests/unit/metrics.mk
include $(srcdir)/tests/unit/log.mk
include $(srcdir)/tests/unit/common.mk
include $(srcdir)/tests/unit/store.mk
include $(srcdir)/tests/unit/broker.mk
include $(srcdir)/tests/fuzz/local.mk
include $(srcdir)/tests/python/local.mk
include $(srcdir)/tests/integration/local.mk
