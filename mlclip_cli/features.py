"""`mlclip features`: frozen image and text features, computed once and reused.

A feature folder holds shards `image-00000.parquet` (key = image_id) and
`text-<lang>-00000.parquet` (key = sample_id), each written atomically with the encoder
identity, the preprocessing, the dtype and the L2-normalised flag in its metadata, and a
`features.json` index written last. Shards are computed in a fixed order and a shard already on
disk with the right metadata and keys is skipped: a killed run continues where it stopped and a
finished one does nothing. The manifest is streamed (one record batch at a time), so memory does
not grow with it; under torchrun the ranks share the shards.
"""

from __future__ import annotations

import contextlib
import json
import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlclip_cli.artifacts import (ArtifactError, count_manifest, features_spec, read_metadata,
                                  scan_manifest, write_table)
from mlclip_cli.atomic import write_json
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.feature_shards import read_feature_shard
from mlclip_cli.locks import writer_lock
from mlclip_cli.training import distributed

SHARD_SIZE = 4096


@dataclass(frozen=True)
class FeaturesConfig:
    manifest: Path
    out: Path  # feature folder
    model: str = "mlclip-tiny"
    languages: tuple[str, ...] = ("en",)  # captions to encode; ("all",) for every language
    split: str | None = None  # only rows of this split (None: the whole manifest)
    images: bool = True
    dtype: str = "float16"
    shard_size: int = SHARD_SIZE
    batch_size: int = 256  # images per forward
    text_batch_size: int = 2048  # texts per call: the encoder sorts a call by length, so larger cuts padding
    device: str | None = None


@dataclass
class FeaturesResult:
    folder: Path
    identity: str
    shards_written: int = 0
    shards_skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # "image" / "text-<lang>" -> rows


@dataclass(frozen=True)
class _Job:
    name: str  # "image" or "text-<lang>"
    language: str | None
    rows: int  # keys in all
    chunks: Callable[[int], Iterator[tuple[list[str], list[str]]]]  # shard size -> (keys, inputs) per shard, in order


def _sliced(keys: list[str], inputs: list[str]):
    return lambda size: ((keys[s:s + size], inputs[s:s + size]) for s in range(0, len(keys), size))


def _jobs(manifest: pd.DataFrame, config: FeaturesConfig) -> list[_Job]:
    """The jobs of rows already in memory."""
    jobs = []
    if config.images:
        images = manifest[manifest.image_path.notna()].drop_duplicates("image_id")
        jobs.append(_Job("image", None, len(images), _sliced(images.image_id.tolist(), images.image_path.tolist())))
    languages = sorted(manifest.language.unique()) if "all" in config.languages else list(config.languages)
    for language in languages:
        rows = manifest[manifest.language == language]
        if rows.empty:
            raise ArtifactError(f"{config.manifest}: no captions in language '{language}'")
        jobs.append(_Job(f"text-{language}", language, len(rows), _sliced(rows.sample_id.tolist(), rows.caption.tolist())))
    return jobs


