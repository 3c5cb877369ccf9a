"""Rich consoles shared by the commands. Errors go to stderr on one unwrapped line."""

from rich.console import Console

import os

# Under torchrun only rank 0 prints progress and results (errors print on every rank).
out = Console(quiet=os.environ.get("RANK", "0") != "0")
err = Console(stderr=True, soft_wrap=True)


def error_line(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, style="bold red")


class StepDisplay:
    """One rich display for a run of many steps: the current step on the first line, the step's
    own progress (the library's `progress(name, done, total)` callbacks) on the second."""

    def __init__(self, title: str):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=out, transient=True)
        self._overall = self.bar.add_task(title, total=None)
        self._detail = self.bar.add_task("", total=None, visible=False)
        self._current: str | None = None

    def __enter__(self) -> "StepDisplay":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def step(self, description: str, completed: int | None = None, total: int | None = None) -> None:
        self.bar.update(self._overall, description=description, completed=completed, total=total)
        self.bar.update(self._detail, visible=False)
        self._current = None

    def progress(self, name: str, done: int, total: int) -> None:
        if name != self._current:
            self._current = name
            self.bar.reset(self._detail, total=total, description=f"  {name}", visible=True)
        self.bar.update(self._detail, completed=done, total=total)

    def print(self, *args) -> None:
        self.bar.console.print(*args)
