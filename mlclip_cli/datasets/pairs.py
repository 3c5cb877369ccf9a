"""Your own data: `mlclip prepare pairs --from FILE|FOLDER` turns a user's captions (tables, an
image folder with caption sidecars, webdataset shards, or text-only parallel pairs) into the
manifest every other data set produces, so `features`, `train`, `extend`, `continual` and `bench`
take it by name (`--data NAME`).

What each input row becomes:
- its caption, cleaned as every loader cleans (text.clean_caption), in its language: a language
  column (sidecar key `language`), else `--lang`, else detected (an injected `LanguageIdentifier`,
  mlclip_cli.langid.Identifier: the data layer cannot import langid);
- with a parallel-English column (sidecar key `english`), also that English sentence, on the same
  image with the same pair_id (as Multi30K's translations); a row already in English stays one row;
- text-only (`no_images`: target sentence + English, for NLT with a text teacher): both rows with
  image_path null, as Multi30K prepared without images, and image_id = pair_id;
- its split: a split column, a seeded `val_fraction` (by image: a hash of (seed, image_id), so all
  captions of an image land together and the answer does not depend on row order; text-only: by
  the English sentence), or train.

Nothing is dropped silently: each dropped row is counted under one reason, the first that applies
(DROP_REASONS, in that order), with its first example. A run with drops succeeds; a run that keeps
nothing raises (one line, with the counts) and writes nothing.

Memory barely grows with the input: inputs are streamed in batches (pair_sources), the manifest is
written batch by batch (artifacts.manifest_writer: a temporary file renamed at the end), and what
grows is two HashSets of 8-byte hashes, one entry per kept row (the duplicate check) and one per image
(the image count): about 45 bytes per kept row measured (docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mlclip_cli.artifacts import manifest_writer
from mlclip_cli.atomic import write_json
from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import BenchSet, DatasetSpec, PrepareConfig, Report
from mlclip_cli.datasets.pair_sources import (
    MISSING_IMAGE,
    TABLE_FORMATS,
    UNREADABLE_IMAGE,
    URL,
    Columns,
    Record,
    detect_format,
    folder_records,
    input_stem,
    table_columns,
    table_records,
    webdataset_records,
)
from mlclip_cli.errors import DatasetError
from mlclip_cli.locks import writer_lock
from mlclip_cli.text import clean_caption, mask_reason, normalise_language
from mlclip_cli.workspace import slug

REPORT_ARTIFACT = "prepare-pairs-report"
REPORT_SCHEMA_VERSION = 1
# reason -> what the CLI calls it, in the order they are tested
DROP_REASONS = {
    URL: "image is a URL",
    MISSING_IMAGE: "missing image",
    UNREADABLE_IMAGE: "unreadable image",
    "empty_caption": "empty caption",
    "unknown_language": "unknown language",
    "unknown_split": "unknown split",
    "duplicate": "duplicate pair",
}
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "dev": "val", "test": "test", "testing": "test", "restval": "restval"}
DEFAULT_COLUMNS = {"image": "image", "caption": "caption"}
OPTIONAL_COLUMNS = {"language": "language", "english": "english", "split": "split"}  # used when present
_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")  # an ISO 639 code, optionally with a subtag


class LanguageIdentifier(Protocol):
    """What prepare pairs needs to detect languages (mlclip_cli.langid.Identifier is one)."""

    backend: str
    languages: tuple[str, ...]  # detected among these

    @property
    def known(self) -> frozenset[str]:
        """Every code the backend knows: a given code outside them is refused."""

    def __call__(self, texts: Sequence[str]) -> list[str | None]:
        """Each text's language, or None where it matches none."""


@dataclass
class PairsConfig:
    source: Path  # a table, an image folder, a .tar shard or a folder of shards
    out: Path  # the manifest; its report is written beside it as <stem>.report.json
    name: str  # the data set's name: the manifest's `source` column and sample_id prefix
    format: str | None = None  # csv | tsv | jsonl | parquet | folder | webdataset; None: from the path
    images_root: Path | None = None  # tables: image paths are relative to it (default: the table's folder)
    image_column: str | None = None  # tables; None: "image"
    caption_column: str | None = None  # tables; None: "caption"
    language_column: str | None = None  # tables; None: "language" when the table has one
    english_column: str | None = None  # tables; None: "english" when the table has one
    split_column: str | None = None  # tables; None: "split" when the table has one and no val_fraction
    language: str | None = None  # the language of every row that names none; excludes a language column
    no_images: bool = False  # text-only parallel pairs (needs an English column)
    val_fraction: float | None = None  # share of images in val (seeded); None: train (or the split column)
    seed: int = 0
    identifier: LanguageIdentifier | None = None  # detects rows without a language; checks given codes
    progress: Callable[[int, int | None], None] | None = None  # (rows read, total when known)


