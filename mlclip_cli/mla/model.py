"""The MLA text encoder: a frozen open_clip text tower with language acquirers after its blocks.

Nothing of the tower is copied or changed: the core's `TextTower` (core/towers.py) only points at
its modules, and the acquirers are the core's (core/acquirer.py). Non-native text enters through
the shared token table (+ `W_e` when its width differs), passes each frozen block followed by that
language's acquirer, and is pooled and projected exactly as the tower pools English: at the EOS
position, after ln_final, through text_projection. English never enters this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mlclip_cli.core.acquirer import Acquirer, check_acquirer
from mlclip_cli.core.towers import TextTower, tower_of
from mlclip_cli.errors import MlclipError


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
