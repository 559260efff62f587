"""Fault-injection points for the crash tests: named places where a run can be killed on purpose.

The crash tests (tests/test_crash_recovery.py) start a real `enumwatch` command with ENUMWATCH_FAULT
set to one point's name; the CLI, and only the CLI, arms that point (`arm`), and when the run reaches
it, `point` SIGKILLs the run's whole process group (the Python driver, Spark's JVM, Prefect's
temporary server), exactly like `kill -9` of the process tree. Unarmed, `point` does nothing.
"""

from __future__ import annotations

import os
import signal

_armed: str | None = None


def arm(name: str | None) -> None:
    """Kill the process tree when the run reaches the point called `name` (None disarms)."""
    global _armed
    _armed = name or None


def point(name: str) -> None:
    """A place where a crash is worth testing; kills the run here if a test armed this name."""
    if _armed != name:
        return
    if os.getpgrp() == os.getpid():  # a group leader (the tests start it so): the whole tree goes at once
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)  # never kill a group this process does not lead (a shell's)
