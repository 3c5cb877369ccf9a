"""`mlclip features`: frozen image and text features, computed once and reused.

A feature folder holds shards `image-00000.parquet` (key = image_id) and
`text-<lang>-00000.parquet` (key = sample_id), each written atomically with the encoder
identity, the preprocessing, the dtype and the L2-normalised flag in its metadata, and a
`features.json` index written last. Shards are computed in a fixed order and a shard already on
disk with the right metadata and keys is skipped: a killed run continues where it stopped and a
finished one does nothing.
"""

from __future__ import annotations

import contextlib
import json
import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlclip_cli.artifacts import ArtifactError, features_spec, read_manifest, read_metadata, read_table, write_table
from mlclip_cli.atomic import write_json
from mlclip_cli.encoders import FrozenClip, load_encoder

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
    keys: list[str]
    inputs: list[str]  # image paths or captions
    language: str | None


def _jobs(manifest: pd.DataFrame, config: FeaturesConfig) -> list[_Job]:
    jobs = []
    if config.images:
        images = manifest[manifest.image_path.notna()].drop_duplicates("image_id")
        jobs.append(_Job("image", images.image_id.tolist(), images.image_path.tolist(), None))
    languages = sorted(manifest.language.unique()) if "all" in config.languages else list(config.languages)
    for language in languages:
        rows = manifest[manifest.language == language]
        if rows.empty:
            raise ArtifactError(f"{config.manifest}: no captions in language '{language}'")
        jobs.append(_Job(f"text-{language}", rows.sample_id.tolist(), rows.caption.tolist(), language))
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
    """`manifest`: the rows of config.manifest when the caller has read them already."""
    if manifest is None:
        manifest = read_manifest(config.manifest).to_pandas()
    if config.split is not None:
        manifest = manifest[manifest.split == config.split]
        if manifest.empty:
            raise ArtifactError(f"{config.manifest}: no rows in split '{config.split}'")
    encoder = encoder or load_encoder(config.model, config.device)
    spec = features_spec(config.dtype)
    folder = Path(config.out)
    folder.mkdir(parents=True, exist_ok=True)
    result = FeaturesResult(folder=folder, identity=encoder.image_identity)
    index = {"manifest": str(Path(config.manifest).resolve()), "split": config.split, "dtype": config.dtype, "normalized": True, "parts": {}}
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):  # keep parts earlier calls wrote here
        earlier = json.loads((folder / "features.json").read_text(encoding="utf-8"))
        if {k: earlier[k] for k in ("manifest", "split", "dtype")} == {k: index[k] for k in ("manifest", "split", "dtype")}:
            index["parts"] = dict(earlier["parts"])
    for job in _jobs(manifest, config):
        shards = range(0, len(job.keys), config.shard_size)
        for number, start in enumerate(shards):
            keys = job.keys[start:start + config.shard_size]
            inputs = job.inputs[start:start + config.shard_size]
            path = folder / f"{job.name}-{number:05d}.parquet"
            meta = _metadata(encoder, job, config, len(keys)) | {"inputs": _inputs_digest(job, inputs)}
            if _shard_is_complete(path, meta, keys[0], keys[-1]):
                result.shards_skipped += 1
            else:
                def done(count: int, start=start, job=job) -> None:
                    if progress:
                        progress(job.name, start + count, len(job.keys))

                vectors = (_encode_images(encoder, inputs, config.batch_size, done) if job.language is None
                           else _encode_texts(encoder, inputs, job.language, config.text_batch_size, done))
                matrix = np.concatenate(vectors).astype(np.float16 if config.dtype == "float16" else np.float32)
                table = pa.table({"key": keys, "embedding": list(matrix)})
                write_table(table, path, spec, metadata=meta)
                result.shards_written += 1
            if progress:
                progress(job.name, min(start + config.shard_size, len(job.keys)), len(job.keys))
        result.counts[job.name] = len(job.keys)
        index["parts"][job.name] = {"rows": len(job.keys), "shards": len(shards),
                                    "identity": _metadata(encoder, job, config, 0)["identity"]}
    write_json(folder / "features.json", index)
    return result


def load_features(folder: Path, part: str, identity: str | None = None,
                  preprocess: str | None = None) -> tuple[list[str], np.ndarray]:
    """Keys and float32 matrix of one part ("image" or "text-<lang>"), checked against the
    encoder `identity` and, for images, the `preprocess` they must have been made with."""
    folder = Path(folder)
    shards = sorted(folder.glob(f"{part}-[0-9][0-9][0-9][0-9][0-9].parquet"))
    if not shards:
        raise ArtifactError(f"{folder}: no '{part}' features (run `mlclip features` first)")
    keys: list[str] = []
    blocks = []
    for shard in shards:
        meta = read_metadata(shard)
        if identity is not None and meta.get("identity") != identity:
            raise ArtifactError(
                f"{shard}: features were made by '{meta.get('identity')}', not by '{identity}'; "
                "recompute them with `mlclip features` for this model")
        if preprocess is not None and meta.get("preprocess") != preprocess:
            raise ArtifactError(
                f"{shard}: images were preprocessed as '{meta.get('preprocess')}', not as '{preprocess}'; "
                "recompute the features with `mlclip features`")
        table = read_table(shard, features_spec(meta.get("dtype", "float32")))
        keys.extend(table.column("key").to_pylist())
        flat = table.column("embedding").combine_chunks()
        dim = len(flat[0]) if len(flat) else 0
        blocks.append(np.asarray(flat.values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim))
    return keys, np.concatenate(blocks)
