"""`mlclip prepare pairs`: your own data (tables, an image folder with sidecars, webdataset shards,
text-only pairs) into the manifest the other commands read, with every dropped row accounted for."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from conftest import assert_one_line_error
from mlclip_cli.artifacts import read_manifest, read_metadata
from mlclip_cli.datasets.pairs import HashSet, PairsConfig, default_name, prepare_pairs
from mlclip_cli.errors import DatasetError
from mlclip_cli.images import open_image
from mlclip_cli.langid import Identifier

GERMAN = ["ein roter Kreis links oben", "zwei blaue Sterne unter einem grünen Dreieck", "eine gelbe Katze schläft"]
FRENCH = ["un cercle rouge en haut à gauche", "deux étoiles bleues sous un triangle vert", "un chat jaune dort"]
ENGLISH = ["a red circle at the top left", "two blue stars under a green triangle", "a yellow cat is sleeping"]


def png(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 6), (shade, 80, 160)).save(path)
    return path


def jpeg_bytes(shade: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 6), (shade, 20, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def frame(path: Path):
    return read_manifest(path).to_pandas()


@pytest.fixture(scope="module")
def identifier():
    return Identifier(("en", "de", "fr"))


def _prepare(source: Path, tmp_path: Path, name: str = "mine", **options):
    return prepare_pairs(PairsConfig(source=source, out=tmp_path / "out" / f"{name}.parquet", name=name, **options))


# ---------------------------------------------------------------- tables


def test_csv_with_english_keeps_pairs_and_reports_every_drop(run_cli, tmp_path):
    data = tmp_path / "data"
    for i in range(3):
        png(data / "img" / f"{i}.png", 40 * i)
    (data / "img" / "broken.png").write_bytes(b"not an image at all")
    rows = [{"image": f"img/{i}.png", "caption": GERMAN[i], "language": "de", "english": ENGLISH[i]} for i in range(3)]
    rows += [
        {"image": "img/0.png", "caption": GERMAN[0], "language": "de", "english": ENGLISH[0]},  # duplicate pair
        {"image": "img/broken.png", "caption": "ein Bild", "language": "de", "english": "a picture"},
        {"image": "img/absent.png", "caption": "ein Bild", "language": "de", "english": "a picture"},
        {"image": "img/1.png", "caption": "  \u200b ", "language": "de", "english": "x"},
        {"image": "https://example.org/a.jpg", "caption": "ein Bild", "language": "de", "english": "a picture"},
        {"image": "img/2.png", "caption": "ein Ding", "language": "xx", "english": "a thing"},
        {"image": "img/2.png", "caption": "a grey dog", "language": "en", "english": ""},  # English already
    ]
    result = run_cli("prepare", "pairs", "--from", str(write_csv(data / "photos.csv", rows)))
    assert result.code == 0, result.err
    for shown in ("kept", "duplicate pair", "unreadable image", "missing image", "empty caption", "image is a URL",
                  "unknown language", "photos.csv row 4"):
        assert shown in result.out, shown

    manifest = tmp_path / "ws" / "manifests" / "photos.parquet"  # --name defaults to the input's stem
    rows_out = frame(manifest)
    assert len(rows_out) == 7  # three pairs (de + en) and the English row
    assert set(rows_out.source) == {"photos"} and set(rows_out.split) == {"train"}
    first = rows_out[rows_out.image_id == "img/0.png"]
    assert sorted(first.language) == ["de", "en"] and first.pair_id.nunique() == 1 and first.pair_id.notna().all()
    assert set(first.caption) == {GERMAN[0], ENGLISH[0]}
    assert first.image_path.iloc[0] == str((data / "img" / "0.png").resolve())
    english_only = rows_out[rows_out.caption == "a grey dog"]
    assert list(english_only.language) == ["en"] and english_only.pair_id.isna().all()
    assert read_metadata(manifest)["artifact"] == "manifest"

    report = json.loads((tmp_path / "ws" / "manifests" / "photos.report.json").read_text(encoding="utf-8"))
    assert report["artifact"] == "prepare-pairs-report"
    assert (report["rows_read"], report["rows_kept"], report["rows_dropped"], report["manifest_rows"]) == (10, 4, 6, 7)
    assert {reason: drop["count"] for reason, drop in report["dropped"].items()} == {
        "url": 1, "missing_image": 1, "unreadable_image": 1, "empty_caption": 1, "unknown_language": 1, "duplicate": 1}
    assert report["dropped"]["duplicate"]["example"].startswith("photos.csv row 4")
    assert report["dropped"]["missing_image"]["example"].startswith("photos.csv row 6: img/absent.png not found")
    assert report["languages"] == {"de": {"train": 3}, "en": {"train": 4}}
    assert report["images"] == 3


def test_tsv_jsonl_and_parquet_give_the_same_manifest(tmp_path, identifier):
    images = tmp_path / "pictures"
    for i in range(3):
        png(images / "set" / f"{i:04d}.png", 50 * i)
    rows = [{"file": f"set/{i:04d}.png", "text": FRENCH[i], "lang": ["fr", "fr-FR", "FR"][i],
             "split": ["train", "validation", "test"][i]} for i in range(3)]
    tables = tmp_path / "tables"
    tables.mkdir()
    sources = [write_csv(tables / "t.tsv", rows, delimiter="\t"), write_jsonl(tables / "t.jsonl", rows)]
    pq.write_table(pa.Table.from_pylist(rows), tables / "t.parquet")
    sources.append(tables / "t.parquet")
    made = []
    for source in sources:
        result = _prepare(source, tmp_path / source.suffix[1:], images_root=images, image_column="file",
                          caption_column="text", language_column="lang", identifier=identifier)
        assert result.report.columns == {"image": "file", "caption": "text", "language": "lang", "split": "split"}
        made.append(frame(result.manifest))
    for other in made[1:]:
        assert other.drop(columns="sample_id").equals(made[0].drop(columns="sample_id"))
    assert list(made[0].split) == ["train", "val", "test"]  # "validation" is val
    assert set(made[0].language) == {"fr"}  # a region py3langid does not know is dropped, case ignored
    assert list(made[0].image_id) == ["set/0000.png", "set/0001.png", "set/0002.png"]
    assert made[0].image_path.iloc[0] == str((images / "set" / "0000.png").resolve())


def test_languages_are_detected_when_none_is_given_and_the_distribution_reported(run_cli, tmp_path):
    for i in range(9):
        png(tmp_path / f"{i}.png", 20 * i)
    captions = GERMAN + FRENCH + ENGLISH
    rows = [{"image": f"{i}.png", "caption": caption} for i, caption in enumerate(captions)]
    rows.append({"image": "0.png", "caption": "12345"})  # no letters: no language to detect
    source = write_csv(tmp_path / "mixed.csv", rows)
    result = run_cli("prepare", "pairs", "--from", str(source), "--detect-langs", "en,de,fr")
    assert result.code == 0, result.err
    assert "detected (py3langid among en, de, fr): " in result.out
    report = json.loads((tmp_path / "ws" / "manifests" / "mixed.report.json").read_text(encoding="utf-8"))
    assert report["detected"]["counts"] == {"de": 3, "fr": 3, "en": 3}
    assert report["dropped"]["unknown_language"]["count"] == 1
    assert "matches none of en, de, fr" in report["dropped"]["unknown_language"]["example"]
    rows_out = frame(tmp_path / "ws" / "manifests" / "mixed.parquet")
    assert dict(zip(rows_out.caption, rows_out.language)) == {
        **dict.fromkeys(GERMAN, "de"), **dict.fromkeys(FRENCH, "fr"), **dict.fromkeys(ENGLISH, "en")}


def test_val_fraction_splits_by_image_reproducibly_whatever_the_row_order(tmp_path):
    for i in range(60):
        png(tmp_path / "img" / f"{i}.png", i)
    rows = [{"image": f"img/{i}.png", "caption": f"{word} {i}"} for i in range(60) for word in ("Bild", "Foto")]

    def splits(name, seed, order=rows):
        result = _prepare(write_csv(tmp_path / f"{name}.csv", order), tmp_path, name=name, language="de",
                          val_fraction=0.25, seed=seed)
        table = frame(result.manifest)
        return dict(zip(table.caption, table.split)), table

    first, table = splits("a", 7)
    assert (table.groupby("image_id").split.nunique() == 1).all()  # both captions of an image together
    assert 0.1 < (table.split == "val").mean() < 0.45
    again, _ = splits("b", 7, list(reversed(rows)))
    assert again == first  # the same seed, whatever the row order
    other, _ = splits("c", 8)
    assert other != first


# ---------------------------------------------------------------- an image folder, webdataset shards


def test_an_image_folder_with_sidecars_is_read_recursively_in_sorted_order(tmp_path, identifier):
    folder = tmp_path / "photos"
    png(folder / "b" / "2.png")
    (folder / "b" / "2.txt").write_text("zwei blaue Sterne\n", encoding="utf-8")
    png(folder / "a" / "1.png", 30)
    (folder / "a" / "1.json").write_text(json.dumps({"caption": FRENCH[0], "language": "fr", "english": ENGLISH[0]}),
                                         encoding="utf-8")
    png(folder / "c.png", 60)  # no sidecar: no caption
    (folder / "d.txt").write_text("a caption without its image", encoding="utf-8")
    (folder / "00000_stats.json").write_text("{}", encoding="utf-8")  # img2dataset's, not a sample
    result = _prepare(folder, tmp_path, language="de", identifier=identifier)
    rows = frame(result.manifest)
    assert list(rows.image_id) == ["a/1", "a/1", "b/2"]  # sorted by path, sub-folders included
    assert list(rows.language) == ["fr", "en", "de"]  # the sidecar's language wins; --lang fills the rest
    assert rows.pair_id.iloc[0] == rows.pair_id.iloc[1] and rows.pair_id.isna().iloc[2]
    assert {r: d.count for r, d in result.report.dropped.items()} == {"missing_image": 1, "empty_caption": 1}
    assert result.report.rows_read == 4 and result.report.format == "folder"


def test_webdataset_shards_are_streamed_and_point_into_the_tar(tmp_path, identifier):
    shards = tmp_path / "shards" / "part"
    shards.mkdir(parents=True)
    with tarfile.open(shards / "00000.tar", "w") as tar:
        for i in range(2):
            add_member(tar, f"00000000{i}.jpg", jpeg_bytes(i * 90))
            add_member(tar, f"00000000{i}.txt", GERMAN[i].encode())
            add_member(tar, f"00000000{i}.json", json.dumps({"key": f"00000000{i}", "status": "success"}).encode())
        add_member(tar, "000000002.jpg", b"\xff\xd8 broken")
        add_member(tar, "000000002.txt", b"kaputt")
    with tarfile.open(shards / "00001.tar", "w") as tar:
        add_member(tar, "000010000.jpg", jpeg_bytes(200))
        add_member(tar, "000010000.json", json.dumps({"caption": FRENCH[1], "english": ENGLISH[1]}).encode())
    (shards / "00002.tar").write_bytes(open(shards / "00001.tar", "rb").read()[:700])  # cut short
    result = _prepare(tmp_path / "shards", tmp_path, identifier=identifier)
    rows = frame(result.manifest)
    assert list(rows.image_id) == ["part/00000/000000000", "part/00000/000000001", "part/00001/000010000",
                                   "part/00001/000010000"]
    assert list(rows.language) == ["de", "de", "fr", "en"]  # detected, then the sidecar's English
    tar_path = str((shards / "00000.tar").resolve())
    assert rows.image_path.iloc[0] == f"{tar_path}::000000000.jpg"
    assert open_image(rows.image_path.iloc[2]).size == (6, 6)
    assert result.report.dropped["unreadable_image"].count == 1
    assert any("00002.tar: unreadable" in warning for warning in result.report.warnings)
    assert result.report.detected["counts"] == {"de": 2, "fr": 1}


# ---------------------------------------------------------------- text-only pairs, and what reads the manifest


def test_text_only_pairs_look_like_multi30k_without_images(tmp_path, identifier):
    rows = [{"de": g, "en": e} for g, e in zip(GERMAN, ENGLISH)] + [{"de": GERMAN[0], "en": ENGLISH[0]}]
    result = _prepare(write_csv(tmp_path / "de-en.tsv", rows, "\t"), tmp_path, no_images=True, caption_column="de",
                      english_column="en", language="de", identifier=identifier)
    table = frame(result.manifest)
    assert table.image_path.isna().all() and len(table) == 6
    assert result.report.dropped["duplicate"].count == 1 and result.report.images == 0
    # as multi30k: one row per language, the translations sharing a pair_id
    for pair, group in table.groupby("pair_id"):
        assert sorted(group.language) == ["de", "en"] and group.image_id.nunique() == 1
    with pytest.raises(DatasetError, match="--english-column"):
        _prepare(tmp_path / "de-en.tsv", tmp_path, no_images=True, caption_column="de", language="de",
                 identifier=identifier)


def test_prepared_pairs_feed_features_and_bench_by_name(run_cli, tmp_path):
    rows = []
    for i in range(4):
        png(tmp_path / "img" / f"{i}.png", 60 * i)
        rows.append({"image": f"img/{i}.png", "caption": f"Bild {i}", "english": f"picture {i}",
                     "split": "val" if i % 2 else "train"})
    result = run_cli("prepare", "pairs", "--from", str(write_csv(tmp_path / "own.csv", rows)), "--lang", "de",
                     "--name", "mine")
    assert result.code == 0, result.err
    result = run_cli("features", "mine", "--model", "mlclip-tiny", "--langs", "all")
    assert result.code == 0, result.err
    assert "image: 4 rows" in result.out and "text-de: 4 rows" in result.out and "text-en: 4 rows" in result.out
    result = run_cli("bench", "pairs", "--data", "mine", "--model", "mlclip-tiny", "--langs", "de,en")
    assert result.code == 0, result.err
    saved = json.loads(next((tmp_path / "ws" / "results").glob("pairs-*.json")).read_text(encoding="utf-8"))
    assert saved["split"] == "val" and saved["languages"]["de"]["images"] == 2


# ---------------------------------------------------------------- bad input: one line, an exit code, nothing written


def _nothing_written(tmp_path: Path, name: str) -> None:
    manifests = tmp_path / "ws" / "manifests"
    assert not (manifests / f"{name}.parquet").exists() and not (manifests / f"{name}.report.json").exists()
    assert not list(manifests.glob(".*tmp")) if manifests.exists() else True


def test_bad_inputs_are_one_line_and_write_nothing(run_cli, tmp_path):
    png(tmp_path / "0.png")
    table = write_csv(tmp_path / "t.csv", [{"image": "0.png", "text": "ein Bild"}])
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(table), "--lang", "de"),
                          "no column 'caption'", "columns: image, text", "--caption-column")
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(table), "--lang", "de", "--caption-column", "text",
                                  "--english-column", "en"),
                          "no column 'en'", "columns: image, text")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(tmp_path / "empty.csv"), "--lang", "de"),
                          "empty.csv: the file is empty")
    (tmp_path / "header.csv").write_text("image,caption\n", encoding="utf-8")
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(tmp_path / "header.csv"), "--lang", "de"),
                          "no rows")
    urls = write_csv(tmp_path / "urls.csv", [{"image": "https://example.org/0.jpg", "caption": "ein Bild"}])
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(urls), "--lang", "de"),
                          "column 'image' holds URLs", "does not download")
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(tmp_path / "data.xlsx")), "unknown format '.xlsx'")
    gone = write_csv(tmp_path / "gone.csv", [{"image": "nope.png", "caption": "ein Bild"},
                                            {"image": "0.png", "caption": " "}])
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(gone), "--lang", "de"),
                          "no row kept of 2", "missing image 1", "empty caption 1", "nothing written")
    good = write_csv(tmp_path / "good.csv", [{"image": "0.png", "caption": "ein Bild"}])
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(good), "--lang", "xx"),
                          "--lang 'xx'", "not a language code py3langid knows")
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(good), "--detect-langs", "de,qq"),
                          "unknown language code 'qq'")
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(good), "--lang", "de", "--val-fraction", "1.5"),
                          "--val-fraction")
    assert_one_line_error(run_cli("prepare", "pairs", "--from", str(tmp_path), "--image-column", "x"),
                          "--image-column: for tables only")
    for name in ("t", "empty", "header", "urls", "data", "gone", "good"):
        _nothing_written(tmp_path, name)


def test_a_manifest_being_written_is_refused_and_pairs_has_its_own_command(run_cli, tmp_path):
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    png(tmp_path / "0.png")
    good = write_csv(tmp_path / "good.csv", [{"image": "0.png", "caption": "ein Bild"}])
    out = tmp_path / "ws" / "manifests" / "good.parquet"
    holder = subprocess.Popen([sys.executable, "-c", "import sys\nfrom mlclip_cli.locks import writer_lock\n"
                               "with writer_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n",
                               str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert_one_line_error(run_cli("prepare", "pairs", "--from", str(good), "--lang", "de"),
                              "being written by another mlclip process", f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()
    with pytest.raises(DatasetError, match="mlclip prepare pairs --from"):
        prepare_dataset("pairs", PrepareConfig(root=tmp_path), tmp_path / "x.parquet")
    assert default_name(tmp_path / "My Photos.csv.gz") == "My_Photos"


def test_the_duplicate_check_answers_as_a_python_set_would_across_merges():
    rng, seen, checked = random.Random(3), HashSet(), set()
    for _ in range(40):  # 200,000 keys from 150,000 values: repeats within and across batches, several merges
        keys = [rng.randrange(150_000) * 7919 for _ in range(5000)]
        expected = []
        for key in keys:
            expected.append(key not in checked)
            checked.add(key)
        assert seen.add(keys) == expected
    assert len(seen) == len(checked)
