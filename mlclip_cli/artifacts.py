"""Every artifact's schema, defined once, with validating atomic writers and checking readers.

docs/artifacts.md documents the same schemas for people; tests keep the two in step.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlclip_cli.atomic import atomic_path
from mlclip_cli.errors import ArtifactError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ArtifactSpec:
    name: str
    schema: pa.Schema
    description: str

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema if not f.nullable)


MANIFEST = ArtifactSpec(
    name="manifest",
    description="One row per caption of a prepared data set.",
    schema=pa.schema(
        [
            pa.field("sample_id", pa.string(), nullable=False),  # unique in the file
            pa.field("image_id", pa.string(), nullable=False),  # shared by captions of one image
            pa.field("image_path", pa.string(), nullable=True),  # absolute, "<tar>::<member>", or null
            pa.field("language", pa.string(), nullable=False),  # ISO 639-1 where one exists ("ja", not "jp")
            pa.field("caption", pa.string(), nullable=False),  # cleaned text
            pa.field("split", pa.string(), nullable=False),  # train | val | test | restval
            pa.field("source", pa.string(), nullable=False),  # data set name, e.g. "xtd10"
            pa.field("pair_id", pa.string(), nullable=True),  # same for translations of one caption
        ]
    ),
)

FEATURE_DTYPES = {"float32": pa.float32(), "float16": pa.float16()}


def features_spec(dtype: str = "float32") -> ArtifactSpec:
    """Feature shards: one embedding per image (key = image_id) or caption (key = sample_id)."""
    if dtype not in FEATURE_DTYPES:
        raise ArtifactError(f"feature dtype must be one of {', '.join(FEATURE_DTYPES)}, not '{dtype}'")
    return ArtifactSpec(
        name="features",
        description="Frozen-model embeddings, sharded; model identity and preprocessing in the metadata.",
        schema=pa.schema([
            pa.field("key", pa.string(), nullable=False),  # image_id (images) or sample_id (captions)
            pa.field("embedding", pa.list_(FEATURE_DTYPES[dtype]), nullable=False),
        ]),
    )


FEATURES = features_spec("float32")

EMBEDDINGS = ArtifactSpec(
    name="embeddings",
    description="Output of `mlclip embed`: one embedding per input text or image.",
    schema=pa.schema([
        pa.field("input", pa.string(), nullable=False),  # the text, or the image path
        pa.field("language", pa.string(), nullable=True),  # null for images
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),
    ]),
)

LANGID = ArtifactSpec(
    name="langid",
    description="Output of `mlclip langid`: the detected language of each line of a text file.",
    schema=pa.schema([
        pa.field("line", pa.int64(), nullable=False),  # 1-based line number in the text file (blank lines skipped)
        pa.field("text", pa.string(), nullable=False),  # the line, stripped
        pa.field("language", pa.string(), nullable=False),  # ISO 639-1 code, one of the languages asked for
        pa.field("confidence", pa.float64(), nullable=True),  # the backend's probability; null: script rule or fallback
        pa.field("method", pa.string(), nullable=False),  # script | model | fallback
    ]),
)

IMAGE_INDEX_ITEMS = ArtifactSpec(
    name="image_index_items",
    description="The images of an image index folder (`mlclip index build --images`): row i is FAISS id i.",
    schema=pa.schema([
        pa.field("path", pa.string(), nullable=False),  # relative to the collection root (index.json), "/"-separated
        pa.field("size", pa.int64(), nullable=False),  # bytes, when it was encoded
        pa.field("mtime_ns", pa.int64(), nullable=False),  # modification time (ns), when it was encoded
        pa.field("embedding", pa.list_(pa.float32()), nullable=False),  # L2-normalised image feature
    ]),
)

ARTIFACTS = {spec.name: spec for spec in (MANIFEST, FEATURES, EMBEDDINGS, LANGID, IMAGE_INDEX_ITEMS)}


def _conform(table: pa.Table, spec: ArtifactSpec, where: str) -> pa.Table:
    """Return `table` with exactly the spec's columns and types, or raise naming the column."""
    columns = []
    for field in spec.schema:
        if field.name not in table.column_names:
            raise ArtifactError(f"{where}: column '{field.name}' is missing ({spec.name} artifact)")
        column = table.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise ArtifactError(
                    f"{where}: column '{field.name}' has type {column.type}, expected {field.type}"
                ) from None
        if not field.nullable and column.null_count:
            raise ArtifactError(f"{where}: column '{field.name}' has {column.null_count} empty values")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=spec.schema)


