"""Conceptual Captions (CC3M) and CC300K, a seeded sample of the CC3M rows whose image downloaded.

Files: Train_GCC-training.tsv (3,318,333 rows) and/or Validation_GCC-1.1.0-Validation.tsv
(15,840 rows), no header, `caption<TAB>url` per line. Google ships captions and URLs only; the
images come from img2dataset (config.images, default <root>/images), in either output format:
- files: shard folders `00000/000000123.jpg` with siblings `000000123.txt` (caption) and
  `000000123.json` (`url`, `key`, `status`, ...);
- webdataset: `00000.tar` shards holding `<key>.jpg`, `<key>.txt`, `<key>.json`; the row then
  points into the tar as `<absolute tar path>::<member>`.
Rows are joined to images by `url` (only samples whose status is "success", or has none). Two rows
with the same URL take its downloads in key order and share the last one.

cc3m keeps every row (image_path null where the image did not download, reported as missing);
cc300k is random.Random(seed).sample(size) of the sorted training rows whose image downloaded
(size default 300,000; all of them when fewer), so the same seed always gives the same rows.

Translations (translate-train, as in CC6L/CC69L; config.translations: language -> file) come in
two forms, told apart by their content: a TSV `key<TAB>caption` keyed by the img2dataset key
(every line has a tab after a field of digits), or a parallel line file with line i translating
TSV row i (the training TSV, or the validation TSV when its count is the one that matches).
Every language of a row shares its pair_id, `cc3m/<split>/<row>`.
"""

from __future__ import annotations

import json
import os
import random
import tarfile
from pathlib import Path

from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import DatasetSpec, PrepareConfig, Report, check_aligned, existing, read_lines, select_languages
from mlclip_cli.errors import DatasetError
from mlclip_cli.images import TAR_SEPARATOR
from mlclip_cli.text import normalise_language

