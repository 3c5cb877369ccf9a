"""Nearest-neighbour search with FAISS: exact inner product by default, IVF or HNSW for galleries
past a million vectors, on the GPU when faiss-gpu is installed and a GPU is visible."""

from __future__ import annotations

import math

import faiss
import numpy as np

from mlclip_cli.errors import MlclipError

INDEX_KINDS = ("flat", "ivf", "hnsw")


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def build_index(gallery: np.ndarray, kind: str = "flat", use_gpu: bool | None = None, nprobe: int = 32):
    """An inner-product index over L2-normalised `gallery` rows (so scores are cosines)."""
    gallery = np.ascontiguousarray(gallery, dtype=np.float32)
    n, dim = gallery.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))  # FAISS wants ~39 training points per list
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = gallery[np.random.default_rng(0).permutation(n)[: nlist * 256]]
        index.train(sample)
        index.nprobe = min(nprobe, nlist)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 128
    else:
        raise MlclipError(f"unknown index '{kind}' (choose {', '.join(INDEX_KINDS)})")
    if (use_gpu if use_gpu is not None else gpu_available()) and kind != "hnsw":
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(gallery)
    return index


def search(index, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the top-k gallery rows per query (k clipped to the gallery size)."""
    k = min(k, index.ntotal)
    _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return found


