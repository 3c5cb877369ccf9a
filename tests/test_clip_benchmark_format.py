"""`--format clip_benchmark`: bench results in CLIP_benchmark's own per-language result shape."""

import copy
import csv
import json
import os

import pytest
import torch

from mlclip_cli.bench.clip_benchmark import (model_and_pretrained, output_name, to_clip_benchmark,
                                             write_clip_benchmark)
from mlclip_cli.errors import ArtifactError

CLIP_BENCHMARK_KEYS = {f"{way}_retrieval_recall@{k}" for way in ("image", "text") for k in (1, 5, 10)}


def _metrics(base: float, parallel: bool = True) -> dict:
    metrics = {"image_retrieval_recall@1": base, "image_retrieval_recall@5": base + 10,
               "image_retrieval_recall@10": base + 20, "text_retrieval_recall@1": base + 1,
               "text_retrieval_recall@5": base + 11, "text_retrieval_recall@10": base + 21}
    metrics["mean_recall"] = sum(metrics.values()) / 6
    if parallel:
        metrics |= {"text_to_text_recall@1": 90.0, "text_to_text_recall@5": 95.0, "text_to_text_recall@10": 97.5}
    return metrics


def _result(benchmark="xtd", model="ViT-B-32:openai", identity="ViT-B-32:openai", text_encoder="frozen",
            subset=None, languages=("en", "de", "ja")) -> dict:
    per_language = {lang: {"images": 1000, "captions": 1000, "metrics": _metrics(40.0 + i)}
                    for i, lang in enumerate(languages)}
    keys = [k for k in per_language[languages[0]]["metrics"] if not k.startswith("text_to_text")]
    return {
        "artifact": "bench", "schema_version": 1, "benchmark": benchmark, "dataset": "xtd10",
        "manifest": "/ws/manifests/xtd10.parquet", "split": "test", "subset": subset, "model": model,
        "model_identity": identity, "text_encoder": text_encoder, "index": "flat",
        "captions_policy": "all captions kept", "created": "2025-01-01T00:00:00+00:00", "mlclip_version": "0.1.0",
        "languages": per_language,
        "average": {k: sum(v["metrics"][k] for v in per_language.values()) / len(per_language) for k in keys},
    }


def test_conversion_gives_clip_benchmark_keys_as_fractions():
    result = _result()
    dumps = to_clip_benchmark(result)
    assert set(dumps) == {"en", "de", "jp"}  # CLIP_benchmark's XTD10 calls Japanese "jp"
    for code, dump in dumps.items():
        assert {"dataset", "model", "pretrained", "task", "metrics", "language"} <= set(dump)
        assert dump["dataset"] == "xtd10" and dump["task"] == "zeroshot_retrieval" and dump["language"] == code
        assert (dump["model"], dump["pretrained"]) == ("ViT-B-32", "openai")
        assert set(dump["metrics"]) == CLIP_BENCHMARK_KEYS  # no mean_recall, no text->text in metrics
        ours = result["languages"][dump["mlclip"]["language"]]["metrics"]
        for key, value in dump["metrics"].items():
            assert 0 <= value <= 1 and value == pytest.approx(ours[key] / 100)
        extra = dump["mlclip"]["extra_metrics"]
        assert extra["mean_recall"] == pytest.approx(ours["mean_recall"] / 100)
        assert extra["text_to_text_recall@1"] == pytest.approx(0.9)
    assert dumps["jp"]["mlclip"]["language"] == "ja"
    assert result == _result()  # the input is left alone


def test_dataset_names_follow_clip_benchmark_where_it_has_the_data_set():
    def dataset(benchmark, subset=None):
        return next(iter(to_clip_benchmark(_result(benchmark=benchmark, subset=subset, languages=("ja",))).values()))

    assert dataset("xm3600")["dataset"] == "crossmodal3600" and dataset("xm3600")["language"] == "ja"
    assert dataset("coco")["dataset"] == dataset("coco", "5k")["dataset"] == "mscoco_captions"
    assert dataset("coco", "1k")["dataset"] == "mscoco_captions_1k"
    assert dataset("multi30k")["dataset"] == "multi30k" and dataset("xflickrco")["dataset"] == "xflickrco"


@pytest.mark.parametrize("model, identity, encoder, expected", [
    ("ViT-B-32:openai", "ViT-B-32:openai", "frozen", ("ViT-B-32", "openai")),
    ("ViT-B-32:/w/ft.safetensors", "ViT-B-32:/w/ft.safetensors", "frozen", ("ViT-B-32", "/w/ft.safetensors")),
    ("mlclip-tiny", "mlclip-tiny@sha256:0123456789abcdef", "frozen", ("mlclip-tiny", "mlclip")),
    ("ws/models/tiny-v2", "mlclip-tiny@sha256:0123456789abcdef", "frozen", ("mlclip-tiny", "tiny-v2")),
    ("ws/extensions/mla", "mlclip-tiny@sha256:0123456789abcdef", "mla", ("mla", "mlclip-mla")),
    ("ws/continual/run/extension/", "ViT-B-32:openai", "cll-clip", ("extension", "mlclip-cll-clip")),
    ("hf-hub:org/clip", "hf-hub:org/clip", "frozen", ("hf-hub:org/clip", "hf-hub")),
])
def test_model_spec_splits_into_model_and_pretrained(model, identity, encoder, expected):
    assert model_and_pretrained(model, identity, encoder) == expected


