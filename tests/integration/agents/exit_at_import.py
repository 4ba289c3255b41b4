# SPDX-License-Identifier: BSD-2-Clause
"""exit_at_import.py - a module whose import ends the process (status 7).

A worker serving it dies before it can say READY or START_FAILED: the
master must treat that like any other failure to start.
"""
import os

os._exit(7)