@dataclass
class Drop:
    count: int = 0
    example: str = ""  # the first one: where, and what was wrong


@dataclass
class PairsReport:
    """What prepare pairs read, kept and dropped (saved as <manifest stem>.report.json)."""

    name: str
    source: str
    format: str
    manifest: str
    images_root: str | None
    columns: dict[str, str]  # role (image, caption, language, english, split) -> column, tables only
    language: str  # where languages came from: "given: de", "column: lang", "sidecar", "detected"
    split: str  # where splits came from: "all train", "column: split", "val_fraction 0.1, seed 0"
    rows_read: int = 0  # input rows (table rows, images with sidecars, tar samples)
    rows_kept: int = 0
    rows_dropped: int = 0
    manifest_rows: int = 0  # captions written (a kept row with parallel English gives two)
    images: int = 0  # distinct images in the manifest
    dropped: dict[str, Drop] = field(default_factory=dict)  # reason -> count and first example
    languages: dict[str, dict[str, int]] = field(default_factory=dict)  # language -> split -> captions
    detected: dict | None = None  # {"backend", "among", "counts": {language: rows}} when any was detected
    warnings: list[str] = field(default_factory=list)
    created: str = ""

    def to_json(self) -> dict:
        data = {"artifact": REPORT_ARTIFACT, "schema_version": REPORT_SCHEMA_VERSION, **asdict(self)}
        data["dropped"] = {reason: asdict(drop) for reason, drop in self.dropped.items()}
        return data


@dataclass
class PairsResult:
    manifest: Path
    report_path: Path
    report: PairsReport


def default_name(source: str | Path) -> str:
    """The name a manifest gets when none is given: the input's stem (`pairs` for pairs.csv.gz)."""
    name = slug(input_stem(Path(source)))
    if not name:
        raise DatasetError(f"{source}: cannot make a data set name from it; give one with --name")
    return name


def report_path(manifest: Path) -> Path:
    return Path(manifest).with_suffix(".report.json")


# ---------------------------------------------------------------- options, checked before any work


@dataclass(frozen=True)
class _Plan:
    kind: str
    columns: Columns | None  # tables only
    images_root: Path | None
    language: str | None  # the given one, normalised
    detect: bool  # rows without a language are detected (else dropped as unknown language)


def _plan(config: PairsConfig) -> _Plan:
    source = Path(config.source)
    if not source.exists():
        raise DatasetError(f"--from {source}: no such file or folder")
    kind = detect_format(source, config.format)
    table = kind in TABLE_FORMATS
    if table and source.is_dir():
        raise DatasetError(f"--from {source}: a folder, not a {kind} file")
    if kind == "folder" and not source.is_dir():
        raise DatasetError(f"--from {source}: format folder needs a folder")
    _check_options(config, table, kind)

    language = None if config.language is None else _check_code(config.language, config.identifier, "--lang")
    columns = _table_columns(config, source, kind) if table else None
    images_root = None
    if table and not config.no_images:
        images_root = Path(config.images_root) if config.images_root is not None else source.parent
        if not images_root.is_dir():
            raise DatasetError(f"--images-root {images_root}: no such folder")
        images_root = images_root.resolve()
    has_column = columns.language is not None if table else True  # sidecars may name a language
    detect = language is None and config.identifier is not None
    if language is None and not has_column and config.identifier is None:
        raise DatasetError("no language for the rows: give --lang, a language column, or a language identifier")
    return _Plan(kind, columns, images_root, language, detect)


def _check_options(config: PairsConfig, table: bool, kind: str) -> None:
    if not table:
        options = (("--image-column", config.image_column), ("--caption-column", config.caption_column),
                   ("--lang-column", config.language_column), ("--english-column", config.english_column),
                   ("--split-column", config.split_column), ("--images-root", config.images_root))
        given = [flag for flag, value in options if value is not None]
        if config.no_images:
            given.append("--no-images")
        if given:
            what = "an image folder" if kind == "folder" else "webdataset shards"
            raise DatasetError(f"{', '.join(given)}: for tables only (--from is {what}, "
                               "whose sidecars hold caption, language and english)")
    if config.language is not None and config.language_column is not None:
        raise DatasetError("--lang and --lang-column exclude each other: one language for every row, or a column")
    if config.val_fraction is not None:
        if not 0 <= config.val_fraction < 1:
            raise DatasetError(f"--val-fraction must be at least 0 and below 1, not {config.val_fraction}")
        if config.split_column is not None:
            raise DatasetError("--split-column and --val-fraction exclude each other")
    if config.no_images and config.image_column is not None:
        raise DatasetError("--no-images and --image-column exclude each other")


