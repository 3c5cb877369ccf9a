"""`mlclip export --format onnx`: an MLA extension as ONNX files for deployment.

The image tower is written once (`image.onnx`); each language gets its own small text encoder
(`text-<lang>.onnx`: the frozen text tower + that language's pack, weights inside) and its
tokenizer file, so a client downloads only the languages it serves and every language shares one
image index. English (`text-en.onnx`) is the frozen CLIP's own text tower, fed open_clip's BPE ids
(`tokenizer-en.json`: that BPE as a HF `tokenizers` file). Every text graph takes the same inputs,
ids int64 [batch, seq] and lengths int64 [batch], and returns the L2-normalised text embedding;
`image.onnx` takes preprocessed pixels (`preprocess.json` says how) and returns the L2-normalised
image embedding. `manifest.json` lists every file with its sha256 and how to feed it. Graphs come
from torch.onnx's exporter (torch.export, dynamic batch and sequence axes); `check_parity` compares
onnxruntime to torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli.errors import MlclipError
from mlclip_cli.locks import writer_lock

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
    paths: dict[str, Path] = field(default_factory=dict)  # file name -> its path under `out`
    manifest: Path | None = None


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
    """The frozen CLIP's own text tower on open_clip's BPE ids [batch, seq] and lengths [batch]:
    open_clip's encode_text, with the causal mask sliced to the batch's length (the same output
    as padding to the full context) and pooling at lengths - 1 (where open_clip's argmax finds EOS)."""

    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.tower.run(self.tower.token_embedding(ids), lengths), dim=-1)


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
        try:
            torch.onnx.export(module, inputs, str(path), input_names=names, output_names=[output], dynamo=True,
                              external_data=False, dynamic_shapes=dynamic, opset_version=opset, verbose=False)
        except Exception as exc:  # the exporter's reports run to pages: its first line, then the file
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise MlclipError(f"exporting {path.name} failed: {first[:300]}") from exc


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


def clip_tokenizer_json(tokenizer) -> str | None:
    """open_clip's SimpleTokenizer (CLIP's BPE, lower-cased) as a HF `tokenizers` JSON: the same ids
    on ordinary text. ftfy's repairs are approximated by NFC + full-width ASCII, Latin ligatures,
    curly quotes and common HTML entities mapped the way ftfy/html.unescape map them; None for any
    other tokenizer (an HF one, or a SimpleTokenizer with another cleaning or a reduction)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    from open_clip.tokenizer import SimpleTokenizer

    if not isinstance(tokenizer, SimpleTokenizer) or getattr(tokenizer, "reduction_fn", None) is not None \
            or getattr(tokenizer.clean_fn, "__name__", "") != "_clean_lower":
        return None
    merges = sorted(tokenizer.bpe_ranks, key=tokenizer.bpe_ranks.get)
    model = models.BPE(vocab=dict(tokenizer.encoder), merges=[tuple(m) for m in merges], end_of_word_suffix="</w>",
                       continuing_subword_prefix="", unk_token=None, fuse_unk=False)
    result = Tokenizer(model)
    replace = normalizers.Replace
    rules = [replace(chr(c), chr(c - 0xFEE0)) for c in range(0xFF01, 0xFF5F)]  # full-width ASCII
    rules += [replace("\u3000", " ")]
    rules += [replace(a, b) for a, b in zip("\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06", ("ff", "fi", "fl", "ffi", "ffl", "st", "st"))]
    rules += [replace(Regex("[\u2018\u2019\u201a\u201b]"), "'"), replace(Regex("[\u201c\u201d\u201e\u201f]"), '"')]
    rules += [replace(a, b) for a, b in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&amp;", "&"))]
    result.normalizer = normalizers.Sequence([normalizers.NFC(), *rules, replace(Regex(r"\s+"), " "), normalizers.Strip(),
                                              normalizers.Lowercase()])
    specials = [t for t in tokenizer.encoder if t.startswith("<") and t.endswith(">") and tokenizer.encoder[t] in tokenizer.all_special_ids]
    pattern = "|".join([*specials, r"'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"])
    result.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    result.decoder = decoders.ByteLevel()
    return result.to_str()


def _check_out(out: Path) -> None:
    """An existing --out is replaced only when it is an earlier export (never a folder of other files)."""
    if out.exists() and not out.is_dir():
        raise MlclipError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        try:
            artifact = json.loads((out / "manifest.json").read_text(encoding="utf-8")).get("artifact")
        except (OSError, ValueError, AttributeError):
            artifact = None
        if artifact != "mlclip-onnx-export":
            raise MlclipError(f"{out}: not empty and not an earlier ONNX export; choose another --out")


def _resize_steps(preprocess: dict, size: int) -> list[str]:
    """open_clip's resize for this resize_mode, in words (see open_clip.transform.image_transform)."""
    how = f"{preprocess.get('interpolation', 'bicubic')}, antialiased"
    mode = preprocess.get("resize_mode", "shortest")
    if mode == "squash":
        return [f"resize to {size}x{size} ({how})"]
    if mode == "longest":
        return [f"resize the longer side to {size} ({how})",
                f"pad to {size}x{size} centred with fill {preprocess.get('fill_color', 0)}"]
    return [f"resize the shorter side to {size} ({how})", f"center-crop {size}x{size}"]


