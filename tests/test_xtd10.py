"""XTD10 loader: a fixture in the real layout (with its real quirks) and the real copy in ../shared."""

import json
from pathlib import Path

import pytest
from PIL import Image

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.datasets.base import PrepareConfig
from mlclip_cli.datasets.prepare import prepare_dataset
from mlclip_cli.datasets.xtd10 import FILES
from mlclip_cli.errors import DatasetError

from conftest import SHARED_XTD10

NAMES = ["COCO_train2014_000000000009.jpg", "COCO_val2014_000000000042.jpg", "COCO_train2014_000000000077.jpg"]


def write_xtd10(root: Path, n: int = 3, overrides: dict | None = None) -> Path:
    """Write XTD10's layout: CRLF without final newline for some files, LF for others."""
    (root / "XTD10").mkdir(parents=True)
    (root / "MIC").mkdir()
    (root / "STAIR").mkdir()
    (root / "XTD10" / "test_image_names.txt").write_text("\n".join(NAMES[:n]) + "\n")
    for lang, (folder, code) in FILES.items():
        lines = [f"caption {i} in {lang}" for i in range(n)]
        lines = (overrides or {}).get(lang, lines)
        if folder == "XTD10" and lang != "en":  # the real CRLF files, no final newline
            data = "\r\n".join(lines)
        else:
            data = "\n".join(lines) + "\n"
        (root / folder / f"test_1kcaptions_{code}.txt").write_bytes(data.encode("utf-8"))
    return root


def test_fixture_with_quirks(tmp_path):
    root = write_xtd10(tmp_path / "xtd", overrides={
        "de": ["Ein Hund", "Could not translate", "?"],
        "fr": ["Un\u200b chat ", "  deux  chats", "trois chats"],
    })
    images = tmp_path / "coco"
    (images / "train2014").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(images / "train2014" / NAMES[0])
    Image.new("RGB", (4, 4)).save(images / NAMES[1])  # flat folders work too

    result = prepare_dataset("xtd10", PrepareConfig(root=root, images=images), tmp_path / "m.parquet")
    table = read_manifest(result.manifest).to_pandas()

    assert sorted(table.language.unique()) == sorted(FILES)  # jp became ja
    assert (table.language == "de").sum() == 1
    assert table[table.language == "fr"].caption.tolist() == ["Un chat", "deux chats", "trois chats"]
    assert table[table.language == "ko"].caption.tolist()[-1] == "caption 2 in ko"  # no final newline kept
    masked = result.summary["masked_captions"]
    assert masked["count"] == 2 and masked["by_reason"] == {"placeholder": 2}
    assert {item["where"] for item in masked["items"]} == {"MIC/test_1kcaptions_de.txt:2", "MIC/test_1kcaptions_de.txt:3"}
    assert result.summary["missing_images"]["count"] == 1
    assert table[table.image_id == "COCO_train2014_000000000077"].image_path.isna().all()
    en = table[table.language == "en"].set_index("image_id")
    assert en.loc["COCO_train2014_000000000009", "image_path"].endswith("train2014/" + NAMES[0])
    # parallel captions share a pair id across languages
    assert set(table[table.pair_id == "xtd10/0000"].language) == set(FILES) - {"de"} | {"de"}
    summary = json.loads(result.summary_path.read_text())
    assert summary["rows_per_language_split"]["ja"] == {"test": 3}


def test_drop_missing_images(tmp_path):
    root = write_xtd10(tmp_path / "xtd")
    images = tmp_path / "coco"
    images.mkdir()
    Image.new("RGB", (4, 4)).save(images / NAMES[1])
    config = PrepareConfig(root=root, images=images, drop_missing_images=True, languages=("en", "jp"))
    result = prepare_dataset("xtd10", config, tmp_path / "m.parquet")
    table = read_manifest(result.manifest)
    assert table.num_rows == 2 and set(table.column("language").to_pylist()) == {"en", "ja"}


def test_misaligned_line_counts(tmp_path):
    root = write_xtd10(tmp_path / "xtd", overrides={"ru": ["one", "two"]})
    with pytest.raises(DatasetError, match="line counts differ"):
        prepare_dataset("xtd10", PrepareConfig(root=root), tmp_path / "m.parquet")
    assert not (tmp_path / "m.parquet").exists()


def test_wrong_layout_and_unknown_language(tmp_path):
    root = write_xtd10(tmp_path / "xtd")
    (root / "STAIR" / "test_1kcaptions_jp.txt").unlink()
    with pytest.raises(DatasetError, match="missing STAIR/test_1kcaptions_jp.txt"):
        prepare_dataset("xtd10", PrepareConfig(root=root), tmp_path / "m.parquet")
    root = write_xtd10(tmp_path / "xtd2")
    with pytest.raises(DatasetError, match="no language xx"):
        prepare_dataset("xtd10", PrepareConfig(root=root, languages=("xx",)), tmp_path / "m.parquet")


def test_line_count_differing_from_upstream_is_a_warning(tmp_path):
    root = write_xtd10(tmp_path / "xtd")
    result = prepare_dataset("xtd10", PrepareConfig(root=root), tmp_path / "m.parquet")
    assert any("3 lines, upstream has 1000" in w for w in result.summary["warnings"])


@pytest.mark.skipif(not SHARED_XTD10.is_dir(), reason="real XTD10 copy not present at ../shared/data/xtd10")
def test_real_xtd10(tmp_path):
    result = prepare_dataset("xtd10", PrepareConfig(root=SHARED_XTD10), tmp_path / "xtd10.parquet")
    table = read_manifest(result.manifest).to_pandas()
    counts = table.language.value_counts().to_dict()
    masked = result.summary["masked_captions"]
    masked_per_language = {}
    for item in masked["items"]:
        masked_per_language[item["language"]] = masked_per_language.get(item["language"], 0) + 1
    assert set(counts) == {"en", "de", "fr", "es", "it", "ru", "pl", "tr", "ko", "zh", "ja"}
    for language, n in counts.items():
        assert n + masked_per_language.get(language, 0) == 1000
    # MIC's placeholders: "Could not translate" and bare "?" lines in de, one in fr
    assert masked_per_language == {"de": 5, "fr": 1}
    assert all(item["reason"] == "placeholder" for item in masked["items"])
    assert not table.caption.str.contains("\u200b").any()
    assert not table.caption.str.contains("Could not translate").any()
    assert result.summary["warnings"] == []
