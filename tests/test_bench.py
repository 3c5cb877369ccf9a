"""features, bench, embed on a tiny world with an untrained micro CLIP (fast; behaviour, not quality)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from mlclip_cli.artifacts import manifest_from_rows, read_table, write_manifest, EMBEDDINGS
from mlclip_cli.bench.report import build_report
from mlclip_cli.bench.result import read_bench_result, validate_bench_result
from mlclip_cli.bench.run import BenchConfig, run_bench
from mlclip_cli.datasets.base import PrepareConfig
from mlclip_cli.datasets.prepare import prepare_dataset
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.errors import ArtifactError, MlclipError
from mlclip_cli.features import FeaturesConfig, compute_features, load_features
from mlclip_cli.metrics import retrieval_metrics
from mlclip_cli.models.clip import create_untrained, load_clip
from mlclip_cli.retrieval import faiss_retrieval_metrics
from mlclip_cli.training.checkpoint import save_weights
from mlclip_cli.world.generate import WorldConfig, generate_world


def _checkpoint(folder, seed):
    torch.manual_seed(seed)
    save_weights(create_untrained("mlclip-micro"), folder, {"model_name": "mlclip-micro"})
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    world = generate_world(root / "world", WorldConfig(seed=2, train_scenes=8, val_scenes=8, test_scenes=30), workers=1)
    manifest = prepare_dataset("xtd10", PrepareConfig(root=world.folder / "xtd10"), root / "xtd10.parquet").manifest
    return {"root": root, "manifest": manifest, "model": str(_checkpoint(root / "micro", 0)),
            "other": str(_checkpoint(root / "micro2", 1))}


def test_faiss_agrees_with_brute_force_with_several_captions_per_image():
    rng = np.random.default_rng(0)
    caption_image = np.concatenate([np.arange(300), rng.integers(0, 300, 500)])
    image = rng.normal(size=(300, 16)).astype(np.float32)
    text = image[caption_image] + rng.normal(scale=1.2, size=(800, 16)).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    exact, fast = retrieval_metrics(text, image, caption_image), faiss_retrieval_metrics(text, image, caption_image)
    assert fast.keys() == exact.keys()
    for key in exact:
        assert fast[key] == pytest.approx(exact[key], abs=1e-9), key
    approx = faiss_retrieval_metrics(text, image, caption_image, "hnsw")
    assert approx["mean_recall"] == pytest.approx(exact["mean_recall"], abs=2.0)


def test_features_resume_after_interruption_gives_identical_output(setup, tmp_path):
    encoder = FrozenClip.load(setup["model"], "cpu")
    config = dict(manifest=setup["manifest"], languages=("en", "ja"), shard_size=8, batch_size=4)
    straight = compute_features(FeaturesConfig(out=tmp_path / "straight", **config), encoder)
    assert straight.shards_written == 4 + 4 + 4  # 30 images, 30 + 30 captions in shards of 8

    calls = {"n": 0}

    def interrupt(name, done, total):
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        compute_features(FeaturesConfig(out=tmp_path / "split", **config), encoder, progress=interrupt)
    assert not (tmp_path / "split" / "features.json").exists()
    with pytest.raises(ArtifactError, match=r"split: no features.json \(a `mlclip features` run was stopped"):
        load_features(tmp_path / "split", "image")  # the shards there are part of a run, never read as the whole
    resumed = compute_features(FeaturesConfig(out=tmp_path / "split", **config), encoder)
    assert resumed.shards_skipped > 0 and resumed.shards_written < 12
    again = compute_features(FeaturesConfig(out=tmp_path / "split", **config), encoder)
    assert again.shards_written == 0 and again.shards_skipped == 12
    for part in ("image", "text-en", "text-ja"):
        keys_a, a = load_features(tmp_path / "straight", part)
        keys_b, b = load_features(tmp_path / "split", part)
        assert keys_a == keys_b and np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-2)  # normalised, stored as float16


def test_features_from_another_model_are_refused(setup, tmp_path):
    compute_features(FeaturesConfig(manifest=setup["manifest"], out=tmp_path / "f"), FrozenClip.load(setup["model"], "cpu"))
    other = load_clip(setup["other"]).identity
    with pytest.raises(ArtifactError, match="features were made by 'mlclip-micro@sha256:.*', not by 'mlclip-micro@sha256:"):
        load_features(tmp_path / "f", "image", other)
    with pytest.raises(ArtifactError, match="images were preprocessed as .*, not as 'Resize\\(224\\)'"):
        load_features(tmp_path / "f", "image", preprocess="Resize(224)")
    # and a shard from another model is recomputed, not reused
    result = compute_features(FeaturesConfig(manifest=setup["manifest"], out=tmp_path / "f"), FrozenClip.load(setup["other"], "cpu"))
    assert result.shards_skipped == 0


def test_bench_writes_valid_json_and_png(setup, tmp_path):
    config = BenchConfig(benchmark="xtd", manifest=setup["manifest"], out_dir=tmp_path / "results",
                         features_dir=tmp_path / "features", languages=("all",), model=setup["model"])
    result = run_bench(config)
    data = read_bench_result(result.json_path)
    assert set(data["languages"]) == {"en", "de", "fr", "es", "it", "ru", "pl", "tr", "ko", "zh", "ja"}
    en = data["languages"]["en"]
    assert en["images"] == 30 and en["captions"] == 30
    assert en["metrics"]["text_to_text_recall@1"] == 100.0  # English finds itself
    assert "all captions" in data["captions_policy"]
    assert result.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same features, straight from the cache, give the same numbers as the metrics module
    keys, image = load_features(next((tmp_path / "features").rglob("features.json")).parent, "image")
    assert len(keys) == 30
    report = build_report([result.json_path, result.json_path])
    assert report.table.shape == (2, 12) and set(report.long.metric) >= {"mean_recall", "text_retrieval_recall@5"}


def test_bench_rejects_bad_requests(setup, tmp_path):
    base = dict(manifest=setup["manifest"], out_dir=tmp_path, features_dir=tmp_path, model=setup["model"])
    with pytest.raises(MlclipError, match="no test captions in xx"):
        run_bench(BenchConfig(benchmark="xtd", languages=("xx",), **base))
    with pytest.raises(MlclipError, match="unknown benchmark"):
        run_bench(BenchConfig(benchmark="nope", **base))
    with pytest.raises(MlclipError, match="has no subsets"):
        run_bench(BenchConfig(benchmark="xtd", subset="1k", **base))


def test_bench_schema_catches_broken_results(setup, tmp_path):
    config = BenchConfig(benchmark="xtd", manifest=setup["manifest"], out_dir=tmp_path, features_dir=tmp_path,
                         languages=("en",), model=setup["model"])
    good = json.loads(run_bench(config).json_path.read_text())
    validate_bench_result(good)
    broken = json.loads(json.dumps(good))
    del broken["languages"]
    with pytest.raises(ArtifactError, match="key 'languages' is missing"):
        validate_bench_result(broken)
    broken = json.loads(json.dumps(good))
    broken["languages"]["en"]["metrics"]["image_retrieval_recall@5"] = 250.0
    with pytest.raises(ArtifactError, match=r"languages.en.metrics.image_retrieval_recall@5 .* not a percentage"):
        validate_bench_result(broken)
    broken = json.loads(json.dumps(good))
    broken["subset"] = 5
    with pytest.raises(ArtifactError, match="key 'subset' has the wrong type"):
        validate_bench_result(broken)


def test_cli_features_embed_and_bench(setup, run_cli, tmp_path):
    result = run_cli("features", str(setup["manifest"]), "--model", setup["model"], "--langs", "en,de")
    assert result.code == 0, result.err
    assert "text-de: 30 rows" in result.out
    texts = tmp_path / "texts.txt"
    texts.write_text("ein roter Kreis\nzwei blaue Sterne\n", encoding="utf-8")
    out = tmp_path / "emb.parquet"
    result = run_cli("embed", "--lang", "de", "--text-file", str(texts), "--out", str(out), "--model", setup["model"])
    assert result.code == 0, result.err
    table = read_table(out, EMBEDDINGS)
    assert table.column("input").to_pylist() == ["ein roter Kreis", "zwei blaue Sterne"]
    assert len(table.column("embedding")[0]) == 32
    result = run_cli("embed", "--text-file", str(texts), "--out", str(out), "--model", setup["model"])
    assert result.code == 1 and "need a language" in result.err
    result = run_cli("bench", "xtd", "--manifest", str(setup["manifest"]), "--model", setup["model"], "--langs", "en,ja")
    assert result.code == 0, result.err
    files = list((tmp_path / "ws" / "results").glob("xtd-*.json"))
    assert len(files) == 1 and set(json.loads(files[0].read_text())["languages"]) == {"en", "ja"}
    result = run_cli("bench", "report", str(files[0]), "--csv", str(tmp_path / "r.csv"))
    assert result.code == 0 and (tmp_path / "r.csv").is_file()
    result = run_cli("bench", "xtd", "--manifest", str(tmp_path / "missing.parquet"), "--model", setup["model"])
    assert result.code == 1 and "no such manifest; run `mlclip prepare xtd10" in result.err


def test_bench_keeps_every_caption_of_independent_data(setup, tmp_path):
    """An XM3600-like manifest: several independent captions per image, no pair ids."""
    from mlclip_cli.artifacts import read_manifest

    test = read_manifest(setup["manifest"]).to_pandas()
    rows = []
    for _, row in test[test.language.isin(["en", "de"])].iterrows():
        for j in range(2 if row.language == "en" else 3):
            rows.append({**row.to_dict(), "sample_id": f"{row.sample_id}/{j}", "source": "xm3600", "pair_id": None,
                         "caption": row.caption if j == 0 else f"{row.caption} ({j})"})
    manifest = write_manifest(manifest_from_rows(rows), tmp_path / "xm3600.parquet")
    result = run_bench(BenchConfig(benchmark="xm3600", manifest=manifest, out_dir=tmp_path, features_dir=tmp_path,
                                   model=setup["model"])).result
    assert result["languages"]["en"]["captions"] == 60 and result["languages"]["de"]["captions"] == 90
    assert all(k.startswith(("image_", "text_retrieval", "mean")) for k in result["languages"]["de"]["metrics"])

    # the recall comes from the same features the brute-force metrics module would use
    folder = next(tmp_path.rglob("features.json")).parent
    image_keys, image = load_features(folder, "image")
    de = [r for r in rows if r["language"] == "de"]
    keys, text = load_features(folder, "text-de")
    order = {k: i for i, k in enumerate(keys)}
    caption_image = np.array([image_keys.index(r["image_id"]) for r in de])
    exact = retrieval_metrics(text[[order[r["sample_id"]] for r in de]], image, caption_image)
    for key, value in exact.items():
        assert result["languages"]["de"]["metrics"][key] == pytest.approx(value, abs=0.2)


def test_coco_subsets_take_the_first_test_images():
    import pandas as pd

    from mlclip_cli.bench.registry import get_benchmark

    rows = pd.DataFrame({"image_id": [str(i // 5) for i in range(6000)]})  # 1200 images x 5 captions
    coco = get_benchmark("coco")
    assert coco.select(rows, "1k").image_id.nunique() == 1000
    assert list(dict.fromkeys(coco.select(rows, "1k").image_id))[-1] == "999"
    assert len(coco.select(rows, "5k")) == 6000
    with pytest.raises(MlclipError, match="1k or 5k"):
        coco.select(rows, "2k")


def test_trimmed_text_encoding_equals_open_clips_encode_text(setup):
    """FrozenClip cuts each chunk's padding (sorted by length): the same embeddings as open_clip's
    full-context encode_text, in input order, for short, long and cut-at-context captions."""
    from mlclip_cli.encoders import FrozenClip

    encoder = FrozenClip.load(setup["model"], "cpu")
    captions = ["a red circle", "a", " ".join(["blue square left of a green ring"] * 20), "two small crosses",
                "", "a big yellow triangle above a small red star next to the purple ring"] * 30
    ours = encoder.encode_texts(captions, "en")
    with torch.no_grad():
        tokens = encoder.clip.tokenizer(captions)
        theirs = encoder.clip.model.encode_text(tokens, normalize=True).numpy()
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-5