def export_onnx(config: ExportConfig) -> ExportResult:
    from mlclip_cli.core.extension import is_extension, read_extension, swap_in
    from mlclip_cli.mla.method import open_extension

    if config.format not in FORMATS:
        raise MlclipError(f"unknown --format '{config.format}' (choose {', '.join(FORMATS)})")
    folder = Path(config.extension)
    if not is_extension(folder):
        raise MlclipError(f"{folder}: no extension here (make one with `mlclip train --method mla`)")
    extension = read_extension(folder)
    if extension.info.get("method") != "mla":
        raise MlclipError(f"{folder}: a {extension.info.get('method')} extension; ONNX export covers MLA "
                          "extensions only (not yet continual CLL-CLIP folders)")
    available = [*extension.languages, "en"]
    languages = list(dict.fromkeys(config.languages)) if config.languages else available
    unknown = [lang for lang in languages if lang not in available]
    if unknown:
        raise MlclipError(f"{folder} has no pack for {', '.join(unknown)} (it has {', '.join(available)})")
    out = Path(config.out) if config.out else folder / "onnx"
    with writer_lock(out, "export folder"):
        _check_out(out)
        _require_onnx()
        packs_wanted = [lang for lang in languages if lang != "en"]
        _, base, encoder, tokenizers, shared = open_extension(folder, "cpu", packs_wanted)
        if not base.has_images:
            raise MlclipError(f"{folder}: built on a text-only encoder; ONNX export covers CLIP extensions")
        if not hasattr(encoder.tower, "attn_mask"):
            raise MlclipError(f"{folder}: ONNX export covers open_clip text towers, not this one")
        encoder._tower = _with_wider_mask(encoder.tower)
        # replaced whole (a link to a new version): an older export never mixes with this one, and a
        # kill leaves the one or the other
        with swap_in(out) as work:
            manifest = _write_all(work, base, encoder, tokenizers, shared, languages, extension.info, config.opset)
            (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        files = {name: entry["bytes"] for name, entry in manifest["files"].items()}
        return ExportResult(out, languages, files, {name: out / name for name in files}, out / "manifest.json")


def _write_all(work: Path, base, encoder, tokenizers, shared, languages: list[str], info: dict, opset: int) -> dict:
    model = base.clip.model.eval()
    preprocess = model.visual.preprocess_cfg
    size = preprocess["size"] if isinstance(preprocess["size"], int) else preprocess["size"][0]
    pixels = f"float32 [batch, 3, {size}, {size}], preprocessed as preprocess.json says"
    batch = torch.export.Dim("batch", max=65536)
    _export(_ImageEncoder(model), (torch.zeros(2, 3, size, size),), ["pixels"], "image_embedding",
            {"pixels": {0: batch}}, work / "image.onnx", opset)
    description = {
        "size": size, "mean": list(preprocess["mean"]), "std": list(preprocess["std"]),
        "interpolation": preprocess.get("interpolation"), "resize_mode": preprocess.get("resize_mode"),
        "mode": preprocess.get("mode", "RGB"), "torchvision": " ".join(repr(base.clip.preprocess).split()),
        "steps": [f"convert to {preprocess.get('mode', 'RGB')}", *_resize_steps(preprocess, size),
                  "scale to [0, 1] float32, channels first", "subtract mean and divide by std per channel"],
    }
    (work / "preprocess.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    context = encoder.tower.context_length
    seq = torch.export.Dim("seq", max=context)
    dynamic = {"ids": {0: batch, 1: seq}, "lengths": {0: batch}}
    rule = (f"ids = [sos] + tokenizer.encode(text, add_special_tokens=False).ids[:{context - 2}] + [eos], "
            "right-padded with pad to the batch's longest (at most context_length); lengths = each row's length "
            "including sos and eos")
    text = {}
    for language in languages:
        path = work / f"text-{language}.onnx"
        tokenizer_file = work / f"tokenizer-{language}.json"
        inputs = {"ids": "int64 [batch, seq]", "lengths": "int64 [batch]"}
        if language == "en":
            clip_tokenizer = base.clip.tokenizer
            ids = clip_tokenizer(["a", "b c"])
            lengths = (ids == clip_tokenizer.eot_token_id).int().argmax(-1) + 1
            ids = ids[:, :int(lengths.max())]
            _export(_EnglishEncoder(encoder.tower), (ids, lengths), ["ids", "lengths"], "text_embedding", dynamic,
                    path, opset)
            converted = clip_tokenizer_json(clip_tokenizer)
            if converted is not None:
                tokenizer_file.write_text(converted, encoding="utf-8")
            text[language] = {
                "file": path.name, "tokenizer": tokenizer_file.name if converted is not None else None,
                "context_length": context, "inputs": inputs, "tokenize": rule,
                "sos": int(clip_tokenizer.sot_token_id), "eos": int(clip_tokenizer.eot_token_id), "pad": 0,
                "tokenizer_note": (
                    f"the frozen CLIP's own BPE (open_clip.get_tokenizer('{base.clip.model_name}')) as a tokenizers "
                    "file: the same ids on ordinary text; open_clip also runs ftfy, whose rarer repairs (mojibake) "
                    "the file does not make" if converted is not None else
                    f"no tokenizers file: tokenize with open_clip.get_tokenizer('{base.clip.model_name}') and cut each "
                    "row after its eos"),
            }
            continue
        tokenizer = tokenizers[language]
        ids, lengths = tokenizer.encode(["a", "b c"], context)
        _export(_LanguageEncoder(encoder, language), (ids, lengths), ["ids", "lengths"], "text_embedding", dynamic,
                path, opset)
        tokenizer_file.write_text(tokenizer.to_json(), encoding="utf-8")
        text[language] = {
            "file": path.name, "tokenizer": tokenizer_file.name, "context_length": context, "inputs": inputs,
            "tokenize": rule, "sos": tokenizer.sos, "eos": tokenizer.eos, "pad": tokenizer.pad,
            "tokenizer_note": "the extension's shared tokenizer" if tokenizer.tokenizer is shared.tokenizer
            else "the language's own tokenizer (the shared one + its vocabulary extension)",
        }
        if tokenizer.segment is not None:  # the words the tokenizer was trained on come first
            from mlclip_cli.text_segment import SEGMENTED

            text[language]["segment_words_with"] = SEGMENTED[language]
            text[language]["segment_note"] = (f"split the text into words with {SEGMENTED[language]} and join them "
                                              "with single spaces before tokenizing (mlclip_cli/text_segment.py)")
    files = {path.name: {"sha256": _sha256(path), "bytes": path.stat().st_size} for path in sorted(work.iterdir())}
    return {
        "artifact": "mlclip-onnx-export", "schema_version": 1, "format": "onnx", "opset": opset,
        "base_model": info["base_model"], "base_identity": info["base_identity"], "tower_sha256": info["tower_sha256"],
        "extension_tokenizer_sha256": info["tokenizer_sha256"], "shared_sha256": info["shared_sha256"],
        "languages": languages,
        "image": {"file": "image.onnx", "preprocess": "preprocess.json",
                  "inputs": {"pixels": pixels}, "output": "image_embedding float32 [batch, dim], L2-normalised"},
        "text": text, "output": "text_embedding float32 [batch, dim], L2-normalised", "files": files,
    }


def torch_encoders(extension: Path, languages: list[str]) -> dict[str, torch.nn.Module]:
    """The torch modules the export traces, in eval mode on the CPU: "image" (pixels ->
    normalised embedding) and per language (ids, lengths -> normalised embedding). For timing
    torch against onnxruntime on the same inputs (benchmarks/onnx_export.py)."""
    from mlclip_cli.mla.method import open_extension

    _, base, encoder, _, _ = open_extension(Path(extension), "cpu", [lang for lang in languages if lang != "en"])
    modules = {"image": _ImageEncoder(base.clip.model)}
    for language in languages:
        modules[language] = _EnglishEncoder(encoder.tower) if language == "en" else _LanguageEncoder(encoder, language)
    return {name: module.eval() for name, module in modules.items()}


class ExportTokenizer:
    """Tokenises one exported language from the export folder alone (manifest + tokenizer file),
    the way manifest.json tells a client to: what an application in another language reimplements."""

    def __init__(self, export_dir: Path, language: str):
        from tokenizers import Tokenizer

        export_dir = Path(export_dir)
        manifest = json.loads((export_dir / "manifest.json").read_text(encoding="utf-8"))
        entry = manifest["text"].get(language)
        if entry is None:
            raise MlclipError(f"{export_dir}: no text encoder for '{language}' (it has {', '.join(manifest['text'])})")
        if entry.get("tokenizer") is None:
            raise MlclipError(f"{export_dir}: '{language}' has no tokenizer file ({entry.get('tokenizer_note')})")
        self.entry, self.language = entry, language
        self.tokenizer = Tokenizer.from_file(str(export_dir / entry["tokenizer"]))

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        entry, cut = self.entry, self.entry["context_length"] - 2
        if entry.get("segment_words_with"):  # Chinese and Japanese: words first, as the extension trained
            from mlclip_cli.text_segment import segment

            texts = segment(list(texts), self.language, "words")
        rows = [[entry["sos"], *e.ids[:cut], entry["eos"]]
                for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        ids = np.full((len(rows), max(len(r) for r in rows)), entry["pad"], dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
        return ids, np.array([len(r) for r in rows], dtype=np.int64)


def parity_rows(manifest: Path, given: str):
    """The rows of `--check`'s manifest (`given` as the user wrote it), read and checked before
    the export starts, as is onnxruntime; one line when it is no manifest or onnxruntime is missing."""
    from mlclip_cli.artifacts import read_manifest

    manifest = Path(manifest)
    if manifest.is_dir():
        raise MlclipError(f"--check {given}: a folder, not a manifest file")
    if not manifest.is_file():
        where = "no such file" if str(manifest) == given else f"no such file, nor a workspace manifest {manifest}"
        raise MlclipError(f"--check {given}: {where}")
    rows = read_manifest(manifest).to_pandas()
    try:  # the parity check's own need, also said before anything is exported
        import onnxruntime  # noqa: F401
    except ImportError:
        raise MlclipError(f"--check needs onnxruntime: {INSTALL_HINT}") from None
    return rows


def check_parity(export_dir: Path, extension: Path, captions: dict[str, list[str]], image_paths: list[str],
                 batch: int = 256) -> dict[str, dict[str, float]]:
    """Per language (and "image"): min and mean cosine between onnxruntime's embeddings (inputs
    made from the export folder alone, as manifest.json says) and torch's (mlclip's own encoder
    of the extension, tokenising as it does)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MlclipError(f"the parity check needs onnxruntime: {INSTALL_HINT}") from None
    from mlclip_cli.loading import load_encoder

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
        tokenize = ExportTokenizer(export_dir, language) if entry.get("tokenizer") else _open_clip_rows(reference)
        blocks = []
        for start in range(0, len(texts), batch):
            ids, lengths = tokenize(texts[start:start + batch])
            blocks.append(session.run(None, {"ids": ids, "lengths": lengths})[0])
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


def _open_clip_rows(reference):
    """English ids and lengths from open_clip's own tokenizer, cut after the longest row's EOS."""

    def tokenize(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        ids = reference.clip.tokenizer(texts)
        lengths = (ids == reference.clip.tokenizer.eot_token_id).int().argmax(-1) + 1
        return ids[:, :int(lengths.max())].numpy(), lengths.numpy().astype(np.int64)

    return tokenize
