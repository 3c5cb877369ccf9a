"""The inputs `mlclip prepare pairs` reads, each streamed as batches of `Record`s in a fixed order.

- Tables: CSV, TSV, JSONL (optionally .gz) and Parquet, one caption per row; images by path,
  relative to an images root (default: the table's folder). Read block by block
  (pyarrow.csv.open_csv, ParquetFile.iter_batches, JSONL line by line), every cell as text.
- An image folder, searched recursively in sorted order, with same-name sidecars: `stem.txt` holds
  the caption, `stem.json` may hold `caption`, `language` and `english` (img2dataset's `files`
  output and clip-retrieval's convention; img2dataset's `*_stats.json` are skipped).
- webdataset tar shards (img2dataset's `webdataset` output): the members of one sample (`key.jpg`,
  `key.txt`, `key.json`) lie next to each other in the tar, as webdataset writes them; the key is
  the member name up to the first dot of its file name. Tars are streamed, never indexed whole;
  an image is referred to as `<absolute tar path>::<member>` (images.TAR_SEPARATOR), as cc3m does.

An image is checked by opening its header with PIL (`Image.open` + `verify`), never decoded.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import posixpath
import re
import tarfile
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from mlclip_cli.errors import DatasetError
from mlclip_cli.images import TAR_SEPARATOR

TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
FORMATS = (*TABLE_FORMATS, "folder", "webdataset")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".parquet": "parquet", ".pq": "parquet", ".tar": "webdataset"}
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # http://, https://, s3://, gs://, hf://, file://, ...
BATCH = 4096  # records per batch: what detection, dedup and the manifest writer see at once

# problems an image can have; the keys are drop reasons of the report
MISSING_IMAGE, UNREADABLE_IMAGE, URL = "missing_image", "unreadable_image", "url"


@dataclass
class Record:
    """One input caption (a table row, a sidecar, a tar sample), not yet cleaned or checked."""

    where: str  # for the report: "pairs.csv row 12", "photos/a.jpg", "00000.tar::000000012"
    caption: str | None
    image_id: str | None = None  # None: text-only
    image_path: str | None = None  # the manifest's image_path: absolute, or "<tar>::<member>"
    problem: tuple[str, str] | None = None  # (drop reason, detail) found while reading the image
    language: str | None = None  # raw, from a column or sidecar
    english: str | None = None  # raw parallel English
    split: str | None = None  # raw, from a split column


@dataclass(frozen=True)
class Columns:
    """Which table columns hold what (None: not read)."""

    image: str | None
    caption: str
    language: str | None = None
    english: str | None = None
    split: str | None = None

    def named(self) -> dict[str, str]:
        return {role: column for role, column in vars(self).items() if column is not None}


def is_url(value: str) -> bool:
    return bool(_URL.match(value.strip()))


def detect_format(path: Path, given: str | None) -> str:
    """The input kind of `path`: `given`, or from its suffix (.csv.gz counts as .csv), or folder /
    webdataset for a folder (webdataset when it holds .tar files anywhere below)."""
    if given is not None:
        if given not in FORMATS:
            raise DatasetError(f"unknown format '{given}' (choose {', '.join(FORMATS)})")
        return given
    if path.is_dir():
        return "webdataset" if _has_tars(path) else "folder"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    kind = _SUFFIXES.get(suffixes[-1] if suffixes else "")
    if kind is None:
        raise DatasetError(f"{path}: unknown format '{''.join(path.suffixes) or '(no suffix)'}' (prepare pairs reads "
                           ".csv, .tsv, .jsonl, .parquet (tables; .gz for the text ones), .tar shards or a folder; "
                           "or name it with --format)")
    return kind


def _has_tars(folder: Path) -> bool:
    return any(name.endswith(".tar") for _, _, names in os.walk(folder) for name in names)


def input_stem(path: Path) -> str:
    """`pairs` for pairs.csv.gz, a folder's own name for a folder."""
    name = path.resolve().name
    for _ in range(2):
        stem, dot, suffix = name.rpartition(".")
        if dot and stem and f".{suffix.lower()}" in (*_SUFFIXES, ".gz"):
            name = stem
    return name


