"""Measure the two phenomena the world is built to contain, on a prepared world manifest.

    python benchmarks/world_stats.py [-w mlclip-workspace]

1. Shared sub-words: for each language, the distinct CLIP BPE tokens of its train captions and the
   share of them that also occur in another language (Latin-script languages overlap a lot).
2. English ambiguity: how many train captions mention a blue, and how many of those the English
   caption cannot disambiguate while the ru / it caption does (голубой/синий, azzurro/blu).
"""

from __future__ import annotations

import argparse

import open_clip

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", default=None)
    args = parser.parse_args()
    table = read_manifest(Workspace.resolve(args.workspace).manifest("world")).to_pandas()
    train = table[table.split == "train"]
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    vocab = {}
    for language, rows in train.groupby("language"):
        captions = rows.caption.drop_duplicates().tolist()[:20000]
        ids = set()
        for start in range(0, len(captions), 2000):
            ids.update(tokenizer(captions[start:start + 2000]).unique().tolist())
        vocab[language] = ids - {0, 49406, 49407}  # padding and start/end tokens
    latin = {"en", "de", "fr", "es", "it", "pl", "tr"}
    print("language  distinct BPE tokens  shared with another Latin-script language  shared with English")
    for language, ids in sorted(vocab.items()):
        others = set().union(*(v for k, v in vocab.items() if k != language and k in latin))
        print(f"{language:>8}  {len(ids):>19}  {len(ids & others) / len(ids):>40.0%}  "
              f"{len(ids & vocab['en']) / len(ids):>19.0%}")
    pairs = train.pivot_table(index="pair_id", columns="language", values="caption", aggfunc="first")
    blue = pairs[pairs.en.str.contains("blue")]
    ru = blue.ru.str.contains("голуб") & ~blue.ru.str.contains("син")
    ru_dark = blue.ru.str.contains("син") & ~blue.ru.str.contains("голуб")
    it_light = blue.it.str.contains("azzurr")
    print(f"\ntrain captions saying 'blue' in English: {len(blue)} of {len(pairs)}")
    print(f"  of those, Russian says only голубой (light): {ru.sum()}, only синий (dark): {ru_dark.sum()}; "
          f"Italian says azzurro (light): {it_light.sum()}")


if __name__ == "__main__":
    main()