def write_table(table: pa.Table, path: str | os.PathLike, spec: ArtifactSpec, metadata: dict | None = None) -> Path:
    """Validate `table` against `spec` and write it atomically as Parquet."""
    table = _conform(table, spec, f"cannot write {path}")
    table = table.replace_schema_metadata(_metadata(spec, metadata))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def _metadata(spec: ArtifactSpec, metadata: dict | None = None) -> dict[bytes, bytes]:
    meta = {b"mlclip.artifact": spec.name.encode(), b"mlclip.schema_version": str(SCHEMA_VERSION).encode()}
    for key, value in (metadata or {}).items():
        meta[f"mlclip.{key}".encode()] = str(value).encode()
    return meta


def read_table(path: str | os.PathLike, spec: ArtifactSpec) -> pa.Table:
    """Read a Parquet artifact and check it against `spec`; fail with the file and column named."""
    return _conform(_read_parquet(path, spec.name, pq.read_table), spec, str(path))


def _read_parquet(path: str | os.PathLike, what: str, read):
    """read(path) of a Parquet file, or a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such {what} file")
    try:
        return read(path)
    except (pa.ArrowException, OSError) as exc:
        raise ArtifactError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The mlclip.* key/values a writer stored in a Parquet artifact's schema."""
    meta = pq.read_schema(path).metadata or {}
    return {k.decode()[len("mlclip."):]: v.decode() for k, v in meta.items() if k.startswith(b"mlclip.")}


def check_manifest(table: pa.Table, path: str | os.PathLike) -> None:
    """What write_manifest refuses, checked before anything is written."""
    _conform(table, MANIFEST, f"cannot write {path}")
    ids = table.column("sample_id") if "sample_id" in table.column_names else None
    if ids is not None and len(ids) != len(pc.unique(ids)):
        raise ArtifactError(f"cannot write {path}: column 'sample_id' has duplicate values")


def write_manifest(table: pa.Table, path: str | os.PathLike) -> Path:
    check_manifest(table, path)
    return write_table(table, path, MANIFEST)


def read_manifest(path: str | os.PathLike) -> pa.Table:
    return read_table(path, MANIFEST)


@contextlib.contextmanager
def manifest_writer(path: str | os.PathLike) -> Iterator[Callable[[list[dict]], None]]:
    """Write a manifest batch by batch, what writes one larger than memory: the block gets
    `write(rows)` (row dicts, each batch checked against the schema) and the file, written into a
    temporary sibling, is renamed onto `path` only when the block ends without an error. Keeping
    sample_id unique across batches is the caller's part."""
    schema = MANIFEST.schema.with_metadata(_metadata(MANIFEST))
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        def write(rows: list[dict]) -> None:
            table = _conform(pa.Table.from_pylist(rows, schema=MANIFEST.schema), MANIFEST, f"cannot write {path}")
            writer.write_table(table.replace_schema_metadata(schema.metadata))

        yield write


STREAM_BATCH = 65_536  # manifest rows decoded at a time by scan_manifest


def scan_manifest(path: str | os.PathLike, columns: list[str], where=None, batch_size: int = STREAM_BATCH):
    """Stream a manifest's `columns` as record batches (one batch of `batch_size` rows decoded at a
    time), optionally filtered by a pyarrow expression `where`: what reads a manifest larger than
    memory. The schema is checked up front, as read_manifest checks a whole table."""
    path = Path(path)
    schema = _read_parquet(path, MANIFEST.name, pq.read_schema)
    for name in columns:
        if name not in schema.names:
            raise ArtifactError(f"{path}: column '{name}' is missing ({MANIFEST.name} artifact)")
        expected = MANIFEST.schema.field(name).type
        if not schema.field(name).type.equals(expected):
            raise ArtifactError(f"{path}: column '{name}' has type {schema.field(name).type}, expected {expected}")
    # ParquetFile.iter_batches decodes a row group a batch at a time (a dataset scan decodes it
    # whole: ~1M rows of strings); the filter then runs on each batch.
    needed = list(dict.fromkeys(columns + (_fields_of(where) if where is not None else [])))
    reader = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)  # column chunks read as a stream
    for batch in reader.iter_batches(batch_size=batch_size, columns=needed, use_threads=False):
        if where is not None:
            kept = pa.Table.from_batches([batch]).filter(where)
            if not kept.num_rows:
                continue
            batch = kept.combine_chunks().to_batches()[0]
        yield batch.select(columns)


def _fields_of(expression) -> list[str]:
    """The column names a pyarrow expression reads (from its printed form: names appear bare)."""
    import re

    return [name for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(expression)) if name in MANIFEST.schema.names]


def count_manifest(path: str | os.PathLike, where=None) -> int:
    """Rows matching `where`, streamed like scan_manifest."""
    columns = _fields_of(where) if where is not None else ["split"]
    return sum(batch.num_rows for batch in scan_manifest(path, columns or ["split"], where))


def manifest_from_rows(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=MANIFEST.schema)
