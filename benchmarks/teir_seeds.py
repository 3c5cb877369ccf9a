"""Is TEIR's AA below plain CLL-CLIP's on a short sequence beyond seed noise? Summarise runs over seeds.

    for seed in 0 1 2; do for teir in none both; do
      mlclip -w WS continual --learner cll-clip --order en,de,fr --steps 40 --seed $seed --teir $teir \\
          --out RUNS/s$seed-$teir
    done; done
    python benchmarks/teir_seeds.py RUNS --out docs/results/teir_seeds_en_de_fr.json

Reads each run's results.json (final AA and F of t2i R@1), pairs plain and TEIR by seed, and writes
the per-seed figures, their means and the paired differences, with the command, commit, machine and date.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="folder of s<seed>-<teir> run folders")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from mlclip_cli.atomic import write_json
    from mlclip_cli.provenance import provenance

    found: dict[int, dict[str, dict]] = {}
    for results in sorted(args.runs.glob("s*-*/results.json")):
        seed, teir = results.parent.name[1:].split("-", 1)
        metric = json.loads(results.read_text())["metrics"]["image_retrieval_recall@1"]
        found.setdefault(int(seed), {})[teir] = {"aa": metric["final_aa"], "f": metric["final_f"]}
    seeds = sorted(seed for seed, runs in found.items() if {"none", "both"} <= set(runs))
    rows = [{"seed": seed, "plain_aa": found[seed]["none"]["aa"], "plain_f": found[seed]["none"]["f"],
             "teir_aa": found[seed]["both"]["aa"], "teir_f": found[seed]["both"]["f"],
             "aa_difference": found[seed]["both"]["aa"] - found[seed]["none"]["aa"]} for seed in seeds]
    mean = {key: statistics.fmean(row[key] for row in rows) for key in ("plain_aa", "plain_f", "teir_aa", "teir_f",
                                                                           "aa_difference")}
    write_json(args.out, {"what": "plain CLL-CLIP vs CLL-CLIP + TEIR (balanced) over seeds: final AA and F of t2i R@1",
                          "provenance": provenance("python " + " ".join(sys.argv)), "runs": rows, "mean": mean})
    for row in rows:
        print(f"seed {row['seed']}: plain {row['plain_aa']:.2f} / {row['plain_f']:.2f}, "
              f"TEIR {row['teir_aa']:.2f} / {row['teir_f']:.2f}, AA difference {row['aa_difference']:+.2f}")
    print(f"mean: plain {mean['plain_aa']:.2f} / {mean['plain_f']:.2f}, TEIR {mean['teir_aa']:.2f} / "
          f"{mean['teir_f']:.2f}, AA difference {mean['aa_difference']:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
