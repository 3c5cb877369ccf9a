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


def paired_text_recall(queries: np.ndarray, gallery: np.ndarray, query_pairs, gallery_pairs,
                       index_kind: str = "flat", ks=KS) -> dict[int, float]:
    """Text->text recall in percent, {k: R@k}: each query sentence hits at k when a gallery sentence
    with its pair_id (a translation of it) is among its top k. Every query must have one (the caller
    keeps only those); the gallery is every sentence of the other language, translations or not.
    The same figures as `metrics.paired_text_ranks` up to ties (tested)."""
    if not len(queries):
        return {k: float("nan") for k in ks}
    codes = {pair: i for i, pair in enumerate(dict.fromkeys([*query_pairs, *gallery_pairs]))}
    query_codes = np.array([codes[p] for p in query_pairs], dtype=np.int64)
    gallery_codes = np.array([codes[p] if p is not None else -1 for p in gallery_pairs], dtype=np.int64)
    found = search(build_index(_normalised(gallery), index_kind), _normalised(queries), max(ks))
    hits = (gallery_codes[np.clip(found, 0, None)] == query_codes[:, None]) & (found >= 0)
    return {k: float(100.0 * hits[:, :k].any(axis=1).mean()) for k in ks}


def _normalised(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
