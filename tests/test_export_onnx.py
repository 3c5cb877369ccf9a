"""`mlclip export --format onnx`: onnxruntime gives torch's embeddings (cosine >= 0.9999) for every
exported language and the images; files are listed with their hashes; bad input is one line."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.mla.method import MlaConfig, extend_mla, train_mla
from mlclip_cli.mla.train import LoopConfig, StageConfig

from conftest import assert_one_line_error, world_with_micro_clip


@pytest.fixture(scope="module")
def extension(tmp_path_factory):
    world = world_with_micro_clip(tmp_path_factory.mktemp("onnx"), 30, 6, 8)
    out = world["root"] / "mla"
    loop = LoopConfig(stages="nlt,le", nlt=StageConfig(8, 5e-3, 0.1), le=StageConfig(2, 1e-3, 0.1), batch_size=8)
    config = MlaConfig(manifest=world["manifest"], out=out, languages=("de", "ja"), features_root=world["root"] / "f",
                       model=world["model"], vocab_size=300, loop=loop)
    train_mla(config)
    # Korean, added later, brings tokens of its own: its pack has its own tokenizer and extra rows
    extend_mla(dataclasses.replace(config, languages=("ko",)))
    assert (out / "packs" / "ko.tokenizer.json").is_file()
    return {**world, "extension": out}


def test_onnx_matches_torch_for_every_language_and_the_images(extension, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from mlclip_cli.export_onnx import ExportConfig, check_parity, export_onnx

    result = export_onnx(ExportConfig(extension["extension"], out=tmp_path / "onnx"))
    assert result.languages == ["de", "ja", "ko", "en"]
    rows = read_manifest(extension["manifest"]).to_pandas()
    # long and short captions: the sequence axis is dynamic, up to the full context
    captions = {lang: rows[rows.language == lang].caption.tolist()[:40] + ["x " * 80] for lang in result.languages}
    images = rows[rows.image_path.notna()].drop_duplicates("image_id").image_path.tolist()[:20]
    report = check_parity(result.out, extension["extension"], captions, images, batch=16)
    assert set(report) == {"de", "ja", "ko", "en", "image"}
    for part, scores in report.items():
        assert scores["min_cosine"] >= 0.9999, (part, scores)
    manifest = json.loads((result.out / "manifest.json").read_text())
    names = {"image.onnx", "preprocess.json", "text-de.onnx", "text-ja.onnx", "text-ko.onnx", "text-en.onnx",
             "tokenizer-de.json", "tokenizer-ja.json", "tokenizer-ko.json", "tokenizer-en.json"}
    assert set(manifest["files"]) == names == set(result.files) == set(result.paths)
    assert sorted(p.name for p in result.out.iterdir()) == sorted(names | {"manifest.json"})
    for name, entry in manifest["files"].items():
        data = (result.out / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"] == result.files[name]
    assert manifest["languages"] == ["de", "ja", "ko", "en"] and manifest["opset"] == 18
    for lang in ("de", "ja", "ko", "en"):
        assert manifest["text"][lang]["inputs"] == {"ids": "int64 [batch, seq]", "lengths": "int64 [batch]"}
    from tokenizers import Tokenizer

    for lang in ("de", "ja", "ko"):  # the pack's own tokenizer where its vocabulary was extended, else the shared one
        own = extension["extension"] / "packs" / f"{lang}.tokenizer.json"
        source = own if own.is_file() else extension["extension"] / "shared" / "tokenizer.json"
        assert Tokenizer.from_file(str(result.out / f"tokenizer-{lang}.json")).to_str() == \
            Tokenizer.from_file(str(source)).to_str()
        assert ("own" in manifest["text"][lang]["tokenizer_note"]) == own.is_file() == (lang == "ko")
    preprocess = json.loads((result.out / "preprocess.json").read_text())
    assert preprocess["interpolation"] == "bicubic" and len(preprocess["mean"]) == len(preprocess["std"]) == 3
    # onnx is a link to its one version (core.extension.swap_in): no temporary folder left behind
    assert sorted(p.name for p in tmp_path.glob(".onnx*")) == [".onnx.v000001"]


def test_onnx_graphs_take_ids_and_lengths_with_dynamic_axes(extension, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from mlclip_cli.export_onnx import ExportConfig, export_onnx

    result = export_onnx(ExportConfig(extension["extension"], out=tmp_path / "o", languages=("ko", "en")))
    text = [("ids", 7, ["batch", "seq"]), ("lengths", 7, ["batch"])]  # 7: int64
    for name, inputs, output in (("image.onnx", [("pixels", 1, ["batch", 3, 32, 32])], "image_embedding"),  # 1: float32
                                 ("text-ko.onnx", text, "text_embedding"), ("text-en.onnx", text, "text_embedding")):
        graph = onnx.load(str(result.out / name)).graph
        assert [(i.name, i.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
                for i in graph.input] == inputs
        assert [(o.name, o.type.tensor_type.shape.dim[0].dim_param) for o in graph.output] == [(output, "batch")]


def test_english_tokenizer_file_gives_open_clips_ids(extension):
    from mlclip_cli.loading import load_encoder
    from mlclip_cli.export_onnx import clip_tokenizer_json
    from tokenizers import Tokenizer

    clip = load_encoder(extension["model"], "cpu").clip
    tokenizer = Tokenizer.from_str(clip_tokenizer_json(clip.tokenizer))
    rows = read_manifest(extension["manifest"]).to_pandas()
    texts = rows.caption.tolist() + ["Don\u2019t \u201cquote\u201d \ufb01ne caf\u00e9  \uff28\uff45\uff4c\uff4c\uff4f\u3000world &amp; <b>",
                                     "na\u00efve \u216b \u00bd x\u00b2", "\u65e5\u672c\u8a9e\u3001\u30c6\u30b9\u30c8\u3002\uff01", "x " * 80]
    reference = clip.tokenizer(texts)
    for text, row, encoded in zip(texts, reference, tokenizer.encode_batch(texts, add_special_tokens=False)):
        ids = [clip.tokenizer.sot_token_id, *encoded.ids[:reference.shape[1] - 2], clip.tokenizer.eot_token_id]
        assert ids + [0] * (reference.shape[1] - len(ids)) == row.tolist(), text


def test_cli_export_prints_files_and_parity(extension, run_cli, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = run_cli("export", "--format", "onnx", "--extension", str(extension["extension"]), "--langs", "ko",
                     "--out", str(tmp_path / "ko"), "--check", str(extension["manifest"]), "--check-rows", "10")
    assert result.code == 0, result.err
    assert "text-ko.onnx" in result.out and "onnxruntime vs torch" in result.out
    assert sorted(p.name for p in (tmp_path / "ko").iterdir()) == ["image.onnx", "manifest.json", "preprocess.json",
                                                                  "text-ko.onnx", "tokenizer-ko.json"]


# These run without the onnx extra (CI): every check comes before the exporter is imported.
@pytest.mark.parametrize("args, fragment", [
    (("--format", "tflite"), "unknown --format 'tflite'"),
    (("--langs", "de,xx"), "has no pack for xx"),
])
def test_bad_export_input_is_one_line(extension, run_cli, tmp_path, args, fragment):
    result = run_cli("export", "--extension", str(extension["extension"]), "--out", str(tmp_path / "x"), *args)
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "x").exists()


def test_export_never_replaces_a_folder_of_other_files(extension, run_cli, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = run_cli("export", "--extension", str(extension["extension"]), "--out", str(tmp_path / "mine"))
    assert_one_line_error(result, "not an earlier ONNX export")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_continual_folders_are_refused_in_one_line(extension, run_cli, tmp_path):
    folder = tmp_path / "continual"
    folder.mkdir()
    info = json.loads((extension["extension"] / "extension.json").read_text())
    (folder / "extension.json").write_text(json.dumps({**info, "method": "cll-clip"}))
    result = run_cli("export", "--extension", str(folder))
    assert_one_line_error(result, "cll-clip", "MLA extensions only")


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


def test_a_failed_export_leaves_the_earlier_one_whole(extension, monkeypatch, tmp_path):
    pytest.importorskip("onnxscript")
    from mlclip_cli import export_onnx as module

    first = module.export_onnx(module.ExportConfig(extension["extension"], out=tmp_path / "o", languages=("de",)))
    before = {p.name: p.read_bytes() for p in first.out.iterdir()}
    real = module._export

    def fail_on_text(module_, inputs, names, output, dynamic, path, opset):
        if path.name.startswith("text-"):
            raise RuntimeError("exporter broke")
        return real(module_, inputs, names, output, dynamic, path, opset)

    monkeypatch.setattr(module, "_export", fail_on_text)
    with pytest.raises(RuntimeError):
        module.export_onnx(module.ExportConfig(extension["extension"], out=tmp_path / "o", languages=("ja",)))
    assert {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.v000001", "o"]  # no temporary folder left
    monkeypatch.setattr(module, "_export", real)
    again = module.export_onnx(module.ExportConfig(extension["extension"], out=tmp_path / "o", languages=("ja",)))
    assert sorted(p.name for p in again.out.iterdir()) == ["image.onnx", "manifest.json", "preprocess.json",
                                                          "text-ja.onnx", "tokenizer-ja.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.v000001", ".o.v000002", "o"]  # this one, the one before
