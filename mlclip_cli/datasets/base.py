"""What every data-set loader shares: its config, its report, reading real files."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlclip_cli.errors import DatasetError
from mlclip_cli.text import clean_caption, mask_reason, normalise_language


@dataclass
class PrepareConfig:
    """Options of `mlclip prepare`; each loader reads the ones it needs."""

    root: Path
    images: Path | None = None  # image folder; None: the loader's default under root, if present
    drop_missing_images: bool = False  # keep rows whose image is absent (image_path null) by default
    languages: tuple[str, ...] | None = None  # None: all the data set has
    seed: int = 0  # cc300k sampling
    size: int | None = None  # cc300k sample size (default 300,000)
    subset: str | None = None  # coco: all | test5k | test1k
    splits: tuple[str, ...] | None = None  # multi30k: splits to prepare (None: every complete one)
    translations: dict[str, Path] = field(default_factory=dict)  # cc3m/cc300k: language -> file
    progress: Callable[[int, int], None] | None = None  # long loaders report (done, total)


@dataclass
class Report:
    """What a loader saw: masked captions, absent images, anything surprising."""

    masked: list[dict] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    images_checked: bool = False
    cleaned: int = 0  # captions that clean_caption changed beyond line-ending removal
    # loaders that prepare part of a root: {"prepared": [split], "absent": {split: {"missing": [file], "present": [file]}}}
    splits: dict | None = None

    def add_caption(self, rows: list[dict], row: dict, raw: str, where: str) -> None:
        """Clean `raw`; append `row` with it, or record why it was masked."""
        caption = clean_caption(raw)
        reason = mask_reason(caption)
        if reason is not None:
            self.masked.append(
                {"language": row["language"], "where": where, "caption": raw.strip("\r\n"), "reason": reason}
            )
            return
        if caption != raw.strip("\r\n"):
            self.cleaned += 1
        rows.append({**row, "caption": caption})


@dataclass
class LayoutCheck:
    warnings: list[str]
    files: dict[str, int | None]  # relative path -> line count (None when not counted)


@dataclass(frozen=True)
class BenchSet:
    """How `mlclip bench NAME` scores a prepared data set: its split, and which rows count."""

    name: str  # the bench command's name (xtd for XTD10)
    summary: str
    split: str = "test"
    select: Callable | None = None  # (rows, subset) -> rows
    subsets: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    summary: str  # one line for --help
    load: Callable[[PrepareConfig, Report], list[dict]]
    default_images: str | None = None  # sub-folder of root tried when --images is not given
    generated: bool = False  # written by mlclip itself under --root, not read from upstream files
    splits: tuple[str, ...] = ()  # splits config.splits may name (empty: the data set has no split choice)
    # its own root check, e.g. one that accepts a root holding only some splits (None: layout.check_root)
    check_layout: Callable[[PrepareConfig], LayoutCheck] | None = None
    bench: BenchSet | None = None  # a retrieval benchmark of its prepared manifest
    # prepared by a command and library function of its own (pairs: options no other data set has);
    # `load` then only says so, and `mlclip prepare` builds no generic command for it
    own_command: bool = False


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (or its .gz twin): CRLF or LF, final newline optional, BOM dropped."""
    path = existing(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline, when there is one
    return lines


def existing(path: Path) -> Path:
    """`path`, or its `.gz` twin, or a clear error."""
    if path.is_file():
        return path
    gz = path.with_name(path.name + ".gz")
    if gz.is_file():
        return gz
    raise DatasetError(f"missing file {path}")


def read_json(path: Path):
    path = existing(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[dict]:
    objects = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            objects.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    return objects


def check_aligned(files: dict[str, list[str]], what: str) -> int:
    """All line lists must have the same length (line i of each describes the same thing)."""
    counts = {name: len(lines) for name, lines in files.items()}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{name}: {n}" for name, n in counts.items())
        raise DatasetError(f"{what}: line counts differ ({detail}); line i of each file must match")
    return next(iter(counts.values()), 0)


def select_languages(available: Iterable[str], wanted: tuple[str, ...] | None, dataset: str) -> list[str]:
    available = [normalise_language(code) for code in available]
    if wanted is None:
        return available
    wanted = [normalise_language(code) for code in wanted]
    unknown = [code for code in wanted if code not in available]
    if unknown:
        raise DatasetError(
            f"{dataset} has no language {', '.join(unknown)} (it has {', '.join(sorted(available))})"
        )
    return wanted


class ImageFinder:
    """Finds image files under a folder, trying the layouts real mirrors use."""

    def __init__(self, folder: Path | None, report: Report):
        self.folder = folder
        self.report = report
        report.images_checked = folder is not None

    def find(self, *candidates: str) -> str | None:
        """Absolute path of the first candidate (relative to the folder) that exists."""
        if self.folder is None:
            return None
        for candidate in candidates:
            path = self.folder / candidate
            if path.is_file():
                return str(path.resolve())
        self.report.missing_images.append(candidates[0])
        return None


def count_by(rows: list[dict], *keys: str) -> dict:
    counts = Counter(tuple(row[k] for k in keys) for row in rows)
    nested: dict = {}
    for key, n in sorted(counts.items()):
        level = nested
        for part in key[:-1]:
            level = level.setdefault(part, {})
        level[key[-1]] = n
    return nested
