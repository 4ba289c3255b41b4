# SPDX-License-Identifier: BSD-2-Clause
# pyagents: the Python package agents are written against, with the
# example agents the tests and docs use, and pyagents.client (the Python
# client callers use to talk to agentpoold).  Installed as plain data under
# $(pythonpkgdir), which an installed agentpool-worker appends to sys.path
# (in a build tree it finds the package in the source tree instead).  A
# distribution sets pythonpkgdir to the system Python's dist-packages:
# `make pythonpkgdir=/usr/lib/python3/dist-packages` (debian/rules does).
pythonpkgdir = $(pkgdatadir)/python
pyagentsdir = $(pythonpkgdir)/pyagents
dist_pyagents_DATA = pyagents/__init__.py pyagents/agent.py
pyagents_clientdir = $(pythonpkgdir)/pyagents/client
dist_pyagents_client_DATA = \
	pyagents/client/__init__.py \
	pyagents/client/errors.py \
	pyagents/client/wire.py \
	pyagents/client/retry.py \
	pyagents/client/common.py \
	pyagents/client/sync.py \
	pyagents/client/aio.py \
	pyagents/client/broker.py \
	pyagents/client/sync_broker.py \
	pyagents/client/aio_broker.py
pyagents_examplesdir = $(pythonpkgdir)/pyagents/examples
dist_pyagents_examples_DATA = \
	pyagents/examples/__init__.py \
	pyagents/examples/echo.py \
	pyagents/examples/sessionlog.py \
	pyagents/examples/sessstate.py \
	pyagents/examples/eventsink.py \
	pyagents/examples/sleep.py \
	pyagents/examples/cpu.py \
	pyagents/examples/raising.py \
	pyagents/examples/crash.py \
	pyagents/examples/leak.py \
	pyagents/examples/whoami.py \
	pyagents/examples/gate.py \
	pyagents/examples/kv.py \
	pyagents/examples/fetch.py \
	pyagents/examples/tokens.py \
	pyagents/examples/badstart.py \
	pyagents/examples/broken_import.py
