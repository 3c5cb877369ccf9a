"""The benchmark registry: which prepared manifest a benchmark reads and which rows count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from mlclip_cli.errors import MlclipError


@dataclass(frozen=True)
class Benchmark:
    name: str
    dataset: str  # the `prepare` data set whose manifest it reads
    summary: str
    split: str = "test"
    select: Callable[[pd.DataFrame, str | None], pd.DataFrame] | None = None  # (rows, subset) -> rows
    subsets: tuple[str, ...] = ()


def _first_test_images(rows: pd.DataFrame, subset: str | None) -> pd.DataFrame:
    if subset in (None, "5k"):
        return rows
    if subset == "1k":  # the papers' 1K test: the first 1000 test images in file order
        keep = set(list(dict.fromkeys(rows.image_id))[:1000])
        return rows[rows.image_id.isin(keep)]
    raise MlclipError(f"coco subset must be 1k or 5k, not '{subset}'")


BENCHMARKS = {b.name: b for b in (
    Benchmark("xtd", "xtd10", "XTD10 (or the world's XTD10-layout test): 1000 images x 11 languages"),
    Benchmark("multi30k", "multi30k", "Multi30K test_2016_flickr: 1000 images, en de fr cs"),
    Benchmark("coco", "coco", "MSCOCO Karpathy test, 5K or 1K (--subset)", select=_first_test_images, subsets=("5k", "1k")),
    Benchmark("xm3600", "xm3600", "Crossmodal-3600: 3600 images x 36 languages, every caption kept"),
    Benchmark("xflickrco", "xflickrco", "xFlickr&CO (IGLUE): 2000 images x 8 languages"),
)}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise MlclipError(f"unknown benchmark '{name}' (known: {', '.join(BENCHMARKS)})")
    return BENCHMARKS[name]
