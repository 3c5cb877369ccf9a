"""Rich consoles shared by the commands. Errors go to stderr on one unwrapped line."""

from rich.console import Console

out = Console()
err = Console(stderr=True, soft_wrap=True)


def error_line(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, style="bold red")
