"""Retrieval metrics (as CLIP_benchmark and the papers define them) as pure functions.

Similarity is the cosine of L2-normalised embeddings. Text->image: each caption is a query and
hits at k when its image is in the top k. Image->text: each image is a query and hits at k when
ANY of its captions is in the top k. All captions of an image are kept. Ties count against the
query (an item scored equal to the right answer ranks before it), so constant scores never look good.
Keys follow CLIP_benchmark: `image_retrieval_recall@k` is text->image, `text_retrieval_recall@k`
is image->text; `mean_recall` is the mean of the six (the papers' AR).
"""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10)
_CHUNK = 1024


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def text_to_image_ranks(text: np.ndarray, image: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """0-based rank of each caption's own image among all images."""
    text, image = _normalise(text), _normalise(image)
    caption_image = np.asarray(caption_image)
    ranks = np.empty(len(text), dtype=np.int64)
    for start in range(0, len(text), _CHUNK):
        sims = text[start:start + _CHUNK] @ image.T
        own = sims[np.arange(len(sims)), caption_image[start:start + _CHUNK]]
        ranks[start:start + _CHUNK] = (sims >= own[:, None]).sum(axis=1) - 1
    return ranks


def image_to_text_ranks(text: np.ndarray, image: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """0-based rank of the best-ranked caption of each image among all captions."""
    text, image = _normalise(text), _normalise(image)
    caption_image = np.asarray(caption_image)
    ranks = np.full(len(image), np.iinfo(np.int64).max, dtype=np.int64)
    for start in range(0, len(image), _CHUNK):
        sims = image[start:start + _CHUNK] @ text.T  # images x captions
        for row, image_index in enumerate(range(start, start + len(sims))):
            mine = caption_image == image_index
            if mine.any():  # other images' captions scoring at least its best caption rank before it
                ranks[image_index] = (sims[row, ~mine] >= sims[row, mine].max()).sum()
    return ranks


def recall_at(ranks: np.ndarray, k: int) -> float:
    ranks = ranks[ranks != np.iinfo(np.int64).max]  # images without captions are not queries
    return float(100.0 * np.mean(ranks < k)) if ranks.size else float("nan")


def retrieval_metrics(text: np.ndarray, image: np.ndarray, caption_image: np.ndarray, ks=KS) -> dict[str, float]:
    """Recall@k both ways in percent, and their mean. caption_image[i] = image index of caption i."""
    t2i = text_to_image_ranks(text, image, caption_image)
    i2t = image_to_text_ranks(text, image, caption_image)
    metrics = {}
    for k in ks:
        metrics[f"image_retrieval_recall@{k}"] = recall_at(t2i, k)
    for k in ks:
        metrics[f"text_retrieval_recall@{k}"] = recall_at(i2t, k)
    metrics["mean_recall"] = float(np.mean(list(metrics.values())))
    return metrics


def paired_text_ranks(queries: np.ndarray, gallery: np.ndarray, query_pairs, gallery_pairs) -> np.ndarray:
    """Text->text: 0-based rank of the best-ranked gallery sentence sharing the
    query's pair_id (its translation) among all gallery sentences; ties count against the query.
    A query without a translation in the gallery gets the int64 maximum (never a hit)."""
    queries, gallery = _normalise(queries), _normalise(gallery)
    query_pairs, gallery_pairs = np.asarray(query_pairs, dtype=object), np.asarray(gallery_pairs, dtype=object)
    ranks = np.full(len(queries), np.iinfo(np.int64).max, dtype=np.int64)
    for start in range(0, len(queries), _CHUNK):
        sims = queries[start:start + _CHUNK] @ gallery.T
        for row, query in enumerate(range(start, start + len(sims))):
            mine = gallery_pairs == query_pairs[query]
            if query_pairs[query] is not None and mine.any():
                ranks[query] = (sims[row, ~mine] >= sims[row, mine].max()).sum()
    return ranks
