"""A frozen Hugging Face text tower (BERT, RoBERTa, XLM-R) behind `TextTower`'s interface.

The tower runs the HF model's own forward on `inputs_embeds` (its embeddings add positions and
token types and apply their LayerNorm; its attention masks the padding), with forward hooks after
each layer for MLA's acquirers, then pools as the model pools (sentence-transformers' mean / cls /
max, or open_clip's pooler) and projects (open_clip's `proj`; none for a sentence encoder).
Nothing of transformers is re-implemented, so every HF architecture that takes inputs_embeds
works the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mlclip_cli.errors import MlclipError
from mlclip_cli.models.hf_text import pool

# open_clip's poolers by class name -> the pooling they compute.
_OPEN_CLIP_POOLERS = {"MeanPooler": "mean", "MaxPooler": "max", "ClsLastHiddenStatePooler": "cls", "ClsPooler": "cls"}


@dataclass
class HfTextTower:
    transformer: nn.Module  # a transformers PreTrainedModel
    blocks: nn.ModuleList  # its layers (one acquirer after each)
    pooling: str
    projection: nn.Module | None
    token_embedding: nn.Embedding  # the word embeddings (CLL-CLIP's table starts from them)
    positional_embedding: torch.Tensor
    ln_final: nn.Module  # the embeddings' LayerNorm (hashed with the blocks: what MLA runs through)
    width: int
    context_length: int
    attn_mask = None
    batch_first = True
    kind = "hf"

    @classmethod
    def of(cls, owner: nn.Module) -> "HfTextTower":
        """`owner` is mlclip's SentenceModel or open_clip's HFTextEncoder (both: transformer + pooling + proj)."""
        transformer = owner.transformer
        encoder = getattr(transformer, "encoder", None)
        blocks = getattr(encoder, "layer", None)
        embeddings = getattr(transformer, "embeddings", None)
        if blocks is None or embeddings is None or not hasattr(embeddings, "position_embeddings"):
            raise MlclipError(f"{type(transformer).__name__}: a language extension reads BERT-style HF towers "
                              "(embeddings + encoder.layer)")
        pooling = getattr(owner, "pooling", None)
        if pooling is None:
            pooler = type(getattr(owner, "pooler", None)).__name__
            if pooler not in _OPEN_CLIP_POOLERS or getattr(owner.pooler, "use_pooler_output", False) \
                    and getattr(transformer, "pooler", None) is not None:
                raise MlclipError(f"open_clip pooler {pooler} is not one a language extension reads "
                                  f"({', '.join(_OPEN_CLIP_POOLERS)})")
            pooling = _OPEN_CLIP_POOLERS[pooler]
        projection = getattr(owner, "proj", None)
        if isinstance(projection, nn.Identity):
            projection = None
        config = transformer.config
        offset = 2 if config.model_type in ("roberta", "xlm-roberta") else 0  # positions start after padding_idx
        return cls(transformer, blocks, pooling, projection, transformer.get_input_embeddings(),
                   embeddings.position_embeddings.weight, embeddings.LayerNorm, config.hidden_size,
                   config.max_position_embeddings - offset)

    def run(self, x: torch.Tensor, lengths: torch.Tensor, after_block=None) -> torch.Tensor:
        """Word embeddings [n, L, width] (right-padded; lengths count the real tokens, special
        tokens included) -> the pooled, projected, unnormalised sentence embedding [n, dim]."""
        mask = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None]).long()
        hooks = []
        if after_block is not None:
            for layer, block in enumerate(self.blocks):
                hooks.append(block.register_forward_hook(_after(layer, after_block)))
        try:
            states = self.transformer(inputs_embeds=x, attention_mask=mask).last_hidden_state
        finally:
            for hook in hooks:
                hook.remove()
        return self.project(pool(states, mask, self.pooling))

    @property
    def text_projection(self) -> nn.Module | None:  # TextTower's name for it
        return self.projection

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled if self.projection is None else self.projection(pooled)


def _after(layer: int, after_block):
    def hook(module, inputs, output):
        if isinstance(output, tuple):  # older transformers: (hidden_states, attentions...)
            return (after_block(layer, output[0]), *output[1:])
        return after_block(layer, output)
    return hook
