"""`mlclip bench <benchmark>`: multilingual image-text retrieval of a (frozen or extended) CLIP.

Image and text features come from the feature cache (`mlclip features`), computed on first use.
Search is FAISS (exact inner product unless told otherwise). All captions of an image are kept:
text->image has one query per caption, image->text hits when any caption of the image is in the
top k. Where captions are parallel (a shared pair_id with an English caption), text->text recall
to the English caption is reported too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlclip_cli import __version__
from mlclip_cli.artifacts import read_manifest
from mlclip_cli.bench.plot import plot_bench
from mlclip_cli.bench.registry import get_benchmark
from mlclip_cli.bench.result import BENCH_SCHEMA_VERSION, RETRIEVAL_KEYS, write_bench_result
from mlclip_cli.encoders import FrozenClip, load_encoder
from mlclip_cli.errors import MlclipError
from mlclip_cli.features import FeaturesConfig, compute_features, load_features
from mlclip_cli.retrieval import faiss_retrieval_metrics, translation_recall

CAPTIONS_POLICY = ("all captions of each image kept: text->image has one query per caption; "
                   "image->text hits when any caption of the image is in the top k")


@dataclass(frozen=True)
class BenchConfig:
    benchmark: str
    manifest: Path
    out_dir: Path  # results land here as <benchmark>-<model>-<time>.json / .png
    features_dir: Path  # feature cache root
    languages: tuple[str, ...] = ("all",)
    model: str = "mlclip-tiny"
    subset: str | None = None
    index: str = "flat"
    device: str | None = None
    fallback: str = "none"  # extensions: "english" encodes a language without a pack as English


@dataclass
class BenchResult:
    result: dict
    json_path: Path
    png_path: Path


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80]


def run_bench(config: BenchConfig, encoder: FrozenClip | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> BenchResult:
    benchmark = get_benchmark(config.benchmark)
    if not Path(config.manifest).is_file():
        raise MlclipError(f"{config.manifest}: no such manifest; run `mlclip prepare {benchmark.dataset} --root ... "
                          "--images ...` first or pass --manifest")
    manifest = read_manifest(config.manifest).to_pandas()
    rows = manifest[(manifest.split == benchmark.split) & manifest.image_path.notna()]
    if rows.empty:
        raise MlclipError(f"{config.manifest}: no '{benchmark.split}' captions with images "
                          f"(prepare {benchmark.dataset} with --images)")
    if benchmark.select is not None:
        rows = benchmark.select(rows, config.subset)
    elif config.subset is not None:
        raise MlclipError(f"benchmark '{benchmark.name}' has no subsets")
    available = sorted(rows.language.unique())
    languages = available if "all" in config.languages else list(config.languages)
    unknown = [lang for lang in languages if lang not in available]
    if unknown:
        raise MlclipError(f"{config.manifest} has no {benchmark.split} captions in {', '.join(unknown)} "
                          f"(it has {', '.join(available)})")
    parallel = rows.pair_id.notna().any() and "en" in available
    needed = tuple(sorted(set(languages) | ({"en"} if parallel else set())))

    encoder = encoder or load_encoder(config.model, config.device, config.fallback)
    split_root = Path(config.features_dir) / slug(Path(config.manifest).stem) / benchmark.split
    # Images always come from the frozen image tower: an extension shares the frozen model's image
    # shards and keeps only its text features apart (under its cache key).
    image_folder, folder = split_root / slug(encoder.image_identity), split_root / slug(encoder.cache_key)
    if image_folder != folder:
        compute_features(FeaturesConfig(manifest=config.manifest, out=image_folder, languages=(), split=benchmark.split,
                                        device=config.device), encoder=encoder, progress=progress, manifest=manifest)
    compute_features(FeaturesConfig(manifest=config.manifest, out=folder, languages=needed, split=benchmark.split,
                                    images=image_folder == folder, device=config.device),
                     encoder=encoder, progress=progress, manifest=manifest)
    image_keys, image_matrix = load_features(image_folder, "image", encoder.image_identity, encoder.preprocess_description)
    image_row = {key: i for i, key in enumerate(image_keys)}
    kept_images = list(dict.fromkeys(rows.image_id))
    image_features = image_matrix[[image_row[i] for i in kept_images]]
    kept_index = {image_id: i for i, image_id in enumerate(kept_images)}

    english = None
    if parallel:
        en_keys, en_matrix = load_features(folder, "text-en", encoder.text_identity("en"))
        en_rows = rows[rows.language == "en"].set_index("sample_id")
        key_row = {k: i for i, k in enumerate(en_keys)}
        en_pair_row = {en_rows.at[k, "pair_id"]: key_row[k] for k in en_rows.index if k in key_row}
        english = (en_matrix, en_pair_row)

    per_language = {}
    for language in languages:
        keys, matrix = load_features(folder, f"text-{language}", encoder.text_identity(language))
        captions = rows[rows.language == language]
        key_row = {k: i for i, k in enumerate(keys)}
        text = matrix[[key_row[k] for k in captions.sample_id]]
        metrics = faiss_retrieval_metrics(text, image_features, captions.image_id.map(kept_index).to_numpy(), config.index)
        if english is not None:
            en_matrix, en_pair_row = english
            has_pair = captions.pair_id.map(lambda p: p in en_pair_row).to_numpy(dtype=bool)
            if has_pair.any():
                target = np.array([en_pair_row[p] for p in captions.pair_id[has_pair]])
                metrics |= translation_recall(text[has_pair], en_matrix, target, config.index)
        per_language[language] = {"images": int(captions.image_id.nunique()), "captions": int(len(captions)),
                                  "metrics": metrics}

    now = dt.datetime.now(dt.timezone.utc)
    result = {
        "artifact": "bench", "schema_version": BENCH_SCHEMA_VERSION, "benchmark": benchmark.name,
        "dataset": benchmark.dataset, "manifest": str(Path(config.manifest).resolve()), "split": benchmark.split,
        "subset": config.subset, "model": config.model, "model_identity": encoder.image_identity,
        "text_encoder": getattr(encoder, "name", "frozen"), "index": config.index,
        "captions_policy": CAPTIONS_POLICY, "created": now.isoformat(timespec="seconds"),
        "mlclip_version": __version__, "languages": per_language,
        "average": {key: float(np.mean([v["metrics"][key] for v in per_language.values()])) for key in RETRIEVAL_KEYS},
    }
    stem = f"{benchmark.name}{'-' + config.subset if config.subset else ''}-{slug(Path(config.model).name)}-{now:%Y%m%dT%H%M%S}"
    json_path = write_bench_result(result, Path(config.out_dir) / f"{stem}.json")
    png_path = plot_bench(result, Path(config.out_dir) / f"{stem}.png")
    return BenchResult(result, json_path, png_path)
