"""Ctrl-C and SIGTERM during training: finish the step, save, and say how to go on.

Inside `deferred_interrupts()` the first SIGINT or SIGTERM only sets a flag; the training loop
reads it between steps (never half-way through an optimiser step), writes its resumable state and
raises `Interrupted`, which the CLI prints as one line. A second signal interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

from mlclip_cli.errors import MlclipError


class Interrupted(MlclipError):
    """Training stopped on a signal, with its state saved where `--resume` finds it."""


class StopFlag:
    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal else ""


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[StopFlag]:
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield flag
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def request(number, frame) -> None:
        if flag.requested:  # the second one: stop now
            raise KeyboardInterrupt
        flag.signal = number

    for sig in previous:
        signal.signal(sig, request)
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
