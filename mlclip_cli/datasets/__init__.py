"""The data-set registry. A data set is one module here that calls `register(SPEC)`."""

from __future__ import annotations

from mlclip_cli.datasets.base import DatasetSpec
from mlclip_cli.errors import DatasetError
from mlclip_cli.registry import Registry

DATASETS: Registry[DatasetSpec] = Registry("data set", __name__, skip=("base", "prepare", "layout", "pair_sources"), error=DatasetError)


def register(spec: DatasetSpec) -> DatasetSpec:
    return DATASETS.register(spec.name, spec)


def dataset_names() -> list[str]:
    return sorted(DATASETS.names())


def get_dataset(name: str) -> DatasetSpec:
    return DATASETS.get(name)
