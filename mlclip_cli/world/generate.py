"""Generate the embedded world: images plus parallel captions in the 11 XTD10 languages.

Layout under the world folder (all seeded and deterministic):

    world.json                       what was generated, with which settings
    cc3m/Train_GCC-training.tsv      train captions in CC3M's format (caption<TAB>url)
    cc3m/translations/<lang>.txt     line i = translation of TSV line i (translate-train style)
    cc3m/images/00000/000000123.jpg  img2dataset layout, with sibling .txt and .json
    val/images/world_val_000123.jpg  validation images (clustered near-duplicates, like test)
    xtd10/...                        1000 test images in XTD10's exact layout (XTD10/, MIC/, STAIR/)
    xtd10/images/world_test_000123.jpg

The manifest rows (train: several captions per image, val: one) are returned, not read back.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import random
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from mlclip_cli import faults
from mlclip_cli.atomic import atomic_path, write_json, write_text
from mlclip_cli.xtd10_layout import FILES as XTD10_FILES
from mlclip_cli.world.grammar import LANGUAGES, realise
from mlclip_cli.world.render import render
from mlclip_cli.world.scenes import clustered_scenes, plan_for, scene_cluster
from mlclip_cli.world.semantics import CaptionPlan

WORLD_VERSION = 2  # 2: val and test captions never occur in train
_SHARD = 10_000  # img2dataset's default shard size
_CHUNK = 500
# Train scenes come in blocks of near-duplicates written next to each other, so a trainer that
# batches whole blocks sees hard negatives (see PretrainConfig.block_size).
TRAIN_BLOCK = 4


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    train_scenes: int = 30_000
    captions_per_train_scene: int = 2  # plans per scene, each realised in every language
    val_scenes: int = 1_000
    test_scenes: int = 1_000  # XTD10 has 1000


@dataclass
class WorldResult:
    folder: Path
    rows: list[dict]  # manifest rows for train and val
    config: WorldConfig


def _captions(plan: CaptionPlan, key: str) -> dict[str, str]:
    return {lang: realise(lang, plan, random.Random(f"{key}:{lang}")) for lang in LANGUAGES}


def _save_jpeg(image, path: Path) -> None:
    with atomic_path(path) as tmp:  # an image is reused when its file is there: never a truncated one
        image.save(tmp, format="JPEG", quality=95)


def _pool(workers: int) -> ProcessPoolExecutor:
    """Workers that die with the process that forked them (kill -9 included) rather than wait for
    work forever, holding what they inherited (Linux: forked, with PR_SET_PDEATHSIG)."""
    if sys.platform != "linux":
        return ProcessPoolExecutor(max_workers=workers)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_die_with_parent, initargs=(os.getpid(),))


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that took effect
        os._exit(1)


def _train_chunk(args: tuple[Path, WorldConfig, int, int]) -> list[dict]:
    folder, config, start, stop = args
    rows = []
    scenes = {}
    for block in range(start // TRAIN_BLOCK, (stop + TRAIN_BLOCK - 1) // TRAIN_BLOCK):
        rng = random.Random(f"{config.seed}:train-block:{block}")
        for j, scene in enumerate(scene_cluster(rng, TRAIN_BLOCK)):
            scenes[block * TRAIN_BLOCK + j] = scene
    images = (folder / "cc3m" / "images").resolve()  # once: resolving each row's path cost a third of the time
    for i in range(start, stop):
        rng = random.Random(f"{config.seed}:train:{i}")
        scene = scenes[i]
        key = f"{i:09d}"
        image_path = images / f"{i // _SHARD:05d}" / f"{key}.jpg"
        if not image_path.is_file():
            _save_jpeg(render(scene, rng), image_path)
        where = str(image_path)
        for p in range(config.captions_per_train_scene):
            plan = plan_for(scene, random.Random(f"{config.seed}:train:{i}:plan{p}"))
            for lang, caption in _captions(plan, f"{config.seed}:train:{i}:{p}").items():
                rows.append({
                    "sample_id": f"world/train/{i:06d}/{p}/{lang}", "image_id": f"world_train_{i:06d}",
                    "image_path": where, "language": lang, "caption": caption,
                    "split": "train", "source": "world", "pair_id": f"world/train/{i:06d}/{p}",
                })
    return rows


def _clustered_split(folder: Path, config: WorldConfig, split: str, n: int, image_dir: Path,
                     exclude: dict[str, set[str]] | None = None, reuse: bool = True) -> tuple[list, list]:
    """Val or test. A scene whose caption in any language is in exclude[lang] is redrawn, so the
    split does not reward memorising train captions."""
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"{config.seed}:{split}")

    def unseen(i: int, plan: CaptionPlan) -> bool:  # realised with the key of the index it would get
        captions = _captions(plan, f"{config.seed}:{split}:{i}")
        return not any(caption in exclude.get(lang, ()) for lang, caption in captions.items())

    rows, names = [], []
    for i, (scene, plan) in enumerate(clustered_scenes(rng, n, accept=unseen if exclude else None)):
        name = f"world_{split}_{i:06d}.jpg"
        path = image_dir / name
        image_rng = random.Random(f"{config.seed}:{split}:{i}:image")
        if not (reuse and path.is_file()):
            _save_jpeg(render(scene, image_rng), path)
        names.append(name)
        where = str(path.resolve())
        for lang, caption in _captions(plan, f"{config.seed}:{split}:{i}").items():
            rows.append({
                "sample_id": f"world/{split}/{i:06d}/{lang}", "image_id": Path(name).stem,
                "image_path": where, "language": lang, "caption": caption,
                "split": split, "source": "world", "pair_id": f"world/{split}/{i:06d}",
            })
    return rows, names


def _write_cc3m(folder: Path, train_rows: list[dict]) -> None:
    """CC3M + img2dataset + translate-train files for plan 0 of every train scene."""
    first = [row for row in train_rows if row["sample_id"].split("/")[3] == "0"]
    by_lang: dict[str, list[dict]] = {}
    for row in first:
        by_lang.setdefault(row["language"], []).append(row)
    english = by_lang["en"]
    lines = []
    for index, row in enumerate(english):
        url = f"https://world.mlclip.invalid/train/{index:09d}.jpg"
        lines.append(f"{row['caption']}\t{url}")
        stem = Path(row["image_path"]).with_suffix("")
        write_text(stem.with_suffix(".txt"), row["caption"])
        write_text(stem.with_suffix(".json"), json.dumps(
            {"url": url, "key": f"{index:09d}", "status": "success", "caption": row["caption"]}))
    write_text(folder / "cc3m" / "Train_GCC-training.tsv", "\n".join(lines) + "\n")
    translations = folder / "cc3m" / "translations"
    translations.mkdir(parents=True, exist_ok=True)
    for lang, rows in by_lang.items():
        if lang != "en":
            write_text(translations / f"{lang}.txt", "\n".join(r["caption"] for r in rows) + "\n")


def _write_xtd10(folder: Path, rows: list[dict], names: list[str]) -> None:
    root = folder / "xtd10"
    for sub in ("XTD10", "MIC", "STAIR"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    write_text(root / "XTD10" / "test_image_names.txt", "\n".join(names) + "\n")
    for lang, (sub, code) in XTD10_FILES.items():
        captions = [row["caption"] for row in rows if row["language"] == lang]
        write_text(root / sub / f"test_1kcaptions_{code}.txt", "\n".join(captions) + "\n")


def generate_world(folder: Path, config: WorldConfig, workers: int = 2,
                   progress: Callable[[int, int], None] | None = None) -> WorldResult:
    """Write the world under `folder` and return its manifest rows. Train images already there are
    reused; val/test ones only if world.json says they come from the same version and config."""
    folder = Path(folder)
    for shard in range((config.train_scenes + _SHARD - 1) // _SHARD):
        (folder / "cc3m" / "images" / f"{shard:05d}").mkdir(parents=True, exist_ok=True)
    chunks = [(folder, config, s, min(s + _CHUNK, config.train_scenes)) for s in range(0, config.train_scenes, _CHUNK)]
    total = config.train_scenes + config.val_scenes + config.test_scenes
    done = 0
    train_rows: list[dict] = []
    with _pool(workers) as pool:
        for chunk_rows, (_, _, start, stop) in zip(pool.map(_train_chunk, chunks), chunks):
            train_rows.extend(chunk_rows)
            done += stop - start
            faults.point("world train chunk")
            if progress:
                progress(done, total)
    # Val/test scenes depend on the version and on train (see exclude): reuse their images only
    # from a world written by the same version and config.
    written = json.loads((folder / "world.json").read_text(encoding="utf-8")) if (folder / "world.json").is_file() else {}
    reuse = written.get("world_version") == WORLD_VERSION and written.get("config") == asdict(config)
    (folder / "world.json").unlink(missing_ok=True)  # an interrupted run must not pass for this one
    train_captions: dict[str, set[str]] = {}
    for row in train_rows:
        train_captions.setdefault(row["language"], set()).add(row["caption"])
    val_rows, _ = _clustered_split(folder, config, "val", config.val_scenes, folder / "val" / "images",
                                   train_captions, reuse)
    if progress:
        progress(done + config.val_scenes, total)
    test_rows, test_names = _clustered_split(folder, config, "test", config.test_scenes, folder / "xtd10" / "images",
                                            train_captions, reuse)
    _write_cc3m(folder, train_rows)
    _write_xtd10(folder, test_rows, test_names)
    if progress:
        progress(total, total)
    write_json(folder / "world.json", {
        "world_version": WORLD_VERSION, "config": asdict(config), "languages": list(LANGUAGES),
        "train_images": config.train_scenes, "val_images": config.val_scenes, "test_images": config.test_scenes,
    })
    return WorldResult(folder=folder, rows=train_rows + val_rows, config=config)
