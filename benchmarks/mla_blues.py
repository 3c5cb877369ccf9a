"""Where English is ambiguous: can LE teach Russian and Italian the two blues English merges?

    python benchmarks/mla_blues.py [-w mlclip-workspace] --extension DIR [--extension DIR ...]

The world's test never hinges on light vs dark blue (English cannot say it), so this builds the
probe that does: for every test image with a blue object, its own caption against the same caption
with that object's blue flipped (light <-> dark), realised by the world's grammar with the same word
choices. Score = share of images whose own caption is closer (ties count one half). English
captions of the two are the same string, so English scores exactly 50; a Russian or Italian pack
beats 50 only if it learnt голубой/синий, azzurro/blu apart. NLT cannot teach that (its teacher is
English); LE could, if the frozen image features tell the shades apart.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace

import numpy as np

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.loading import load_encoder
from mlclip_cli.workspace import Workspace
from mlclip_cli.world.generate import _captions
from mlclip_cli.world.scenes import clustered_scenes

FLIP = {"light_blue": "dark_blue", "dark_blue": "light_blue"}


def rebuild_test(ws: Workspace, seed: int = 0, n: int = 1000):
    """The test scenes and plans exactly as generate_world drew them (checked against the files)."""
    manifest = read_manifest(ws.manifest("world")).to_pandas()
    train = manifest[manifest.split == "train"]
    exclude = {lang: set(group.caption) for lang, group in train.groupby("language")}

    def unseen(i, plan):
        return not any(c in exclude.get(lang, ()) for lang, c in _captions(plan, f"{seed}:test:{i}").items())

    return clustered_scenes(random.Random(f"{seed}:test"), n, accept=unseen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", default=None)
    parser.add_argument("--extension", action="append", default=[])
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    test = read_manifest(ws.manifest("xtd10")).to_pandas()
    scenes = rebuild_test(ws)
    probes = {"en": [], "ru": [], "it": []}  # (image index, own caption, flipped caption)
    for i, (_, plan) in enumerate(scenes):
        blues = [g for g, group in enumerate(plan.groups) if group.colour in FLIP]
        if not blues:
            continue
        groups = list(plan.groups)
        groups[blues[0]] = replace(groups[blues[0]], colour=FLIP[groups[blues[0]].colour])
        own, flipped = _captions(plan, f"0:test:{i}"), _captions(replace(plan, groups=tuple(groups)), f"0:test:{i}")
        for language in probes:
            probes[language].append((i, own[language], flipped[language]))
    en_test = test[test.language == "en"].caption.tolist()
    assert all(en_test[i] == own for i, own, _ in probes["en"]), "rebuilt test differs from the files"
    images = test[test.language == "en"].image_path.tolist()
    frozen = FrozenClip.load("mlclip-tiny", "cpu")
    image = frozen.encode_images([images[i] for i, _, _ in probes["en"]])
    print(f"{len(probes['en'])} test images with a blue object")
    print("| encoder | en | ru | it |\n|---|---|---|---|")
    for name, encoder in [("frozen English CLIP", frozen)] + [(path, load_encoder(path, "cpu", "english")) for path in args.extension]:
        cells = []
        for language in ("en", "ru", "it"):
            own = encoder.encode_texts([p[1] for p in probes[language]], language)
            flipped = encoder.encode_texts([p[2] for p in probes[language]], language)
            s_own, s_flip = (own * image).sum(1), (flipped * image).sum(1)
            cells.append(f"{100 * np.mean((s_own > s_flip) + 0.5 * (s_own == s_flip)):.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    image_tower_separation(ws)




def image_tower_separation(ws: Workspace) -> None:
    """Does the frozen image tower tell the blues apart at all? Cosine between the features of a
    test scene and the same scene re-rendered (same noise) with one object's blue flipped, against
    the same with that object made red."""
    from mlclip_cli.world.render import render

    frozen = FrozenClip.load("mlclip-tiny", "cpu")
    pixels = {"own": [], "blue flipped": [], "made red": []}
    for i, (scene, _) in enumerate(rebuild_test(ws)):
        blues = [k for k, obj in enumerate(scene.objects) if obj.colour in FLIP]
        if not blues:
            continue
        k = blues[0]
        for name, colour in (("own", scene.objects[k].colour), ("blue flipped", FLIP[scene.objects[k].colour]),
                             ("made red", "red")):
            objects = list(scene.objects)
            objects[k] = replace(objects[k], colour=colour)
            image = render(replace(scene, objects=tuple(objects)), random.Random(f"0:test:{i}:image"))
            pixels[name].append(frozen.clip.preprocess(image))
    import torch

    with torch.no_grad():
        feats = {name: frozen.clip.model.encode_image(torch.stack(p), normalize=True).numpy() for name, p in pixels.items()}
    for name in ("blue flipped", "made red"):
        print(f"image feature cosine, own vs {name}: {np.mean((feats['own'] * feats[name]).sum(1)):.4f}")


if __name__ == "__main__":
    main()