TSVS = {"train": "Train_GCC-training.tsv", "val": "Validation_GCC-1.1.0-Validation.tsv"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
CC300K_SIZE = 300_000

Download = tuple[str, str]  # (img2dataset key, image path)


# ---------------------------------------------------------------- the TSVs


def read_tsv(path: Path, report: Report) -> list[tuple[str, str] | None]:
    """(caption, url) per line; None for a line that is not `caption<TAB>url` (warned once)."""
    rows: list[tuple[str, str] | None] = []
    bad = 0
    for line in read_lines(path):
        caption, tab, url = line.rpartition("\t")
        url = url.strip()
        if not tab or not url:
            rows.append(None)
            bad += 1
            continue
        rows.append((caption, url))
    if bad:
        report.warnings.append(f"{path.name}: {bad} lines are not caption<TAB>url; skipped")
    return rows


# ---------------------------------------------------------------- the img2dataset output


def _usable(meta: dict) -> bool:
    status = meta.get("status")
    return isinstance(meta.get("url"), str) and (status is None or status == "success")


def index_downloads(folder: Path, report: Report) -> dict[str, list[Download]]:
    """url -> downloads of it (key order), from file shards and webdataset tars under `folder`."""
    found: dict[str, list[tuple[str, str]]] = {}
    unreadable = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        names = set(filenames)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith(".tar"):
                unreadable += _index_tar(path, found)
            elif name.endswith(".json") and not name.endswith("_stats.json"):
                stem = name[: -len(".json")]
                image = next((stem + ext for ext in IMAGE_EXTENSIONS if stem + ext in names), None)
                if image is None:
                    continue
                try:
                    meta = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                    unreadable += 1
                    continue
                if isinstance(meta, dict) and _usable(meta):
                    key = str(meta.get("key") or stem)
                    found.setdefault(meta["url"].strip(), []).append((key, str((Path(dirpath) / image).resolve())))
    if unreadable:
        report.warnings.append(f"{folder}: {unreadable} img2dataset .json/.tar files could not be read; their images are ignored")
    return {url: sorted(downloads) for url, downloads in found.items()}


def _index_tar(path: Path, found: dict[str, list[Download]]) -> int:
    """Add one webdataset shard's samples to `found`; return 1 when the tar cannot be read."""
    tar_path = str(path.resolve())
    try:
        with tarfile.open(path) as tar:
            members = {member.name: member for member in tar.getmembers() if member.isfile()}
            for name, member in members.items():
                if not name.endswith(".json"):
                    continue
                stem = name[: -len(".json")]
                image = next((stem + ext for ext in IMAGE_EXTENSIONS if stem + ext in members), None)
                if image is None:
                    continue
                handle = tar.extractfile(member)
                try:
                    meta = json.loads(handle.read().decode("utf-8")) if handle else None
                except (UnicodeDecodeError, json.JSONDecodeError):
                    meta = None
                if isinstance(meta, dict) and _usable(meta):
                    key = str(meta.get("key") or Path(stem).name)
                    found.setdefault(meta["url"].strip(), []).append((key, f"{tar_path}{TAR_SEPARATOR}{image}"))
    except (tarfile.TarError, OSError):
        return 1
    return 0


def match_downloads(tsvs: dict[str, list], downloads: dict[str, list[Download]]) -> dict[tuple[str, int], Download]:
    """(split, row) -> its download. Rows sharing a URL take its downloads in turn, then share the last."""
    taken: dict[str, int] = {}
    matched: dict[tuple[str, int], Download] = {}
    for split, rows in tsvs.items():
        for index, entry in enumerate(rows):
            if entry is None or entry[1] not in downloads:
                continue
            options = downloads[entry[1]]
            turn = taken.get(entry[1], 0)
            matched[(split, index)] = options[min(turn, len(options) - 1)]
            taken[entry[1]] = turn + 1
    return matched


# ---------------------------------------------------------------- translations


def _resolve(root: Path, path: Path) -> Path:
    path = Path(path)
    if not path.is_absolute() and not path.exists() and (root / path).exists():
        return root / path
    return path


def _is_keyed(lines: list[str]) -> bool:
    if not lines:
        return False
    for line in lines:
        key, tab, _ = line.partition("\t")
        if not tab or not key.strip().isdigit():
            return False
    return True


def read_translation(
    path: Path,
    lang: str,
    tsvs: dict[str, list],
    matched: dict[tuple[str, int], Download],
    report: Report,
) -> dict[tuple[str, int], tuple[str, str]]:
    """(split, row) -> (raw caption, where) for one language's file, in either format."""
    path = existing(path)
    lines = read_lines(path)
    out: dict[tuple[str, int], tuple[str, str]] = {}
    if _is_keyed(lines):
        rows_of_key: dict[int, list[tuple[str, int]]] = {}
        for place, (key, _) in matched.items():
            if key.isdigit():  # img2dataset keys are zero-padded digits; match them by value
                rows_of_key.setdefault(int(key), []).append(place)
        unknown = 0
        for number, line in enumerate(lines, start=1):
            key, _, caption = line.partition("\t")
            places = rows_of_key.get(int(key.strip()))
            if not places:
                unknown += 1
                continue
            for place in places:
                out[place] = (caption, f"{path.name}:{number}")
        if unknown:
            report.warnings.append(f"{lang} translations {path.name}: {unknown} keys name no downloaded image; ignored")
        return out

    counts = {split: len(rows) for split, rows in tsvs.items()}
    split = next((s for s in ("train", "val") if counts.get(s) == len(lines)), None)
    if split is None:
        primary = "train" if "train" in tsvs else "val"
        check_aligned({TSVS[primary]: tsvs[primary], f"{lang} translations {path.name}": lines}, "cc3m translations")
    for index, caption in enumerate(lines):
        out[(split, index)] = (caption, f"{path.name}:{index + 1}")
    return out


# ---------------------------------------------------------------- the loaders


def _load(name: str, config: PrepareConfig, report: Report) -> list[dict]:
    root = Path(config.root)
    translations = {normalise_language(lang): path for lang, path in (config.translations or {}).items()}
    if "en" in translations:
        raise DatasetError(f"{name}: English is the TSV's own caption; translations must be other languages")
    languages = select_languages(["en", *translations], config.languages, name)

    splits = ["train"] if name == "cc300k" else ["train", "val"]
    present = [s for s in splits if (root / TSVS[s]).is_file() or (root / (TSVS[s] + ".gz")).is_file()]
    if not present:
        raise DatasetError(f"{root} does not look like {name}: missing {' and '.join(TSVS[s] for s in splits)}")
    tsvs = {split: read_tsv(root / TSVS[split], report) for split in present}

    if config.images is None:
        if name == "cc300k":
            raise DatasetError("cc300k samples the rows whose image downloaded: pass --images <img2dataset output folder>")
        matched: dict[tuple[str, int], Download] = {}
    else:
        report.images_checked = True
        matched = match_downloads(tsvs, index_downloads(Path(config.images), report))

    translated = {
        lang: read_translation(_resolve(root, translations[lang]), lang, tsvs, matched, report)
        for lang in languages
        if lang != "en"
    }

    if name == "cc300k":
        size = CC300K_SIZE if config.size is None else config.size
        if size <= 0:
            raise DatasetError(f"cc300k: sample size must be positive (got {size})")
        candidates = sorted(index for (split, index) in matched if split == "train" and tsvs["train"][index] is not None)
        if len(candidates) <= size:
            if len(candidates) < size:
                report.warnings.append(
                    f"cc300k: only {len(candidates)} training rows have a downloaded image; all are used (asked for {size})"
                )
            chosen = {"train": candidates}
        else:
            chosen = {"train": sorted(random.Random(config.seed).sample(candidates, size))}
    else:
        chosen = {split: range(len(rows)) for split, rows in tsvs.items()}

    rows: list[dict] = []
    for split, indices in chosen.items():
        tsv = tsvs[split]
        for index in indices:
            entry = tsv[index]
            if entry is None:
                continue
            download = matched.get((split, index))
            if download is None and config.images is not None:
                report.missing_images.append(entry[1])
            base = {
                "image_id": download[0] if download else f"row{index:07d}",
                "image_path": download[1] if download else None,
                "split": split,
                "source": name,
                "pair_id": f"cc3m/{split}/{index:07d}",
            }
            for lang in languages:
                if lang == "en":
                    raw, where = entry[0], f"{TSVS[split]}:{index + 1}"
                elif (split, index) in translated[lang]:
                    raw, where = translated[lang][(split, index)]
                else:
                    continue
                row = {"sample_id": f"{name}/{split}/{index:07d}/{lang}", **base, "language": lang}
                report.add_caption(rows, row, raw, where)
    return rows


def load_cc3m(config: PrepareConfig, report: Report) -> list[dict]:
    return _load("cc3m", config, report)


def load_cc300k(config: PrepareConfig, report: Report) -> list[dict]:
    return _load("cc300k", config, report)


register(
    DatasetSpec(
        name="cc3m",
        summary="Conceptual Captions 3M (train/val TSVs + img2dataset images, optional translations)",
        load=load_cc3m,
        default_images="images",
    )
)
register(
    DatasetSpec(
        name="cc300k",
        summary="CC300K: seeded sample of CC3M training rows whose image downloaded (--seed, --size)",
        load=load_cc300k,
        default_images="images",
    )
)
