"""Multi30K task 1: Flickr30K images, one English caption each with its German, French and Czech
translations (line i of every language file translates the same English line).

Files (as in github.com/multi30k/dataset, data/task1/): raw/<split>.<lang> for the splits train
(29000 lines), val (1014) and test_2016_flickr (1000, called "test" here) and the languages
en de fr cs, UTF-8 with LF; upstream ships them gzipped (raw/<split>.<lang>.gz), and both forms
are read. image_splits/<split>.txt names the Flickr30K image of each line (`<digits>.jpg`).
Only English is required; a language file absent for a split is skipped with a warning.
A few lines hold a tab or U+200B inside a sentence; clean_caption removes them.

A root may hold only some splits (a copy with train and val only, say). A split is complete when
its image list and its English file are present; every complete split is prepared (or those that
config.splits names), and the summary's `splits` lists the absent ones with the files they lack.
A split with only some of its files counts as absent, with a warning. Only a root with no complete
split, or a config.splits naming an unknown or absent split, is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import (
    BenchSet,
    DatasetSpec,
    ImageFinder,
    PrepareConfig,
    Report,
    check_aligned,
    read_lines,
    select_languages,
)
from mlclip_cli.datasets.layout import LayoutCheck, load_description
from mlclip_cli.errors import DatasetError

LANGUAGES = ("en", "de", "fr", "cs")
# split name in the manifest -> file stem upstream
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}


def caption_file(root: Path, stem: str, language: str) -> Path:
    return root / "raw" / f"{stem}.{language}"


def _present(path: Path) -> bool:
    return path.is_file() or path.with_name(path.name + ".gz").is_file()


def split_files(stem: str) -> list[str]:
    """Every file a split may have, relative to the root (without .gz)."""
    return [f"image_splits/{stem}.txt", *(f"raw/{stem}.{lang}" for lang in LANGUAGES)]


def needed_files(stem: str) -> list[str]:
    """The files a split cannot do without: its image list and its English captions."""
    return [f"image_splits/{stem}.txt", f"raw/{stem}.en"]


@dataclass
class SplitChoice:
    chosen: list[str]  # splits to prepare, in SPLITS order
    complete: list[str]  # every complete split under the root
    absent: dict[str, dict[str, list[str]]]  # split -> {"missing": [file], "present": [file]}

    def record(self) -> dict:
        """The summary's `splits`."""
        return {
            "prepared": self.chosen,
            "not_chosen": [split for split in self.complete if split not in self.chosen],
            "absent": self.absent,
        }


def describe_absent(files: dict[str, list[str]]) -> str:
    text = f"missing {', '.join(files['missing'])}"
    return text + (f"; has {', '.join(files['present'])}" if files["present"] else "")


def choose_splits(root: Path, wanted: tuple[str, ...] | None) -> SplitChoice:
    """Which splits are complete under `root`, and which of them to prepare."""
    absent = {}
    for split, stem in SPLITS.items():
        missing = [rel for rel in needed_files(stem) if not _present(root / rel)]
        if missing:
            absent[split] = {"missing": missing, "present": [rel for rel in split_files(stem) if _present(root / rel)]}
    complete = [split for split in SPLITS if split not in absent]
    if not complete:
        detail = "; ".join(f"{split}: {describe_absent(files)}" for split, files in absent.items())
        raise DatasetError(
            f"{root} does not look like multi30k: no complete split, each needs image_splits/<split>.txt and "
            f"raw/<split>.en ({detail}; expected layout: data_manifests/multi30k.json)"
        )
    if wanted is None:
        return SplitChoice(chosen=complete, complete=complete, absent=absent)

    if not wanted:
        raise DatasetError(f"no multi30k split named (present under {root}: {', '.join(complete)})")
    aliases = {stem: split for split, stem in SPLITS.items()}  # test_2016_flickr names test too
    names = []
    for raw in wanted:
        name = aliases.get(raw.strip().lower(), raw.strip().lower())
        if name not in SPLITS:
            raise DatasetError(
                f"multi30k has no split '{raw}' (it has {', '.join(SPLITS)}; present under {root}: {', '.join(complete)})"
            )
        if name in absent:
            raise DatasetError(
                f"multi30k split {name} is absent under {root} ({describe_absent(absent[name])}); "
                f"present: {', '.join(complete)}"
            )
        names.append(name)
    return SplitChoice(chosen=[split for split in SPLITS if split in names], complete=complete, absent=absent)


def check_layout(config: PrepareConfig) -> LayoutCheck:
    """check_root for the chosen splits only: a root holding some splits is fine."""
    root = Path(config.root)
    if not root.exists():
        raise DatasetError(f"data root {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"data root {root} is not a folder")
    choice = choose_splits(root, config.splits)
    wanted = {rel for split in choice.chosen for rel in split_files(SPLITS[split])}
    warnings: list[str] = []
    files: dict[str, int | None] = {}
    for entry in load_description("multi30k").get("files", []):
        rel = entry["path"]
        if rel not in wanted or not _present(root / rel):
            continue
        count = len(read_lines(root / rel))
        files[rel] = count
        if entry.get("lines") is not None and count != entry["lines"]:
            warnings.append(f"{rel}: {count} lines, upstream has {entry['lines']}")
    return LayoutCheck(warnings=warnings, files=files)


def load(config: PrepareConfig, report: Report) -> list[dict]:
    root = Path(config.root)
    languages = select_languages(LANGUAGES, config.languages, "multi30k")
    finder = ImageFinder(config.images, report)
    choice = choose_splits(root, config.splits)
    report.splits = choice.record()
    for split, files in choice.absent.items():
        if files["present"]:  # some of its files are here: likely a copy cut short
            report.warnings.append(f"multi30k {split} is incomplete, not prepared ({describe_absent(files)})")

    rows: list[dict] = []
    for split in choice.chosen:
        stem = SPLITS[split]
        names = [name.strip() for name in read_lines(root / "image_splits" / f"{stem}.txt")]
        captions: dict[str, list[str]] = {}
        for lang in languages:
            path = caption_file(root, stem, lang)
            if not _present(path):
                if lang == "en":
                    raise DatasetError(f"missing file {path}")
                report.warnings.append(f"multi30k {split}: no {lang} file (raw/{stem}.{lang}); skipped")
                continue
            captions[lang] = read_lines(path)
        check_aligned(
            {f"image_splits/{stem}.txt": names} | {f"raw/{stem}.{lang}": lines for lang, lines in captions.items()},
            f"multi30k {split}",
        )
        image_paths = [finder.find(name, f"flickr30k-images/{name}") for name in names]
        for lang, lines in captions.items():
            where_file = f"raw/{stem}.{lang}"
            for index, (name, raw) in enumerate(zip(names, lines)):
                row = {
                    "sample_id": f"multi30k/{split}/{index:05d}/{lang}",
                    "image_id": Path(name).stem,
                    "image_path": image_paths[index],
                    "language": lang,
                    "split": split,
                    "source": "multi30k",
                    "pair_id": f"multi30k/{split}/{index:05d}",
                }
                report.add_caption(rows, row, raw, f"{where_file}:{index + 1}")
    return rows


register(DatasetSpec(name="multi30k", summary="Multi30K task 1: Flickr30K, en captions with de/fr/cs translations (train/val/test)",
                     load=load, default_images="images", splits=tuple(SPLITS), check_layout=check_layout,
                     bench=BenchSet("multi30k", "Multi30K test_2016_flickr: 1000 images, en de fr cs")))
