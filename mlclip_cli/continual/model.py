"""The continual text encoder: CLIP's own text tower reading a trainable, growable token table.

CLL-CLIP trains only `table` (CLIP's token-embedding rows, then the rows each new language's
vocabulary appends). Two baselines add trainable parts: MLA's language acquirers after every
block (one set per language, routed by the caption's language), and full fine-tuning, which
trains a copy of the whole text tower. The base model itself is never modified.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from mlclip_cli.errors import MlclipError
from mlclip_cli.core.acquirer import Acquirer
from mlclip_cli.core.towers import TextTower, tower_of

TEMPERATURE_INIT = 0.07
TEMPERATURE_RANGE = (0.001, 0.5)


class TowerCopy(nn.Module):
    """Trainable copies of a text tower's parts (full fine-tuning only)."""

    def __init__(self, tower: TextTower):
        super().__init__()
        self.blocks = copy.deepcopy(tower.blocks)
        self.ln_final = copy.deepcopy(tower.ln_final)
        self.positional_embedding = nn.Parameter(tower.positional_embedding.detach().clone())
        projection = tower.text_projection
        self.projection_linear = copy.deepcopy(projection) if isinstance(projection, nn.Linear) else None
        self.projection = (nn.Parameter(projection.detach().clone())
                           if isinstance(projection, torch.Tensor) else None)
        self.requires_grad_(True)

    def view(self, tower: TextTower) -> TextTower:
        projection = self.projection_linear if self.projection_linear is not None else self.projection
        return dataclasses.replace(tower, blocks=self.blocks, ln_final=self.ln_final,
                                   positional_embedding=self.positional_embedding, text_projection=projection)


class ContinualTextEncoder(nn.Module):
    """`parameters()` are exactly what the method trains; the frozen tower stays outside them."""

    def __init__(self, model: nn.Module, vocab_size: int, hidden: int | None = None, train_tower: bool = False):
        super().__init__()
        base = tower_of(model)
        self.tower_copy = TowerCopy(base) if train_tower else None
        self._tower = self.tower_copy.view(base) if train_tower else base
        self.hidden = hidden or base.width // 2
        clip_rows = base.token_embedding.weight.detach().float()
        if vocab_size < len(clip_rows):
            raise MlclipError(f"a token table of {vocab_size} rows cannot hold CLIP's {len(clip_rows)}")
        table = torch.zeros(vocab_size, clip_rows.shape[1], device=clip_rows.device)
        table[:len(clip_rows)] = clip_rows
        self.table = nn.Parameter(table)
        self.acquirers = nn.ModuleDict()
        # CLFM's learnable InfoNCE temperature, as a log-scale (only training uses it).
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / TEMPERATURE_INIT)))

    @property
    def tower(self) -> TextTower:
        return self._tower

    @property
    def clip_rows(self) -> int:
        return self._tower.token_embedding.weight.shape[0]

    def grow(self, rows: torch.Tensor) -> None:
        """Append new token rows (a new language's vocabulary)."""
        if len(rows):
            self.table = nn.Parameter(torch.cat([self.table.detach(), rows.to(self.table)]))

    def add_acquirers(self, language: str) -> nn.ModuleList:
        layers = nn.ModuleList(Acquirer(self._tower.width, self.hidden) for _ in self._tower.blocks)
        layers.to(self.table.device)
        self.acquirers[language] = layers
        return layers

    def temperature(self) -> torch.Tensor:
        low, high = TEMPERATURE_RANGE
        return (1 / self.logit_scale.exp()).clamp(low, high)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor,
                segments: list[tuple[str, int, int]] | None = None, table: torch.Tensor | None = None) -> torch.Tensor:
        """ids [n, L], lengths [n] (SOS..EOS), segments (language, start, stop) for the acquirers
        (ignored when there are none); `table` replaces the token table (LwF's previous model).
        Returns the projected, unnormalised embedding [n, dim]."""
        x = F.embedding(ids, self.table if table is None else table)
        after = None
        if len(self.acquirers) and segments:
            missing = [lang for lang, _, _ in segments if lang not in self.acquirers]
            if missing:
                raise MlclipError(f"no language acquirers for '{missing[0]}'")

            def after(layer: int, x: torch.Tensor) -> torch.Tensor:
                return torch.cat([self.acquirers[lang][layer](x[a:b]) for lang, a, b in segments])
        return self._tower.run(x, lengths, after)

    def trainable_parameters(self, language: str | None = None) -> int:
        """What one step can change: the table, the tower copy, and this language's acquirers."""
        count = self.table.numel() + (sum(p.numel() for p in self.tower_copy.parameters()) if self.tower_copy else 0)
        if language is not None and language in self.acquirers:
            count += sum(p.numel() for p in self.acquirers[language].parameters())
        return count
