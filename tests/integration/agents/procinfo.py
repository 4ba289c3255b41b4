# SPDX-License-Identifier: BSD-2-Clause
"""procinfo.py - a test agent that reports the process it runs in.

Served by the systemd, privilege and worker-environment tests with
--python-path tests/integration/agents.  Every message is answered with
what the worker process looks like from the inside: its environment,
working directory, umask, resource limits, and user and group ids.
Plain class (no pyagents base), like probe.py.  on_start() records the
same view at import time in self.at_start, so a test can tell that the
limits were already in force before the agent was imported.  Type
"signal_master" tries os.kill(master pid, 0) and answers the exception's
class name ("PermissionError") or null.
"""
import os
import resource


def _view():
    mask = os.umask(0)
    os.umask(mask)
    return {
        "pid": os.getpid(),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "umask": mask,
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "as": list(resource.getrlimit(resource.RLIMIT_AS)),
        "uid": list(os.getresuid()),
        "gid": list(os.getresgid()),
        "groups": sorted(os.getgroups()),
    }


AT_IMPORT = _view()


class ProcInfoAgent:
    def handle_message(self, type, data):
        if type == "at_import":
            return AT_IMPORT
        if type == "write_file":
            # creates data["path"] so the test can look at its mode (umask)
            with open(data["path"], "w") as f:
                f.write("x")
            return {"mode": os.stat(data["path"]).st_mode & 0o777}
        if type == "signal_master":
            # os.kill(master, 0): may this process signal its master?
            try:
                os.kill(os.getppid(), 0)
                return {"master": os.getppid(), "error": None}
            except OSError as e:
                return {"master": os.getppid(), "error": e.__class__.__name__}
        return _view()
