"""The frozen text towers both methods read through, without copying or changing them.

`TextTower` points at the parts of an open_clip CLIP text transformer (the blocks, positional
embedding, causal mask, ln_final, text_projection) wherever open_clip keeps them (`CLIP` has them
on the model, `CustomTextCLIP` on `model.text`); `HfTextTower` (hf_tower.py) does the same for a
Hugging Face transformer. `tower_of` picks the wrapper for a model, and `tower_sha256` names the
weights a language extension was built on, so a folder made for another base is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
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
            raise MlclipError(f"{type(model).__name__}: a language extension needs a CLIP text transformer "
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
        from mlclip_cli.core.hf_tower import HfTextTower

        return HfTextTower.of(owner)
    return TextTower.of(model)


def tower_sha256(tower) -> str:
    """A digest of the frozen text tower's weights that an extension runs through."""
    digest = hashlib.sha256()
    modules = {"blocks": tower.blocks, "ln_final": tower.ln_final}
    for name, module in modules.items():
        for key, value in sorted(module.state_dict().items()):
            digest.update(f"{name}.{key}".encode())
            digest.update(value.detach().float().cpu().numpy().tobytes())
    for tensor in (tower.positional_embedding, tower.text_projection):
        if isinstance(tensor, torch.Tensor):
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()
