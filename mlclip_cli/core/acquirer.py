"""The language acquirer: a bottleneck MLP with a residual, placed after a frozen block.

MLA's packs hold one per block and language; the continual `mla` learner uses the same module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mlclip_cli.errors import MlclipError


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
