"""One registry helper for everything mlclip looks up by name: methods, continual learners, data
sets, benchmarks and `reproduce` tables.

A registry may name a package whose modules register themselves when imported: the first lookup
imports every module of that package (in file-name order, or the order `modules` gives), so adding
an entry is adding one module. A registry derived from another fills itself with `load` instead.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mlclip_cli.errors import MlclipError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str | None = None, skip: tuple[str, ...] = (),
                 modules: tuple[str, ...] | None = None, load: Callable[["Registry[T]"], None] | None = None,
                 error: type[MlclipError] = MlclipError, hint: str = ""):
        self.kind = kind  # "method", "data set", ...: the word the unknown-name error uses
        self._package, self._skip, self._modules, self._fill = package, skip, modules, load
        self._error, self._hint = error, hint
        self._entries: dict[str, T] = {}
        self._loaded = package is None and load is None

    def register(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._fill is not None:
            self._fill(self)
            return
        names = self._modules
        if names is None:
            package = importlib.import_module(self._package)
            names = tuple(m.name for m in pkgutil.iter_modules(package.__path__) if m.name not in self._skip)
        for name in names:
            importlib.import_module(f"{self._package}.{name}")

    def names(self) -> list[str]:
        """In registration order."""
        self._load()
        return list(self._entries)

    def get(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise self._error(f"unknown {self.kind} '{name}' (known: {', '.join(sorted(self._entries))}){self._hint}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(list(self._entries.items()))
