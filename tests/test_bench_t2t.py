"""`mlclip bench ... --task t2t`: text-to-text retrieval between each language and its parallel English.

Exact figures with a stub text encoder on a hand-made manifest, FAISS against the brute-force
definition, the result schema and report, one CLI run on a tiny world with no images, the bad
inputs, and the real XTD10 captions when ../shared has them.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from mlclip_cli.artifacts import manifest_from_rows, read_manifest, write_manifest
from mlclip_cli.bench.clip_benchmark import to_clip_benchmark
from mlclip_cli.bench.report import build_report
from mlclip_cli.bench.result import T2T_KEYS, read_bench_result, validate_bench_result, write_bench_result
from mlclip_cli.bench.run import BenchConfig, run_bench
from mlclip_cli.errors import ArtifactError, MlclipError
from mlclip_cli.metrics import paired_text_ranks, recall_at
from mlclip_cli.retrieval import paired_text_recall

from conftest import SHARED_XTD10, world_with_micro_clip

E = np.eye(8, dtype=np.float32)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


# caption -> embedding. English sentence i is the basis vector e_i. German: de0 and de1 sit on
# their English sentence; de2 leans to en3 (0.8) more than to its own en2 (0.6) and de3 to en0
# (0.8) more than to its own en3 (0.6): language->English R@1 = 2/4 = 50. English->German: en0,
# en1, en2 find their own first; en3 sees de2 (0.8) before de3 (0.6): R@1 = 3/4 = 75.
VECTORS = {
    "en0": E[0], "en1": E[1], "en2": E[2], "en3": E[3],
    "de0": E[0], "de1": E[1], "de2": _unit(0.6 * E[2] + 0.8 * E[3]), "de3": _unit(0.6 * E[3] + 0.8 * E[0]),
    # French: fr0 translates en0; fr1 has a pair_id no English sentence has (a gallery distractor only)
    "fr0": E[0], "fr1": _unit(E[1] + 0.1 * E[5]),
    # Japanese: no pair_id at all -> skipped with a note
    "ja0": E[0], "ja1": E[1],
    # the train split: must never be read for --split val
    "en-train": E[4], "de-train": E[4],
}


class StubTextEncoder:
    """Text only: encode_texts maps each caption to its fixed vector. Any image method fails."""

    name = "stub"

    def __init__(self):
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def text_identity(self, language: str) -> str:
        return "stub-encoder"

    def encode_texts(self, captions: list[str], language: str) -> np.ndarray:
        self.calls.append((language, tuple(captions)))
        return np.stack([VECTORS[c] for c in captions])

    def encode_images(self, paths):
        raise AssertionError("t2t must never encode images")

    @property
    def image_identity(self):
        raise AssertionError("t2t must never ask for the image tower")

    @property
    def preprocess_description(self):
        raise AssertionError("t2t must never ask for the image preprocessing")


def _row(caption: str, language: str, pair: str | None, split: str = "val") -> dict:
    return {"sample_id": f"{split}/{caption}", "image_id": f"img-{pair or caption}", "image_path": None,
            "language": language, "caption": caption, "split": split, "source": "multi30k", "pair_id": pair}


def _tiny_manifest(path, rows=None):
    if rows is None:
        rows = [_row(f"en{i}", "en", f"p{i}") for i in range(4)]
        rows += [_row(f"de{i}", "de", f"p{i}") for i in range(4)]
        rows += [_row("fr0", "fr", "p0"), _row("fr1", "fr", "fr-only")]
        rows += [_row("ja0", "ja", None), _row("ja1", "ja", None)]
        rows += [_row("en-train", "en", "t0", "train"), _row("de-train", "de", "t0", "train")]
    return write_manifest(manifest_from_rows(rows), path)


def _config(tmp_path, manifest, **kw) -> BenchConfig:
    return BenchConfig(**{"benchmark": "multi30k", "manifest": manifest, "out_dir": tmp_path / "results",
                          "features_dir": tmp_path / "features", "task": "t2t", "split": "val", **kw})


def test_t2t_recall_is_exact_with_a_stub_text_encoder(tmp_path):
    manifest = _tiny_manifest(tmp_path / "tiny.parquet")
    encoder = StubTextEncoder()
    bench = run_bench(_config(tmp_path, manifest), encoder=encoder)
    result = read_bench_result(bench.json_path)

    assert result["task"] == "t2t" and result["split"] == "val" and result["schema_version"] == 2
    assert set(result["languages"]) == {"de", "fr"}  # no en -> en; ja has no parallel English
    assert result["skipped_languages"] == {"ja": "no caption shares a pair_id with an English caption"}
    assert bench.skipped == result["skipped_languages"]
    de = result["languages"]["de"]
    assert set(de["metrics"]) == set(T2T_KEYS)
    assert de["metrics"]["target_to_english_recall@1"] == 50.0
    assert de["metrics"]["target_to_english_recall@5"] == 100.0
    assert de["metrics"]["english_to_target_recall@1"] == 75.0
    assert de["metrics"]["english_to_target_recall@10"] == 100.0
    assert de["metrics"]["mean_recall"] == pytest.approx((50 + 100 + 100 + 75 + 100 + 100) / 6)
    assert (de["captions"], de["english_captions"], de["target_queries"], de["english_queries"]) == (4, 4, 4, 4)
    fr = result["languages"]["fr"]
    assert (fr["captions"], fr["english_captions"], fr["target_queries"], fr["english_queries"]) == (2, 4, 1, 1)
    assert fr["metrics"]["target_to_english_recall@1"] == 100.0 and fr["metrics"]["english_to_target_recall@1"] == 100.0
    assert result["average"]["target_to_english_recall@1"] == 75.0  # mean of de 50 and fr 100
    assert result["model_identity"] == "stub-encoder" and result["text_encoder"] == "stub"
    assert "pair_id" in result["captions_policy"]
    assert bench.json_path.name.startswith("multi30k-val-t2t-") and bench.png_path.read_bytes()[:4] == b"\x89PNG"

    # only encode_texts, each language under its own tag, English once, the train split never
    encoded = {language: captions for language, captions in encoder.calls}
    assert [language for language, _ in encoder.calls] == ["en", "de", "fr"]
    assert encoded["en"] == ("en0", "en1", "en2", "en3") and "en-train" not in sum(encoded.values(), ())


def test_asking_for_english_or_one_language_only(tmp_path):
    manifest = _tiny_manifest(tmp_path / "tiny.parquet")
    bench = run_bench(_config(tmp_path, manifest, languages=("en", "de")), encoder=StubTextEncoder())
    assert set(bench.result["languages"]) == {"de"} and set(bench.skipped) == {"en"}
    with pytest.raises(MlclipError, match=r"no 'val' caption in ja shares a pair_id with an English caption"):
        run_bench(_config(tmp_path, manifest, languages=("ja",)), encoder=StubTextEncoder())
    with pytest.raises(MlclipError, match="no 'val' caption shares a pair_id"):
        run_bench(_config(tmp_path, manifest, languages=("en",)), encoder=StubTextEncoder())


def test_paired_recall_with_faiss_equals_the_brute_force_definition():
    rng = np.random.default_rng(3)
    gallery_pairs = [f"p{i}" for i in range(200)] + [None] * 20 + [f"p{i}" for i in range(30)]  # 30 pairs twice
    gallery = rng.normal(size=(len(gallery_pairs), 16)).astype(np.float32)
    pair_of = {}
    for row, pair in enumerate(gallery_pairs):
        pair_of.setdefault(pair, row)
    query_pairs = [f"p{i}" for i in rng.permutation(200)[:150]]
    queries = gallery[[pair_of[p] for p in query_pairs]] + rng.normal(scale=1.3, size=(150, 16)).astype(np.float32)
    fast = paired_text_recall(queries, gallery, query_pairs, gallery_pairs)
    ranks = paired_text_ranks(queries, gallery, query_pairs, gallery_pairs)
    for k in (1, 5, 10):
        assert fast[k] == pytest.approx(recall_at(ranks, k), abs=1e-9)
    assert 0 < fast[1] < fast[10] < 100


def test_t2t_results_validate_and_never_mix_with_image_text_in_the_report(tmp_path):
    manifest = _tiny_manifest(tmp_path / "tiny.parquet")
    t2t = run_bench(_config(tmp_path, manifest), encoder=StubTextEncoder())
    good = json.loads(t2t.json_path.read_text())
    broken = copy.deepcopy(good)
    del broken["languages"]["de"]["metrics"]["english_to_target_recall@5"]
    with pytest.raises(ArtifactError, match="languages.de.metrics.english_to_target_recall@5 is missing"):
        validate_bench_result(broken)
    broken = copy.deepcopy(good)
    del broken["task"]
    with pytest.raises(ArtifactError, match="key 'task' is missing"):
        validate_bench_result(broken)
    with pytest.raises(MlclipError, match="CLIP_benchmark has no text-to-text task"):
        to_clip_benchmark(good)

    # an image-text result as schema version 1 wrote it (no `task`): read as t2i
    metrics = {f"{way}_retrieval_recall@{k}": 40.0 for way in ("image", "text") for k in (1, 5, 10)}
    metrics["mean_recall"] = 40.0
    t2i = {key: good[key] for key in ("artifact", "benchmark", "dataset", "manifest", "subset", "model",
                                      "model_identity", "text_encoder", "index", "created", "mlclip_version")}
    t2i |= {"schema_version": 1, "split": "test", "captions_policy": "all captions kept",
            "languages": {lang: {"images": 4, "captions": 4, "metrics": metrics} for lang in ("en", "de")},
            "average": metrics}
    old = write_bench_result(t2i, tmp_path / "old-t2i.json")
    report = build_report([old, t2t.json_path])
    assert list(report.tables) == ["t2i", "t2t"]
    assert list(report.tables["t2i"].columns) == ["en", "de", "mean"]
    assert list(report.tables["t2t"].columns) == ["de", "fr", "mean"]
    assert report.tables["t2t"].index[0] == "multi30k val t2t mlclip-tiny (stub)"
    assert report.tables["t2t"].loc["multi30k val t2t mlclip-tiny (stub)", "mean"] == pytest.approx(good["average"]["mean_recall"])
    assert report.table is report.tables["t2i"]
    assert set(report.long.task) == {"t2i", "t2t"}
    assert set(report.long[report.long.task == "t2t"].metric) == set(T2T_KEYS)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny world manifest (train + val, with images) and a copy of it with no image at all."""
    made = world_with_micro_clip(tmp_path_factory.mktemp("t2t"), 8, 8, 12)
    rows = read_manifest(made["manifest"]).to_pylist()
    made["no_images"] = write_manifest(manifest_from_rows([{**row, "image_path": None} for row in rows]),
                                       made["root"] / "no-images.parquet")
    return made


