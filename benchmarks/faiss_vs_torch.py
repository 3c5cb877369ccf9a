"""FAISS vs torch brute force for top-10 retrieval, at 10k, 100k and 1M gallery vectors.

Run by hand (figures go to docs/benchmarks.md):

    python benchmarks/faiss_vs_torch.py [--dim 128] [--queries 1000] [--sizes 10000,100000,1000000]

Both sides get the same L2-normalised random float32 vectors and return the top 10 by inner
product; the script checks they agree and prints the time of each and their ratio, measured in
one run on one machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mlclip_cli.search import build_index, search


def torch_topk(gallery: torch.Tensor, queries: torch.Tensor, k: int, chunk: int = 262_144) -> torch.Tensor:
    """Exact top-k by chunked matrix products (what a plain-torch bench would do)."""
    best_scores, best_index = None, None
    for start in range(0, len(gallery), chunk):
        scores = queries @ gallery[start:start + chunk].T
        top = scores.topk(min(k, scores.shape[1]), dim=1)
        index = top.indices + start
        if best_scores is None:
            best_scores, best_index = top.values, index
        else:
            merged = torch.cat([best_scores, top.values], 1)
            merged_index = torch.cat([best_index, index], 1)
            keep = merged.topk(k, dim=1)
            best_scores, best_index = keep.values, merged_index.gather(1, keep.indices)
    return best_index


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"threads: torch {torch.get_num_threads()}; dim {args.dim}; {args.queries} queries; top 10")
    print(f"{'gallery':>10} {'faiss build s':>14} {'faiss search s':>15} {'torch s':>9} {'torch/faiss':>12} {'agree':>6}")
    for size in (int(s) for s in args.sizes.split(",")):
        gallery = rng.standard_normal((size, args.dim), dtype=np.float32)
        gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
        queries = gallery[rng.integers(0, size, args.queries)] + 0.1 * rng.standard_normal((args.queries, args.dim), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        build_s, index = timed(lambda: build_index(gallery, "flat"), repeat=1)
        faiss_s, found = timed(lambda: search(index, queries, 10))
        g, q = torch.from_numpy(gallery), torch.from_numpy(queries)
        torch_s, topk = timed(lambda: torch_topk(g, q, 10))
        agree = float(np.mean(found[:, 0] == topk[:, 0].numpy()))
        print(f"{size:>10} {build_s:>14.3f} {faiss_s:>15.3f} {torch_s:>9.3f} {torch_s / faiss_s:>12.2f} {agree:>6.3f}")


if __name__ == "__main__":
    main()