# ---------------------------------------------------------------- image checks


def image_problem(opener: Callable[[], object]) -> str | None:
    """None when PIL reads the image's header, else why not (its first line)."""
    try:
        with Image.open(opener()) as image:
            image.verify()  # checks the structure without decoding the pixels
    except UnidentifiedImageError:
        return "not an image file PIL can read"
    except Exception as exc:  # noqa: BLE001  PIL raises OSError, SyntaxError, ValueError, struct.error, ...
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


class FileImages:
    """Resolves and checks table image paths. Rows of one image usually come together, so the
    last few thousand answers are kept (bounded: memory stays constant)."""

    def __init__(self, root: Path, column: str, table: str):
        self.root, self.column, self.table = root, column, table
        self._answers: OrderedDict[str, tuple[str | None, tuple[str, str] | None]] = OrderedDict()
        self._first = True

    def check(self, value: str | None) -> tuple[str | None, str | None, tuple[str, str] | None]:
        """(image_id, image_path, problem) of one cell of the image column."""
        value = (value or "").strip()
        if not value:
            return None, None, (MISSING_IMAGE, f"empty '{self.column}'")
        if is_url(value):
            if self._first:  # a column of URLs: refuse the file at once rather than drop every row
                raise DatasetError(f"{self.table}: column '{self.column}' holds URLs ({_short(value)}); mlclip does not "
                                   "download images: fetch them first (e.g. img2dataset) and prepare its output folder, "
                                   "or name a column of local paths")
            return None, None, (URL, _short(value))
        self._first = False
        path = Path(value).expanduser()
        full = path if path.is_absolute() else self.root / path
        if value in self._answers:
            self._answers.move_to_end(value)
        else:
            self._answers[value] = self._look(value, full, path.is_absolute())
            if len(self._answers) > 4096:
                self._answers.popitem(last=False)
        resolved, problem = self._answers[value]
        return _image_id(full, self.root), resolved, problem

    def _look(self, value: str, full: Path, absolute: bool) -> tuple[str | None, tuple[str, str] | None]:
        if not full.is_file():
            return None, (MISSING_IMAGE, f"{value} not found" + ("" if absolute else f" under {self.root}"))
        reason = image_problem(lambda: full)
        if reason is not None:
            return None, (UNREADABLE_IMAGE, f"{value}: {reason}")
        return str(full.resolve()), None


def _image_id(path: Path, root: Path) -> str:
    """The image's path relative to the images root (`/`-separated, normalised), or its absolute path."""
    normal = Path(os.path.normpath(path if path.is_absolute() else Path.cwd() / path))
    try:
        return normal.relative_to(Path(os.path.normpath(root.absolute()))).as_posix()
    except ValueError:
        return normal.as_posix()


def _short(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


# ---------------------------------------------------------------- tables


def table_columns(path: Path, kind: str) -> list[str]:
    """The column names of a table (its header; a JSONL file's first object's keys)."""
    if kind in ("csv", "tsv"):
        reader = _open_csv(path, kind, None)
        try:
            return list(reader.schema.names)
        finally:
            reader.close()
    if kind == "parquet":
        return list(_parquet(path).schema_arrow.names)
    for _, obj in _jsonl_objects(path):
        return list(obj)
    raise DatasetError(f"{path}: the file is empty")


def _check_not_empty(path: Path) -> None:
    if path.stat().st_size == 0:
        raise DatasetError(f"{path}: the file is empty")


def _open_csv(path: Path, kind: str, columns: list[str] | None):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    _check_not_empty(path)
    parse = pcsv.ParseOptions(delimiter="\t" if kind == "tsv" else ",", newlines_in_values=True)
    convert = None
    if columns is not None:  # every cell as text: an image column of numbers must stay "0001"
        convert = pcsv.ConvertOptions(include_columns=columns, column_types={c: pa.string() for c in columns},
                                      strings_can_be_null=False)
    try:
        return pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 20), parse_options=parse,
                             convert_options=convert)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise _table_error(path, kind, exc) from None


def _table_error(path: Path, kind: str, exc: Exception) -> DatasetError:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Empty CSV file" in message:
        return DatasetError(f"{path}: the file is empty")
    return DatasetError(f"{path}: not readable as {kind.upper()} ({message})")


