"""The embedded world: determinism, XTD10 layout, and that prepare reads it like the real thing."""

import hashlib
import json
import random
from pathlib import Path

import pytest

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.datasets.base import PrepareConfig
from mlclip_cli.datasets.prepare import prepare_dataset
from mlclip_cli.datasets.xtd10 import FILES
from mlclip_cli.world.generate import WorldConfig, _captions, generate_world
from mlclip_cli.world.scenes import clustered_scenes, english_key, plan_for, random_scene
from mlclip_cli.world.render import render

from conftest import SHARED_XTD10

SMALL = WorldConfig(seed=3, train_scenes=24, captions_per_train_scene=2, val_scenes=10, test_scenes=15)
# Many train captions, so that val/test drawn without exclusion would repeat some (checked below).
CROWDED = WorldConfig(seed=3, train_scenes=400, captions_per_train_scene=8, val_scenes=10, test_scenes=20)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    return generate_world(folder, SMALL, workers=1)


def test_same_seed_same_world_other_seed_other_world(world, tmp_path):
    again = generate_world(tmp_path / "again", SMALL, workers=2)
    assert _digest(world.folder) == _digest(again.folder)
    assert world.rows == [{**r, "image_path": r["image_path"].replace(str(again.folder.resolve()), str(world.folder.resolve()))} for r in again.rows]
    other = generate_world(tmp_path / "other", WorldConfig(**{**SMALL.__dict__, "seed": 4}), workers=1)
    assert (other.folder / "xtd10/XTD10/test_1kcaptions_en.txt").read_text() != (world.folder / "xtd10/XTD10/test_1kcaptions_en.txt").read_text()


def _split_captions(world) -> dict[str, dict[str, list[str]]]:
    """split -> language -> captions; test read back from the XTD10 files."""
    out: dict[str, dict[str, list[str]]] = {"train": {}, "val": {}}
    for row in world.rows:
        out[row["split"]].setdefault(row["language"], []).append(row["caption"])
    out["test"] = {lang: (world.folder / "xtd10" / sub / f"test_1kcaptions_{code}.txt").read_text(encoding="utf-8").splitlines()
                   for lang, (sub, code) in FILES.items()}
    return out


@pytest.mark.parametrize("crowded", [False, True])
def test_val_and_test_captions_never_occur_in_train(world, tmp_path, crowded):
    if crowded:
        world = generate_world(tmp_path / "crowded", CROWDED, workers=1)
        # the same splits drawn without exclusion repeat train captions: the check below has teeth
        train = {lang: set(c) for lang, c in _split_captions(world)["train"].items()}
        repeats = sum(caption in train[lang]
                      for split, n in (("val", CROWDED.val_scenes), ("test", CROWDED.test_scenes))
                      for i, (_, plan) in enumerate(clustered_scenes(random.Random(f"{CROWDED.seed}:{split}"), n))
                      for lang, caption in _captions(plan, f"{CROWDED.seed}:{split}:{i}").items())
        assert repeats >= 5
    captions = _split_captions(world)
    for split in ("val", "test"):
        assert len(captions[split]["en"]) == getattr(world.config, f"{split}_scenes")
        for lang, split_captions in captions[split].items():
            assert not set(split_captions) & set(captions["train"][lang]), (split, lang)


