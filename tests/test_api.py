"""The Python API (`mlclip_cli.load`, `Model`, `Index`) on mlclip-tiny and a tiny MLA extension:
encoding, language routing, and image indexes built, searched, saved, loaded and brought up to date."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mlclip_cli
from mlclip_cli.artifacts import read_manifest
from mlclip_cli.collection import Index
from mlclip_cli.errors import ArtifactError, MlclipError

from conftest import draw_photos


@pytest.fixture(scope="module")
def tiny():
    return mlclip_cli.load("mlclip-tiny", device="cpu")


@pytest.fixture(scope="module")
def extension(small_world_extension):
    return mlclip_cli.load(small_world_extension["extension"], device="cpu")


@pytest.fixture
def photos(tmp_path):
    folder = draw_photos(tmp_path / "photos")
    draw_photos(folder / "holiday", ("red-circle",))  # a sub-folder: listed recursively
    (folder / "notes.txt").write_text("not an image")  # not an image suffix: not listed
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # an image suffix, unreadable: reported
    return folder


def _captions(world, language, split="val"):
    rows = read_manifest(world["manifest"]).to_pandas()
    rows = rows[(rows.language == language) & (rows.split == split)]
    return list(zip(rows.image_path, rows.caption))


def test_import_is_light_and_the_api_is_reexported():
    code = "import sys, mlclip_cli; print('torch' in sys.modules, 'mlclip_cli.api' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]  # nothing heavy until the API is used
    assert mlclip_cli.load.__module__ == "mlclip_cli.api" and mlclip_cli.Index is Index
    with pytest.raises(AttributeError):
        mlclip_cli.no_such_thing


def test_tiny_encodes_texts_and_images_normalised(tiny, photos):
    assert tiny.languages == ("en",) and tiny.dim == 128 and not tiny.is_extension
    texts = tiny.encode_text(["a red circle", "a blue circle", "a green circle"], batch_size=2)
    assert texts.shape == (3, 128) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(tiny.encode_text("a red circle")[0], texts[0], atol=1e-6)  # one string: one row
    np.testing.assert_allclose(texts, tiny.encoder.encode_texts(["a red circle", "a blue circle", "a green circle"], "en"),
                               atol=1e-6)
    path = photos / "red-circle.png"
    one = tiny.encode_image(path)
    assert one.shape == (1, 128)
    np.testing.assert_allclose(tiny.encode_image(Image.open(path))[0], one[0], atol=1e-6)  # PIL or path: the same
    several = tiny.encode_image([str(path), photos / "blue-circle.png", Image.open(photos / "green-circle.png")],
                                batch_size=2)
    assert several.shape == (3, 128)
    np.testing.assert_allclose(several[0], one[0], atol=1e-6)
    # each drawing is nearest its own description
    assert (np.argmax(several @ texts.T, axis=1) == [0, 1, 2]).all()
    with pytest.raises(MlclipError, match="cannot read image"):
        tiny.encode_image(photos / "broken.jpg")


def test_detect_language_and_auto_routing_through_the_packs(extension, small_world_extension):
    assert extension.languages == ("en", "de") and extension.is_extension
    german = dict(_captions(small_world_extension, "de"))
    english = dict(_captions(small_world_extension, "en"))
    image = sorted(german)[0]
    found = extension.detect_language([german[image], english[image]])
    assert [d.language for d in found] == ["de", "en"]
    assert all(0 < d.confidence <= 1 for d in found)
    auto = extension.encode_text([german[image], english[image]], lang="auto")
    np.testing.assert_allclose(auto[0], extension.encode_text(german[image], lang="de")[0], atol=1e-5)
    np.testing.assert_allclose(auto[1], extension.encode_text(english[image], lang="en")[0], atol=1e-5)
    # the German pack and the frozen English tower are different encoders of the same text
    assert not np.allclose(extension.encode_text(german[image], lang="de"), extension.encode_text(german[image], lang="en"))
    with pytest.raises(MlclipError, match="matches none of .* languages \\(en, de\\)"):
        extension.detect_language(["빨간 원"])  # Hangul: no Korean pack, no fallback


def test_a_plain_clip_routes_every_language_to_its_one_tower(tiny):
    found = tiny.detect_language(["빨간 원", "12345"])
    assert found[0].language == "ko" and found[0].confidence == 1.0  # the script alone decides
    assert found[1].language == "en" and found[1].confidence == 0.0  # nothing to go on: English
    np.testing.assert_allclose(tiny.encode_text("ein roter Kreis", lang="de"), tiny.encode_text("ein roter Kreis"), atol=1e-6)


def test_bad_languages_are_one_line(tiny, extension, small_world_extension):
    with pytest.raises(MlclipError, match="unknown language code 'xx'"):
        tiny.encode_text("a red circle", lang="xx")
    with pytest.raises(MlclipError, match=r"has no language pack for 'ru' \(it has en, de\).*'auto'.*fallback 'english'"):
        extension.encode_text("красный круг", lang="ru")
    lenient = mlclip_cli.load(small_world_extension["extension"], device="cpu", fallback="english")
    np.testing.assert_allclose(lenient.encode_text("красный круг", lang="ru"), lenient.encode_text("красный круг"), atol=1e-6)
    assert lenient.detect_language(["빨간 원"])[0].language == "en"
    assert tiny.check_language("JP") == "ja" and tiny.check_language("auto") == "auto"


def test_index_build_search_save_load_roundtrip(tiny, photos, tmp_path):
    index = Index.build(tiny, photos)
    assert index.paths == ["blue-circle.png", "green-circle.png", "holiday/red-circle.png", "red-circle.png"]
    assert [u.path for u in index.unreadable] == ["broken.jpg"] and "cannot read image" in index.unreadable[0].reason
    assert len(index) == 4 and index.dim == 128 and index.root == photos.resolve()
    assert index.image_identity == tiny.image_identity and index.model == "mlclip-tiny"
    hits = index.search(tiny.encode_text(["a blue circle", "a red circle"]), k=2)
    assert [h.rank for h in hits[0]] == [1, 2] and hits[0][0].path == "blue-circle.png"
    assert {hits[1][0].path, hits[1][1].path} == {"red-circle.png", "holiday/red-circle.png"}
    assert hits[0][0].score > hits[0][1].score
    assert len(index.search(tiny.encode_text("a red circle")[0], k=50)[0]) == 4  # k past the size: all of them
    assert index.resolve("holiday/red-circle.png") == photos.resolve() / "holiday" / "red-circle.png"

    folder = index.save(tmp_path / "index")
    assert sorted(p.name for p in folder.iterdir()) == ["index.faiss", "index.json", "index.keys.parquet", "items.parquet"]
    loaded = Index.load(folder)
    assert loaded.paths == index.paths and loaded.root == index.root and loaded.model == "mlclip-tiny"
    assert loaded.image_identity == index.image_identity and loaded.kind == "flat"
    np.testing.assert_array_equal(loaded.vectors, index.vectors)
    again = loaded.search(tiny.encode_text(["a blue circle", "a red circle"]), k=2)
    assert [[h.path for h in row] for row in again] == [[h.path for h in row] for row in hits]
    assert not (tmp_path / ".index.next").exists() and not (tmp_path / ".index.lock").exists()  # nothing half-done


def test_index_search_and_resolve_refuse_bad_input(tiny, photos):
    index = Index.build(tiny, photos)
    query = tiny.encode_text("a red circle")
    for k in (0, -1):
        with pytest.raises(MlclipError, match="k must be"):
            index.search(query, k)
    with pytest.raises(MlclipError, match="dimension 128"):
        index.search(np.ones((1, 32), dtype=np.float32))
    with pytest.raises(MlclipError, match="not an image of this index"):
        index.resolve("nope.png")
    with pytest.raises(MlclipError, match="unknown index kind 'annoy'"):
        Index.build(tiny, photos, kind="annoy")
    (photos / "empty").mkdir()
    with pytest.raises(MlclipError, match="no images"):
        Index.build(tiny, photos / "empty")


class CountingModel:
    """A model that counts the images it encodes (to see that `add` re-encodes only what changed)."""

    def __init__(self, model):
        self.model, self.encoded = model, 0

    def encode_image(self, images, **kwargs):
        self.encoded += len(images)
        return self.model.encode_image(images, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_add_encodes_only_new_and_changed_files_and_drops_vanished_ones(tiny, photos, tmp_path):
    index = Index.build(tiny, photos)
    before = dict(zip(index.paths, index.vectors))
    draw_photos(photos / "new", ("green-circle",))  # new
    os.remove(photos / "holiday" / "red-circle.png")  # vanished
    Image.new("RGB", (64, 64), "blue").save(photos / "red-circle.png")  # changed: content, size and mtime
    os.utime(photos / "red-circle.png", ns=(1, 1))
    (photos / "broken.jpg").unlink()
    counting = CountingModel(tiny)
    result = index.add(counting)
    assert (result.added, result.updated, result.removed, result.unchanged) == (1, 1, 1, 2)
    assert counting.encoded == 2 and not result.unreadable
    assert index.paths == ["blue-circle.png", "green-circle.png", "red-circle.png", "new/green-circle.png"]
    np.testing.assert_array_equal(index.vectors[0], before["blue-circle.png"])  # kept, not re-encoded
    assert not np.allclose(index.vectors[2], before["red-circle.png"])
    assert index.search(tiny.encode_image(photos / "red-circle.png"), 1)[0][0].path == "red-circle.png"

    index.save(tmp_path / "index")
    loaded = Index.load(tmp_path / "index")
    counting = CountingModel(tiny)
    result = loaded.add(counting)  # nothing changed since
    assert (result.added, result.updated, result.removed, result.unchanged, counting.encoded) == (0, 0, 0, 4, 0)


def test_add_of_a_moved_collection_and_of_single_files(tiny, photos, tmp_path):
    index = Index.build(tiny, photos)
    moved = tmp_path / "moved"
    shutil.copytree(photos, moved, copy_function=shutil.copy2)  # mtimes kept, as `mv` keeps them
    counting = CountingModel(tiny)
    result = index.add(counting, moved)
    assert (result.added, result.updated, result.removed, result.unchanged) == (0, 0, 0, 4)
    assert index.root == moved.resolve() and counting.encoded == 0
    draw_photos(tmp_path / "moved" / "extra", ("blue-circle",))
    result = index.add(tiny, [moved / "extra" / "blue-circle.png"])  # one file: added, nothing else looked at
    assert (result.added, result.removed) == (1, 0) and "extra/blue-circle.png" in index.paths
    with pytest.raises(MlclipError, match="not under the collection root"):
        index.add(tiny, [photos / "red-circle.png"])


def test_a_model_with_another_image_tower_is_refused(tiny, extension, photos):
    index = Index.build(tiny, photos)
    with pytest.raises(MlclipError, match="built with the image tower mlclip-tiny@.*but the model .* has mlclip-micro@"):
        index.add(extension)
    with pytest.raises(MlclipError, match="built with the image tower"):
        index.check_model(extension)


def test_the_right_image_comes_first_for_each_caption_of_a_small_world(tiny, small_world_extension):
    """mlclip-tiny was trained on the world: each of the 12 val captions finds its own image first."""
    index = Index.build(tiny, small_world_extension["val_images"])
    captions = _captions(small_world_extension, "en")
    hits = index.search(tiny.encode_text([caption for _, caption in captions]), k=3)
    firsts = [index.resolve(row[0].path) for row in hits]
    assert firsts == [Path(path).resolve() for path, _ in captions]


def test_an_extension_searches_an_index_of_its_base(small_world_extension, extension):
    base = mlclip_cli.load(small_world_extension["model"], device="cpu")
    index = Index.build(base, small_world_extension["val_images"])
    index.check_model(extension)  # the same frozen image tower: accepted
    german = _captions(small_world_extension, "de")[0][1]
    assert len(index.search(extension.encode_text(german, lang="auto"), k=3)[0]) == 3


def test_save_never_replaces_a_folder_that_is_not_an_index(tiny, photos, tmp_path):
    index = Index.build(tiny, photos)
    with pytest.raises(MlclipError, match="not an image index folder"):
        index.save(photos)
    assert (photos / "red-circle.png").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(MlclipError, match="is a file"):
        index.save(tmp_path / "file")


def test_a_failed_save_leaves_the_old_index_whole(tiny, photos, tmp_path, monkeypatch):
    index = Index.build(tiny, photos)
    index.save(tmp_path / "index")
    draw_photos(photos / "new", ("blue-circle",))
    index.add(tiny)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("mlclip_cli.collection.write_json", fail)  # index.json is written last
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "index")
    assert len(Index.load(tmp_path / "index")) == 4  # the old one, whole
    assert not (tmp_path / ".index.next").exists()


def test_load_refuses_missing_and_corrupt_folders(tiny, photos, tmp_path):
    with pytest.raises(ArtifactError, match="no such index folder"):
        Index.load(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="no index.json"):
        Index.load(photos)
    folder = Index.build(tiny, photos).save(tmp_path / "index")
    (folder / "index.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        Index.load(folder)
    folder = Index.build(tiny, photos).save(tmp_path / "index2")
    (folder / "items.parquet").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="items.parquet: not a readable Parquet file"):
        Index.load(folder)
