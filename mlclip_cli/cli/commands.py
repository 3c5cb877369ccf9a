"""How a command module declares its commands without importing the app: it collects them in a
`Commands`, and app.py registers every module's collection on the one Typer app."""

from __future__ import annotations

import typer


class Commands:
    def __init__(self) -> None:
        self._commands: list[tuple[tuple, dict, object]] = []
        self._groups: list[tuple[typer.Typer, str]] = []

    def command(self, *args, **kwargs):
        """Like `Typer.command`: a decorator, applied when the module is registered."""
        def decorate(function):
            self._commands.append((args, kwargs, function))
            return function
        return decorate

    def group(self, sub: typer.Typer, name: str) -> None:
        """A sub-command group (`mlclip bench ...`), added under `name`."""
        self._groups.append((sub, name))

    def register(self, app: typer.Typer) -> None:
        for args, kwargs, function in self._commands:
            app.command(*args, **kwargs)(function)
        for sub, name in self._groups:
            app.add_typer(sub, name=name)
