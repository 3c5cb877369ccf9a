"""Read a feature folder (`mlclip features`) one Parquet shard at a time.

A part ("image" or "text-<lang>") is the shards `<part>-00000.parquet`, `<part>-00001.parquet`, ...
with columns key and embedding (a list of float16 or float32) and the encoder identity, dtype and
preprocessing in the metadata. `load_features` reads a whole part into one matrix; `FeatureShards`
streams it, so that a gallery larger than memory can be indexed shard by shard. Only numpy and
pyarrow are imported here (no torch), so the index commands start fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlclip_cli.artifacts import ArtifactError, features_spec, read_metadata, read_table


def shard_paths(folder: str | Path, part: str) -> list[Path]:
    """The shards of `part` in `folder`, in order; an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such feature folder (run `mlclip features` first)")
    shards = sorted(folder.glob(f"{part}-[0-9][0-9][0-9][0-9][0-9].parquet"))
    if not shards:
        raise ArtifactError(f"{folder}: no '{part}' features (run `mlclip features` first)")
    return shards


def read_feature_shard(shard: Path, identity: str | None = None,
                       preprocess: str | None = None) -> tuple[list[str], np.ndarray]:
    """Keys and float32 matrix of one shard, checked against the encoder `identity` and, for images,
    the `preprocess` they must have been made with (None: not checked)."""
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
    keys = table.column("key").to_pylist()
    flat = table.column("embedding").combine_chunks()
    dim = len(flat[0]) if len(flat) else 0
    values = np.asarray(flat.values.to_numpy(zero_copy_only=False), dtype=np.float32)
    if len(flat) and values.size != len(flat) * dim:
        raise ArtifactError(f"{shard}: embeddings of different lengths in one shard")
    return keys, values.reshape(-1, dim)


@dataclass(frozen=True)
class FeatureShards:
    """One part of a feature folder, read a shard at a time. Iterating yields each shard's float32
    matrix (what `search.build_index_sharded` takes); `blocks()` yields (keys, matrix) pairs."""

    folder: Path
    part: str = "image"
    identity: str | None = None  # None: take the first shard's, and require every shard to match it

    @property
    def paths(self) -> list[Path]:
        return shard_paths(self.folder, self.part)

    @property
    def rows(self) -> int:
        """Rows in all, from the Parquet footers (no embedding is read)."""
        total = 0
        for path in self.paths:
            try:
                total += pq.ParquetFile(path).metadata.num_rows
            except (pa.ArrowException, OSError) as exc:
                raise ArtifactError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
        return total

    def first_identity(self) -> str | None:
        return self.identity if self.identity is not None else read_metadata(self.paths[0]).get("identity")

    def blocks(self) -> Iterator[tuple[list[str], np.ndarray]]:
        identity = self.first_identity()
        dim = None
        for path in self.paths:
            keys, matrix = read_feature_shard(path, identity)
            if dim is not None and matrix.shape[1] != dim and len(keys):
                raise ArtifactError(f"{path}: embeddings of dimension {matrix.shape[1]}, the shards before have {dim}")
            dim = matrix.shape[1] if len(keys) else dim
            yield keys, matrix

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, matrix in self.blocks():
            yield matrix

    def sample(self, size: int, seed: int = 0) -> np.ndarray:
        """`size` rows drawn uniformly without replacement over all shards (all rows when there are
        fewer), reading one shard at a time: memory holds one shard plus the sample."""
        rows = self.rows
        size = min(size, rows)
        picks = np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False)) if size < rows else None
        parts, start = [], 0
        for matrix in self:
            stop = start + len(matrix)
            if picks is None:
                parts.append(matrix)
            else:
                mine = picks[(picks >= start) & (picks < stop)] - start
                parts.append(matrix[mine])
            start = stop
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
