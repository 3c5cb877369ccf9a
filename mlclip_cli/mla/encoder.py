"""Inference with an MLA extension: each caption through its language's pack, English (and, with
fallback "english", a language without a pack) through the frozen tower, images unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli.core.encoding import encode_grouped
from mlclip_cli.core.extension import unavailable
from mlclip_cli.encoders import FrozenClip, TextBudget, check_fallback, encode_by_language
from mlclip_cli.errors import MlclipError
from mlclip_cli.mla.method import open_extension
from mlclip_cli.training.pretrain import attention_kernel


class MlaEncoder(FrozenClip):
    name = "mla"

    def __init__(self, folder: Path, device: str | None = None, fallback: str = "none"):
        check_fallback(fallback)
        extension, base, encoder, tokenizers, _ = open_extension(Path(folder), device, skip_broken=True)
        super().__init__(base.clip, str(base.device))
        self.folder, self.extension, self.mla, self.tokenizers = Path(folder), extension, encoder, tokenizers
        self.fallback = fallback

    @property
    def languages(self) -> list[str]:
        """The languages with a whole pack (a broken one is left out: see `mlclip packs check`)."""
        return [language for language in self.extension.languages if language in self.tokenizers]

    def _route(self, language: str) -> str | None:
        """The pack to use, or None for the frozen English path."""
        if language == "en":
            return None
        if language in self.tokenizers:
            return language
        if language in self.extension.broken:  # never silently English: the user has a pack to mend
            raise MlclipError(unavailable(self.extension, language))
        if self.fallback == "english":
            return None
        raise MlclipError(f"{self.folder} has no language pack for '{language}' (it has "
                          f"{', '.join(self.languages)}); add one with `mlclip extend --lang {language}` "
                          "or pass --fallback english")

    @property
    def cache_key(self) -> str:
        return f"{self.image_identity}+mla-{self.extension.info['shared_sha256'][:12]}"

    def text_identity(self, language: str) -> str:
        if self._route(language) is None:
            return self.clip.identity
        return f"{self.clip.identity}+mla:{self.extension.cards[language]['pack_sha256'][:16]}"

    def text_budget(self, language: str) -> TextBudget | None:
        pack = self._route(language)
        if pack is None:
            return super().text_budget("en")
        tokenizer = self.tokenizers[pack].tokenizer  # TextTokenizer.ids keeps context - 2 pieces
        return TextBudget(lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids),
                          self.mla.tower.context_length - 2)

    @torch.no_grad()
    def encode_texts(self, captions: list[str], language: str) -> np.ndarray:
        pack = self._route(language)
        if pack is None:
            return super().encode_texts(captions, "en")
        with attention_kernel(self.device):
            emb = encode_grouped(self.mla, self.tokenizers, list(captions), np.array([pack] * len(captions)), self.device)
        return F.normalize(emb, dim=-1).float().cpu().numpy()

    @torch.no_grad()
    def encode_mixed(self, captions: list[str], languages: list[str]) -> np.ndarray:
        """Captions in several languages: every caption routed to a pack goes through the frozen
        blocks in one forward pass (each acquirer on its own rows), English and fallback captions
        through the frozen path. A few short queries cost one pass instead of one per language
        (what `serve` batches); a long list is split into two length buckets as training does."""
        routes = [self._route(language) for language in languages]
        packed = [i for i, pack in enumerate(routes) if pack is not None]
        if len(set(routes)) <= 1:  # one language (or none): exactly what encode_texts gives
            return encode_by_language(self.encode_texts, captions, languages)
        out = None
        if packed:
            with attention_kernel(self.device):
                emb = encode_grouped(self.mla, self.tokenizers, [captions[i] for i in packed],
                                     np.array([routes[i] for i in packed]), self.device,
                                     buckets=1 if len(packed) <= SMALL_MIXED_BATCH else 2)
            vectors = F.normalize(emb, dim=-1).float().cpu().numpy()
            out = np.empty((len(captions), vectors.shape[1]), dtype=np.float32)
            out[packed] = vectors
        english = [i for i, pack in enumerate(routes) if pack is None]
        if english:
            vectors = super().encode_texts([captions[i] for i in english], "en")
            if out is None:
                out = np.empty((len(captions), vectors.shape[1]), dtype=np.float32)
            out[english] = vectors
        return out


SMALL_MIXED_BATCH = 32  # up to this many captions one padded batch costs less than two length buckets
