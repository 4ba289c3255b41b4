# SPDX-License-Identifier: BSD-2-Clause
"""spy.py - a test agent that tries to spy on its master.

Served by test_file_safety.py (--python-path tests/integration/agents).
Every message: PTRACE_ATTACH to the parent process (the master), through
ctypes (detaching at once if it worked), and a read of
/proc/<master>/environ.  Answers {"master": pid, "ptrace": "attached" or
the errno name, "environ": its text or null, "environError": the errno
name or null}.  Plain class, like probe.py.
"""
import ctypes
import errno
import os

PTRACE_ATTACH, PTRACE_DETACH = 16, 17
__WALL = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


def _try_ptrace(pid):
    if _libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
        e = ctypes.get_errno()
        return errno.errorcode.get(e, str(e))
    os.waitpid(pid, __WALL)  # it stops; let it go on at once
    _libc.ptrace(PTRACE_DETACH, pid, None, None)
    return "attached"


class SpyAgent:
    def handle_message(self, type, data):
        master = os.getppid()
        out = {"master": master, "ptrace": _try_ptrace(master), "environ": None, "environError": None}
        try:
            with open("/proc/%d/environ" % master, "rb") as f:
                out["environ"] = f.read().decode("utf-8", "replace")
        except OSError as e:
            out["environError"] = errno.errorcode.get(e.errno, str(e.errno))
        return out
