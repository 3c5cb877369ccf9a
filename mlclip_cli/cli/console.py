"""Rich consoles shared by the commands. Errors go to stderr on one unwrapped line."""

import logging
import os

from rich.console import Console

# Under torchrun only rank 0 prints progress and results (errors print on every rank).
out = Console(quiet=os.environ.get("RANK", "0") != "0")
err = Console(stderr=True, soft_wrap=True)


def error_line(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, style="bold red")


class _Notes(logging.Handler):
    """The library's log records (a taken-over lock, a resumed run) as one `note: ...` line each."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"note: {record.getMessage()}", markup=False, highlight=False, style="yellow")


def show_notes() -> None:
    logger = logging.getLogger("mlclip_cli")
    logger.setLevel(logging.INFO)
    logger.propagate = False  # once, here: not again through a handler some library gave the root logger
    if not any(isinstance(handler, _Notes) for handler in logger.handlers):
        logger.addHandler(_Notes())
