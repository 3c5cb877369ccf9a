"""`mlclip index build --images|--data`, `mlclip index add` and `mlclip search`: tables, one JSON
object, and every bad input as one line."""

from __future__ import annotations

import json
import os

import pytest

from conftest import assert_one_line_error, draw_photos


@pytest.fixture
def photos(tmp_path):
    folder = draw_photos(tmp_path / "photos")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


@pytest.fixture
def built(run_cli, photos, tmp_path):
    out = tmp_path / "index"
    result = run_cli("index", "build", "--images", str(photos), "--out", str(out))
    assert result.code == 0, result.err
    return {"index": out, "photos": photos, "build": result}


def test_build_reports_the_index_and_the_unreadable_images(built):
    out = built["build"].out
    assert "indexed 3 images" in out and "flat, dimension 128" in out and "mlclip-tiny@sha256:" in out
    assert "1 image could not be read" in out and "broken.png" in out
    info = json.loads((built["index"] / "index.json").read_text())
    assert info["model"] == "mlclip-tiny" and info["count"] == 3 and info["kind"] == "flat"
    assert info["root"] == str(built["photos"].resolve()) and info["source"] == {"kind": "folder"}
    assert info["schema_version"] == 1 and info["image_identity"].startswith("mlclip-tiny@")


def test_search_prints_a_table_with_the_routed_language(run_cli, built):
    result = run_cli("search", "a blue circle", "--index", str(built["index"]), "-k", "2", "--lang", "en")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "'a blue circle' -> language en (confidence 1.00)" in lines[0]
    rows = [line for line in lines if "circle.png" in line]
    assert len(rows) == 2 and "blue-circle.png" in rows[0] and rows[0].split()[1] == "1"


def test_search_json_is_exactly_one_object(run_cli, built):
    result = run_cli("search", "a green circle", "--index", str(built["index"]), "--format", "json", "-k", "3")
    assert result.code == 0, result.err
    found = json.loads(result.out)  # the whole of stdout: one object, nothing else
    assert set(found) == {"query", "language", "confidence", "results"}
    assert found["query"] == "a green circle" and found["language"] in ("en", "de", "fr", "es", "it", "pl", "tr")
    assert 0 < found["confidence"] <= 1
    assert [r["rank"] for r in found["results"]] == [1, 2, 3]
    assert found["results"][0]["path"] == "green-circle.png"
    assert found["results"][0]["score"] >= found["results"][1]["score"] >= found["results"][2]["score"]


def test_image_query_json(run_cli, built):
    image = built["photos"] / "red-circle.png"
    result = run_cli("search", "--image", str(image), "--index", str(built["index"]), "--format", "json")
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["query"] == str(image) and found["language"] is None and found["confidence"] is None
    assert found["results"][0] == {"rank": 1, "path": "red-circle.png", "score": pytest.approx(1.0, abs=1e-4)}


def test_index_add_reports_what_changed(run_cli, built):
    photos = built["photos"]
    draw_photos(photos / "more", ("blue-circle",))
    (photos / "green-circle.png").unlink()
    os.utime(photos / "red-circle.png", ns=(5, 5))
    result = run_cli("index", "add", "--index", str(built["index"]))
    assert result.code == 0, result.err
    assert "added 1, updated 1, removed 1, unchanged 1" in result.out and "(3 images of" in result.out
    assert "broken.png" in result.out  # still unreadable: still reported
    result = run_cli("search", "--image", str(photos / "more" / "blue-circle.png"), "--index", str(built["index"]),
                     "--format", "json", "-k", "1")
    assert json.loads(result.out)["results"][0]["path"] in ("more/blue-circle.png", "blue-circle.png")
    result = run_cli("index", "add", "--index", str(built["index"]))
    assert "added 0, updated 0, removed 0, unchanged 3" in result.out


def test_build_from_a_data_set_and_search_with_the_recorded_extension(run_cli, small_world_extension, tmp_path):
    out = tmp_path / "world-index"
    result = run_cli("index", "build", "--data", str(small_world_extension["manifest"]), "--split", "val",
                     "--model", small_world_extension["extension"], "--out", str(out))
    assert result.code == 0, result.err
    assert "indexed 12 images" in result.out and "dimension 32" in result.out
    info = json.loads((out / "index.json").read_text())
    assert info["model"] == small_world_extension["extension"] and info["source"]["kind"] == "manifest"
    # no --model: the extension the index records, the query routed to its German pack
    result = run_cli("search", "Ein großer blauer Stern in der Mitte", "--index", str(out), "--format", "json")
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["language"] == "de" and len(found["results"]) == 10
    result = run_cli("index", "add", "--index", str(out))  # re-reads the manifest's val images
    assert "unchanged 12" in result.out, result.err


