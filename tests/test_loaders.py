"""Loaders for Multi30K, XM3600, COCO (Karpathy), xFlickr&CO, CC3M and CC300K.

Each fixture is written in the data set's real layout with the quirks real copies have (gzip,
CRLF, no final newline, placeholders, zero-width spaces, empty captions, absent images, img2dataset
file shards and webdataset tars), then run through prepare_dataset like `mlclip prepare` does.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.datasets import dataset_names
from mlclip_cli.datasets.base import PrepareConfig
from mlclip_cli.datasets.layout import load_description
from mlclip_cli.datasets.prepare import prepare_dataset
from mlclip_cli.errors import DatasetError

NEW = ["multi30k", "xm3600", "coco", "xflickrco", "cc3m", "cc300k"]


def write(path: Path, lines: list[str], crlf: bool = False, final_newline: bool = True, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sep = "\r\n" if crlf else "\n"
    data = (sep.join(lines) + (sep if final_newline and lines else "")).encode("utf-8")
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4)).save(path)
    return path


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="JPEG")
    return buffer.getvalue()


def prepare(name: str, tmp_path: Path, **options):
    result = prepare_dataset(name, PrepareConfig(**options), tmp_path / f"{name}.parquet")
    return result, read_manifest(result.manifest).to_pandas()


def test_registered_with_a_data_manifest():
    names = dataset_names()
    for name in NEW:
        assert name in names
        description = load_description(name)
        assert description["name"] == name
        for key in ("title", "languages", "splits", "files", "images", "quirks", "license", "citation", "homepage", "how_to_get"):
            assert description[key], f"{name}.json: empty {key}"


# ---------------------------------------------------------------- Multi30K

M30K_NAMES = {
    "train": ["1000092795.jpg", "10002456.jpg", "1000268201.jpg"],
    "val": ["1018148011.jpg", "1029450589.jpg"],
    "test_2016_flickr": ["1007129816.jpg", "1009434119.jpg"],
}


def write_multi30k(root: Path, overrides: dict | None = None) -> Path:
    overrides = overrides or {}
    for stem, names in M30K_NAMES.items():
        write(root / "image_splits" / f"{stem}.txt", names)
    # train: en plain with CRLF and no final newline, de gzipped, fr plain, no cs at all
    write(root / "raw" / "train.en", ["Two young guys\twith shaggy hair.", "Several men in hard hats.", "A little girl climbing."], crlf=True, final_newline=False)
    write(root / "raw" / "train.de", overrides.get("train.de", ["Zwei junge Männer.", "Mehrere\u200b Männer mit Schutzhelmen.", "Ein kleines Mädchen klettert."]), gz=True)
    write(root / "raw" / "train.fr", ["Deux jeunes hommes.", "Could not translate", "Une petite fille grimpe."])
    # val: en and de gzipped (as upstream ships them)
    write(root / "raw" / "val.en", ["A group of people.", "A dog runs."], gz=True)
    write(root / "raw" / "val.de", ["Eine Gruppe von Menschen.", "Ein Hund rennt."], gz=True)
    # test_2016_flickr: all four languages; cs has a stray tab and an empty line
    write(root / "raw" / "test_2016_flickr.en", ["A man in an orange hat.", "A Boston terrier is running."], gz=True)
    write(root / "raw" / "test_2016_flickr.de", ["Ein Mann mit einem orangefarbenen Hut.", "Ein Boston Terrier läuft."], gz=True)
    write(root / "raw" / "test_2016_flickr.fr", ["Un homme avec un chapeau orange.", "Un terrier de Boston court."], gz=True)
    write(root / "raw" / "test_2016_flickr.cs", ["Muž v oranžovém\tklobouku.", ""], gz=True)
    return root


def test_multi30k_fixture_with_quirks(tmp_path):
    root = write_multi30k(tmp_path / "task1")
    image(root / "images" / "flickr30k-images" / "1000092795.jpg")  # the usual sub-folder
    image(root / "images" / "1007129816.jpg")  # a flat folder works too

    result, table = prepare("multi30k", tmp_path, root=root)
    counts = result.summary["rows_per_language_split"]
    assert counts["en"] == {"train": 3, "val": 2, "test": 2}
    assert counts["de"] == {"train": 3, "val": 2, "test": 2}
    assert counts["fr"] == {"train": 2, "test": 2}  # one placeholder masked, no val file
    assert counts["cs"] == {"test": 1}  # empty line masked, only the test file
    assert any("no cs file" in w and "train" in w for w in result.summary["warnings"])
    assert any("no fr file" in w and "val" in w for w in result.summary["warnings"])

    by_id = table.set_index("sample_id")
    assert by_id.loc["multi30k/train/00000/en", "caption"] == "Two young guys with shaggy hair."  # tab cleaned
    assert by_id.loc["multi30k/train/00002/en", "caption"] == "A little girl climbing."  # no final newline
    assert by_id.loc["multi30k/train/00001/de", "caption"] == "Mehrere Männer mit Schutzhelmen."  # U+200B
    assert by_id.loc["multi30k/test/00000/cs", "caption"] == "Muž v oranžovém klobouku."
    assert by_id.loc["multi30k/train/00001/de", "image_id"] == "10002456"
    assert by_id.loc["multi30k/train/00001/de", "pair_id"] == "multi30k/train/00001"
    # translations of one caption share the pair_id and image
    pair = table[table.pair_id == "multi30k/test/00000"]
    assert sorted(pair.language) == ["cs", "de", "en", "fr"] and pair.image_id.nunique() == 1

    masked = result.summary["masked_captions"]
    assert masked["by_reason"] == {"placeholder": 1, "empty": 1}
    assert {item["where"] for item in masked["items"]} == {"raw/train.fr:2", "raw/test_2016_flickr.cs:2"}

    assert by_id.loc["multi30k/train/00000/en", "image_path"].endswith("flickr30k-images/1000092795.jpg")
    assert by_id.loc["multi30k/test/00000/de", "image_path"] == str((root / "images" / "1007129816.jpg").resolve())
    missing = result.summary["missing_images"]
    assert missing["checked"] and missing["count"] == 5
    assert table[table.image_id == "1018148011"].image_path.isna().all()

    dropped, kept = prepare("multi30k", tmp_path, root=root, drop_missing_images=True)
    assert set(kept.image_id) == {"1000092795", "1007129816"}
    assert dropped.summary["missing_images"]["policy"] == "dropped"


def test_multi30k_language_choice_and_errors(tmp_path):
    root = write_multi30k(tmp_path / "task1")
    _, table = prepare("multi30k", tmp_path, root=root, languages=("de",))
    assert set(table.language) == {"de"} and len(table) == 7 and table.image_path.isna().all()

    with pytest.raises(DatasetError, match="no language ja"):
        prepare("multi30k", tmp_path, root=root, languages=("ja",))

    bad = write_multi30k(tmp_path / "bad", overrides={"train.de": ["eins", "zwei", "drei", "vier"]})
    with pytest.raises(DatasetError, match="line counts"):
        prepare("multi30k", tmp_path, root=bad)

    for stem in M30K_NAMES:  # no split left complete (partial roots: tests/test_multi30k_splits.py)
        (root / "image_splits" / f"{stem}.txt").unlink()
    with pytest.raises(DatasetError, match="does not look like multi30k: no complete split"):
        prepare("multi30k", tmp_path, root=root)


# ---------------------------------------------------------------- Crossmodal-3600


def xm_entry(captions: list[str]) -> dict:
    return {"caption": captions, "caption/tokenized": captions, "caption/tokenized/lowercase": [c.lower() for c in captions]}


def write_xm3600(root: Path) -> Path:
    images = [
        {"image/key": "000411001ff7dd4f", "image/locale": "ar",
         "en": xm_entry(["A cat on a sofa.", "A grey cat sleeping\u200b on a couch."]),
         "de": xm_entry(["Eine Katze auf einem Sofa.", "Eine graue Katze schläft."]),
         "fil": xm_entry(["Isang pusa sa sopa."]),
         "zh": xm_entry(["沙发上的一只猫。", "", "一只灰猫在睡觉。"])},
        {"image/key": "0039cfb9ee1b9c0b", "image/locale": "bn",
         "en": xm_entry(["A red bus on a street."]),
         "de": xm_entry(["Ein roter Bus auf einer Straße."]),
         "fil": xm_entry(["Isang pulang bus."])},  # no zh for this image
        {"image/key": "00c4c2a5b4b6d1e7", "image/locale": "cs",
         "en": xm_entry(["Mountains under snow."]),
         "de": xm_entry(["Berge unter Schnee."]),
         "fil": xm_entry(["?"]),
         "zh": xm_entry(["雪山。"])},
    ]
    write(root / "captions.jsonl", [json.dumps(obj, ensure_ascii=False) for obj in images], final_newline=False)
    return root


def test_xm3600_keeps_every_caption(tmp_path):
    root = write_xm3600(tmp_path / "xm3600")
    image(root / "images" / "000411001ff7dd4f.jpg")
    image(root / "images" / "00c4c2a5b4b6d1e7.jpg")  # 0039cfb9ee1b9c0b is listed but absent

    result, table = prepare("xm3600", tmp_path, root=root)
    counts = result.summary["rows_per_language_split"]
    assert counts == {"de": {"test": 4}, "en": {"test": 4}, "fil": {"test": 2}, "zh": {"test": 3}}
    assert set(table.split) == {"test"} and table.pair_id.isna().all()
    by_id = table.set_index("sample_id")
    assert by_id.loc["xm3600/000411001ff7dd4f/en/1", "caption"] == "A grey cat sleeping on a couch."
    assert by_id.loc["xm3600/000411001ff7dd4f/zh/2", "caption"] == "一只灰猫在睡觉。"  # index kept past the empty one
    assert "xm3600/000411001ff7dd4f/zh/1" not in by_id.index
    assert result.summary["masked_captions"]["by_reason"] == {"empty": 1, "placeholder": 1}
    assert any("1 of 3 images have no zh" in w for w in result.summary["warnings"])
    assert by_id.loc["xm3600/00c4c2a5b4b6d1e7/de/0", "image_path"] == str((root / "images" / "00c4c2a5b4b6d1e7.jpg").resolve())
    assert result.summary["missing_images"]["examples"] == ["0039cfb9ee1b9c0b.jpg"]
    assert table[table.image_id == "0039cfb9ee1b9c0b"].image_path.isna().all()
    assert result.summary["images_total"] == 3

    _, some = prepare("xm3600", tmp_path, root=root, languages=("de", "fil"), drop_missing_images=True)
    assert set(some.language) == {"de", "fil"} and len(some) == 4 and some.image_path.notna().all()

    with pytest.raises(DatasetError, match="no language xx"):
        prepare("xm3600", tmp_path, root=root, languages=("xx",))
    with pytest.raises(DatasetError, match="does not look like xm3600"):
        prepare("xm3600", tmp_path, root=tmp_path / "xm3600" / "images")


# ---------------------------------------------------------------- COCO (Karpathy)


def coco_image(cocoid: int, split: str, captions: list[str]) -> dict:
    folder = "train2014" if split == "train" else "val2014"
    return {
        "filepath": folder, "filename": f"COCO_{folder}_{cocoid:012d}.jpg", "split": split, "cocoid": cocoid,
        "imgid": cocoid, "sentids": list(range(len(captions))),
        "sentences": [{"raw": c, "tokens": c.lower().split(), "imgid": cocoid, "sentid": i} for i, c in enumerate(captions)],
    }


def write_coco(root: Path, tests: int = 1100) -> Path:
    images = [
        coco_image(9, "train", ["A plate of food.", "Broccoli and rice.\n"]),
        coco_image(42, "restval", ["A dog on a bed. ", ""]),
        coco_image(73, "val", ["A motorcycle parked."]),
    ]
    for index in range(tests):
        images.append(coco_image(100_000 + 7 * index, "test", [f"test caption {index}"]))
        if index == 500:
            images.append(coco_image(74, "val", ["A val image between the tests."]))
    root.mkdir(parents=True)
    (root / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    return root


def test_coco_splits_subsets_and_images(tmp_path):
    root = write_coco(tmp_path / "karpathy")
    images = tmp_path / "coco2014"
    image(images / "train2014" / "COCO_train2014_000000000009.jpg")
    image(images / "COCO_val2014_000000000042.jpg")  # flat folder

    result, table = prepare("coco", tmp_path, root=root, images=images)
    counts = result.summary["rows_per_language_split"]["en"]
    assert counts == {"train": 2, "restval": 1, "val": 2, "test": 1100}
    assert result.summary["masked_captions"]["by_reason"] == {"empty": 1}
    by_id = table.set_index("sample_id")
    assert by_id.loc["coco/9/1", "caption"] == "Broccoli and rice."
    assert by_id.loc["coco/42/0", "caption"] == "A dog on a bed."
    assert by_id.loc["coco/9/0", "image_path"].endswith("train2014/COCO_train2014_000000000009.jpg")
    assert by_id.loc["coco/42/0", "image_path"] == str((images / "COCO_val2014_000000000042.jpg").resolve())
    assert by_id.loc["coco/73/0", "image_id"] == "73" and table.pair_id.isna().all()
    assert result.summary["missing_images"]["count"] == 1102  # 73, 74 and the 1100 test images

    _, test1k = prepare("coco", tmp_path, root=root, subset="test1k")
    assert len(test1k) == 1000 and set(test1k.split) == {"test"}
    assert list(test1k.image_id) == [str(100_000 + 7 * i) for i in range(1000)]  # the first 1000, in file order

    five, test5k = prepare("coco", tmp_path, root=root, subset="test5k")
    assert len(test5k) == 1100 and "74" not in set(test5k.image_id)
    assert any("only 1100 test images" in w for w in five.summary["warnings"])

    _, every = prepare("coco", tmp_path, root=root, subset="all")
    assert len(every) == len(table)

    with pytest.raises(DatasetError, match="no subset 'test10k'"):
        prepare("coco", tmp_path, root=root, subset="test10k")
    with pytest.raises(DatasetError, match="no language de"):
        prepare("coco", tmp_path, root=root, languages=("de",))
    with pytest.raises(DatasetError, match="does not look like coco"):
        prepare("coco", tmp_path, root=images)


# ---------------------------------------------------------------- xFlickr&CO


XF_ROWS = [("1007129816", "1007129816.jpg"), (391895, "COCO_val2014_000000391895.jpg"), ("1009434119", "1009434119.jpg")]
XF_CAPTIONS = {
    "en": ["The man is wearing an orange hat.", "A man riding a red motorbike.", "A dog runs on green grass."],
    "de": ["Der Mann trägt eine orange\u200b Wollmütze.", "", "Ein Hund läuft auf grünem Rasen."],
    "ja": ["オレンジ色の帽子をかぶった男性。", "赤いバイクに乗る男性。", "  芝生の上を走る犬。 "],
}


def write_xflickrco(root: Path, captions: dict | None = None) -> Path:
    for lang, texts in (captions or XF_CAPTIONS).items():
        lines = [
            json.dumps({"sentences": [text], "id": image_id, "img_path": path}, ensure_ascii=False)
            for (image_id, path), text in zip(XF_ROWS, texts)
        ]
        write(root / "annotations" / lang / "test.jsonl", lines, crlf=(lang == "ja"), final_newline=(lang != "ja"))
    return root


def test_xflickrco_fixture(tmp_path):
    root = write_xflickrco(tmp_path / "xFlickrCO")
    images = tmp_path / "img"
    image(images / "flickr30k-images" / "1007129816.jpg")
    image(images / "val2014" / "COCO_val2014_000000391895.jpg")

    result, table = prepare("xflickrco", tmp_path, root=root, images=images)
    counts = result.summary["rows_per_language_split"]
    assert counts == {"de": {"test": 2}, "en": {"test": 3}, "ja": {"test": 3}}
    for lang in ("es", "id", "ru", "tr", "zh"):
        assert any(f"no annotations/{lang}/test.jsonl" in w for w in result.summary["warnings"])
    by_id = table.set_index("sample_id")
    assert by_id.loc["xflickrco/0001/en", "image_id"] == "391895"  # integer COCO id, as text
    assert by_id.loc["xflickrco/0000/de", "caption"] == "Der Mann trägt eine orange Wollmütze."
    assert by_id.loc["xflickrco/0002/ja", "caption"] == "芝生の上を走る犬。"
    assert by_id.loc["xflickrco/0001/ja", "image_path"].endswith("val2014/COCO_val2014_000000391895.jpg")
    assert by_id.loc["xflickrco/0000/en", "image_path"].endswith("flickr30k-images/1007129816.jpg")
    assert table.pair_id.isna().all()
    masked = result.summary["masked_captions"]
    assert masked["by_reason"] == {"empty": 1} and masked["items"][0]["where"] == "annotations/de/test.jsonl:2"
    assert result.summary["missing_images"]["examples"] == ["1009434119.jpg"]

    _, kept = prepare("xflickrco", tmp_path, root=root, images=images, drop_missing_images=True)
    assert "1009434119" not in set(kept.image_id) and len(kept) == 5

    with pytest.raises(DatasetError, match="missing file"):
        prepare("xflickrco", tmp_path, root=root, languages=("es",))  # asked for by name, absent
    with pytest.raises(DatasetError, match="no language ko"):
        prepare("xflickrco", tmp_path, root=root, languages=("ko",))

    short = write_xflickrco(tmp_path / "short", captions={"en": XF_CAPTIONS["en"], "de": XF_CAPTIONS["de"][:2]})
    with pytest.raises(DatasetError, match="row counts differ"):
        prepare("xflickrco", tmp_path, root=short)
    with pytest.raises(DatasetError, match="does not look like xflickrco"):
        prepare("xflickrco", tmp_path, root=images)


# ---------------------------------------------------------------- CC3M and CC300K

TRAIN_TSV = "Train_GCC-training.tsv"
VAL_TSV = "Validation_GCC-1.1.0-Validation.tsv"


def url(split: str, row: int) -> str:
    return f"http://example.com/{split}/{row}.jpg"


def file_sample(folder: Path, key: str, link: str, status: str = "success", caption: str = "c") -> None:
    image(folder / f"{key}.jpg")
    (folder / f"{key}.txt").write_text(caption)
    (folder / f"{key}.json").write_text(json.dumps({"url": link, "key": key, "status": status, "caption": caption}))


def tar_shard(path: Path, samples: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, link in samples:
            for name, data in ((f"{key}.jpg", jpeg_bytes()), (f"{key}.txt", b"c"),
                               (f"{key}.json", json.dumps({"url": link, "key": key, "status": "success"}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def write_cc3m(root: Path) -> Path:
    train = [
        f"a very typical bus station\t{url('train', 0)}",
        f"sierra looked stunning in this top and this skirt\t{url('train', 1)}",
        f"young confused\u200b girl standing in front of a wooden wall\t{url('train', 2)}",
        f"?\t{url('train', 3)}",
        f"the player   in action\t{url('train', 4)}",
        f"a duplicate of the bus station url\t{url('train', 0)}",
    ]
    write(root / TRAIN_TSV, train, crlf=True, final_newline=False)
    write(root / VAL_TSV, [f"author : a life in photography\t{url('val', 0)}", f"actor attends the premiere\t{url('val', 1)}"])
    shard = root / "images" / "00000"
    file_sample(shard, "000000000", url("train", 0))
    file_sample(shard, "000000002", url("train", 2))
    file_sample(shard, "000000001", url("train", 1), status="failed_to_download")  # not used
    file_sample(shard, "000000005", url("train", 0))  # the duplicate row's own download
    tar_shard(root / "images" / "00001.tar", [("000010003", url("train", 3)), ("000010004", url("val", 0))])
    (root / "images" / "00000_stats.json").write_text(json.dumps({"count": 6, "successes": 4}))
    return root


def test_cc3m_joins_images_by_url(tmp_path):
    root = write_cc3m(tmp_path / "cc3m")
    result, table = prepare("cc3m", tmp_path, root=root)
    counts = result.summary["rows_per_language_split"]
    assert counts == {"en": {"train": 5, "val": 2}}  # the "?" row is masked
    assert result.summary["masked_captions"]["items"][0]["where"] == f"{TRAIN_TSV}:4"

    by_id = table.set_index("sample_id")
    row0 = by_id.loc["cc3m/train/0000000/en"]
    assert row0.image_id == "000000000" and row0.pair_id == "cc3m/train/0000000" and row0.source == "cc3m"
    assert row0.image_path == str((root / "images" / "00000" / "000000000.jpg").resolve())
    assert by_id.loc["cc3m/train/0000005/en", "image_id"] == "000000005"  # same URL, its own download
    assert by_id.loc["cc3m/train/0000002/en", "caption"] == "young confused girl standing in front of a wooden wall"
    assert by_id.loc["cc3m/train/0000004/en", "caption"] == "the player in action"
    tar = str((root / "images" / "00001.tar").resolve())
    assert by_id.loc["cc3m/val/0000000/en", "image_path"] == f"{tar}::000010004.jpg"
    assert by_id.loc["cc3m/val/0000000/en", "image_id"] == "000010004"
    # failed status and never downloaded: kept without an image, reported as missing
    assert by_id.loc["cc3m/train/0000001/en", "image_id"] == "row0000001"
    assert pd_isna(by_id.loc["cc3m/train/0000001/en", "image_path"])
    missing = result.summary["missing_images"]
    assert missing["count"] == 3 and missing["captions_affected"] == 3
    assert sorted(missing["examples"]) == [url("train", 1), url("train", 4), url("val", 1)]

    _, kept = prepare("cc3m", tmp_path, root=root, drop_missing_images=True)
    assert sorted(kept.sample_id) == ["cc3m/train/0000000/en", "cc3m/train/0000002/en", "cc3m/train/0000005/en", "cc3m/val/0000000/en"]

    # no image folder: every row kept, nothing checked
    bare = tmp_path / "bare"
    write(bare / VAL_TSV, ["one caption\thttp://x/1.jpg"])
    only_val, rows = prepare("cc3m", tmp_path, root=bare)
    assert len(rows) == 1 and rows.split.tolist() == ["val"] and not only_val.summary["missing_images"]["checked"]


def pd_isna(value) -> bool:
    return value is None or value != value


def test_cc3m_translations_in_both_formats(tmp_path):
    root = write_cc3m(tmp_path / "cc3m")
    parallel = write(tmp_path / "cc3m.de", ["eine typische Busstation", "Sierra sah toll aus", "Could not translate",
                                            "?", "der Spieler in Aktion", "ein Duplikat"])
    keyed = write(tmp_path / "cc3m.fr.tsv", ["000000000\tune gare routière typique", "000000002\tjeune fille\u200b confuse",
                                             "10004\tauteur : une vie en photographie", "999999999\tclé inconnue"], crlf=True)
    result, table = prepare("cc3m", tmp_path, root=root, translations={"de": parallel, "FR": keyed})
    counts = result.summary["rows_per_language_split"]
    assert counts["de"] == {"train": 4} and counts["fr"] == {"train": 2, "val": 1}
    by_id = table.set_index("sample_id")
    assert by_id.loc["cc3m/train/0000004/de", "caption"] == "der Spieler in Aktion"
    assert by_id.loc["cc3m/train/0000002/fr", "caption"] == "jeune fille confuse"
    assert by_id.loc["cc3m/val/0000000/fr", "caption"] == "auteur : une vie en photographie"  # key matched by value
    pair = table[table.pair_id == "cc3m/train/0000000"]
    assert sorted(pair.language) == ["de", "en", "fr"] and pair.image_id.nunique() == 1
    assert result.summary["masked_captions"]["by_reason"] == {"placeholder": 3}
    assert any("1 keys name no downloaded image" in w for w in result.summary["warnings"])

    _, only_fr = prepare("cc3m", tmp_path, root=root, translations={"de": parallel, "fr": keyed}, languages=("fr",))
    assert set(only_fr.language) == {"fr"} and len(only_fr) == 3

    short = write(tmp_path / "short.de", ["eins", "zwei", "drei"])  # neither 6 (train) nor 2 (val)
    with pytest.raises(DatasetError, match="line counts"):
        prepare("cc3m", tmp_path, root=root, translations={"de": short})
    with pytest.raises(DatasetError, match="no language it"):
        prepare("cc3m", tmp_path, root=root, translations={"de": parallel}, languages=("it",))
    with pytest.raises(DatasetError, match="missing file"):
        prepare("cc3m", tmp_path, root=root, translations={"de": tmp_path / "nowhere.de"})


def test_cc3m_needs_a_tsv(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="does not look like cc3m"):
        prepare("cc3m", tmp_path, root=tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not look like cc300k"):
        prepare("cc300k", tmp_path, root=tmp_path / "empty")


def write_cc_many(root: Path, rows: int = 40) -> Path:
    write(root / TRAIN_TSV, [f"caption number {i}\t{url('train', i)}" for i in range(rows)])
    for i in range(0, rows, 2):  # every even row downloaded, in file shards
        key = f"{i:09d}"
        folder = root / "images" / "00000"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{key}.jpg").write_bytes(b"\xff\xd8 not decoded here")
        (folder / f"{key}.json").write_text(json.dumps({"url": url("train", i), "key": key, "status": "success"}))
    return root


def test_cc300k_is_a_seeded_sample_of_downloaded_rows(tmp_path):
    root = write_cc_many(tmp_path / "cc3m")
    de = write(tmp_path / "de.txt", [f"Bildunterschrift {i}" for i in range(40)])

    first, a = prepare("cc300k", tmp_path, root=root, seed=1, size=8, translations={"de": de})
    _, b = prepare("cc300k", tmp_path, root=root, seed=1, size=8, translations={"de": de})
    _, c = prepare("cc300k", tmp_path, root=root, seed=2, size=8, translations={"de": de})
    assert a.sample_id.tolist() == b.sample_id.tolist()
    assert set(a.pair_id) != set(c.pair_id)
    assert first.summary["rows_per_language_split"] == {"de": {"train": 8}, "en": {"train": 8}}
    rows = sorted({int(p.rsplit("/", 1)[1]) for p in a.pair_id})
    assert len(rows) == 8 and all(r % 2 == 0 for r in rows)  # only downloaded rows
    assert a.image_path.notna().all() and set(a.source) == {"cc300k"} and set(a.split) == {"train"}
    en = a[a.language == "en"].set_index("pair_id")
    assert en.loc[f"cc3m/train/{rows[0]:07d}", "caption"] == f"caption number {rows[0]}"
    assert a.sample_id.iloc[0].startswith("cc300k/train/")

    everything, d = prepare("cc300k", tmp_path, root=root, seed=0, size=100)
    assert len(d) == 20 and any("only 20 training rows" in w for w in everything.summary["warnings"])

    _, default = prepare("cc300k", tmp_path, root=root)  # default size 300,000: all 20
    assert len(default) == 20

    bare = tmp_path / "no_images"  # no images/ folder and no --images
    write(bare / TRAIN_TSV, [f"caption\t{url('train', 0)}"])
    with pytest.raises(DatasetError, match="pass --images"):
        prepare("cc300k", tmp_path, root=bare)
