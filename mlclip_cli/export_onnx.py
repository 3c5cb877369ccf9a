"""`mlclip export --format onnx`: an MLA extension as ONNX files for deployment.

The image tower is written once (`image.onnx`); each language gets its own small text encoder
(`text-<lang>.onnx`: the frozen text tower + that language's pack, weights inside) and its
tokenizer file, so a client downloads only the languages it serves and every language shares one
image index. English (`text-en.onnx`) is the frozen CLIP's own text tower. `manifest.json` lists
every file with its sha256 and how to feed it. Graphs come from torch.onnx's exporter
(torch.export, dynamic batch and sequence axes); `check_parity` compares onnxruntime to torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli.errors import MlclipError

FORMATS = ("onnx",)
OPSET = 18
INSTALL_HINT = "pip install -e '.[onnx]'"


@dataclass(frozen=True)
class ExportConfig:
    extension: Path
    out: Path | None = None  # default: <extension>/onnx
    languages: tuple[str, ...] | None = None  # default: every pack + en
    format: str = "onnx"
    opset: int = OPSET


@dataclass
class ExportResult:
    out: Path
    languages: list[str]
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise MlclipError(f"ONNX export needs the onnx extra: {INSTALL_HINT}") from None


class _ImageEncoder(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(pixels), dim=-1)


class _EnglishEncoder(torch.nn.Module):
    """The frozen CLIP's own text tower on open_clip's token ids [batch, context]."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_text(ids), dim=-1)


class _LanguageEncoder(torch.nn.Module):
    """One language through the frozen tower and its pack: ids [batch, seq], lengths [batch]."""

    def __init__(self, encoder: torch.nn.Module, language: str):
        super().__init__()
        self.encoder, self.language = encoder, language

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(ids, lengths, [(self.language, 0, ids.shape[0])]), dim=-1)


def _export(module: torch.nn.Module, inputs: tuple, names: list[str], output: str, dynamic: dict, path: Path,
            opset: int) -> None:
    import contextlib
    import io
    import warnings

    module.eval()
    # the exporter narrates its passes on stdout and warns about axis names: keep the CLI's output clean
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, str(path), input_names=names, output_names=[output], dynamo=True,
                          external_data=False, dynamic_shapes=dynamic, opset_version=opset, verbose=False)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _with_wider_mask(tower):
    """The tower with its causal mask one row and column wider. A batch of the full context length
    then slices the mask like any shorter batch (the exporter would otherwise guard on it)."""
    if tower.attn_mask is None:
        return tower
    size = tower.attn_mask.shape[0] + 1
    mask = torch.full((size, size), float("-inf"), dtype=tower.attn_mask.dtype).triu_(1)
    return dataclasses.replace(tower, attn_mask=mask)


def export_onnx(config: ExportConfig) -> ExportResult:
    from mlclip_cli.mla import packs
    from mlclip_cli.mla.method import open_extension

    if config.format not in FORMATS:
        raise MlclipError(f"unknown --format '{config.format}' (choose {', '.join(FORMATS)})")
    folder = Path(config.extension)
    if not packs.is_extension(folder):
        raise MlclipError(f"{folder}: no extension here (make one with `mlclip train --method mla`)")
    extension = packs.read_extension(folder)
    if extension.info.get("method") != "mla":
        raise MlclipError(f"{folder}: a {extension.info.get('method')} extension; ONNX export covers MLA extensions")
    _require_onnx()
    available = [*extension.languages, "en"]
    languages = list(config.languages) if config.languages else available
    unknown = [lang for lang in languages if lang not in available]
    if unknown:
        raise MlclipError(f"{folder} has no pack for {', '.join(unknown)} (it has {', '.join(available)})")
    packs_wanted = [lang for lang in languages if lang != "en"]
    _, base, encoder, tokenizers, _ = open_extension(folder, "cpu", packs_wanted)
    if not base.has_images:
        raise MlclipError(f"{folder}: built on a text-only encoder; ONNX export covers CLIP extensions")
    if not hasattr(encoder.tower, "attn_mask"):
        raise MlclipError(f"{folder}: ONNX export covers open_clip text towers, not this one")
    encoder._tower = _with_wider_mask(encoder.tower)
    out = Path(config.out) if config.out else folder / "onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = _write_all(work, base, encoder, tokenizers, languages, extension.info, config.opset)
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():  # replaced whole: an older export never mixes with this one
            shutil.rmtree(out)
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    files = {name: entry["bytes"] for name, entry in manifest["files"].items()}
    return ExportResult(out, languages, files)