def test_train_rows_are_those_the_shipped_clip_was_trained_on(world):
    # digest of SMALL's train rows from world version 1; the exclusion must only change val and test
    train = [{k: v for k, v in r.items() if k != "image_path"} for r in world.rows if r["split"] == "train"]
    digest = hashlib.sha256(json.dumps(train, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
    assert digest == "85832cd42a451b386731465cef37d45d2dcdb8a75965caf43c5fdde93cdb0827"


def test_clustered_scenes_redraws_refused_candidates_and_keeps_clusters():
    asked = []

    def accept(i, plan):  # refuse every one-group caption
        asked.append(i)
        return len(plan.groups) > 1

    scenes = clustered_scenes(random.Random(0), 200, accept=accept)
    assert len(scenes) == 200 and all(len(plan.groups) > 1 for _, plan in scenes)
    assert len({english_key(plan) for _, plan in scenes}) == 200
    assert asked[-1] == 199 and len(asked) > 200  # asked with the index the candidate would get
    assert sum(bool(set(a.objects) & set(b.objects)) for (a, _), (b, _) in zip(scenes, scenes[1:])) > 60
    # accepting everything is the same as no accept at all
    assert clustered_scenes(random.Random(0), 50, accept=lambda i, plan: True) == clustered_scenes(random.Random(0), 50)


def test_val_and_test_images_of_another_version_are_not_reused(tmp_path):
    folder = tmp_path / "w"
    generate_world(folder, SMALL, workers=1)
    image = folder / "xtd10/images/world_test_000000.jpg"
    good = image.read_bytes()
    image.write_bytes(b"stale")
    meta = json.loads((folder / "world.json").read_text())
    (folder / "world.json").write_text(json.dumps({**meta, "world_version": 1}))
    generate_world(folder, SMALL, workers=1)
    assert image.read_bytes() == good


def test_test_set_has_xtd10_layout(world):
    root = world.folder / "xtd10"
    expected = {"XTD10/test_image_names.txt"} | {f"{folder}/test_1kcaptions_{code}.txt" for folder, code in FILES.values()}
    written = {str(p.relative_to(root)) for p in root.rglob("*.txt")}
    assert written == expected
    if SHARED_XTD10.is_dir():  # the same file names as the real copy
        real = {str(p.relative_to(SHARED_XTD10)) for p in SHARED_XTD10.rglob("*.txt")}
        assert written == real
    names = (root / "XTD10/test_image_names.txt").read_text().splitlines()
    assert len(names) == SMALL.test_scenes and all((root / "images" / n).is_file() for n in names)


def test_prepare_xtd10_reads_the_world_test(world, tmp_path):
    result = prepare_dataset("xtd10", PrepareConfig(root=world.folder / "xtd10"), tmp_path / "xtd.parquet")
    table = read_manifest(result.manifest).to_pandas()
    assert table.groupby("language").size().to_dict() == {lang: SMALL.test_scenes for lang in FILES}
    assert table.image_path.notna().all() and result.summary["masked_captions"]["count"] == 0


def test_prepare_cc300k_reads_the_world_train(world, tmp_path):
    root = world.folder / "cc3m"
    translations = {lang: root / "translations" / f"{lang}.txt" for lang in ("de", "ja")}
    config = PrepareConfig(root=root, size=10, seed=1, translations=translations)
    table = read_manifest(prepare_dataset("cc300k", config, tmp_path / "cc.parquet").manifest).to_pandas()
    assert table.groupby("language").size().to_dict() == {"en": 10, "de": 10, "ja": 10}
    # the CC3M export is plan 0 of each train scene: its captions match the world manifest's
    world_en = {r["caption"] for r in world.rows if r["language"] == "ja" and r["sample_id"].endswith("/0/ja")}
    assert set(table[table.language == "ja"].caption) <= world_en


def test_prepare_world_writes_train_and_val(tmp_path):
    config = PrepareConfig(root=tmp_path / "w", size=8, languages=("en", "ru"))
    result = prepare_dataset("world", config, tmp_path / "world.parquet")
    counts = result.summary["rows_per_language_split"]
    assert counts["en"] == {"train": 16, "val": 1000} and set(counts) == {"en", "ru"}


def test_test_descriptions_are_unique_and_clustered():
    rng = random.Random(0)
    scenes = clustered_scenes(rng, 200)
    keys = [english_key(plan) for _, plan in scenes]
    assert len(set(keys)) == 200
    # neighbours in a cluster differ in little: many share an object exactly, random scenes almost never do
    def shared(pairs):
        return sum(bool(set(a.objects) & set(b.objects)) for a, b in pairs)

    clustered = [scene for scene, _ in scenes]
    randoms = [random_scene(rng) for _ in range(200)]
    assert shared(zip(clustered, clustered[1:])) > 60
    assert shared(zip(randoms, randoms[1:])) < 10


def test_full_plans_say_every_size_and_place():
    rng = random.Random(1)
    for _ in range(200):
        plan = plan_for(random_scene(rng), rng, full=True)
        assert all(g.size is not None for g in plan.groups)
        if plan.relation is None:
            assert all(g.position is not None for g in plan.groups if g.count == 1)


def test_render_draws_the_colours_asked_for():
    from mlclip_cli.world.semantics import Scene, SceneObject

    image = render(Scene((SceneObject("square", "red", "large", 1, 1),), "grey"), random.Random(0))
    assert image.size == (64, 64)
    r, g, b = image.getpixel((32, 32))
    assert r > 180 and g < 80 and b < 80
    r, g, b = image.getpixel((2, 2))
    assert abs(r - 128) < 30 and abs(g - 128) < 30
