"""One trained-and-benched row of a reproduced table, reused when its settings are unchanged.

Each row lives in TABLE_FOLDER/<key>/: the extension (or continual run) and row.json, written last,
with the settings it was trained with and its scores. A rerun with the same settings reads row.json
instead of training again; a changed setting trains the row afresh.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

from mlclip_cli.atomic import write_json

R1, MEAN = "image_retrieval_recall@1", "mean_recall"


def _plain(value):
    if is_dataclass(value):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def finished(folder: Path, settings: dict) -> dict | None:
    record = folder / "row.json"
    if not record.is_file():
        return None
    saved = json.loads(record.read_text(encoding="utf-8"))
    return saved if saved.get("settings") == _plain(settings) else None


def record(folder: Path, settings: dict, scores: dict, seconds: float, **extra) -> dict:
    saved = {"settings": _plain(settings), "scores": scores, "seconds": seconds, **extra}
    write_json(folder / "row.json", saved)
    return saved


def bench_languages(ctx, model: str, languages, out_dir: Path) -> dict[str, dict[str, float]]:
    """World-test metrics per language through `model` (an extension folder or a CLIP)."""
    from mlclip_cli.bench.run import BenchConfig, run_bench

    result = run_bench(BenchConfig(benchmark="xtd", manifest=ctx.workspace.manifest("xtd10"), out_dir=out_dir,
                                   features_dir=ctx.workspace.features_root, languages=tuple(languages), model=model),
                       progress=ctx.progress).result
    return {language: result["languages"][language]["metrics"] for language in languages}


def mla_row(ctx, key: str, languages: tuple[str, ...], loop, **options) -> dict:
    """Train an MLA extension on `languages` with `loop` and MlaConfig `options`, bench it."""
    from mlclip_cli.mla.method import MlaConfig, train_mla

    folder = ctx.folder / key
    settings = {"kind": "train", "languages": languages, "loop": loop, "model": ctx.model, **options}
    done = finished(folder, settings)
    if done is not None:
        return done
    shutil.rmtree(folder, ignore_errors=True)
    began = time.perf_counter()
    train_mla(MlaConfig(manifest=ctx.workspace.manifest("world"), out=folder / "extension", languages=languages,
                        features_root=ctx.workspace.features_root, model=ctx.model, loop=loop, **options),
              progress=ctx.progress)
    seconds = time.perf_counter() - began
    scores = bench_languages(ctx, str(folder / "extension"), languages, folder / "bench")
    return record(folder, settings, scores, seconds)


def mla_extend_row(ctx, key: str, base: Path, language: str, loop, bench: tuple[str, ...], **options) -> dict:
    """Copy the extension `base`, add `language` to the copy with `extend`, bench `bench`."""
    from mlclip_cli.mla.method import MlaConfig, extend_mla

    folder = ctx.folder / key
    settings = {"kind": "extend", "base": str(base), "language": language, "loop": loop, **options}
    done = finished(folder, settings)
    if done is not None:
        return done
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(base, folder / "extension")
    began = time.perf_counter()
    extend_mla(MlaConfig(manifest=ctx.workspace.manifest("world"), out=folder / "extension", languages=(language,),
                         features_root=ctx.workspace.features_root, loop=loop, **options), progress=ctx.progress)
    seconds = time.perf_counter() - began
    scores = bench_languages(ctx, str(folder / "extension"), bench, folder / "bench")
    return record(folder, settings, scores, seconds)


def continual_row(ctx, key: str, order: tuple[str, ...], learner: str, teir, loop) -> dict:
    """Run a continual sequence (benched after every language); its summary and timing."""
    from mlclip_cli.continual.runner import ContinualConfig, run_continual

    folder = ctx.folder / key
    settings = {"kind": "continual", "order": order, "learner": learner, "teir": teir, "loop": loop, "model": ctx.model}
    done = finished(folder, settings)
    if done is not None:
        return done
    shutil.rmtree(folder, ignore_errors=True)
    result = run_continual(ContinualConfig(
        manifest=ctx.workspace.manifest("world"), out=folder / "run", order=order,
        features_root=ctx.workspace.features_root, learner=learner, teir=teir, model=ctx.model,
        test_manifest=ctx.workspace.manifest("xtd10"), loop=loop), progress=ctx.progress)
    return record(folder, settings, result.summary, result.seconds, trainable=result.trainable_parameters)
