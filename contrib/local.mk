# SPDX-License-Identifier: BSD-2-Clause
# contrib: files for the tools around agentpool, installed for operators
# to use or copy.  bash completion for agentpoolctl (where bash-completion
# looks for it); the systemd units, sysusers and tmpfiles entries,
# logrotate file and commented sample config as examples under docdir
# (the Debian package installs them in their system places instead).
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = contrib/bash-completion/agentpoolctl
examplesdir = $(docdir)/examples
dist_examples_DATA = docs/systemd/agentpoold.service docs/systemd/agentpoold.socket \
	docs/systemd/agentpool.sysusers docs/systemd/agentpool.tmpfiles \
	docs/logrotate/agentpoold docs/agentpool.sample.json
dist_doc_DATA = LICENSE README.md docs/operations.md docs/protocol.md docs/lifecycle.md docs/http.md
# Prometheus rules (with their promtool tests) and the Grafana dashboard,
# for operators to load into their own monitoring.
monitoringdir = $(docdir)/monitoring
dist_monitoring_DATA = contrib/prometheus/agentpool.rules.yml contrib/prometheus/agentpool.rules.test.yml \
	contrib/grafana/agentpool.json