def language_code(raw: str, identifier: LanguageIdentifier | None) -> str | None:
    """A user's language code, normalised (`jp` -> `ja`; a region the identifier does not know
    dropped: `pt-BR` -> `pt`), or None when it is not one the identifier (or, without one, ISO 639's
    shape) accepts."""
    code = normalise_language(raw)
    if not _CODE.match(code):
        return None
    if identifier is None:
        return code
    for candidate in (code, code.split("-")[0]):
        if candidate in identifier.known:
            return candidate
    return None


def _check_code(raw: str, identifier: LanguageIdentifier | None, where: str) -> str:
    code = language_code(raw, identifier)
    if code is not None:
        return code
    if identifier is None or not _CODE.match(normalise_language(raw)):
        raise DatasetError(f"{where} '{raw}' is not a language code (ISO 639-1, e.g. de)")
    known = ", ".join(sorted(c for c in identifier.known if len(c) == 2))
    raise DatasetError(f"{where} '{raw}': not a language code {identifier.backend} knows "
                       f"(ISO 639-1 codes it knows: {known})")


def _table_columns(config: PairsConfig, source: Path, kind: str) -> Columns:
    present = table_columns(source, kind)

    def pick(given: str | None, option: str, default: str | None, required: bool) -> str | None:
        if given is None and default is not None and (required or default in present):
            given = default
        if given is not None and given not in present:
            hint = f"; name it with {option}" if given == default else ""
            raise DatasetError(f"{source}: no column '{given}' (columns: {', '.join(present) or 'none'}){hint}")
        return given

    image = None if config.no_images else pick(config.image_column, "--image-column", DEFAULT_COLUMNS["image"], True)
    caption = pick(config.caption_column, "--caption-column", DEFAULT_COLUMNS["caption"], True)
    language = pick(config.language_column, "--lang-column",
                    None if config.language is not None else OPTIONAL_COLUMNS["language"], False)
    english = pick(config.english_column, "--english-column", OPTIONAL_COLUMNS["english"], False)
    split = pick(config.split_column, "--split-column",
                 None if config.val_fraction is not None else OPTIONAL_COLUMNS["split"], False)
    if config.no_images and english is None:
        raise DatasetError(f"{source}: --no-images prepares parallel text pairs (a sentence and its English): name the "
                           f"English column with --english-column (columns: {', '.join(present)})")
    columns = Columns(image=image, caption=caption, language=language, english=english, split=split)
    named = list(columns.named().values())
    twice = sorted({c for c in named if named.count(c) > 1})
    if twice:
        roles = ", ".join(role for role, column in columns.named().items() if column == twice[0])
        raise DatasetError(f"{source}: column '{twice[0]}' is named for two roles ({roles})")
    return columns


# ---------------------------------------------------------------- the run


def prepare_pairs(config: PairsConfig) -> PairsResult:
    """Read config.source, write the manifest config.out (atomically, under its lock) and its
    report; return what was kept and dropped."""
    if not str(config.name).strip() or slug(config.name) != config.name:
        raise DatasetError(f"--name '{config.name}': use letters, digits, '.', '_' or '-' "
                           f"(e.g. {slug(config.name) or 'mydata'})")
    plan = _plan(config)
    out = Path(config.out)
    with writer_lock(out, "manifest", is_file=True), writer_lock(report_path(out), "report", is_file=True):
        return _run(config, plan, out)


def _records(config: PairsConfig, plan: _Plan, warn: Callable[[str], None]):
    source = Path(config.source)
    if plan.columns is not None:
        return table_records(source, plan.kind, plan.columns, plan.images_root)
    if plan.kind == "folder":
        return folder_records(source)
    return webdataset_records(source, warn)


def _describe_language(plan: _Plan) -> str:
    """Where the languages come from, in the order they are looked for."""
    places = []
    if plan.columns is None:
        places.append("sidecar 'language'")
    elif plan.columns.language:
        places.append(f"column: {plan.columns.language}")
    if plan.language is not None:
        places.append(f"given: {plan.language}")
    elif plan.detect:
        places.append("detected")
    return ", else ".join(places)


def _describe_split(config: PairsConfig, plan: _Plan) -> str:
    if config.val_fraction is not None:
        by = "English sentence" if config.no_images else "image"
        return f"val_fraction {config.val_fraction}, seed {config.seed} (by {by})"
    if plan.columns is not None and plan.columns.split:
        return f"column: {plan.columns.split}"
    return "all train"