def _write_all(work: Path, base, encoder, tokenizers, languages: list[str], info: dict, opset: int) -> dict:
    model = base.clip.model.eval()
    preprocess = model.visual.preprocess_cfg
    size = preprocess["size"] if isinstance(preprocess["size"], int) else preprocess["size"][0]
    batch = torch.export.Dim("batch", max=65536)
    _export(_ImageEncoder(model), (torch.zeros(2, 3, size, size),), ["pixels"], "image_embedding",
            {"pixels": {0: batch}}, work / "image.onnx", opset)
    context = encoder.tower.context_length
    text = {}
    for language in languages:
        path = work / f"text-{language}.onnx"
        if language == "en":
            ids = base.clip.tokenizer(["a", "b"])
            _export(_EnglishEncoder(model), (ids,), ["ids"], "text_embedding", {"ids": {0: batch}}, path, opset)
            text[language] = {"file": path.name, "tokenizer": None, "inputs": {"ids": "int64 [batch, context_length]"},
                              "tokenize": f"open_clip.get_tokenizer('{base.clip.model_name}') (CLIP's BPE, padded to "
                                          f"{ids.shape[1]} tokens)", "context_length": int(ids.shape[1])}
            continue
        tokenizer = tokenizers[language]
        ids, lengths = tokenizer.encode(["a", "b c"], context)
        seq = torch.export.Dim("seq", max=context)
        _export(_LanguageEncoder(encoder, language), (ids, lengths), ["ids", "lengths"], "text_embedding",
                {"ids": {0: batch, 1: seq}, "lengths": {0: batch}}, path, opset)
        tokenizer_file = work / f"tokenizer-{language}.json"
        tokenizer_file.write_text(tokenizer.to_json(), encoding="utf-8")
        text[language] = {
            "file": path.name, "tokenizer": tokenizer_file.name, "context_length": context,
            "inputs": {"ids": "int64 [batch, seq]", "lengths": "int64 [batch]"},
            "tokenize": (f"ids = [sos] + tokenizer.encode(text).ids[:{context - 2}] + [eos], right-padded with pad to "
                         "the batch's longest; lengths = each row's length including sos and eos"),
            "sos": tokenizer.sos, "eos": tokenizer.eos, "pad": tokenizer.pad,
        }
    files = {path.name: {"sha256": _sha256(path), "bytes": path.stat().st_size} for path in sorted(work.iterdir())}
    return {
        "artifact": "mlclip-onnx-export", "schema_version": 1, "format": "onnx", "opset": opset,
        "base_model": info["base_model"], "base_identity": info["base_identity"], "tower_sha256": info["tower_sha256"],
        "image": {"file": "image.onnx", "input": "pixels float32 [batch, 3, %d, %d]" % (size, size),
                  "output": "image_embedding float32 [batch, dim], L2-normalised",
                  "preprocess": {"size": size, "mean": list(preprocess["mean"]), "std": list(preprocess["std"]),
                                 "interpolation": preprocess.get("interpolation"), "resize_mode": preprocess.get("resize_mode"),
                                 "torchvision": " ".join(repr(base.clip.preprocess).split())}},
        "text": text, "output": "text_embedding float32 [batch, dim], L2-normalised", "files": files,
    }


def check_parity(export_dir: Path, extension: Path, captions: dict[str, list[str]], image_paths: list[str],
                 batch: int = 256) -> dict[str, dict[str, float]]:
    """Per language (and "image"): min and mean cosine between onnxruntime's and torch's embeddings."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MlclipError(f"the parity check needs onnxruntime: {INSTALL_HINT}") from None
    from mlclip_cli.encoders import load_encoder
    from mlclip_cli.mla.tokenizer import TextTokenizer

    export_dir = Path(export_dir)
    manifest = json.loads((export_dir / "manifest.json").read_text(encoding="utf-8"))
    reference = load_encoder(str(extension), "cpu")
    report = {}

    def score(ours: np.ndarray, theirs: np.ndarray) -> dict[str, float]:
        cosine = (ours * theirs).sum(-1) / (np.linalg.norm(ours, axis=-1) * np.linalg.norm(theirs, axis=-1))
        return {"min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean()), "count": int(len(cosine))}

    for language, texts in captions.items():
        entry = manifest["text"].get(language)
        if entry is None or not texts:
            continue
        session = ort.InferenceSession(str(export_dir / entry["file"]), providers=["CPUExecutionProvider"])
        blocks = []
        for start in range(0, len(texts), batch):
            chunk = texts[start:start + batch]
            if language == "en":
                feed = {"ids": reference.clip.tokenizer(chunk).numpy()}
            else:
                tokenizer = TextTokenizer.from_file(export_dir / entry["tokenizer"])
                ids, lengths = tokenizer.encode(chunk, entry["context_length"])
                feed = {"ids": ids.numpy(), "lengths": lengths.numpy()}
            blocks.append(session.run(None, feed)[0])
        report[language] = score(np.concatenate(blocks), reference.encode_texts(texts, language))
    if image_paths:
        session = ort.InferenceSession(str(export_dir / "image.onnx"), providers=["CPUExecutionProvider"])
        ours, theirs = [], []
        for start in range(0, len(image_paths), batch):
            pixels = reference.load_pixels(image_paths[start:start + batch])
            ours.append(session.run(None, {"pixels": pixels.numpy()})[0])
            theirs.append(reference.encode_pixels(pixels))
        report["image"] = score(np.concatenate(ours), np.concatenate(theirs))
    return report
