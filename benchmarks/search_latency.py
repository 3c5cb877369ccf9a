"""Single-query latency of search: `model.encode_text` + `index.search` for one query at a time.

Run by hand (figures go to docs/benchmarks.md, the JSON to docs/results/):

    python benchmarks/search_latency.py --workspace /work/ws-demo \\
        [--extension WS/extensions/mla] [--index WS/indexes-api/world-train] [--queries 1000] \\
        [--torch-threads 1] [--out docs/results/search_latency.json]

Builds (once; reused when it is there) an image index of the world's train images with the
extension's frozen image tower (`mlclip_cli.api.build`, what `mlclip index build --data world
--split train` runs), then times, one query at a time, world val captions in every language of the
extension: with the language given (`lang=CODE`: encode + search) and with `lang="auto"` (language
ID + encode + search). A query's time is wall time around those calls, after 20 warm-up queries;
the JSON holds the median, p90, p99 and mean of each part, the machine and its load average.
As a sanity check it also counts how often a caption's own scene is found (val captions have
clustered near-duplicates among the train images, so this is not a benchmark score).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

WARMUP = 20


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def summary(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {"median_ms": round(statistics.median(ms), 3), "p90_ms": round(percentile(ms, 90), 3),
            "p99_ms": round(percentile(ms, 99), 3), "mean_ms": round(statistics.fmean(ms), 3),
            "max_ms": round(max(ms), 3), "n": len(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path("/work/ws-demo"))
    parser.add_argument("--extension", type=Path, default=None, help="default: WORKSPACE/extensions/mla")
    parser.add_argument("--index", type=Path, default=None, help="default: WORKSPACE/indexes-api/world-train")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads before encoding (default: torch's own, the cores)")
    parser.add_argument("--out", type=Path, default=Path("docs/results/search_latency.json"))
    args = parser.parse_args()

    import torch

    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)

    from mlclip_cli.api import BuildConfig, Index, build, load
    from mlclip_cli.artifacts import read_manifest
    from mlclip_cli.workspace import Workspace

    space = Workspace(args.workspace)
    extension = args.extension or space.extension("mla")
    folder = args.index or args.workspace / "indexes-api" / "world-train"
    manifest = space.manifest("world")
    load_average = {"start": os.getloadavg()}

    started = time.perf_counter()
    model = load(str(extension), device="cpu")
    load_seconds = time.perf_counter() - started
    build_seconds = None
    if not (folder / "index.json").is_file():
        started = time.perf_counter()
        result = build(BuildConfig(out=folder, manifest=manifest, split="train", model=str(extension), device="cpu"),
                       model=model)
        build_seconds = time.perf_counter() - started
        print(f"built {folder}: {result.count} images in {build_seconds:.1f} s"
              + (f" ({len(result.unreadable)} unreadable)" if result.unreadable else ""))
    started = time.perf_counter()
    index = Index.load(folder)
    index_load_seconds = time.perf_counter() - started
    index.check_model(model)

    rows = read_manifest(manifest).to_pandas()
    val = rows[(rows.split == "val") & rows.language.isin(model.languages)]
    picked = val.sample(n=min(args.queries + WARMUP, len(val)), random_state=0)
    queries = list(zip(picked.caption, picked.language))
    train = rows[rows.split == "train"].drop_duplicates("image_id")
    print(f"{len(index):,} images, dim {index.dim}, kind {index.kind}; {len(queries) - WARMUP} queries in "
          f"{picked.language.nunique()} languages; torch threads {torch.get_num_threads()}")

    timings: dict[str, dict[str, list[float]]] = {"given": {"encode": [], "search": [], "total": []},
                                                 "auto": {"langid": [], "encode": [], "search": [], "total": []}}
    routed_right = 0
    for i, (caption, language) in enumerate(queries):
        t0 = time.perf_counter()
        vector = model.encode_text([caption], lang=language)
        t1 = time.perf_counter()
        index.search(vector, args.k)
        t2 = time.perf_counter()
        detection = model.detect_language([caption])[0]
        t3 = time.perf_counter()
        vector = model.encode_text([caption], lang=detection.language)
        t4 = time.perf_counter()
        index.search(vector, args.k)
        t5 = time.perf_counter()
        if i < WARMUP:
            continue
        routed_right += detection.language == language
        for part, seconds in (("encode", t1 - t0), ("search", t2 - t1), ("total", t2 - t0)):
            timings["given"][part].append(seconds)
        for part, seconds in (("langid", t3 - t2), ("encode", t4 - t3), ("search", t5 - t4), ("total", t5 - t2)):
            timings["auto"][part].append(seconds)
    load_average["end"] = os.getloadavg()

    random.seed(0)
    own = train.sample(n=min(200, len(train)), random_state=0)
    vectors = model.encode_text(own.caption.tolist(), lang="en")
    hits = index.search(vectors, 10)
    root = index.root
    own_paths = [Path(p).resolve() for p in own.image_path]
    at1 = sum((root / row[0].path).resolve() == path for row, path in zip(hits, own_paths))
    at10 = sum(path in {(root / h.path).resolve() for h in row} for row, path in zip(hits, own_paths))

    report = {
        "what": "single-query latency of model.encode_text + index.search (mlclip_cli.api), one query at a time",
        "command": (f"python benchmarks/search_latency.py --workspace {args.workspace} --queries {args.queries}"
                    + (f" --torch-threads {args.torch_threads}" if args.torch_threads is not None else "")
                    + f" --out {args.out}"),
        "index": {"folder": str(folder), "images": len(index), "dim": index.dim, "kind": index.kind,
                  "image_identity": index.image_identity, "build_seconds": build_seconds,
                  "load_seconds": round(index_load_seconds, 3)},
        "model": {"spec": model.spec, "languages": list(model.languages), "load_seconds": round(load_seconds, 2)},
        "queries": len(queries) - WARMUP, "warmup": WARMUP, "k": args.k,
        "languages": sorted(picked.language.unique().tolist()),
        "lang_given": {part: summary(values) for part, values in timings["given"].items()},
        "lang_auto": {part: summary(values) for part, values in timings["auto"].items()},
        "auto_routed_to_the_given_language": round(routed_right / (len(queries) - WARMUP), 4),
        "sanity_english_train_captions_own_image": {"n": len(own), "at_1": at1, "at_10": at10},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_1_5_15": load_average},
    }
    from mlclip_cli.provenance import provenance

    report["provenance"] = provenance("python " + " ".join(sys.argv))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for mode in ("lang_given", "lang_auto"):
        parts = ", ".join(f"{part} {s['median_ms']:.2f}/{s['p99_ms']:.2f}" for part, s in report[mode].items())
        print(f"{mode} (median/p99 ms): {parts}")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
