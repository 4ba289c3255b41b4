# SPDX-License-Identifier: BSD-2-Clause
# Python-level tests: the pyagents package and pyagents.client's pure parts
# (unit tests) and the real
# agentpool-worker driven over its fd 3 (test_bridge.py, via apframe.py,
# the frame-protocol helper other test suites may import too).
TESTS += tests/python/test_pyagents.py tests/python/test_bridge.py tests/python/test_client_wire.py \
	tests/python/test_bridge_session.py
EXTRA_DIST += tests/python/test_pyagents.py tests/python/test_bridge.py tests/python/apframe.py \
	tests/python/test_client_wire.py tests/python/test_bridge_session.py
