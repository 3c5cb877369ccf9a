"""Encoders that turn captions and images into embeddings.

`FrozenClip` is CLIP as it is: its text tower for every language (the zero-shot baseline) and its
image tower. Language extensions (MLA packs, CLL-CLIP embeddings) subclass it and change how
non-native text is encoded; their `identity` then names them, so cached features never mix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mlclip_cli.core.towers import TextTower, tower_of
from mlclip_cli.errors import MlclipError
from mlclip_cli.images import open_image
from mlclip_cli.models.clip import LoadedClip, load_clip

# What a language-extension encoder does with a language it has no pack for: refuse (none) or
# encode it as English through the frozen tower (english).
FALLBACKS = ("none", "english")


def check_fallback(fallback: str) -> str:
    if fallback not in FALLBACKS:
        raise MlclipError(f"unknown --fallback '{fallback}' (choose {', '.join(FALLBACKS)})")
    return fallback


class FrozenClip:
    def __init__(self, clip: LoadedClip, device: str | None = None):
        self.clip = clip
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        clip.model.to(self.device)

    @classmethod
    def load(cls, spec: str, device: str | None = None) -> "FrozenClip":
        return cls(load_clip(spec), device)

    name = "frozen"

    @property
    def cache_key(self) -> str:
        """Names the feature-cache folder: the frozen CLIP's identity (extensions add theirs)."""
        return self.image_identity

    @property
    def image_identity(self) -> str:
        return self.clip.identity

    def text_identity(self, language: str) -> str:
        return self.clip.identity

    @property
    def has_images(self) -> bool:
        return self.clip.has_images

    def _need_images(self) -> None:
        if not self.clip.has_images:
            raise MlclipError(f"{self.clip.model_name} is a text-only encoder: it has no image tower "
                              "(use --task t2t, or a CLIP)")

    @property
    def preprocess_description(self) -> str:
        self._need_images()
        return " ".join(repr(self.clip.preprocess).split())

    def load_pixels(self, paths: list[str]) -> torch.Tensor:
        """Decoded and preprocessed images (PIL work that releases the GIL: a thread can run it
        while the model encodes the previous batch)."""
        self._need_images()
        return torch.stack([self.clip.preprocess(open_image(path)) for path in paths])

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        self._need_images()
        return self.clip.model.encode_image(pixels.to(self.device), normalize=True).float().cpu().numpy()

    def encode_images(self, paths: list[str]) -> np.ndarray:
        return self.encode_pixels(self.load_pixels(paths))

    def encode_mixed(self, captions: list[str], languages: list[str]) -> np.ndarray:
        return self.encode_texts(captions, "en")  # one tower for every language

    def text_budget(self, language: str) -> "TextBudget | None":
        """How the tower tokenises `language`'s texts and how many tokens fit its context (None:
        a tokenizer this cannot count with)."""
        return clip_budget(self.clip.tokenizer, self.clip.kind)

    @torch.no_grad()
    def encode_texts(self, captions: list[str], language: str) -> np.ndarray:
        if self.clip.kind == "text":
            return _encode_with_hf(self.clip, captions, self.device)
        tokens = self.clip.tokenizer(captions)
        tower = _trimmable_tower(self.clip.model)
        if tower is None:
            return self.clip.model.encode_text(tokens.to(self.device), normalize=True).float().cpu().numpy()
        # Captions are a third of the context on average: sorted by length and cut to each
        # chunk's longest, the causal tower gives the same embeddings at a fraction of the cost.
        lengths = tokens.argmax(-1) + 1  # open_clip pools at argmax: EOS has the highest id
        order = torch.argsort(lengths, stable=True)
        chunks = []
        for chunk in order.split(TEXT_CHUNK):
            ids = tokens[chunk, :int(lengths[chunk].max())].to(self.device)
            emb = tower.run(tower.token_embedding(ids), lengths[chunk].to(self.device))
            chunks.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu())
        return torch.cat(chunks)[torch.argsort(order)].numpy()


TEXT_CHUNK = 128
PREFIX_CHARS = 32  # a long text is first counted on a prefix of this many characters per token of context


