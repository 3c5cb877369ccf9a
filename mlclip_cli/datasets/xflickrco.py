"""xFlickr&CO (IGLUE): 2000 images (1000 Flickr30K, 1000 COCO), one caption each in 8 languages.

Files (github.com/e-bug/iglue, datasets/xFlickrCO/): annotations/<lang>/test.jsonl for de en es id
ja ru tr zh, one object per line `{"sentences": [caption], "id": ..., "img_path": "<file>"}`;
`id` is a string for Flickr30K rows and an integer for COCO rows (both become strings here).
Row i of every language is the same image, but the captions are independent descriptions, not
translations, so pair_id is null. A few captions are empty (masked). Only English is required:
another language's file that is absent is skipped with a warning, unless it was asked for.
"""

from __future__ import annotations

from pathlib import Path

from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import BenchSet, DatasetSpec, ImageFinder, PrepareConfig, Report, read_jsonl, select_languages
from mlclip_cli.errors import DatasetError

LANGUAGES = ("en", "de", "es", "id", "ja", "ru", "tr", "zh")


def annotation_file(root: Path, language: str) -> Path:
    return root / "annotations" / language / "test.jsonl"


def _present(path: Path) -> bool:
    return path.is_file() or path.with_name(path.name + ".gz").is_file()


def load(config: PrepareConfig, report: Report) -> list[dict]:
    root = Path(config.root)
    languages = select_languages(LANGUAGES, config.languages, "xflickrco")
    records: dict[str, list[dict]] = {}
    for lang in languages:
        path = annotation_file(root, lang)
        if config.languages is None and lang != "en" and not _present(path):
            report.warnings.append(f"xflickrco: no annotations/{lang}/test.jsonl; {lang} skipped")
            continue
        records[lang] = read_jsonl(path)  # a language asked for by name must exist

    counts = {lang: len(rows) for lang, rows in records.items()}
    if len(set(counts.values())) > 1:
        detail = ", ".join(f"{lang}: {n}" for lang, n in counts.items())
        raise DatasetError(f"xflickrco: row counts differ across languages ({detail}); row i of each must be one image")

    # Upstream lists the same images in the same order in every language; each row still takes
    # its image from its own record, so a difference is only worth a warning.
    reference_lang = next(iter(records))
    reference = [_image_id(record, reference_lang, index) for index, record in enumerate(records[reference_lang])]
    for lang, lang_records in records.items():
        differ = sum(_image_id(r, lang, i) != reference[i] for i, r in enumerate(lang_records))
        if differ:
            report.warnings.append(f"xflickrco: {differ} rows of {lang} name another image than row i of {reference_lang}")

    finder = ImageFinder(config.images, report)
    found: dict[str, str | None] = {}

    def image_path(record: dict) -> str | None:
        name = str(record.get("img_path") or "").strip()
        if not name:
            return None
        if name not in found:
            found[name] = finder.find(name, f"flickr30k-images/{name}", f"val2014/{name}")
        return found[name]

    rows: list[dict] = []
    for lang, lang_records in records.items():
        for index, record in enumerate(lang_records):
            sentences = record.get("sentences")
            if isinstance(sentences, str):
                sentences = [sentences]
            if not sentences:
                sentences = [""]  # recorded as an empty (masked) caption
            for j, raw in enumerate(sentences):
                suffix = "" if j == 0 else f"/{j}"
                row = {
                    "sample_id": f"xflickrco/{index:04d}/{lang}{suffix}",
                    "image_id": _image_id(record, lang, index),
                    "image_path": image_path(record),
                    "language": lang,
                    "split": "test",
                    "source": "xflickrco",
                    "pair_id": None,
                }
                report.add_caption(rows, row, raw if isinstance(raw, str) else "", f"annotations/{lang}/test.jsonl:{index + 1}")
    return rows


def _image_id(record: dict, lang: str, index: int) -> str:
    value = record.get("id") if isinstance(record, dict) else None
    if value is None or str(value).strip() == "":
        raise DatasetError(f"xflickrco: annotations/{lang}/test.jsonl row {index + 1} has no 'id'")
    return str(value).strip()


register(DatasetSpec(name="xflickrco", summary="xFlickr&CO (IGLUE): 2000 Flickr30K/COCO images x 8 languages (test)",
                     load=load, default_images="images",
                     bench=BenchSet("xflickrco", "xFlickr&CO (IGLUE): 2000 images x 8 languages")))
