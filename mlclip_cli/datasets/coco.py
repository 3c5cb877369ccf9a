"""MSCOCO with Karpathy's split: 123,287 COCO 2014 images with their English captions.

File: dataset_coco.json = {"images": [{"filepath": "val2014", "filename": "COCO_val2014_...jpg",
"split": "train" | "restval" | "val" | "test", "cocoid": int, "sentences": [{"raw": ..., "tokens":
[...]}, ...]}, ...]}. Splits: train 82,783, restval 30,504 (taken from val2014, usually trained on),
val 5000, test 5000; most images have five captions, a few more.

Subsets (config.subset): all (default) keeps every split; test5k the 5000 test images; test1k the
first 1000 test images in file order (the "1K test" of retrieval papers, fold 0).
"""

from __future__ import annotations

from pathlib import Path

from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import BenchSet, DatasetSpec, ImageFinder, PrepareConfig, Report, read_json, select_languages
from mlclip_cli.errors import DatasetError

SUBSETS = {"all": None, "test5k": 5000, "test1k": 1000}  # subset -> number of test images (None: everything)


def load(config: PrepareConfig, report: Report) -> list[dict]:
    root = Path(config.root)
    select_languages(("en",), config.languages, "coco")
    subset = (config.subset or "all").strip().lower()
    if subset not in SUBSETS:
        raise DatasetError(f"coco has no subset '{config.subset}' (choose from {', '.join(SUBSETS)})")

    data = read_json(root / "dataset_coco.json")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise DatasetError(f"{root / 'dataset_coco.json'}: no 'images' list (expected Karpathy's dataset_coco.json)")

    wanted = SUBSETS[subset]
    if wanted is not None:
        test = [image for image in images if image.get("split") == "test"]
        if len(test) < wanted:
            report.warnings.append(f"coco {subset}: only {len(test)} test images, fewer than {wanted} (upstream has 5000)")
        images = test[:wanted]

    finder = ImageFinder(config.images, report)
    rows: list[dict] = []
    seen: set[str] = set()
    for number, image in enumerate(images):
        try:
            cocoid = str(image["cocoid"])
            filename = image["filename"]
            split = image["split"]
        except (KeyError, TypeError):
            raise DatasetError(f"dataset_coco.json: image {number} lacks cocoid, filename or split") from None
        if cocoid in seen:
            raise DatasetError(f"dataset_coco.json: cocoid {cocoid} listed twice")
        seen.add(cocoid)
        filepath = image.get("filepath") or ""
        candidates = (f"{filepath}/{filename}", filename) if filepath else (filename,)
        image_path = finder.find(*candidates)
        for index, sentence in enumerate(image.get("sentences") or []):
            raw = sentence.get("raw") if isinstance(sentence, dict) else None
            row = {
                "sample_id": f"coco/{cocoid}/{index}",
                "image_id": cocoid,
                "image_path": image_path,
                "language": "en",
                "split": split,
                "source": "coco",
                "pair_id": None,
            }
            report.add_caption(rows, row, raw if isinstance(raw, str) else "", f"dataset_coco.json: cocoid {cocoid} sentence {index}")
    return rows


def first_test_images(rows, subset: str | None):
    """The rows `bench coco --subset` scores: every test image (5k) or the papers' 1K test, the
    first 1000 test images in file order."""
    if subset in (None, "5k"):
        return rows
    if subset == "1k":
        keep = set(list(dict.fromkeys(rows.image_id))[:1000])
        return rows[rows.image_id.isin(keep)]
    raise DatasetError(f"coco subset must be 1k or 5k, not '{subset}'")


register(
    DatasetSpec(
        name="coco",
        summary="MSCOCO Karpathy split, English (--subset all | test5k | test1k)",
        bench=BenchSet("coco", "MSCOCO Karpathy test, 5K or 1K (--subset)", select=first_test_images, subsets=("5k", "1k")),
        load=load,
        default_images="images",
    )
)
