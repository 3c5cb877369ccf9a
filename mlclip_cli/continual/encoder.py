"""Inference with a continual extension: every language, English included, through the one
trained token table (CLL-CLIP is language-agnostic: no routing, no tag needed); with MLA's
acquirers a caption goes through its language's set (fallback "english": none)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli.continual import snapshot
from mlclip_cli.continual.hf_vocab import vocabulary_for
from mlclip_cli.continual.model import ContinualTextEncoder
from mlclip_cli.core.encoding import encode_grouped
from mlclip_cli.core.extension import check_base
from mlclip_cli.core.towers import tower_of, tower_sha256
from mlclip_cli.encoders import FrozenClip, TextBudget, check_fallback, encode_by_language
from mlclip_cli.errors import MlclipError
from mlclip_cli.training.pretrain import attention_kernel


def open_snapshot(folder: Path, device: str | None = None):
    """(snapshot, base FrozenClip, ContinualTextEncoder with its weights, vocabulary), checked."""
    state = snapshot.read(folder)
    info = state.info
    base = FrozenClip.load(info["base_model"], device)
    check_base(folder, info, base.clip.identity, tower_sha256(tower_of(base.clip.model)))
    vocabulary = vocabulary_for(base.clip, False, state.vocabulary_json)
    shape = info["encoder"]
    encoder = ContinualTextEncoder(base.clip.model, shape["vocab_size"], shape.get("hidden"), info.get("trained_tower", False))
    for language in shape.get("acquirers", []):
        encoder.add_acquirers(language)
    if vocabulary.vocab_size != shape["vocab_size"]:
        raise MlclipError(f"{folder}: the tokenizer has {vocabulary.vocab_size} tokens, the table {shape['vocab_size']} rows")
    try:
        encoder.load_state_dict(state.weights)
    except RuntimeError as exc:
        raise MlclipError(f"{folder / 'weights.safetensors'}: does not fit this encoder ({str(exc).splitlines()[0]})") from None
    encoder.to(base.device).eval()
    return state, base, encoder, vocabulary


class ContinualEncoder(FrozenClip):
    name = "cll-clip"

    def __init__(self, folder: Path, device: str | None = None, fallback: str = "none"):
        check_fallback(fallback)
        state, base, encoder, vocabulary = open_snapshot(Path(folder), device)
        super().__init__(base.clip, str(base.device))
        self.folder, self.state, self.model, self.vocabulary = Path(folder), state, encoder, vocabulary
        self.fallback = fallback

    @property
    def languages(self) -> list[str]:
        return list(self.state.info.get("languages", []))

    @property
    def cache_key(self) -> str:
        return f"{self.image_identity}+cll-{self.state.info['shared_sha256'][:12]}"

    def _route(self, language: str) -> str | None:
        """The acquirer set a caption uses (MLA learner only); None: the table alone."""
        if not len(self.model.acquirers):
            return None
        if language in self.model.acquirers:
            return language
        if self.fallback == "english" or language == "en":
            return None
        raise MlclipError(f"{self.folder} has no acquirers for '{language}' (it has {', '.join(self.model.acquirers)}); "
                          "pass --fallback english to encode it without")

    def text_identity(self, language: str) -> str:
        route = self._route(language)
        return self.cache_key + (f":{route}" if route else "")

    def text_budget(self, language: str) -> TextBudget | None:
        self._route(language)  # every language goes through the one table; an unknown one is refused as on encode
        context = self.model.tower.context_length
        # the vocabulary's ids() keeps context - 2 pieces (a HF tower's: its own max length's, if shorter)
        limit = min(context, getattr(self.vocabulary.base, "max_length", context))
        return TextBudget(lambda text: len(self.vocabulary.encode(text)), limit - 2)

    @torch.no_grad()
    def encode_texts(self, captions: list[str], language: str) -> np.ndarray:
        route = self._route(language)
        if not captions:
            return super().encode_texts([], "en")
        model = self.model if route else _TableOnly(self.model)
        blocks = []
        for start in range(0, len(captions), 500):
            chunk = list(captions[start:start + 500])
            with attention_kernel(self.device):
                emb = encode_grouped(model, {route or "any": self.vocabulary}, chunk, np.array([route or "any"] * len(chunk)),
                                     self.device)
            blocks.append(F.normalize(emb, dim=-1).float().cpu().numpy())
        return np.concatenate(blocks)

    def encode_mixed(self, captions: list[str], languages: list[str]) -> np.ndarray:
        return encode_by_language(self.encode_texts, captions, languages)


class _TableOnly(torch.nn.Module):
    """The encoder without acquirer routing (a language with none, or a learner without them)."""

    def __init__(self, encoder: ContinualTextEncoder):
        super().__init__()
        self.inner = encoder

    @property
    def tower(self):
        return self.inner.tower

    def forward(self, ids, lengths, segments=None):
        return self.inner(ids, lengths, None)
