"""FAISS index kinds at a million vectors: build time, index size, query throughput and recall
against exact search, plus the sharded IVF-PQ build.

Run by hand (figures go to docs/benchmarks.md):

    python benchmarks/faiss_scale.py [--n 1000000] [--dims 128] [--queries 1000] [--out FILE.md]

Data (synthetic, clustered, not uniform noise), per dimension d, seed 0:

- 20,000 cluster centres drawn from N(0, I_d) and normalised onto the unit sphere;
- each gallery point = a centre drawn uniformly + sigma * g / sqrt(d), g ~ N(0, I_d) (noise of norm
  ~sigma = 0.5), normalised: 50 points a cluster on average;
- each of the 1000 queries = a gallery point drawn uniformly + tau * g / sqrt(d) (tau = 0.3: a caption
  near its image), normalised.

Indexes are mlclip's (`mlclip_cli.search`, inner product): flat (exact, the ground truth), ivf, ivfpq,
ivfpq with refine (the top 4 k candidates re-ranked from the raw vectors) and hnsw, with the
library's defaults unless given: nlist = min(4 sqrt(n), n/39), nprobe 32, training sample 64 per list
(>= 9984 for ivfpq), pq_m = the default for d (128 -> 32, 256 -> 64 bytes a vector), hnsw M 32,
efConstruction 40, efSearch 128. Build time covers training and adding; index size is the length of
faiss.serialize_index; queries/s is 1000 queries in one batch, the faster of two runs; recall@k is
the share of the exact top k found in the index's top k, over all queries. The sharded build trains
on the same sample as the one-shot ivfpq, then adds 10 shards of n/10 one at a time (the shards are
in-memory slices here: reading Parquet is not timed), and is compared with the one-shot index.
CPU only: FAISS's threads are faiss.omp_get_max_threads().
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import faiss
import numpy as np

from mlclip_cli.search import (IndexConfig, build_index, build_index_sharded, index_bytes, recall_vs_exact,
                               search)

K = 10


def clustered(n: int, dim: int, centres: int, sigma: float, seed: int, chunk: int = 100_000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    scale = np.float32(sigma / np.sqrt(dim))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = c[rng.integers(0, centres, stop - start)]
        block += scale * rng.standard_normal((stop - start, dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def noisy_queries(gallery: np.ndarray, count: int, tau: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    q = gallery[rng.choice(len(gallery), count, replace=False)].copy()
    q += np.float32(tau / np.sqrt(gallery.shape[1])) * rng.standard_normal(q.shape, dtype=np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def measure(name: str, settings: str, build, queries: np.ndarray, exact: np.ndarray | None, n: int):
    build_s, index = timed(build)
    size = index_bytes(index)
    search_s = min(timed(lambda: search(index, queries, K))[0] for _ in range(2))
    _, found = index.search(queries, K)
    row = {"index": name, "settings": settings, "build_s": build_s, "bytes": size, "bytes_per_vector": size / n,
           "qps": len(queries) / search_s,
           "r1": recall_vs_exact(found, exact, 1) if exact is not None else 1.0,
           "r10": recall_vs_exact(found, exact, K) if exact is not None else 1.0}
    print(f"  {name:<14} build {build_s:7.1f} s  {size / 2**20:8.1f} MiB  {row['qps']:9.0f} q/s  "
          f"R@1 {row['r1']:.3f}  R@10 {row['r10']:.3f}", flush=True)
    return row, index, found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dims", default="128", help="comma-separated, e.g. 128,256,512")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--centres", type=int, default=20_000)
    parser.add_argument("--sigma", type=float, default=0.5)
    parser.add_argument("--tau", type=float, default=0.3)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--kinds", default="ivf,ivfpq,ivfpq+refine,hnsw,sharded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    threads = faiss.omp_get_max_threads()
    load = os.getloadavg()
    command = "python benchmarks/faiss_scale.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = (f"FAISS {faiss.__version__}, {threads} OpenMP threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
              f"load average at start {load[0]:.2f}; n = {args.n:,}, {args.queries} queries, {args.centres:,} clusters, "
              f"sigma {args.sigma}, tau {args.tau}")
    print(header, flush=True)
    rows, notes = [], []
    started = time.perf_counter()
    for dim in (int(d) for d in args.dims.split(",")):
        gen_s, gallery = timed(lambda: clustered(args.n, dim, args.centres, args.sigma, args.seed))
        queries = noisy_queries(gallery, args.queries, args.tau, args.seed)
        print(f"dim {dim}: data in {gen_s:.1f} s", flush=True)
        row, index, exact = measure("flat (exact)", "IndexFlatIP", lambda: build_index(gallery, IndexConfig("flat")),
                                    queries, None, args.n)
        rows.append({"dim": dim} | row)
        del index
        ivfpq_found = None
        config_pq = IndexConfig("ivfpq").resolved(args.n, dim)
        for kind in kinds:
            if kind == "ivf":
                config = IndexConfig("ivf").resolved(args.n, dim)
                settings = f"nlist {config.nlist}, nprobe {config.nprobe}, train {config.train_size:,}"
            elif kind in ("ivfpq", "ivfpq+refine"):
                config = IndexConfig("ivfpq", refine=kind.endswith("refine")).resolved(args.n, dim)
                settings = (f"nlist {config.nlist}, nprobe {config.nprobe}, m {config.pq_m} x 8 bits, "
                            f"train {config.train_size:,}" + (f", refine k x {config.refine_factor}" if config.refine else ""))
            elif kind == "hnsw":
                config = IndexConfig("hnsw", hnsw_m=args.hnsw_m, ef_construction=args.ef_construction)
                settings = f"M {config.hnsw_m}, efConstruction {config.ef_construction}, efSearch {config.ef_search}"
            elif kind == "sharded":
                continue
            else:
                raise SystemExit(f"unknown kind {kind}")
            row, index, found = measure(kind, settings, lambda: build_index(gallery, config), queries, exact, args.n)
            rows.append({"dim": dim} | row)
            if kind == "ivfpq":
                ivfpq_found = index.search(queries, K)
            del index
        if "sharded" in kinds:
            sample = gallery[np.random.default_rng(config_pq.seed).permutation(args.n)[: config_pq.train_size]]
            shards = np.array_split(gallery, args.shards)  # views: no copy
            settings = f"{args.shards} shards of {len(shards[0]):,}, trained once on the ivfpq sample"
            row, index, found = measure(
                "ivfpq sharded", settings,
                lambda: build_index_sharded(iter(shards), config_pq, train_sample=sample, total=args.n),
                queries, exact, args.n)
            rows.append({"dim": dim} | row)
            if ivfpq_found is not None:
                d_sharded, i_sharded = index.search(queries, K)
                same_ids = float(np.mean(np.all(i_sharded == ivfpq_found[1], axis=1)))
                same = np.array_equal(i_sharded, ivfpq_found[1]) and np.array_equal(d_sharded, ivfpq_found[0])
                notes.append(f"dim {dim}: sharded ivfpq vs one-shot ivfpq: ids and scores identical for every query: "
                             f"{'yes' if same else 'no'} (queries with identical top {K} ids: {100 * same_ids:.1f}%)")
                print("  " + notes[-1], flush=True)
            del index, sample
        del gallery
    total = time.perf_counter() - started
    load = os.getloadavg()
    table = ["| dim | index | settings | build s | index MiB | bytes/vector | queries/s (batch 1000) | recall@1 | recall@10 |",
             "|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['dim']} | {r['index']} | {r['settings']} | {r['build_s']:.1f} | {r['bytes'] / 2**20:.1f} | "
                     f"{r['bytes_per_vector']:.0f} | {r['qps']:,.0f} | {r['r1']:.3f} | {r['r10']:.3f} |")
    table.append("| - | flat / ivf / ivfpq on GPU | faiss-gpu | not measured (no GPU here) | | | | | |")
    text = "\n".join([f"Command: `{command}`", "", header + f"; load average at end {load[0]:.2f}; "
                      f"whole run {total:.0f} s", "", *table, "", *(f"- {note}" for note in notes)]) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
