"""The benchmarks: which prepared manifest a benchmark reads and which rows count, derived from
the data sets that declare one (`DatasetSpec.bench`), so a new benchmark is a data-set module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from mlclip_cli.datasets import dataset_names, get_dataset
from mlclip_cli.registry import Registry


@dataclass(frozen=True)
class Benchmark:
    name: str
    dataset: str  # the `prepare` data set whose manifest it reads
    summary: str
    split: str = "test"
    select: Callable[[pd.DataFrame, str | None], pd.DataFrame] | None = None  # (rows, subset) -> rows
    subsets: tuple[str, ...] = ()


def _from_datasets(registry: Registry) -> None:
    for name in dataset_names():
        bench = get_dataset(name).bench
        if bench is not None:
            registry.register(bench.name, Benchmark(bench.name, name, bench.summary, bench.split, bench.select,
                                                    bench.subsets))


BENCHMARKS: Registry[Benchmark] = Registry("benchmark", load=_from_datasets)


def get_benchmark(name: str) -> Benchmark:
    return BENCHMARKS.get(name)
