"""The continual table on the world: CLL-CLIP, the TEIR ablations and the baselines, each over
the whole 11-language order with the world defaults; writes Markdown + JSON.

    python benchmarks/continual_table.py --workspace /work/ws [--only plain,teir] [--steps 100]

Each run lands in WORKSPACE/continual/<name> and is reused when it already finished there.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from mlclip_cli.continual.runner import ContinualConfig, TaskLoop, run_continual
from mlclip_cli.continual.teir import TeirConfig
from mlclip_cli.workspace import Workspace

ORDER = ("en", "it", "de", "fr", "es", "pl", "tr", "ru", "ko", "zh", "ja")
RUNS = {  # name: (method, --teir, --teir-freq)
    "plain": ("cll-clip", "none", "grad"),
    "init-only": ("cll-clip", "init", "grad"),
    "reg-only": ("cll-clip", "reg", "grad"),
    "teir": ("cll-clip", "both", "grad"),
    "teir-freq-off": ("cll-clip", "both", "off"),
    "teir-freq-update": ("cll-clip", "both", "update"),
    "ewc+teir": ("ewc", "both", "grad"),
    "er+teir": ("er", "both", "grad"),
    "lwf+teir": ("lwf", "both", "grad"),
    "mla+teir": ("mla", "both", "grad"),
    "full-ft": ("full-ft", "none", "grad"),
    "joint": ("joint", "none", "grad"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", default="mlclip-workspace")
    parser.add_argument("--only", default=",".join(RUNS))
    parser.add_argument("--steps", type=int, default=TaskLoop().steps)
    parser.add_argument("--out", default="continual_table")
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    rows = {}
    for name in args.only.split(","):
        method, teir, freq = RUNS[name]
        config = ContinualConfig(manifest=ws.manifest("world"), out=ws.root / "continual" / name, order=ORDER,
                                 features_root=ws.features_root, method=method, teir=TeirConfig.parse(teir, freq=freq),
                                 test_manifest=ws.manifest("xtd10"), loop=replace(TaskLoop(), steps=args.steps), resume=True)
        began = time.perf_counter()
        result = run_continual(config)
        metrics = result.summary["metrics"]
        final = result.summary["metrics"]["image_retrieval_recall@1"]["matrix"][-1]
        rows[name] = {"method": method, "teir": teir, "freq": freq,
                      "aa_r1": metrics["image_retrieval_recall@1"]["final_aa"], "f_r1": metrics["image_retrieval_recall@1"]["final_f"],
                      "aa_mean": metrics["mean_recall"]["final_aa"], "f_mean": metrics["mean_recall"]["final_f"],
                      "en_final_r1": final[0], "final_r1": dict(zip(ORDER, final)),
                      "trainable": result.trainable_parameters, "seconds": result.seconds,
                      "wall_this_call": time.perf_counter() - began}
        print(name, json.dumps({k: v for k, v in rows[name].items() if k != "final_r1"}), flush=True)
    path = ws.root / "results" / f"{args.out}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    lines = ["| run | method | TEIR | AA R@1 | F R@1 | AA mean recall | F mean recall | en final R@1 | trainable | time (s) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    for name, r in rows.items():
        teir = r["teir"] + (f", 1/f on {r['freq']}" if r["teir"] in ("reg", "both") else "")
        lines.append(f"| {name} | {r['method']} | {teir} | {fmt(r['aa_r1'])} | {fmt(r['f_r1'])} | {fmt(r['aa_mean'])} | "
                     f"{fmt(r['f_mean'])} | {fmt(r['en_final_r1'])} | {r['trainable']:,} | {r['seconds']:.0f} |")
    (ws.root / "results" / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
