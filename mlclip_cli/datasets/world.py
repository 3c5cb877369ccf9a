"""The embedded world: generated (seeded) rather than read; see mlclip_cli/world and docs/world.md.

`prepare world --root DIR` writes the world's files under DIR and a manifest of its train and
val splits; its 1000-image test set is in XTD10's layout at DIR/xtd10 (`prepare xtd10 --root DIR/xtd10`).
"""

from __future__ import annotations

from mlclip_cli.datasets import register
from mlclip_cli.datasets.base import DatasetSpec, PrepareConfig, Report, select_languages
from mlclip_cli.world.generate import WorldConfig, generate_world
from mlclip_cli.world.grammar import LANGUAGES

DEFAULT_TRAIN_SCENES = WorldConfig.train_scenes


def load(config: PrepareConfig, report: Report) -> list[dict]:
    languages = set(select_languages(LANGUAGES, config.languages, "world"))
    world = WorldConfig(seed=config.seed, train_scenes=config.size or DEFAULT_TRAIN_SCENES)
    result = generate_world(config.root, world, progress=config.progress)
    report.images_checked = True  # the generator wrote every image it lists
    return [row for row in result.rows if row["language"] in languages]


register(DatasetSpec(
    name="world", generated=True, load=load,
    summary="the embedded procedural world, generated under --root (11 languages; train, val, XTD10-layout test)",
))
