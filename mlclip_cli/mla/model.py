"""The MLA text encoder: a frozen open_clip text tower with language acquirers after its blocks.

Nothing of the tower is copied or changed: `TextTower` only points at its modules (the blocks,
positional embedding, causal mask, ln_final, text_projection) wherever open_clip keeps them
(`CLIP` has them on the model, `CustomTextCLIP` on `model.text`). Non-native text enters through
the shared token table (+ `W_e` when its width differs), passes each frozen block followed by that
language's acquirer, and is pooled and projected exactly as the tower pools English: at the EOS
position, after ln_final, through text_projection. English never enters this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mlclip_cli.errors import MlclipError


@dataclass
class TextTower:
    """Views of a frozen open_clip text tower's parts (no copies)."""

    blocks: nn.ModuleList
    positional_embedding: torch.Tensor
    attn_mask: torch.Tensor | None
    ln_final: nn.Module
    text_projection: object  # Parameter [width, dim], nn.Linear, or None
    token_embedding: nn.Embedding
    batch_first: bool
    width: int
    context_length: int

    @classmethod
    def of(cls, model: nn.Module) -> "TextTower":
        owner = model if hasattr(model, "transformer") and hasattr(model, "token_embedding") else getattr(model, "text", None)
        if owner is None or not hasattr(owner, "transformer") or not hasattr(owner, "token_embedding"):
            raise MlclipError(f"{type(model).__name__}: MLA needs a CLIP text transformer "
                              "(token embedding + blocks); this text tower is of another kind")
        transformer = owner.transformer
        return cls(
            blocks=transformer.resblocks, positional_embedding=owner.positional_embedding,
            attn_mask=getattr(owner, "attn_mask", None), ln_final=owner.ln_final,
            text_projection=owner.text_projection, token_embedding=owner.token_embedding,
            batch_first=getattr(transformer, "batch_first", True), width=transformer.width,
            context_length=owner.positional_embedding.shape[0],
        )

    def run(self, x: torch.Tensor, lengths: torch.Tensor, after_block=None) -> torch.Tensor:
        """Token embeddings [n, L, width] (L = the batch's longest) -> projected, unnormalised
        text embedding [n, dim], pooled at the EOS position (lengths - 1): explicit, because
        open_clip's argmax pooling assumes EOS has the highest id, which appended tokens break.
        `after_block(layer, x)` runs after each block (MLA's acquirers)."""
        length = x.shape[1]
        x = x + self.positional_embedding[:length].to(x.dtype)
        # Causal mask sliced to the batch's length: the same output as padding to the full context.
        mask = self.attn_mask[:length, :length] if self.attn_mask is not None else None
        for layer, block in enumerate(self.blocks):
            x = block(x if self.batch_first else x.transpose(0, 1), attn_mask=mask)
            x = x if self.batch_first else x.transpose(0, 1)
            if after_block is not None:
                x = after_block(layer, x)
        x = self.ln_final(x)
        return self.project(x[torch.arange(x.shape[0], device=x.device), lengths - 1])

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.text_projection is None:
            return pooled
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(pooled)
        return pooled @ self.text_projection


def tower_of(model: nn.Module):
    """The text tower's wrapper for this model's kind: a HF transformer (a sentence encoder, or
    open_clip's HF text tower) or open_clip's own CLIP text transformer."""
    from mlclip_cli.models.hf_text import transformer_of

    owner = transformer_of(model)
    if owner is not None:
        from mlclip_cli.mla.hf_tower import HfTextTower

        return HfTextTower.of(owner)
    return TextTower.of(model)


ACQUIRERS = ("mlp", "linear", "none")  # the paper's acquirer (default), its Table 8 ablation, Table 5's "no acquirers"


def check_acquirer(kind: str) -> str:
    if kind not in ACQUIRERS:
        raise MlclipError(f"unknown --acquirer '{kind}' (choose {', '.join(ACQUIRERS)})")
    return kind


