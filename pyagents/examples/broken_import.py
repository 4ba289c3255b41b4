# SPDX-License-Identifier: BSD-2-Clause
"""A module that cannot be imported, for start-up failure tests.

--agent pyagents.examples.broken_import:Anything fails at import time,
so the worker sends START_FAILED with this ImportError's traceback.
"""

raise ImportError("pyagents.examples.broken_import fails to import on purpose (start-up failure tests)")
