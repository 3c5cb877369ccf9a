"""How sure is "language X reaches 95% of English's text->image R@1"? A paired bootstrap over images.

    python benchmarks/mla_share_spread.py --extension WS/extensions/mla --manifest WS/manifests/xtd10.parquet \\
        --out docs/results/mla_share_spread_world.json

On an XTD10-layout test every language captions the same 1000 images, so each image gives one
text->image hit or miss per language. Resampling the images (with replacement, the same draw for
every language) gives the spread of each language's R@1 and of its share of English's, with the
correlation between languages kept. A share whose interval straddles 95% cannot be told from 95%
on a test of this size. Writes the shares, their 95% intervals and the probability that the share
is below 95%, with the command, commit, machine and date.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def hits_at_1(model, table, language: str, image_vectors: np.ndarray, image_index: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per caption of `language` (manifest order): 1.0 where its own image is its nearest, and that image's path."""
    rows = table[table.language == language]
    texts = model.encode_text(rows.caption.tolist(), lang=language)
    best = np.argmax(texts @ image_vectors.T, axis=1)
    return (best == rows.image_path.map(image_index).to_numpy()).astype(np.float64), rows.image_path.to_numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extension", required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--goal", type=float, default=0.95)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import mlclip_cli
    from mlclip_cli.artifacts import read_manifest
    from mlclip_cli.atomic import write_json
    from mlclip_cli.provenance import provenance

    table = read_manifest(args.manifest).to_pandas()
    model = mlclip_cli.load(args.extension)
    images = sorted(table.image_path.unique())
    image_index = {path: i for i, path in enumerate(images)}
    image_vectors = model.encode_image(images)
    per_image = {}
    for language in ["en", *[code for code in model.languages if code != "en"]]:
        hits, paths = hits_at_1(model, table, language, image_vectors, image_index)
        # one caption per image and language in XTD10's layout; average in case a copy has more
        sums = np.bincount([image_index[p] for p in paths], weights=hits, minlength=len(images))
        counts = np.bincount([image_index[p] for p in paths], minlength=len(images))
        per_image[language] = sums / np.maximum(counts, 1)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(images), size=(args.draws, len(images)))
    english = per_image["en"][draws].mean(axis=1)
    languages = {}
    for language, values in per_image.items():
        if language == "en":
            continue
        share = values[draws].mean(axis=1) / english
        languages[language] = {
            "r1": 100 * float(values.mean()), "share": float(values.mean() / per_image["en"].mean()),
            "share_interval_95": [float(np.quantile(share, 0.025)), float(np.quantile(share, 0.975))],
            "probability_below_goal": float((share < args.goal).mean()),
        }
    write_json(args.out, {"what": "paired bootstrap over test images of each language's share of English's "
                                  "text->image R@1", "provenance": provenance("python " + " ".join(sys.argv)),
                          "extension": args.extension, "manifest": str(args.manifest), "images": len(images),
                          "draws": args.draws, "goal": args.goal, "english_r1": 100 * float(per_image["en"].mean()),
                          "languages": languages})
    for language, entry in languages.items():
        low, high = entry["share_interval_95"]
        print(f"{language}: R@1 {entry['r1']:.1f}, share {100 * entry['share']:.1f}% "
              f"[{100 * low:.1f}, {100 * high:.1f}], P(share < {100 * args.goal:.0f}%) {entry['probability_below_goal']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
