"""Multi30K task 1: Flickr30K images, one English caption each with its German, French and Czech
translations (line i of every language file translates the same English line).

Files (as in github.com/multi30k/dataset, data/task1/): raw/<split>.<lang> for the splits train
(29000 lines), val (1014) and test_2016_flickr (1000, called "test" here) and the languages
en de fr cs, UTF-8 with LF; upstream ships them gzipped (raw/<split>.<lang>.gz), and both forms
are read. image_splits/<split>.txt names the Flickr30K image of each line (`<digits>.jpg`).
Only English is required; a language file absent for a split is skipped with a warning.
A few lines hold a tab or U+200B inside a sentence; clean_caption removes them.
"""

from __future__ import annotations

from pathlib import Path

from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import (
    DatasetSpec,
    ImageFinder,
    PrepareConfig,
    Report,
    check_aligned,
    read_lines,
    select_languages,
)
from mlclip_cli.errors import DatasetError

LANGUAGES = ("en", "de", "fr", "cs")
# split name in the manifest -> file stem upstream
SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}


def caption_file(root: Path, stem: str, language: str) -> Path:
    return root / "raw" / f"{stem}.{language}"


def _present(path: Path) -> bool:
    return path.is_file() or path.with_name(path.name + ".gz").is_file()


def load(config: PrepareConfig, report: Report) -> list[dict]:
    root = Path(config.root)
    languages = select_languages(LANGUAGES, config.languages, "multi30k")
    finder = ImageFinder(config.images, report)

    rows: list[dict] = []
    for split, stem in SPLITS.items():
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


register(
    DatasetSpec(
        name="multi30k",
        summary="Multi30K task 1: Flickr30K, en captions with de/fr/cs translations (train/val/test)",
        load=load,
        default_images="images",
    )
)