@dataclass(frozen=True)
class TextBudget:
    """A language's tokenisation for the tower: `count(text)` is its content tokens (no start or
    end token), of which the context holds `capacity`; the encoders cut the rest."""

    count: Callable[[str], int]
    capacity: int

    def fit(self, text: str) -> tuple[bool, str]:
        """(whether the context cuts `text`, the text to encode for the same embedding). A text of
        at most half as many UTF-8 bytes as the capacity fits (a token covers a byte at least, and
        cleaning at most doubles a text). A long one is first read on a prefix of whole words: when
        that already overflows the context, its first tokens are the text's own, and encoding it
        instead gives the same embedding, so a 5 MB line costs no more than a paragraph."""
        if 2 * len(text.encode("utf-8")) <= self.capacity:
            return False, text
        if len(text) > PREFIX_CHARS * self.capacity:
            words = text[:PREFIX_CHARS * self.capacity].rsplit(None, 1)  # no word cut in two
            if len(words) == 2 and self.count(words[0]) > self.capacity + 1:
                return True, words[0]
        return self.count(text) > self.capacity, text


def clip_budget(tokenizer, kind: str = "clip") -> TextBudget | None:
    """The budget of a frozen tower's own tokenizer: open_clip's BPE (SimpleTokenizer), open_clip's
    or mlclip's wrapper of a Hugging Face tokenizer; None for another."""
    if hasattr(tokenizer, "encoder") and hasattr(tokenizer, "encode"):  # open_clip's SimpleTokenizer
        return TextBudget(lambda text: len(tokenizer.encode(text)), int(tokenizer.context_length) - 2)
    inner = getattr(tokenizer, "tokenizer", None)  # HF: mlclip's HfTokenizer or open_clip's HFTokenizer
    limit = getattr(tokenizer, "max_length", None) if kind == "text" else getattr(tokenizer, "context_length", None)
    if inner is None or limit is None or not callable(inner):
        return None

    def count(text: str) -> int:  # verbose=False: no "longer than the maximum" warning on stderr
        return len(inner(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    return TextBudget(count, int(limit) - inner.num_special_tokens_to_add())


def _encode_with_hf(clip: LoadedClip, captions: list[str], device: torch.device) -> np.ndarray:
    """A HF sentence encoder's own embedding (its tokenizer, tower, pooling), normalised; captions
    sorted by length so each chunk pads only to its own longest."""
    tower = tower_of(clip.model)
    rows = clip.tokenizer.ids(captions)
    if not rows:
        return np.zeros((0, tower.width), dtype=np.float32)
    order = np.argsort([len(r) for r in rows], kind="stable")
    chunks = []
    for chunk in np.array_split(order, max(1, -(-len(order) // TEXT_CHUNK))):
        longest = max(len(rows[i]) for i in chunk)
        ids = torch.full((len(chunk), longest), clip.tokenizer.pad_token_id, dtype=torch.long)
        for row, i in enumerate(chunk):
            ids[row, :len(rows[i])] = torch.tensor(rows[i])
        lengths = torch.tensor([len(rows[i]) for i in chunk], device=device)
        emb = tower.run(tower.token_embedding(ids.to(device)), lengths)
        chunks.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
    out = np.concatenate(chunks)
    return out[np.argsort(order, kind="stable")]


def _trimmable_tower(model: torch.nn.Module):
    """The text tower's parts when cutting padding cannot change the output: a causal CLIP
    transformer that pools at the argmax (EOS) token. Otherwise None (use encode_text as is)."""
    if getattr(model, "text_pool_type", None) != "argmax":
        return None
    try:
        tower = TextTower.of(model)
    except MlclipError:
        return None
    return tower if tower.attn_mask is not None else None


def encode_by_language(encode_texts, captions: list[str], languages: list[str]) -> np.ndarray:
    """Captions in several languages at once: `encode_texts(captions, language)` per language,
    returned in input order (for encoders that treat languages differently)."""
    languages = np.asarray(languages)
    out = None
    for language in dict.fromkeys(languages.tolist()):
        where = np.flatnonzero(languages == language)
        vectors = encode_texts([captions[i] for i in where], language)
        if out is None:
            out = np.empty((len(captions), vectors.shape[1]), dtype=np.float32)
        out[where] = vectors
    return out
