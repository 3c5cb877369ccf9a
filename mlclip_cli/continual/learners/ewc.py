"""Online EWC (Schwarz et al. 2018), CLFM's lambda 1000: a quadratic pull of the token table
toward its value after earlier tasks, weighted by their accumulated Fisher information."""

from __future__ import annotations

import torch

from mlclip_cli.continual.learners import Learner, register


@register
class OnlineEwc(Learner):
    name = "ewc"
    summary = "token embeddings + online EWC penalty"
    fisher: torch.Tensor | None = None  # set after the first task (an instance attribute from then on)
    anchor: torch.Tensor | None = None

    def penalty(self, encoder, batch, student, encode):
        if self.fisher is None:
            return None
        rows = len(self.anchor)
        drift = encoder.table[:rows] - self.anchor.to(encoder.table.device)
        return self.settings.ewc_lambda / 2 * (self.fisher.to(drift.device) * drift.pow(2)).sum()

    def end_task(self, encoder, data, languages, task, gradient_of):
        # Empirical Fisher: the mean squared gradient of the task's loss over a few batches.
        fisher = sum(gradient_of(i).pow(2) for i in range(self.settings.fisher_batches)) / self.settings.fisher_batches
        fisher = fisher.detach().cpu()
        if self.fisher is not None:
            old = torch.zeros_like(fisher)
            old[:len(self.fisher)] = self.fisher
            fisher = fisher + self.settings.ewc_gamma * old
        self.fisher, self.anchor = fisher, encoder.table.detach().cpu().clone()

    def state(self):
        if self.fisher is None:
            return {}, {}
        return {"fisher": self.fisher, "anchor": self.anchor}, {}

    def load_state(self, tensors, info):
        if "fisher" in tensors:
            self.fisher, self.anchor = tensors["fisher"], tensors["anchor"]
