"""The method registry: a language-extension method is one module here that calls `register`."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlclip_cli.errors import MlclipError


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    train: Callable  # (config, progress, on_step, on_eval) -> result: teach several languages
    extend: Callable  # the same for one more language of an existing extension
    encoder: Callable  # (folder, device, fallback) -> an encoder (a FrozenClip subclass)
    config: Callable  # () -> the typed config dataclass train and extend take


_REGISTRY: dict[str, Method] = {}
_LOADED = False


def register(method: Method) -> Method:
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} registered twice")
    _REGISTRY[method.name] = method
    return method


def _load_all() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")


def method_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_method(name: str) -> Method:
    _load_all()
    if name not in _REGISTRY:
        raise MlclipError(f"unknown method '{name}' (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def method_of(folder: Path) -> Method:
    path = Path(folder) / "extension.json"
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("method")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise MlclipError(f"{path}: not a readable extension index") from None
    return get_method(str(name))


def encoder_for(folder: Path, device: str | None = None, fallback: str = "none"):
    return method_of(folder).encoder(folder, device, fallback)
