"""Wall time of `mlclip bench xtd --langs all` once features exist (goal: <= 30 s on 2 cores).

Run by hand after `mlclip demo` (or `mlclip prepare world` + `mlclip prepare xtd10 --root .../xtd10`):

    python benchmarks/bench_walltime.py [-w mlclip-workspace] [--model mlclip-tiny]

The first run fills the feature cache (reported separately); the next runs read it. Reports the
best of three warm runs, end to end through the library (no process start-up).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mlclip_cli.bench.run import BenchConfig, run_bench
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", default=None)
    parser.add_argument("--model", default="mlclip-tiny")
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    out = Path("benchmarks/out")
    config = BenchConfig(benchmark="xtd", manifest=ws.manifest("xtd10"), out_dir=out,
                         features_dir=ws.features_root, languages=("all",), model=args.model)
    start = time.perf_counter()
    encoder = FrozenClip.load(args.model)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    result = run_bench(config, encoder=encoder)
    first_s = time.perf_counter() - start
    warm = []
    for _ in range(3):
        start = time.perf_counter()
        run_bench(config, encoder=encoder)
        warm.append(time.perf_counter() - start)
    languages = result.result["languages"]
    pairs = sum(v["captions"] for v in languages.values())
    print(f"model load {load_s:.2f} s; first run (fills the cache if empty) {first_s:.2f} s")
    print(f"warm runs: {', '.join(f'{s:.2f}' for s in warm)} s (best {min(warm):.2f} s) for "
          f"{len(languages)} languages, {pairs} captions")


if __name__ == "__main__":
    main()
