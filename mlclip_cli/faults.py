"""Kill points: the moments at which the fault-injection tests stop a command with kill -9.

`point(name)` marks a moment a command may die at: after a training step, before a file is
renamed into place, between the steps of a folder swap. It does nothing unless this process is
armed: `arm(n)`, or MLCLIP_KILL_AT=n in the environment, makes the n-th point the process reaches
send SIGKILL to the process itself. So a test stops a real command at a chosen, reproducible
moment, with no timing and no sleep; `arm()` alone counts the points, and `passed()` names those
an uninterrupted run reached (where a test draws n from). Only the armed process counts: its
forked workers, and processes it starts (the variable is taken out of the environment), do not.
See tests/test_fault_injection.py and docs/reliability.md.
"""

from __future__ import annotations

import os
import signal

ENV = "MLCLIP_KILL_AT"

_armed_pid: int | None = None
_kill_at: int | None = None
_passed: list[str] = []


def arm(kill_at: int | None = None) -> None:
    """Count the points this process reaches from now on; SIGKILL at the `kill_at`-th (1-based)."""
    global _armed_pid, _kill_at
    _armed_pid, _kill_at = os.getpid(), kill_at
    _passed.clear()


def passed() -> list[str]:
    """The points reached since `arm`, in order."""
    return list(_passed)


def point(name: str) -> None:
    if _armed_pid != os.getpid():  # not armed (or a forked worker of the armed process)
        return
    _passed.append(name)
    if _kill_at is not None and len(_passed) >= _kill_at:
        os.kill(os.getpid(), signal.SIGKILL)


_given = os.environ.pop(ENV, "").strip()
if _given:
    if not _given.isdigit() or int(_given) < 1:
        raise SystemExit(f"error: {ENV}={_given!r}: not a whole number of 1 or more")
    arm(int(_given))