class Acquirer(nn.Module):
    """LA(x) = x + W_up ReLU(W_down x); W_up starts at zero, so a new acquirer is the identity.

    kind "linear" drops the ReLU (x + W_up W_down x, biases kept): the same parameters as the MLP,
    the paper's "linear vs MLP of the same size" ablation."""

    def __init__(self, width: int, hidden: int, kind: str = "mlp"):
        super().__init__()
        if check_acquirer(kind) == "none":
            raise MlclipError("an acquirer of kind 'none' does not exist: give the pack no acquirers instead")
        self.kind = kind
        self.down = nn.Linear(width, hidden)
        self.up = nn.Linear(hidden, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inner = self.down(x)
        return x + self.up(F.relu(inner) if self.kind == "mlp" else inner)


class LanguagePack(nn.Module):
    """One language's trainable part: an acquirer per frozen block (none for acquirer "none"),
    and optionally extra token rows for tokens its own vocabulary extension added (ids from the
    shared vocabulary size on)."""

    def __init__(self, width: int, hidden: int, layers: int, extra_rows: int = 0, emb_dim: int | None = None,
                 acquirer: str = "mlp"):
        super().__init__()
        count = 0 if check_acquirer(acquirer) == "none" else layers
        self.acquirers = nn.ModuleList(Acquirer(width, hidden, acquirer) for _ in range(count))
        self.extra_rows = nn.Parameter(torch.randn(extra_rows, emb_dim or width) * 0.02) if extra_rows else None

    def acquire(self, layer: int, x: torch.Tensor) -> torch.Tensor:
        return self.acquirers[layer](x) if len(self.acquirers) else x


class SharedEmbedding(nn.Module):
    """The non-native token table shared by every language, and W_e into the tower's width."""

    def __init__(self, vocab_size: int, emb_dim: int, width: int):
        super().__init__()
        self.table = nn.Parameter(torch.randn(vocab_size, emb_dim) * 0.02)
        self.map = nn.Linear(emb_dim, width, bias=False) if emb_dim != width else None

    def forward(self, ids: torch.Tensor, extra_rows: torch.Tensor | None = None) -> torch.Tensor:
        table = self.table if extra_rows is None else torch.cat([self.table, extra_rows])
        x = F.embedding(ids, table)
        return self.map(x) if self.map is not None else x


class MlaTextEncoder(nn.Module):
    """Encodes token ids of one language through the frozen tower and that language's pack.

    The frozen tower is held outside the module's parameters (`self._tower`), so `parameters()`
    and `state_dict()` are exactly the trainable MLA weights.
    """

    def __init__(self, model: nn.Module, vocab_size: int, emb_dim: int | None = None, hidden: int | None = None,
                 acquirer: str = "mlp"):
        super().__init__()
        self._tower = tower_of(model)
        self.hidden = hidden or self._tower.width // 2
        self.acquirer = check_acquirer(acquirer)  # the kind of every pack's acquirers
        self.shared = SharedEmbedding(vocab_size, emb_dim or self._tower.width, self._tower.width)
        self.packs = nn.ModuleDict()

    @property
    def tower(self) -> TextTower:
        return self._tower

    def add_pack(self, language: str, extra_rows: int = 0) -> LanguagePack:
        pack = LanguagePack(self._tower.width, self.hidden, len(self._tower.blocks), extra_rows,
                            self.shared.table.shape[1], self.acquirer)
        pack.to(self.shared.table.device)
        self.packs[language] = pack
        return pack

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, segments: list[tuple[str, int, int]]) -> torch.Tensor:
        """ids [n, L] (trimmed to the batch's longest), lengths [n] including SOS and EOS, and
        `segments` (language, start, stop): rows start:stop are in that language. The frozen
        blocks run once on the whole batch; each acquirer only on its language's rows.
        Returns the projected, unnormalised text embedding [n, dim]."""
        for language, _, _ in segments:
            if language not in self.packs:
                raise MlclipError(f"no language pack for '{language}'")

        def acquire(layer: int, x: torch.Tensor) -> torch.Tensor:
            if len(segments) == 1:
                return self.packs[segments[0][0]].acquire(layer, x)
            return torch.cat([self.packs[lang].acquire(layer, x[a:b]) for lang, a, b in segments])

        without = all(len(self.packs[lang].acquirers) == 0 for lang, _, _ in segments)  # acquirer "none"
        return self._tower.run(self._embed(ids, segments), lengths, None if without else acquire)

    def _embed(self, ids: torch.Tensor, segments: list[tuple[str, int, int]]) -> torch.Tensor:
        extras = [(lang, a, b) for lang, a, b in segments if self.packs[lang].extra_rows is not None]
        if not extras:
            return self.shared(ids)
        # A pack's own tokens have ids from the shared size on: give each pack its own range.
        vocab = self.shared.table.shape[0]
        rows, offset, ids = [], 0, ids.clone()
        for lang, a, b in extras:
            part = ids[a:b]
            part[part >= vocab] += offset
            rows.append(self.packs[lang].extra_rows)
            offset += len(self.packs[lang].extra_rows)
        return self.shared(ids, torch.cat(rows))