def _streamed_jobs(config: FeaturesConfig) -> list[_Job]:
    """The same jobs read from the manifest file a batch at a time: memory does not grow with it."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    in_split = ds.field("split") == config.split if config.split is not None else None
    if config.split is not None and not count_manifest(config.manifest, in_split):
        raise ArtifactError(f"{config.manifest}: no rows in split '{config.split}'")

    def where(extra):
        return extra if in_split is None else in_split & extra

    def stream(columns, condition, keep_first: bool):
        def chunks(size: int):
            seen: set[str] = set()
            keys: list[str] = []
            inputs: list[str] = []
            for batch in scan_manifest(config.manifest, columns, condition):
                for key, item in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                    if keep_first:  # an image appears once per caption: keep its first row
                        if key in seen:
                            continue
                        seen.add(key)
                    keys.append(key)
                    inputs.append(item)
                    if len(keys) == size:
                        yield keys, inputs
                        keys, inputs = [], []
            if keys:
                yield keys, inputs
        return chunks

    jobs = []
    if config.images:
        has_image = where(ds.field("image_path").is_valid())
        distinct: set[str] = set()
        for batch in scan_manifest(config.manifest, ["image_id"], has_image):
            distinct.update(batch.column(0).to_pylist())
        count = len(distinct)
        del distinct
        jobs.append(_Job("image", None, count, stream(["image_id", "image_path"], has_image, True)))
    if "all" in config.languages:
        found: set[str] = set()
        for batch in scan_manifest(config.manifest, ["language"], in_split):
            found.update(pc.unique(batch.column(0)).to_pylist())
        languages = sorted(found)
    else:
        languages = list(config.languages)
    for language in languages:
        mine = where(ds.field("language") == language)
        count = count_manifest(config.manifest, mine)
        if not count:
            raise ArtifactError(f"{config.manifest}: no captions in language '{language}'")
        jobs.append(_Job(f"text-{language}", language, count, stream(["sample_id", "caption"], mine, False)))
    return jobs


def _metadata(encoder: FrozenClip, job: _Job, config: FeaturesConfig, count: int) -> dict[str, str]:
    identity = encoder.image_identity if job.language is None else encoder.text_identity(job.language)
    return {
        "kind": "image" if job.language is None else "text", "language": job.language or "",
        "identity": identity, "dtype": config.dtype, "normalized": "true", "rows": str(count),
        "preprocess": encoder.preprocess_description if job.language is None else "tokenizer",
    }


def _inputs_digest(job: _Job, inputs: list[str]) -> str:
    """What a shard was computed from: the captions, or each image file's path, size and mtime, so
    a regenerated image under the same image_id is never served from a stale shard."""
    digest = hashlib.sha256()
    for item in inputs:
        digest.update(item.encode("utf-8") + b"\0")
        if job.language is None:
            with contextlib.suppress(OSError):
                stat = os.stat(item.split("::", 1)[0])
                digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]


def _shard_is_complete(path: Path, expected: dict[str, str], first: str, last: str) -> bool:
    if not path.is_file():
        return False
    try:
        meta = read_metadata(path)
        keys = pq.read_table(path, columns=["key"]).column("key")
    except (pa.ArrowException, OSError):
        return False  # unreadable: compute it again
    return all(meta.get(k) == v for k, v in expected.items()) and len(keys) and keys[0].as_py() == first and keys[-1].as_py() == last


def _encode_images(encoder: FrozenClip, paths: list[str], batch_size: int, done: Callable[[int], None]) -> list:
    """Batches of image features; the next batch is decoded in a thread while this one encodes."""
    batches = [paths[b:b + batch_size] for b in range(0, len(paths), batch_size)]
    vectors, count = [], 0
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(encoder.load_pixels, batches[0]) if batches else None
        for i, batch in enumerate(batches):
            pixels = pending.result()
            pending = pool.submit(encoder.load_pixels, batches[i + 1]) if i + 1 < len(batches) else None
            vectors.append(encoder.encode_pixels(pixels))
            count += len(batch)
            done(count)
    return vectors


def _encode_texts(encoder: FrozenClip, texts: list[str], language: str, batch_size: int,
                  done: Callable[[int], None]) -> list:
    vectors = []
    for b in range(0, len(texts), batch_size):
        vectors.append(encoder.encode_texts(texts[b:b + batch_size], language))
        done(b + len(vectors[-1]))
    return vectors


def compute_features(config: FeaturesConfig, encoder: FrozenClip | None = None,
                     progress: Callable[[str, int, int], None] | None = None,
                     manifest: pd.DataFrame | None = None) -> FeaturesResult:
    """`manifest`: the rows of config.manifest when the caller has read them already; otherwise
    the manifest is streamed. Under torchrun each rank computes the shards numbered rank, rank +
    N, ... (counted over all parts) and rank 0 writes features.json once all are on disk."""
    with writer_lock(config.out, "feature folder"):
        return _compute(config, encoder, progress, manifest)


def _compute(config: FeaturesConfig, encoder: FrozenClip | None, progress, manifest: pd.DataFrame | None) -> FeaturesResult:
    runtime = distributed.current(config.device)
    if manifest is not None and config.split is not None:
        manifest = manifest[manifest.split == config.split]
        if manifest.empty:
            raise ArtifactError(f"{config.manifest}: no rows in split '{config.split}'")
    jobs = _jobs(manifest, config) if manifest is not None else _streamed_jobs(config)
    encoder = encoder or FrozenClip.load(config.model, str(runtime.device))  # an extension: the caller loads it
    spec = features_spec(config.dtype)
    folder = Path(config.out)
    folder.mkdir(parents=True, exist_ok=True)
    result = FeaturesResult(folder=folder, identity=encoder.image_identity)
    index = {"manifest": str(Path(config.manifest).resolve()), "split": config.split, "dtype": config.dtype, "normalized": True, "parts": {}}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # keep parts earlier calls wrote here
        earlier = json.loads((folder / "features.json").read_text(encoding="utf-8"))
        if {k: earlier[k] for k in ("manifest", "split", "dtype")} == {k: index[k] for k in ("manifest", "split", "dtype")}:
            index["parts"] = dict(earlier["parts"])
    dealt = 0  # shards dealt out so far, over all parts: rank r computes those with dealt % N == r
    for job in jobs:
        shards = 0
        for number, (keys, inputs) in enumerate(job.chunks(config.shard_size)):
            shards += 1
            dealt += 1
            start = number * config.shard_size
            if (dealt - 1) % runtime.world_size != runtime.rank:  # another rank's shard
                continue
            path = folder / f"{job.name}-{number:05d}.parquet"
            meta = _metadata(encoder, job, config, len(keys)) | {"inputs": _inputs_digest(job, inputs)}
            if _shard_is_complete(path, meta, keys[0], keys[-1]):
                result.shards_skipped += 1
            else:
                def done(count: int, start=start, job=job) -> None:
                    if progress:
                        progress(job.name, start + count, job.rows)

                vectors = (_encode_images(encoder, inputs, config.batch_size, done) if job.language is None
                           else _encode_texts(encoder, inputs, job.language, config.text_batch_size, done))
                matrix = np.concatenate(vectors).astype(np.float16 if config.dtype == "float16" else np.float32)
                table = pa.table({"key": keys, "embedding": list(matrix)})
                write_table(table, path, spec, metadata=meta)
                result.shards_written += 1
            if progress:
                progress(job.name, min(start + config.shard_size, job.rows), job.rows)
        result.counts[job.name] = job.rows
        index["parts"][job.name] = {"rows": job.rows, "shards": shards,
                                    "identity": _metadata(encoder, job, config, 0)["identity"]}
    distributed.barrier()  # every rank's shards are on disk
    if runtime.is_main:
        write_json(folder / "features.json", index)
    distributed.barrier()  # nobody reads the folder before its index is there
    return result


def listed_parts(folder: Path) -> dict[str, dict] | None:
    """The parts a feature folder's features.json (written last) lists, or None when it has no
    readable one (a `features` run that did not finish, or a folder of something else)."""
    try:
        parts = json.loads((Path(folder) / "features.json").read_text(encoding="utf-8"))["parts"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return parts if isinstance(parts, dict) else None


def _indexed_shards(folder: Path, part: str) -> int:
    """How many shards of `part` the folder's features.json lists: a folder without it, or without
    the part in it, was left by a run that did not finish."""
    parts = listed_parts(folder)
    if parts is None:
        raise ArtifactError(f"{folder}: no features.json (a `mlclip features` run was stopped before it finished); "
                            "run the same command again: the finished shards are kept")
    try:
        return int(parts[part]["shards"])
    except (KeyError, TypeError, ValueError):
        raise ArtifactError(f"{folder}: features.json does not list '{part}' (a `mlclip features` run was stopped or "
                            "the file was changed); run `mlclip features` again") from None


def load_features(folder: Path, part: str, identity: str | None = None,
                  preprocess: str | None = None) -> tuple[list[str], np.ndarray]:
    """Keys and float32 matrix of one part ("image" or "text-<lang>"), checked against the
    encoder `identity` and, for images, the `preprocess` they must have been made with."""
    folder = Path(folder)
    shards = sorted(folder.glob(f"{part}-[0-9][0-9][0-9][0-9][0-9].parquet"))
    if not shards:
        raise ArtifactError(f"{folder}: no '{part}' features (run `mlclip features` first)")
    expected = _indexed_shards(folder, part)
    if len(shards) < expected:
        raise ArtifactError(f"{folder}: '{part}' has {len(shards)} of its {expected} shards (a `mlclip features` run was "
                            "stopped); run the same command again: the finished shards are kept")
    shards = shards[:expected]  # shards past the index's count are an earlier, larger run's
    keys: list[str] = []
    blocks = []
    for shard in shards:
        shard_keys, matrix = read_feature_shard(shard, identity, preprocess)
        keys.extend(shard_keys)
        blocks.append(matrix)
    return keys, np.concatenate(blocks)
