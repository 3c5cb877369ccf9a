"""Retrieval recall with a FAISS index: the metrics of `mlclip_cli.metrics` computed from the top
10 neighbours instead of the full similarity matrix (equal up to ties; tested)."""

from __future__ import annotations

import numpy as np

from mlclip_cli.search import build_index, search

KS = (1, 5, 10)


def faiss_retrieval_metrics(text: np.ndarray, image: np.ndarray, caption_image: np.ndarray,
                            index_kind: str = "flat", ks=KS) -> dict[str, float]:
    caption_image = np.asarray(caption_image)
    top = max(ks)
    t2i = search(build_index(image, index_kind), text, top)
    i2t = search(build_index(text, index_kind), image, top)
    metrics = {}
    t2i_hits = t2i == caption_image[:, None]
    i2t_hits = caption_image[np.clip(i2t, 0, None)] == np.arange(len(image))[:, None]
    i2t_hits &= i2t >= 0  # -1 marks "no result" in FAISS
    has_caption = np.isin(np.arange(len(image)), caption_image)  # images without captions are not queries
    for k in ks:
        metrics[f"image_retrieval_recall@{k}"] = float(100.0 * t2i_hits[:, :k].any(axis=1).mean())
    for k in ks:
        metrics[f"text_retrieval_recall@{k}"] = float(100.0 * i2t_hits[has_caption, :k].any(axis=1).mean())
    metrics["mean_recall"] = float(np.mean(list(metrics.values())))
    return metrics


def translation_recall(student: np.ndarray, teacher: np.ndarray, target: np.ndarray,
                       index_kind: str = "flat", ks=KS) -> dict[str, float]:
    """Text->text: each caption (student embedding) retrieves its English caption among all
    English captions (teacher embeddings); target[i] = row of caption i's English caption."""
    found = search(build_index(teacher, index_kind), student, max(ks))
    hits = found == np.asarray(target)[:, None]
    return {f"text_to_text_recall@{k}": float(100.0 * hits[:, :k].any(axis=1).mean()) for k in ks}
