"""Language identification (`mlclip_cli.langid`): accuracy and speed of each backend on the
world's test captions, the real XTD10 captions and Multi30K val.

Run by hand (figures go to docs/benchmarks.md):

    mlclip prepare world --root /tmp/langid-ws/world --size 200 --out /tmp/langid-ws/world.parquet
    python benchmarks/langid_accuracy.py --world /tmp/langid-ws/world/xtd10 \\
        --xtd10 ../shared/data/xtd10 --multi30k ../shared/data/multi30k/raw --json /tmp/langid-ws/langid.json

Each (data set, backend) runs in a fresh process, so the load time is a cold one. Two figures per
pair: the backend alone over all the data set's languages ("model"), and `identify` as mlclip ships
it, the script rule first ("mlclip"); a caption that matches nothing counts as an error. The label
is the file a caption came from: a line that is not in its file's language counts as an error too
(the JSON lists every miss, so they can be read). Speed: wall time per caption, one thread, after
loading, best of 3 passes; load: building the backend for the data set's languages (models preloaded).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

XTD10_LANGUAGES = ["en", "de", "fr", "es", "it", "ko", "pl", "ru", "tr", "zh", "ja"]
MULTI30K_LANGUAGES = ["en", "de", "fr", "cs"]
BACKENDS = ("py3langid", "lingua", "lingua-low")


def load_xtd10_layout(root: Path) -> list[tuple[str, str]]:
    """(language, caption) of an XTD10-layout folder, cleaned and masked as `prepare xtd10` does."""
    from mlclip_cli.datasets import get_dataset
    from mlclip_cli.datasets.base import PrepareConfig, Report

    rows = get_dataset("xtd10").load(PrepareConfig(root=Path(root)), Report())
    return [(row["language"], row["caption"]) for row in rows]


def load_multi30k_val(folder: Path) -> list[tuple[str, str]]:
    from mlclip_cli.datasets.base import read_lines
    from mlclip_cli.text import clean_caption, mask_reason

    pairs = []
    for language in MULTI30K_LANGUAGES:
        for line in read_lines(Path(folder) / f"val.{language}"):
            caption = clean_caption(line)
            if mask_reason(caption) is None:
                pairs.append((language, caption))
    return pairs


def score(pairs: list[tuple[str, str]], predicted: list[str | None]) -> dict:
    per_language = Counter(language for language, _ in pairs)
    wrong = Counter(language for (language, _), guess in zip(pairs, predicted) if guess != language)
    accuracy = {lang: round(100 * (1 - wrong[lang] / n), 2) for lang, n in per_language.items()}
    worst = min(accuracy, key=accuracy.get)
    confused = Counter(f"{lang}->{guess}" for (lang, _), guess in zip(pairs, predicted) if guess != lang)
    return {"accuracy": round(100 * (1 - sum(wrong.values()) / len(pairs)), 2), "worst": [worst, accuracy[worst]],
            "per_language": accuracy, "confusions": dict(confused.most_common()),
            "misses": [{"label": lang, "detected": guess, "caption": text}
                       for (lang, text), guess in zip(pairs, predicted) if guess != lang]}


def run_one(dataset: str, path: str, backend: str) -> dict:
    """Measure one backend on one data set (in this process, which should be fresh)."""
    from mlclip_cli.langid import get_backend, identify

    pairs = load_multi30k_val(Path(path)) if dataset == "multi30k" else load_xtd10_layout(Path(path))
    languages = MULTI30K_LANGUAGES if dataset == "multi30k" else XTD10_LANGUAGES
    texts = [text for _, text in pairs]
    candidates = tuple(languages)

    start = time.perf_counter()
    if backend == "lingua-lazy":  # lingua without preloading: each language's models load on first use
        from mlclip_cli.langid import _Lingua

        model = _Lingua(low_accuracy=False, preload=False)
    else:
        model = get_backend(backend)
    model.classify("warm up", candidates)  # builds (and for lingua preloads) the models for these languages
    load_s = time.perf_counter() - start

    def timed(fn):  # (output, first pass s, best of 3 us per caption): the machine is shared
        times = []
        for _ in range(3):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return out, times[0], 1e6 * min(times) / len(texts)

    raw, first_s, model_us = timed(lambda: [model.classify(text, candidates)[0] for text in texts])
    if backend == "lingua-lazy":
        return {"dataset": dataset, "backend": backend, "captions": len(texts), "load_s": round(load_s, 3),
                "first_pass_s": round(first_s, 3), "model": {**score(pairs, raw), "us_per_caption": round(model_us, 1)}}
    shipped, _, mlclip_us = timed(lambda: identify(texts, languages, backend, fallback=languages[0]))
    guesses = [d.language if d.method != "fallback" else None for d in shipped]
    return {"dataset": dataset, "backend": backend, "captions": len(texts), "languages": languages,
            "load_s": round(load_s, 3), "first_pass_s": round(first_s, 3), "model": {**score(pairs, raw), "us_per_caption": round(model_us, 1)},
            "mlclip": {**score(pairs, guesses), "us_per_caption": round(mlclip_us, 1),
                       "by_method": dict(Counter(d.method for d in shipped))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", help="The world's XTD10-layout test folder (WORLD_ROOT/xtd10).")
    parser.add_argument("--xtd10", help="The real XTD10 captions (an XTD10 clone).")
    parser.add_argument("--multi30k", help="A folder with val.en, val.de, val.fr, val.cs.")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="Comma-separated; lingua-lazy: lingua without preloading (model figures only).")
    parser.add_argument("--json", type=Path, help="Write every figure (and every miss) here.")
    parser.add_argument("--one", nargs=3, metavar=("DATASET", "PATH", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one), ensure_ascii=False))
        return
    sets = [(name, path) for name, path in (("world", args.world), ("xtd10", args.xtd10), ("multi30k", args.multi30k))
            if path]
    if not sets:
        parser.error("give at least one of --world, --xtd10, --multi30k")
    results = []
    print(f"{'data set':9} {'backend':11} {'n':>6} {'model %':>8} {'mlclip %':>9} {'worst (mlclip)':>15} "
          f"{'us/cap model':>13} {'us/cap mlclip':>14} {'load s':>7} {'1st pass s':>10}  top confusions (mlclip)")
    for name, path in sets:
        for backend in args.backends.split(","):
            found = subprocess.run([sys.executable, __file__, "--one", name, str(path), backend], check=True,
                                   capture_output=True, text=True).stdout
            result = json.loads(found.strip().splitlines()[-1])
            results.append(result)
            model, shipped = result["model"], result.get("mlclip", result["model"])
            worst = f"{shipped['worst'][0]} {shipped['worst'][1]:.1f}"
            top = ", ".join(f"{pair} {n}" for pair, n in list(shipped["confusions"].items())[:4])
            print(f"{name:9} {backend:11} {result['captions']:6d} {model['accuracy']:8.2f} {shipped['accuracy']:9.2f} "
                  f"{worst:>15} {model['us_per_caption']:13.1f} {shipped['us_per_caption']:14.1f} "
                  f"{result['load_s']:7.2f} {result['first_pass_s']:10.2f}  {top}")
    if args.json:
        from mlclip_cli.atomic import write_json

        write_json(args.json, {"results": results})
        print(f"-> {args.json}")


if __name__ == "__main__":
    main()