def _hash(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest(), "big")


class HashSet:
    """A growing set of 8-byte hashes in a sorted numpy array (8 bytes each; a Python set of ints
    takes about 80), with the latest ones in a small Python set merged in now and then: what the
    duplicate check and the image count hold. Asked a batch at a time (numpy per key is slow)."""

    def __init__(self):
        self._sorted = np.empty(0, dtype=np.uint64)
        self._recent: set[int] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def add(self, keys: Sequence[int]) -> list[bool]:
        """Add `keys` in order; for each, whether it was new (not added before, nor earlier in `keys`)."""
        array = np.fromiter(keys, dtype=np.uint64, count=len(keys))
        known = np.zeros(len(array), dtype=bool)
        if len(self._sorted):
            at = np.minimum(np.searchsorted(self._sorted, array), len(self._sorted) - 1)
            known = self._sorted[at] == array
        new = []
        for key, old in zip(keys, known.tolist()):
            fresh = not old and key not in self._recent
            if fresh:
                self._recent.add(key)
            new.append(fresh)
        if len(self._recent) > max(65_536, len(self._sorted) // 8):  # amortised: each key moves a few times
            merged = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
            merged.sort()
            self._sorted = np.insert(self._sorted, np.searchsorted(self._sorted, merged), merged)
            self._recent = set()
        return new


class _Run:
    """The state of one run: the report and the sets that grow with it."""

    def __init__(self, config: PairsConfig, plan: _Plan, report: PairsReport):
        self.config, self.plan, self.report = config, plan, report
        self.seen = HashSet()  # the duplicate check: (image, language, caption, English)
        self.images = HashSet()
        self.detected: Counter[str] = Counter()
        self.index = 0  # input rows so far: sample ids and pair ids count them

    def drop(self, record: Record, reason: str, detail: str) -> None:
        entry = self.report.dropped.setdefault(reason, Drop())
        entry.count += 1
        if not entry.example:
            entry.example = f"{record.where}: {detail}"

    def rows(self, batch: list[Record]) -> list[dict]:
        """Check, clean, place and name one batch; record every drop."""
        config = self.config
        good: list[tuple[int, Record, str]] = []  # (input index, record, cleaned caption)
        for record in batch:
            index = self.index
            self.index += 1
            if record.problem is not None:
                self.drop(record, *record.problem)
                continue
            caption = clean_caption(record.caption or "")
            why = mask_reason(caption)
            if why is not None:
                shown = f" ({record.caption.strip()!r})" if why != "empty" and record.caption else ""
                self.drop(record, "empty_caption", f"caption {why}{shown}")
                continue
            good.append((index, record, caption))

        placed = []  # (record, row without its duplicate check, English or None)
        for (index, record, caption), language in zip(good, self._languages(good)):
            if isinstance(language, tuple):  # (None, why)
                self.drop(record, "unknown_language", language[1])
                continue
            english = None
            if language != "en" and (record.english is not None or self._english_column):
                english = clean_caption(record.english or "")  # a row already in English is its own English
                why = mask_reason(english)
                if why is not None:
                    self.drop(record, "empty_caption", f"English {why}")
                    continue
            split = self._split(record, english)
            if split is None:
                self.drop(record, "unknown_split", f"split {record.split!r} is not train, val or test")
                continue
            number = f"{config.name}/{index:08d}"
            image_id = record.image_id if record.image_id is not None else number  # text-only: its pair
            row = {"sample_id": f"{number}/{language}", "image_id": image_id, "image_path": record.image_path,
                   "split": split, "source": config.name, "pair_id": number if english is not None else None,
                   "language": language, "caption": caption}
            placed.append((record, row, english))

        keys = [_hash("" if config.no_images else row["image_id"], row["language"], row["caption"], english or "")
                for _, row, english in placed]
        rows: list[dict] = []
        kept = []
        for (record, row, english), new in zip(placed, self.seen.add(keys)):
            if not new:
                what = "sentence pair" if config.no_images else "image, language and caption"
                self.drop(record, "duplicate", f"the same {what} as an earlier row")
                continue
            rows.append(row)
            if english is not None:
                rows.append({**row, "sample_id": f"{row['pair_id']}/en", "language": "en", "caption": english})
            if record.image_path is not None:
                kept.append(_hash(row["image_id"]))
            self.report.rows_kept += 1
        self.images.add(kept)
        return rows

    @property
    def _english_column(self) -> bool:
        return self.plan.columns is not None and self.plan.columns.english is not None

    def _languages(self, good: list) -> list:
        """Each row's language, or (None, why) for one that is unknown."""
        plan, identifier = self.plan, self.config.identifier
        found: list = []
        pending: list[int] = []
        for position, (_, record, caption) in enumerate(good):
            raw = (record.language or "").strip()
            if raw:
                code = language_code(raw, identifier)
                judge = identifier.backend if identifier is not None else "ISO 639"
                found.append(code if code is not None else (None, f"language {raw!r} is not a code {judge} knows"))
            elif plan.language is not None:
                found.append(plan.language)
            elif plan.detect:
                found.append(None)
                pending.append(position)
            else:
                found.append((None, "no language given, and none detected"))
        if pending:
            detected = identifier([good[p][2] for p in pending])
            for position, code in zip(pending, detected):
                if code is None:
                    found[position] = (None, f"matches none of {', '.join(identifier.languages)}")
                else:
                    found[position] = code
                    self.detected[code] += 1
        return found

    def _split(self, record: Record, english: str | None) -> str | None:
        config = self.config
        if config.val_fraction is not None:
            key = english if config.no_images else record.image_id
            unit = _hash(str(config.seed), key or "") / 2**64
            return "val" if unit < config.val_fraction else "train"
        if self.plan.columns is not None and self.plan.columns.split:
            return SPLIT_NAMES.get((record.split or "").strip().lower())
        return "train"


def _run(config: PairsConfig, plan: _Plan, out: Path) -> PairsResult:
    report = PairsReport(
        name=config.name, source=str(Path(config.source).resolve()), format=plan.kind, manifest=str(out.resolve()),
        images_root=str(plan.images_root) if plan.images_root else None,
        columns=plan.columns.named() if plan.columns else {}, language=_describe_language(plan),
        split=_describe_split(config, plan),
    )
    run = _Run(config, plan, report)
    per_language: Counter[tuple[str, str]] = Counter()
    with manifest_writer(out) as write:
        for batch in _records(config, plan, report.warnings.append):
            report.rows_read += len(batch)
            rows = run.rows(batch)
            if rows:
                write(rows)
                report.manifest_rows += len(rows)
                per_language.update((row["language"], row["split"]) for row in rows)
            if config.progress is not None:
                config.progress(report.rows_read, None)
        report.rows_dropped = report.rows_read - report.rows_kept
        if not report.rows_kept:
            raise DatasetError(_nothing_kept(config, report))
        _finish(report, run, per_language)
        # the report first, the manifest (renamed into place as this block ends) last, as prepare does
        # with its summary: a manifest on disk always has its report beside it
        written = write_json(report_path(out), report.to_json())
    return PairsResult(manifest=out, report_path=written, report=report)


def _finish(report: PairsReport, run: _Run, per_language: Counter) -> None:
    config = run.config
    report.images = len(run.images)
    report.dropped = {reason: report.dropped[reason] for reason in DROP_REASONS if reason in report.dropped}
    for (language, split), count in sorted(per_language.items()):
        report.languages.setdefault(language, {})[split] = count
    if run.detected:
        report.detected = {"backend": config.identifier.backend, "among": list(config.identifier.languages),
                           "counts": dict(run.detected.most_common())}
    if config.val_fraction and not any("val" in splits for splits in report.languages.values()):
        report.warnings.append(f"val_fraction {config.val_fraction} put no image in val (too few images); "
                               "everything is in train")
    report.created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _nothing_kept(config: PairsConfig, report: PairsReport) -> str:
    if not report.rows_read:
        return f"{config.source}: no rows (nothing to prepare)"
    reasons = [reason for reason in DROP_REASONS if reason in report.dropped]
    counts = ", ".join(f"{DROP_REASONS[r]} {report.dropped[r].count}" for r in reasons)
    first = report.dropped[reasons[0]].example if reasons else ""
    return f"{config.source}: no row kept of {report.rows_read} ({counts}; e.g. {first}); nothing written"


# ---------------------------------------------------------------- the registry entry


def _not_here(config: PrepareConfig, report: Report) -> list[dict]:
    raise DatasetError("pairs is prepared from your own files with `mlclip prepare pairs --from FILE|FOLDER` "
                       "(library: mlclip_cli.datasets.pairs.prepare_pairs)")


register(DatasetSpec(
    name="pairs",
    summary="your own data: a CSV/TSV/JSONL/Parquet table, an image folder with caption sidecars, webdataset "
            "shards, or text-only pairs",
    load=_not_here, own_command=True,
    bench=BenchSet("pairs", "Your own data (`mlclip prepare pairs`): image-text retrieval on its val split",
                   split="val"),
))
