"""Encoding captions of mixed languages in few forward passes, for any text encoder that runs
one language-routed batch at a time (MLA's packs, the continual table with its acquirers)."""

from __future__ import annotations

import numpy as np
import torch


def encode_grouped(encoder: torch.nn.Module, tokenizers: dict, captions: list[str],
                   languages: np.ndarray, device: torch.device, buckets: int = 2) -> torch.Tensor:
    """Unnormalised embeddings of captions in mixed languages, each through its own pack, in input
    order. `encoder(ids, lengths, segments)` embeds a batch whose rows `start:stop` of each segment
    (language, start, stop) are in that language; `tokenizers[language].ids(captions, context)`
    tokenises. Captions are split into `buckets` by token length (padding a 7-token Japanese caption
    to a 35-token French one would double the cost); within a bucket they are grouped by
    language, so the frozen blocks run once per bucket."""
    context = encoder.tower.context_length
    ids = [None] * len(captions)
    for language in dict.fromkeys(languages.tolist()):
        where = np.flatnonzero(languages == language)
        for i, row in zip(where, tokenizers[language].ids([captions[i] for i in where], context)):
            ids[i] = row
    by_length = np.argsort([len(row) for row in ids], kind="stable")
    pad = next(iter(tokenizers.values())).pad
    out, placed = None, []
    for part in np.array_split(by_length, min(buckets, len(captions))):
        part = part[np.argsort(languages[part], kind="stable")]  # languages contiguous
        segments, start = [], 0
        for language in dict.fromkeys(languages[part].tolist()):
            count = int((languages[part] == language).sum())
            segments.append((language, start, start + count))
            start += count
        longest = max(len(ids[i]) for i in part)
        batch = torch.full((len(part), longest), pad, dtype=torch.long)
        for row, i in enumerate(part):
            batch[row, :len(ids[i])] = torch.tensor(ids[i])
        lengths = torch.tensor([len(ids[i]) for i in part])
        placed.append(part)
        emb = encoder(batch.to(device), lengths.to(device), segments)
        out = emb if out is None else torch.cat([out, emb])
    inverse = torch.from_numpy(np.argsort(np.concatenate(placed), kind="stable")).to(device)
    return out[inverse]
