"""`mlclip export --format onnx`: onnxruntime gives torch's embeddings (cosine >= 0.9999) for every
exported language and the images; files are listed with their hashes; bad input is one line."""

from __future__ import annotations

import hashlib
import json

import pytest

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.mla.method import MlaConfig, train_mla
from mlclip_cli.mla.train import LoopConfig, StageConfig

from conftest import assert_one_line_error, world_with_micro_clip


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    world = world_with_micro_clip(tmp_path_factory.mktemp("onnx"), 30, 6, 8)
    out = world["root"] / "mla"
    loop = LoopConfig(stages="nlt,le", nlt=StageConfig(8, 5e-3, 0.1), le=StageConfig(2, 1e-3, 0.1), batch_size=8)
    train_mla(MlaConfig(manifest=world["manifest"], out=out, languages=("de", "ja"), features_root=world["root"] / "f",
                        model=world["model"], vocab_size=300, vocab_extension="always", loop=loop))
    return {**world, "extension": out}


def test_onnx_matches_torch_for_every_language_and_the_images(extension, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from mlclip_cli.export_onnx import ExportConfig, check_parity, export_onnx

    result = export_onnx(ExportConfig(extension["extension"], out=tmp_path / "onnx"))
    assert result.languages == ["de", "ja", "en"]
    rows = read_manifest(extension["manifest"]).to_pandas()
    # long and short captions: the sequence axis is dynamic, up to the full context
    captions = {lang: rows[rows.language == lang].caption.tolist()[:40] + ["x " * 80] for lang in result.languages}
    images = rows[rows.image_path.notna()].drop_duplicates("image_id").image_path.tolist()[:20]
    report = check_parity(result.out, extension["extension"], captions, images, batch=16)
    assert set(report) == {"de", "ja", "en", "image"}
    for part, scores in report.items():
        assert scores["min_cosine"] >= 0.9999, (part, scores)
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"image.onnx", "text-de.onnx", "text-ja.onnx", "text-en.onnx",
                                      "tokenizer-de.json", "tokenizer-ja.json"}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((result.out / name).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["text"]["de"]["inputs"] == {"ids": "int64 [batch, seq]", "lengths": "int64 [batch]"}
    assert not list(tmp_path.glob(".onnx.*"))  # no temporary folder left behind


def test_cli_export_prints_files_and_parity(extension, run_cli, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = run_cli("export", "--format", "onnx", "--extension", str(extension["extension"]), "--langs", "ja",
                     "--out", str(tmp_path / "ja"), "--check", str(extension["manifest"]), "--check-rows", "10")
    assert result.code == 0, result.err
    assert "text-ja.onnx" in result.out and "onnxruntime vs torch" in result.out
    assert sorted(p.name for p in (tmp_path / "ja").iterdir()) == ["image.onnx", "manifest.json", "text-ja.onnx",
                                                                  "tokenizer-ja.json"]


@pytest.mark.parametrize("args, fragment", [
    (("--format", "tflite"), "unknown --format 'tflite'"),
    (("--langs", "xx"), "has no pack for xx"),
])
def test_bad_export_input_is_one_line(extension, run_cli, tmp_path, args, fragment):
    if "--langs" in args:
        pytest.importorskip("onnxscript")
    result = run_cli("export", "--extension", str(extension["extension"]), "--out", str(tmp_path / "x"), *args)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "x").exists()


def test_export_of_a_folder_that_is_no_extension_is_one_line(run_cli, tmp_path):
    result = run_cli("export", "--extension", str(tmp_path))
    assert_one_line_error(result, "no extension here")


def test_missing_onnx_packages_name_the_extra(extension, run_cli, monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def without_onnx(name, *args, **kwargs):
        if name in ("onnx", "onnxscript"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnx)
    result = run_cli("export", "--extension", str(extension["extension"]), "--out", str(tmp_path / "x"))
    assert_one_line_error(result, "pip install -e '.[onnx]'")