def _parquet(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    _check_not_empty(path)
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise _table_error(path, "parquet", exc) from None


def _jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    _check_not_empty(path)
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                if not isinstance(obj, dict):
                    raise DatasetError(f"{path}:{number}: not a JSON object")
                yield number, obj
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None


def _text(value) -> str | None:
    """A cell as text: numbers as written, lists and objects as nothing."""
    if value is None or isinstance(value, (list, dict)):
        return None
    return value if isinstance(value, str) else str(value)


def _column_batches(path: Path, kind: str, columns: list[str]) -> Iterator[tuple[list[int], dict[str, list]]]:
    """(row numbers, {column: values}) block by block."""
    import pyarrow as pa

    if kind == "jsonl":
        numbers, values = [], {c: [] for c in columns}
        for number, obj in _jsonl_objects(path):
            numbers.append(number)
            for c in columns:
                values[c].append(_text(obj.get(c)))
            if len(numbers) == BATCH:
                yield numbers, values
                numbers, values = [], {c: [] for c in columns}
        if numbers:
            yield numbers, values
        return
    start = 1
    try:
        if kind == "parquet":
            batches = _parquet(path).iter_batches(batch_size=BATCH, columns=columns, use_threads=False)
        else:
            batches = _open_csv(path, kind, columns)
        for batch in batches:
            values = {}
            for c in columns:
                column = batch.column(batch.schema.get_field_index(c))
                if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                    try:
                        column = column.cast(pa.string())
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        raise DatasetError(f"{path}: column '{c}' has type {column.type}, not text") from None
                values[c] = column.to_pylist()
            yield list(range(start, start + batch.num_rows)), values
            start += batch.num_rows
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise _table_error(path, kind, exc) from None


def table_records(path: Path, kind: str, columns: Columns, images_root: Path) -> Iterator[list[Record]]:
    images = FileImages(images_root, columns.image, path.name) if columns.image else None
    label = "line" if kind == "jsonl" else "row"
    names = list(dict.fromkeys(columns.named().values()))
    for numbers, values in _column_batches(path, kind, names):
        batch = []
        for i, number in enumerate(numbers):
            record = Record(where=f"{path.name} {label} {number}", caption=values[columns.caption][i])
            if images is not None:
                record.image_id, record.image_path, record.problem = images.check(values[columns.image][i])
            if columns.language:
                record.language = values[columns.language][i]
            if columns.english:
                record.english = values[columns.english][i]
            if columns.split:
                record.split = values[columns.split][i]
            batch.append(record)
        yield batch


# ---------------------------------------------------------------- an image folder with sidecars


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


def _sidecar_json(raw: bytes | str | None) -> dict:
    if raw is None:
        return {}
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _fill(record: Record, text: str | None, meta: dict, where_txt: str) -> None:
    """Caption from the .txt (else the .json's `caption`), language and English from the .json."""
    record.caption = text if text is not None else _text(meta.get("caption"))
    record.language = _text(meta.get("language"))
    record.english = _text(meta.get("english"))
    if record.caption is None and record.problem is None:
        record.problem = ("empty_caption", f"no caption ({where_txt} absent or unreadable, no 'caption' in .json)")


def _in_batches(records: Iterable[Record]) -> Iterator[list[Record]]:
    """`records` in lists of BATCH (the last one shorter)."""
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def folder_records(folder: Path) -> Iterator[list[Record]]:
    yield from _in_batches(_folder_records(folder))


def _folder_records(folder: Path) -> Iterator[Record]:
    for here, stem, parts in _samples(folder):
        record = Record(where=(here / parts.get("image", stem)).relative_to(folder).as_posix(), caption=None,
                        image_id=(here / stem).relative_to(folder).as_posix())
        if "image" in parts:
            path = here / parts["image"]
            reason = image_problem(lambda: path)
            if reason is None:
                record.image_path = str(path.resolve())
            else:
                record.problem = (UNREADABLE_IMAGE, f"{parts['image']}: {reason}")
        else:
            record.problem = (MISSING_IMAGE, f"a caption sidecar with no image named {stem}.*")
        text = _read_text(here / parts[".txt"]) if ".txt" in parts else None
        meta = _sidecar_json(_read_text(here / parts[".json"])) if ".json" in parts else {}
        _fill(record, text, meta, f"{stem}.txt")
        yield record


def _samples(folder: Path) -> Iterator[tuple[Path, str, dict[str, str]]]:
    """(folder, stem, {"image" | ".txt" | ".json": file name}) in sorted path order: a folder's
    samples and sub-folders by name, each sub-folder where its name falls (one folder listed at a time)."""
    by_stem: dict[str, dict[str, str]] = {}
    subfolders: list[str] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir():
                subfolders.append(entry.name)
                continue
            stem, dot, ext = entry.name.rpartition(".")
            ext = f".{ext.lower()}"
            if not dot or not stem or entry.name.endswith("_stats.json"):  # img2dataset's shard statistics
                continue
            if ext in IMAGE_EXTENSIONS:
                by_stem.setdefault(stem, {}).setdefault("image", entry.name)
            elif ext in (".txt", ".json"):
                by_stem.setdefault(stem, {})[ext] = entry.name
    places = sorted([(stem, 0) for stem in by_stem] + [(name, 1) for name in subfolders])
    for name, is_folder in places:
        if is_folder:
            yield from _samples(folder / name)
        else:
            yield folder, name, by_stem[name]


# ---------------------------------------------------------------- webdataset shards


def shard_paths(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted((Path(d) / n for d, _, names in os.walk(source) for n in names if n.endswith(".tar")),
                  key=lambda p: p.relative_to(source).as_posix())


def webdataset_records(source: Path, warn: Callable[[str], None]) -> Iterator[list[Record]]:
    base = source if source.is_dir() else source.parent
    yield from _in_batches(record for tar_path in shard_paths(source)
                           for record in _shard(tar_path, tar_path.relative_to(base).as_posix(), warn))


def _shard(path: Path, rel: str, warn: Callable[[str], None]) -> Iterator[Record]:
    """A shard's samples, member by member (a stream: the tar's index is never held)."""
    shard_id = rel[: -len(".tar")] if rel.endswith(".tar") else rel
    absolute = str(path.resolve())
    key, parts = None, {}
    members = 0
    try:
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                members += 1
                folder, name = posixpath.split(member.name)
                stem, _, ext = name.partition(".")  # webdataset: the key ends at the first dot
                member_key = posixpath.join(folder, stem)
                if member_key != key:
                    if key is not None:
                        yield _sample(key, parts, shard_id, absolute, rel)
                    key, parts = member_key, {}
                ext = f".{ext.lower()}"
                if ext in IMAGE_EXTENSIONS and "image" not in parts:
                    data = tar.extractfile(member).read()
                    parts["image"] = (member.name, image_problem(lambda: io.BytesIO(data)))
                elif ext in (".txt", ".json"):
                    raw = tar.extractfile(member).read()
                    try:
                        parts[ext] = raw.decode("utf-8-sig")
                    except UnicodeDecodeError:
                        parts[ext] = None
            if key is not None:
                yield _sample(key, parts, shard_id, absolute, rel)
    except (tarfile.TarError, OSError, EOFError) as exc:
        if key is not None and parts:
            yield _sample(key, parts, shard_id, absolute, rel)
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        warn(f"{rel}: unreadable after {members} members ({why}); the samples before are kept")


def _sample(key: str, parts: dict, shard_id: str, tar_path: str, rel: str) -> Record:
    record = Record(where=f"{rel}{TAR_SEPARATOR}{key}", caption=None, image_id=f"{shard_id}/{key}")
    if "image" in parts:
        member, reason = parts["image"]
        if reason is None:
            record.image_path = f"{tar_path}{TAR_SEPARATOR}{member}"
        else:
            record.problem = (UNREADABLE_IMAGE, f"{member}: {reason}")
    else:
        record.problem = (MISSING_IMAGE, f"sample {key} has no image member")
    _fill(record, parts.get(".txt"), _sidecar_json(parts.get(".json")), f"{key}.txt")
    return record
