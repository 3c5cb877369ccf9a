"""Rich consoles shared by the commands. Errors go to stderr on one unwrapped line."""

from rich.console import Console

import os

# Under torchrun only rank 0 prints progress and results (errors print on every rank).
out = Console(quiet=os.environ.get("RANK", "0") != "0")
err = Console(stderr=True, soft_wrap=True)


def error_line(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, style="bold red")
