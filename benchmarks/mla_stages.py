"""The MLA paper's Table 4 on the world: which training stages matter.

    python benchmarks/mla_stages.py [-w mlclip-workspace] [--langs de,ru,ja] [--steps 600]

Trains one extension per row of Table 4 with `train_mla` (what `mlclip train --stages ...` runs) and
benches each on the world's XTD10-layout test: NLT only, LE only, NLT+LE together, NLT->LE (the
default) and NLT->NLT+LE. Every row gets the same first-stage budget (--steps at lr 2e-3): LE alone
runs on it too, or it would be a 100-step straw man. The second stage of NLT->LE and NLT->NLT+LE is
the world's LE schedule (100 steps at 1e-4). Prints a Markdown table (text->image R@1 and mean recall
per language, and their mean) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import replace

from mlclip_cli.bench.run import BenchConfig, run_bench
from mlclip_cli.mla.method import MlaConfig, train_mla
from mlclip_cli.mla.train import LoopConfig, StageConfig
from mlclip_cli.workspace import Workspace

ROWS = (("NLT only", "nlt"), ("LE only", "le"), ("NLT+LE together", "nlt+le"), ("NLT -> LE", "nlt,le"),
        ("NLT -> NLT+LE", "nlt,nlt+le"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", default=None)
    parser.add_argument("--langs", default="de,ru,ja")
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    languages = tuple(args.langs.split(","))
    base = LoopConfig(nlt=StageConfig(args.steps, 2e-3, 0.05), eval_every=10**9)
    lines = ["| stages | " + " | ".join(f"{l} t2i R@1 | {l} mean" for l in languages) + " | mean t2i R@1 | mean recall | s |",
             "|---" * (2 * len(languages) + 4) + "|"]
    for title, stages in ROWS:
        loop = replace(base, stages=stages)
        if stages == "le":
            loop = replace(loop, le=StageConfig(args.steps, 2e-3, 0.05))
        out = ws.root / "extensions" / f"table4-{stages.replace(',', '-then-').replace('+', '-and-')}"
        shutil.rmtree(out, ignore_errors=True)
        began = time.perf_counter()
        train_mla(MlaConfig(manifest=ws.manifest("world"), out=out, languages=languages,
                            features_root=ws.features_root, loop=loop))
        seconds = time.perf_counter() - began
        result = run_bench(BenchConfig(benchmark="xtd", manifest=ws.manifest("xtd10"), out_dir=ws.root / "results" / "table4",
                                       features_dir=ws.features_root, languages=languages, model=str(out))).result
        cells, r1s, means = [], [], []
        for language in languages:
            metrics = result["languages"][language]["metrics"]
            cells += [f"{metrics['image_retrieval_recall@1']:.1f}", f"{metrics['mean_recall']:.1f}"]
            r1s.append(metrics["image_retrieval_recall@1"])
            means.append(metrics["mean_recall"])
        lines.append(f"| {title} (`--stages {stages}`) | " + " | ".join(cells) +
                     f" | {sum(r1s) / len(r1s):.1f} | {sum(means) / len(means):.1f} | {seconds:.0f} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