def test_cli_t2t_end_to_end_without_images_and_the_report(world, run_cli, tmp_path):
    base = ("bench", "multi30k", "--model", world["model"], "--split", "val")
    result = run_cli(*base, "--task", "t2t", "--manifest", str(world["no_images"]))
    assert result.code == 0, result.err
    assert "text-to-text" in result.out and "t2e R@1" in result.out and "e2t R@10" in result.out
    files = list((tmp_path / "ws" / "results").glob("multi30k-val-t2t-*.json"))
    assert len(files) == 1
    data = read_bench_result(files[0])
    assert data["task"] == "t2t" and data["split"] == "val"
    assert set(data["languages"]) == {"de", "fr", "es", "it", "ru", "pl", "tr", "ko", "zh", "ja"}
    for entry in data["languages"].values():
        assert (entry["captions"], entry["english_captions"], entry["target_queries"]) == (8, 8, 8)
        assert all(0 <= entry["metrics"][key] <= 100 for key in T2T_KEYS)
    assert not list((tmp_path / "ws" / "features").rglob("image-*.parquet"))  # no image feature, ever

    # the image-text bench of the same split (images present) is the default and goes to its own table
    result = run_cli(*base, "--manifest", str(world["manifest"]), "--langs", "en,de")
    assert result.code == 0, result.err
    t2i = [p for p in (tmp_path / "ws" / "results").glob("multi30k-val-*.json") if p != files[0]]
    assert len(t2i) == 1 and read_bench_result(t2i[0])["task"] == "t2i"
    result = run_cli("bench", "report", str(t2i[0]), str(files[0]), "--csv", str(tmp_path / "r.csv"))
    assert result.code == 0, result.err
    assert "(image-text)" in result.out and "(text-to-text" in result.out
    header = (tmp_path / "r.csv").read_text().splitlines()[0].split(",")
    assert "task" in header


