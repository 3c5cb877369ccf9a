"""XTD10: 1000 COCO 2014 images, one caption each in 11 languages (line i = image i).

Files: XTD10/test_image_names.txt and XTD10/test_1kcaptions_<lang>.txt, except German and
French (MIC/) and Japanese (STAIR/, code "jp"). Images live in a COCO 2014 folder.
"""

from __future__ import annotations

from pathlib import Path

from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import BenchSet, DatasetSpec, ImageFinder, PrepareConfig, Report, check_aligned, read_lines, select_languages
from mlclip_cli.xtd10_layout import FILES, caption_file

def load(config: PrepareConfig, report: Report) -> list[dict]:
    root = Path(config.root)
    languages = select_languages(FILES, config.languages, "xtd10")
    names = [name.strip() for name in read_lines(root / "XTD10" / "test_image_names.txt")]
    captions = {lang: read_lines(caption_file(root, lang)) for lang in languages}
    check_aligned({"test_image_names.txt": names} | {f"{lang} captions": c for lang, c in captions.items()}, "xtd10")

    finder = ImageFinder(config.images, report)
    image_paths = []
    for name in names:
        # COCO 2014 mirrors keep train2014/ and val2014/ apart; XTD10 draws from both.
        subfolder = "train2014" if "_train2014_" in name else "val2014"
        image_paths.append(finder.find(name, f"{subfolder}/{name}"))

    rows: list[dict] = []
    for lang in languages:
        for index, (name, raw) in enumerate(zip(names, captions[lang])):
            row = {
                "sample_id": f"xtd10/{index:04d}/{lang}",
                "image_id": Path(name).stem,
                "image_path": image_paths[index],
                "language": lang,
                "split": "test",
                "source": "xtd10",
                "pair_id": f"xtd10/{index:04d}",
            }
            report.add_caption(rows, row, raw, f"{caption_file(root, lang).relative_to(root)}:{index + 1}")
    return rows


register(DatasetSpec(name="xtd10", summary="XTD10: 1000 COCO images x 11 languages (test)", load=load, default_images="images",
                     bench=BenchSet("xtd", "XTD10 (or the world's XTD10-layout test): 1000 images x 11 languages")))
