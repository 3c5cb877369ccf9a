"""TEIR (Token Embedding Initialisation and Regularisation, CLL-CLIP) and the plain baseline.

- Initialisation: a new language's rows are drawn from N(mu, sigma) of the existing table (two
  scalars over every element), not N(0, 0.02), so they start where the tower expects inputs.
- Regularisation: token usage f_i counts the tasks whose corpus used row i (CLIP's own rows
  count one more before the first expansion). During a task, row i gets the scale
  s_i = [i in this task's corpus] / f_i (special tokens 0), applied in the AdamW step to its
  gradient and/or its decoupled weight decay. Rows the task never uses are neither moved nor
  decayed.

Under Adam a per-row gradient scale that is constant for a task cancels (Adam normalises every
coordinate by its own history), so `freq="grad"` (the paper's rule) acts mostly through the mask
and the decay; `freq="off"` is that control (mask only). `freq="update"` makes usage really weigh
by scaling each row's whole update by 1/f (a per-row learning rate); it holds the earlier languages
but slows the new one, whose rows are mostly shared, so on a short sequence its AA fell below
plain's. `freq="balanced"`, the default, shares the same total update out by 1/f: the scales are
divided by their mean over the task's rows, so the new language moves its rows as much on average
as without TEIR, most where earlier languages rely least (docs/continual.md, measured there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlclip_cli.errors import MlclipError

TEIR_CHOICES = ("none", "init", "reg", "both")
REG_CHOICES = ("grad", "decay", "both")
FREQ_CHOICES = ("grad", "off", "update", "balanced")
PLAIN_INIT_STD = 0.02


@dataclass(frozen=True)
class TeirConfig:
    init: bool = False  # new rows from N(mean, std) of the table, else N(0, 0.02)
    reg: bool = False  # usage-scaled gradient / decay
    reg_on: str = "both"  # grad | decay | both
    # balanced (default: 1/f per-row update, normalised to plain's mean) | update (1/f per-row update)
    # | grad (the paper: 1/f scales gradient and decay, which Adam cancels) | off (the mask only).
    freq: str = "balanced"

    @classmethod
    def parse(cls, teir: str = "none", reg_on: str = "both", freq: str = "balanced") -> "TeirConfig":
        for value, choices, option in ((teir, TEIR_CHOICES, "--teir"), (reg_on, REG_CHOICES, "--teir-reg"),
                                       (freq, FREQ_CHOICES, "--teir-freq")):
            if value not in choices:
                raise MlclipError(f"unknown {option} '{value}' (choose {', '.join(choices)})")
        return cls(init=teir in ("init", "both"), reg=teir in ("reg", "both"), reg_on=reg_on, freq=freq)

    @property
    def label(self) -> str:
        parts = {(False, False): "none", (True, False): "init", (False, True): "reg", (True, True): "both"}
        name = parts[(self.init, self.reg)]
        if self.reg and (self.reg_on != "both" or self.freq != "balanced"):
            name += f" (reg on {self.reg_on}, freq {self.freq})"
        return name


def new_rows(table: torch.Tensor, count: int, config: TeirConfig, generator: torch.Generator) -> torch.Tensor:
    """Initial values of `count` appended rows."""
    if config.init:
        mean, std = table.detach().float().mean().item(), table.detach().float().std().item()
    else:
        mean, std = 0.0, PLAIN_INIT_STD
    return torch.randn(count, table.shape[1], generator=generator) * std + mean


def initial_usage(clip_rows: int) -> torch.Tensor:
    """f_i = 1 for every row, + 1 for CLIP's own rows (they were 'used' by its pre-training)."""
    return torch.full((clip_rows,), 2.0)


def grow_usage(usage: torch.Tensor, count: int) -> torch.Tensor:
    return torch.cat([usage, torch.ones(count, dtype=usage.dtype)])


def row_scales(usage: torch.Tensor, used: torch.Tensor, special: list[int], config: TeirConfig) -> torch.Tensor:
    """s_i for this task: `used` is a bool mask of the rows its corpus contains."""
    scale = used.float() / usage if config.freq == "grad" else used.float()
    scale[special] = 0.0
    return scale


class RowScaledStep:
    """Applies TEIR's per-row scales around a torch AdamW step of the token table.

    The table's parameter group has weight_decay 0; its decoupled decay is applied here, before
    the step, exactly as AdamW would (theta <- theta (1 - lr wd s_i)), so it can be scaled per row.
    """

    def __init__(self, table: torch.nn.Parameter, weight_decay: float, config: TeirConfig | None,
                 scale: torch.Tensor | None, usage: torch.Tensor | None):
        self.table, self.weight_decay, self.config = table, weight_decay, config
        regularised = config is not None and config.reg
        device = table.device
        ones = torch.ones(len(table), device=device)
        self.grad_scale = self.decay_scale = self.update_scale = None
        if regularised:
            scale = scale.to(device)
            mask = (scale > 0).float()
            if config.reg_on in ("grad", "both"):
                self.grad_scale = mask if config.freq in ("update", "balanced") else scale
            self.decay_scale = ((mask if config.freq in ("update", "balanced") else scale)
                                if config.reg_on in ("decay", "both") else ones)
            if config.freq in ("update", "balanced"):
                inverse = 1.0 / usage.to(device)
                if config.freq == "balanced" and mask.any():
                    # the task's rows move as much on average as without TEIR, shared out by 1/f
                    inverse = inverse / inverse[mask > 0].mean()
                self.update_scale = torch.where(mask > 0, inverse, ones)
        else:
            self.decay_scale = ones

    def __call__(self, optimizer: torch.optim.Optimizer, lr: float) -> None:
        table = self.table
        before = table.detach().clone() if self.update_scale is not None else None
        with torch.no_grad():
            if self.grad_scale is not None and table.grad is not None:
                table.grad.mul_(self.grad_scale[:, None])
            if self.weight_decay:
                table.mul_(1 - lr * self.weight_decay * self.decay_scale[:, None])
        optimizer.step()
        if before is not None:
            with torch.no_grad():
                table.copy_(before + self.update_scale[:, None] * (table - before))