def test_cli_bad_inputs_are_one_line_errors(world, run_cli, tmp_path):
    def error(*args: str, code: int = 1) -> str:
        result = run_cli("bench", *args, "--model", world["model"])
        assert result.code == code, (result.out, result.err)
        assert result.err.count("\n") == 1 and result.err.startswith("error: ") and "Traceback" not in result.err
        return result.err

    no_english = write_manifest(manifest_from_rows([r for r in read_manifest(world["no_images"]).to_pylist()
                                                    if r["language"] != "en"]), tmp_path / "no-en.parquet")
    assert "no English captions in its 'val' split: --task t2t" in error(
        "multi30k", "--task", "t2t", "--split", "val", "--manifest", str(no_english))
    unpaired = write_manifest(manifest_from_rows([{**r, "pair_id": None} for r in read_manifest(world["no_images"]).to_pylist()]),
                              tmp_path / "unpaired.parquet")
    assert "shares a pair_id with an English caption: --task t2t needs parallel English" in error(
        "multi30k", "--task", "t2t", "--split", "val", "--manifest", str(unpaired))
    # the world has train and val only: the benchmark's own test split is missing, as is any other
    assert "has no 'test' split (it has train, val; choose one with --split)" in error("xtd", "--task", "t2t", "--manifest", str(world["no_images"]))
    assert "has no 'test_2016_flickr' split (it has train, val;" in error(
        "multi30k", "--task", "t2t", "--split", "test_2016_flickr", "--manifest", str(world["no_images"]))
    assert "no 'val' captions with images" in error("multi30k", "--split", "val", "--manifest", str(world["no_images"]))
    assert "CLIP_benchmark has no text-to-text task" in error(
        "multi30k", "--task", "t2t", "--split", "val", "--format", "clip_benchmark", "--manifest", str(world["no_images"]),
        code=2)
    assert "Invalid value for '--task': must be t2i or t2t, not 'i2i'" in error(
        "multi30k", "--task", "i2i", "--manifest", str(world["no_images"]), code=2)
    assert not (tmp_path / "ws" / "results").exists()


@pytest.mark.skipif(not SHARED_XTD10.is_dir(), reason="no real XTD10 copy in ../shared/data/xtd10")
def test_real_xtd10_t2t_with_the_shipped_tiny_clip(tmp_path):
    """The real XTD10 captions (no images): 1000 English sentences, German less its masked placeholder lines."""
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    manifest = prepare_dataset("xtd10", PrepareConfig(root=SHARED_XTD10), tmp_path / "xtd10.parquet").manifest
    bench = run_bench(BenchConfig(benchmark="xtd", manifest=manifest, out_dir=tmp_path, features_dir=tmp_path,
                                  languages=("de",), task="t2t", device="cpu"))
    de = bench.result["languages"]["de"]
    german = int((read_manifest(manifest).to_pandas().language == "de").sum())
    assert 990 < german < 1000  # MIC's "Could not translate" / "?" lines are masked by prepare
    assert (de["captions"], de["english_captions"], de["target_queries"], de["english_queries"]) == (german, 1000, german, german)
    assert all(0 <= de["metrics"][key] <= 100 for key in T2T_KEYS)
    assert de["metrics"]["target_to_english_recall@1"] <= de["metrics"]["target_to_english_recall@10"]