def test_build_from_features_still_needs_only_features(run_cli, photos, tmp_path):
    result = run_cli("index", "build", "--images", str(photos), "--nlist", "4", "--out", str(tmp_path / "i"))
    assert_one_line_error(result, "--nlist", "options of --features")
    result = run_cli("index", "build", "--out", str(tmp_path / "i"))
    assert_one_line_error(result, "--features DIR, --images FOLDER or --data NAME")
    result = run_cli("index", "build", "--images", str(photos), "--data", "world", "--out", str(tmp_path / "i"))
    assert_one_line_error(result, "one of them")
    result = run_cli("index", "build", "--images", str(photos), "--out", str(photos))
    assert_one_line_error(result, "not an image index folder")
    assert (photos / "red-circle.png").is_file()
    result = run_cli("index", "build", "--images", str(tmp_path / "nope"), "--out", str(tmp_path / "i"))
    assert_one_line_error(result, "nope: no such image folder")
    result = run_cli("index", "build", "--data", "nope", "--out", str(tmp_path / "i"))
    assert_one_line_error(result, "--data nope: no such manifest")
    (tmp_path / "empty").mkdir()
    result = run_cli("index", "build", "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "i"))
    assert_one_line_error(result, "no images")
    assert not (tmp_path / "i").exists()


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory):
    """An index the bad-input tests only read: built once, through the library."""
    from mlclip_cli.api import BuildConfig, build

    photos = draw_photos(tmp_path_factory.mktemp("shared") / "photos")
    build(BuildConfig(out=photos.parent / "index", images=photos))
    return {"index": photos.parent / "index", "photos": photos}


@pytest.mark.parametrize("args, fragments", [
    (["", "--index", "{index}"], ["the query is empty"]),
    (["   ", "--index", "{index}"], ["the query is empty"]),
    (["a red circle", "--index", "{index}", "-k", "0"], ["-k must be at least 1, not 0"]),
    (["a red circle", "--index", "{index}", "-k", "-3"], ["-k must be at least 1"]),
    (["a red circle", "--index", "{index}", "--lang", "xx"], ["unknown language code 'xx'"]),
    (["a red circle", "--index", "{missing}"], ["no such index folder"]),
    (["a red circle", "--index", "{photos}"], ["not an image index folder"]),
    (["a red circle", "--index", "{index}", "--format", "xml"], ["--format xml", "table or json"]),
    (["a red circle", "--index", "{index}", "--image", "{photos}/red-circle.png"], ["not both"]),
    (["--index", "{index}"], ["give a text query"]),
    (["--index", "{index}", "--image", "{photos}/nope.png"], ["nope.png: no such image file"]),
])
def test_bad_search_input_is_one_line(run_cli, shared_index, tmp_path, args, fragments):
    values = {"index": shared_index["index"], "missing": tmp_path / "missing", "photos": shared_index["photos"]}
    result = run_cli("search", *[arg.format(**values) for arg in args])
    assert_one_line_error(result, *fragments)
    assert not result.out


def test_a_corrupt_index_is_one_line(run_cli, built):
    (built["index"] / "items.parquet").write_bytes(b"garbage")
    assert_one_line_error(run_cli("search", "a red circle", "--index", str(built["index"])),
                          "items.parquet: not a readable Parquet file")
    (built["index"] / "index.json").write_text("[]")
    assert_one_line_error(run_cli("search", "a red circle", "--index", str(built["index"])), "not a JSON object")


def test_a_model_of_another_image_tower_or_language_is_one_line(run_cli, built, small_world_extension):
    extension = small_world_extension["extension"]
    result = run_cli("search", "a red circle", "--index", str(built["index"]), "--model", extension)
    assert_one_line_error(result, "built with the image tower mlclip-tiny@", "mlclip-micro@", "rebuild the index")
    result = run_cli("index", "add", "--index", str(built["index"]), "--model", extension)
    assert_one_line_error(result, "built with the image tower mlclip-tiny@")


def test_a_language_the_extension_lacks_is_one_line(run_cli, small_world_extension, tmp_path):
    out = tmp_path / "val-index"
    result = run_cli("index", "build", "--images", str(small_world_extension["val_images"]),
                     "--model", small_world_extension["extension"], "--out", str(out))
    assert result.code == 0, result.err
    result = run_cli("search", "красная звезда", "--index", str(out), "--lang", "ru")
    assert_one_line_error(result, "--lang ru", "no language pack for 'ru' (it has en, de)", "--lang auto",
                          "--fallback english")
    result = run_cli("search", "빨간 별", "--index", str(out))  # auto: Hangul, and no Korean pack
    assert_one_line_error(result, "matches none of", "(en, de)")
    result = run_cli("search", "красная звезда", "--index", str(out), "--lang", "ru", "--fallback", "english",
                     "--format", "json")
    assert result.code == 0 and json.loads(result.out)["language"] == "ru"