def test_filenames_follow_clip_benchmark_default_template(tmp_path):
    paths = write_clip_benchmark(_result(), tmp_path)
    assert sorted(p.name for p in paths) == [f"xtd10_openai_ViT-B-32_{lang}_zeroshot_retrieval.json"
                                             for lang in ("de", "en", "jp")]
    assert all(p.parent == tmp_path for p in paths) and not list(tmp_path.glob(".*.tmp"))
    ext = write_clip_benchmark(_result(model="ws/extensions/mla", identity="mlclip-tiny@sha256:ab", text_encoder="mla",
                                       benchmark="xm3600", languages=("fil",)), tmp_path)
    assert [p.name for p in ext] == ["crossmodal3600_mlclip-mla_mla_fil_zeroshot_retrieval.json"]
    weights = {"dataset": "xtd10", "model": "ViT-B-32", "pretrained": "/w/ft.safetensors", "task": "zeroshot_retrieval",
               "language": "en"}
    assert output_name(weights) == "xtd10_ft.safetensors_ViT-B-32_en_zeroshot_retrieval.json"  # base name, as upstream
    hub = dict(weights, model="hf-hub:org/clip", pretrained="hf-hub")
    assert "/" not in output_name(hub)


def _clip_benchmark_build(folder) -> list[dict]:
    """How CLIP_benchmark's `build` (clip_benchmark/cli.py main_build) reads results: every *.json of
    a folder, metrics and the other top-level keys into one row, plus model_fullname."""
    rows = []
    for name in os.listdir(folder):
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                data = json.load(f)
            row = dict(data["metrics"])
            row.update(data)
            del row["metrics"]
            row["model_fullname"] = row["model"] + " " + row["pretrained"]
            rows.append(row)
    return rows


def test_clip_benchmark_aggregation_reads_the_written_files(tmp_path):
    result = _result()
    write_clip_benchmark(result, tmp_path)
    rows = {row["language"]: row for row in _clip_benchmark_build(tmp_path)}
    assert set(rows) == {"en", "de", "jp"}
    for code, row in rows.items():
        ours = result["languages"]["ja" if code == "jp" else code]["metrics"]
        assert row["image_retrieval_recall@5"] == pytest.approx(ours["image_retrieval_recall@5"] / 100)
        assert row["text_retrieval_recall@1"] == pytest.approx(ours["text_retrieval_recall@1"] / 100)
        assert (row["dataset"], row["model"], row["pretrained"], row["task"]) == (
            "xtd10", "ViT-B-32", "openai", "zeroshot_retrieval")
        assert row["model_fullname"] == "ViT-B-32 openai"
    fieldnames = set().union(*rows.values())  # and its csv.DictWriter takes the extra key too
    with open(tmp_path / "benchmark.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted(fieldnames))
        writer.writeheader()
        writer.writerows(rows.values())
    table = list(csv.DictReader(open(tmp_path / "benchmark.csv")))
    assert len(table) == 3 and float(table[0]["image_retrieval_recall@10"]) <= 1


def test_a_broken_result_is_refused_before_anything_is_written(tmp_path):
    broken = copy.deepcopy(_result())
    broken["languages"]["en"]["metrics"]["image_retrieval_recall@5"] = 250.0
    with pytest.raises(ArtifactError, match="not a percentage"):
        write_clip_benchmark(broken, tmp_path)
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset
    from mlclip_cli.models.clip import create_untrained
    from mlclip_cli.training.checkpoint import save_weights
    from mlclip_cli.world.generate import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("cbworld")
    config = WorldConfig(seed=2, train_scenes=8, val_scenes=8, test_scenes=12)
    generated = generate_world(root / "world", config, workers=1)
    manifest = prepare_dataset("xtd10", PrepareConfig(root=generated.folder / "xtd10"), root / "xtd10.parquet").manifest
    torch.manual_seed(0)
    save_weights(create_untrained("mlclip-micro"), root / "micro", {"model_name": "mlclip-micro"})
    return {"manifest": manifest, "model": str(root / "micro")}


def test_cli_bench_format_clip_benchmark(world, run_cli, tmp_path):
    base = ("bench", "xtd", "--manifest", str(world["manifest"]), "--model", world["model"], "--langs", "en,ja")
    result = run_cli(*base, "--format", "clip_benchmark")
    assert result.code == 0, result.err
    results = tmp_path / "ws" / "results"
    assert len(list(results.glob("xtd-*.json"))) == 1 and len(list(results.glob("xtd-*.png"))) == 1
    written = sorted(p.name for p in (results / "clip_benchmark").glob("*.json"))
    assert written == ["xtd10_micro_mlclip-micro_en_zeroshot_retrieval.json",
                       "xtd10_micro_mlclip-micro_jp_zeroshot_retrieval.json"]
    assert "CLIP_benchmark format (2 files)" in result.out and written[0] in result.out
    rows = _clip_benchmark_build(results / "clip_benchmark")
    assert {row["language"] for row in rows} == {"en", "jp"}
    assert all(set(CLIP_BENCHMARK_KEYS) <= set(row) and 0 <= row["image_retrieval_recall@5"] <= 1 for row in rows)

    result = run_cli(*base, "--format", "csv")
    assert result.code == 2 and result.err.count("\n") == 1
    assert "error: Invalid value for '--format': must be mlclip or clip_benchmark, not 'csv'" in result.err
