"""Learning without Forgetting: the current task's captions are also pulled toward what the
model before this task made of them (its normalised embedding), so old behaviour is kept
without storing old data."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlclip_cli.continual.learners import Learner, register


@register
class Lwf(Learner):
    name = "lwf"
    summary = "token embeddings + distillation from the previous model"
    previous: torch.Tensor | None = None  # the table before this task (set at each task's start)

    def start_task(self, encoder, languages, task):
        # Taken after the vocabulary grew, so the new rows exist (at their initial values).
        self.previous = encoder.table.detach().clone() if task > 0 else None

    def penalty(self, encoder, batch, student, encode):
        if self.previous is None:
            return None
        with torch.no_grad():
            before = F.normalize(encode(batch, table=self.previous), dim=-1)
        return self.settings.lwf_weight * (F.normalize(student, dim=-1) - before).pow(2).sum(-1).mean()
