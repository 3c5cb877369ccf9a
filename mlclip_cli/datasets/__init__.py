"""The data-set registry. A data set is one module here that calls `register(SPEC)`."""

from __future__ import annotations

import importlib
import pkgutil

from mlclip_cli.datasets.base import DatasetSpec
from mlclip_cli.errors import DatasetError

_REGISTRY: dict[str, DatasetSpec] = {}
_LOADED = False


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"data set {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _load_all() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in pkgutil.iter_modules(__path__):
            if module.name not in {"base", "prepare", "layout"}:
                importlib.import_module(f"{__name__}.{module.name}")


def dataset_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_dataset(name: str) -> DatasetSpec:
    _load_all()
    if name not in _REGISTRY:
        raise DatasetError(f"unknown data set '{name}' (known: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]
