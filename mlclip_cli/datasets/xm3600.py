"""Crossmodal-3600 (XM3600): 3600 Open Images photos, each captioned independently in 36 languages.

File: captions.jsonl, one JSON object per image: `image/key` (16 hex digits, the Open Images id;
the image file is `<key>.jpg`), `image/locale` (where the photo was taken), and for each language
code an object with the lists `caption`, `caption/tokenized` and `caption/tokenized/lowercase`.
Most languages have two captions per image, some more. Captions of different languages are
written from the image, not translated from each other, so pair_id is null. Every caption is
kept (CLIP_benchmark keeps only the first; that gives different retrieval numbers).
"""

from __future__ import annotations

from pathlib import Path

from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import BenchSet, DatasetSpec, ImageFinder, PrepareConfig, Report, read_jsonl, select_languages
from mlclip_cli.errors import DatasetError
from mlclip_cli.text import normalise_language

LANGUAGES = (
    "ar", "bn", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fil", "fr", "he", "hi", "hr", "hu", "id", "it",
    "ja", "ko", "mi", "nl", "no", "pl", "pt", "quz", "ro", "ru", "sv", "sw", "te", "th", "tr", "uk", "vi", "zh",
)


def load(config: PrepareConfig, report: Report) -> list[dict]:
    root = Path(config.root)
    languages = select_languages(LANGUAGES, config.languages, "xm3600")
    images = read_jsonl(root / "captions.jsonl")
    finder = ImageFinder(config.images, report)

    rows: list[dict] = []
    seen: set[str] = set()
    absent: dict[str, int] = {}  # language -> images without it
    for number, image in enumerate(images, start=1):
        key = image.get("image/key") if isinstance(image, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise DatasetError(f"captions.jsonl:{number}: no 'image/key'")
        key = key.strip()
        if key in seen:
            raise DatasetError(f"captions.jsonl:{number}: image {key} listed twice")
        seen.add(key)
        # The file's own codes, normalised ("jp" would become "ja"), so lookups match LANGUAGES.
        entries = {normalise_language(k): v for k, v in image.items() if not k.startswith("image/")}
        image_path = finder.find(f"{key}.jpg")
        for lang in languages:
            entry = entries.get(lang)
            captions = entry.get("caption") if isinstance(entry, dict) else None
            if not captions:
                absent[lang] = absent.get(lang, 0) + 1
                continue
            if isinstance(captions, str):
                captions = [captions]
            for index, raw in enumerate(captions):
                row = {
                    "sample_id": f"xm3600/{key}/{lang}/{index}",
                    "image_id": key,
                    "image_path": image_path,
                    "language": lang,
                    "split": "test",
                    "source": "xm3600",
                    "pair_id": None,
                }
                report.add_caption(rows, row, raw if isinstance(raw, str) else "", f"captions.jsonl:{number} {lang}[{index}]")
    for lang, count in absent.items():
        report.warnings.append(f"xm3600: {count} of {len(images)} images have no {lang} caption")
    return rows


register(DatasetSpec(name="xm3600", summary="Crossmodal-3600: 3600 images x 36 languages, several captions each (test)",
                     load=load, default_images="images",
                     bench=BenchSet("xm3600", "Crossmodal-3600: 3600 images x 36 languages, every caption kept")))
