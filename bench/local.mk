# bench/: the load generator (agentpool-bench) lands here.
