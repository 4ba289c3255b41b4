# pyagents: the Python package agents are written against, with the
# example agents the tests and docs use.  Installed as plain data under
# $(pkgdatadir)/python, which agentpool-worker puts on sys.path (in a
# build tree it finds the package in the source tree instead).
pyagentsdir = $(pkgdatadir)/python/pyagents
dist_pyagents_DATA = pyagents/__init__.py pyagents/agent.py
pyagents_examplesdir = $(pkgdatadir)/python/pyagents/examples
dist_pyagents_examples_DATA = \
	pyagents/examples/__init__.py \
	pyagents/examples/echo.py \
	pyagents/examples/sleep.py \
	pyagents/examples/cpu.py \
	pyagents/examples/raising.py \
	pyagents/examples/crash.py \
	pyagents/examples/leak.py \
	pyagents/examples/whoami.py \
	pyagents/examples/gate.py \
	pyagents/examples/kv.py \
	pyagents/examples/fetch.py \
	pyagents/examples/badstart.py \
	pyagents/examples/broken_import.py
