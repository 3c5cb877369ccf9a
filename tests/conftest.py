"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlclip_cli.cli.app import main

SHARED_XTD10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "xtd10"


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys, tmp_path):
    """Run `mlclip ARGS` in-process with a temporary workspace; return code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        try:
            main(["--workspace", str(tmp_path / "ws"), *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def assert_one_line_error(result, *fragments):
    """A CLI failure as users must see it: non-zero exit, one `error: ...` line naming `fragments`."""
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in lines[0]


def world_with_micro_clip(root: Path, train: int, val: int, test: int) -> dict:
    """A tiny generated world (manifest written) and an untrained micro CLIP saved beside it."""
    import torch

    from mlclip_cli.artifacts import manifest_from_rows, write_manifest
    from mlclip_cli.models.clip import create_untrained
    from mlclip_cli.training.checkpoint import save_weights
    from mlclip_cli.world.generate import WorldConfig, generate_world

    result = generate_world(root / "world", WorldConfig(seed=5, train_scenes=train, val_scenes=val, test_scenes=test),
                            workers=1)
    manifest = write_manifest(manifest_from_rows(result.rows), root / "world.parquet")
    torch.manual_seed(0)
    save_weights(create_untrained("mlclip-micro"), root / "micro", {"model_name": "mlclip-micro"})
    return {"root": root, "manifest": manifest, "model": str(root / "micro")}


class Killed(Exception):
    """A simulated kill from inside a training run's step callback."""


def kill_at(step: int, stage: str | None = None):
    """An on_step callback that raises Killed after `step` (of `stage`, or of any stage)."""
    def on_step(name, done, total, loss):
        if done == step and (stage is None or name == stage):
            raise Killed
    return on_step


@pytest.fixture(scope="session")
def small_world_extension(tmp_path_factory):
    """A small generated world (12 val images, one caption each per language), an untrained micro
    CLIP beside it and an MLA extension of that CLIP with a German pack (2 NLT steps: cheap, not
    good). For the API, image indexes and search."""
    from mlclip_cli.mla.method import MlaConfig, train_mla
    from mlclip_cli.mla.train import LoopConfig, StageConfig

    world = world_with_micro_clip(tmp_path_factory.mktemp("small-world"), 16, 12, 1)
    loop = LoopConfig(stages="nlt", nlt=StageConfig(2, 5e-3, 0.1), batch_size=16, eval_every=1000,
                      checkpoint_every=1000, checkpoint_seconds=None)
    extension = world["root"] / "extension"
    train_mla(MlaConfig(manifest=world["manifest"], out=extension, languages=("de",), model=world["model"],
                        features_root=world["root"] / "features", vocab_size=200, loop=loop))
    return {**world, "extension": str(extension), "val_images": world["root"] / "world" / "val"}


# mlclip-tiny learnt the world's palette (world/render.py) far better than its shapes: circles that
# differ in colour are what it tells apart with a margin.
CIRCLES_DRAWN = {"red-circle": (220, 30, 30), "blue-circle": (20, 40, 170), "green-circle": (30, 170, 50)}


def draw_photos(folder: Path, names=tuple(CIRCLES_DRAWN)) -> Path:
    """A few 64x64 drawings (a coloured circle on grey) as PNG files in `folder`, like a user's photos."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        image = Image.new("RGB", (64, 64), (128, 128, 128))
        ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=CIRCLES_DRAWN[name])
        image.save(folder / f"{name}.png")
    return folder


# The German pack of `german_gallery`: NLT from mlclip-tiny's English embeddings, token rows
# initialised from CLIP's. Measured on its 16 val images (German captions whose image comes first):
# 20 steps 14, 30 steps 16, 40 steps 16 (tests/test_serve.py asserts at least 15, and far fewer
# through the frozen English tower alone).
GALLERY_NLT = (40, 6e-3)  # steps, learning rate


@pytest.fixture(scope="session")
def german_gallery(tmp_path_factory):
    """mlclip-tiny taught German (a small MLA pack trained here on a small generated world) and a
    collection folder of the world's 16 val images, with each image's English and German caption:
    {"extension", "collection", "captions": {"en"/"de": [(file name, caption), ...]}}. A German
    query finds its image because the pack has learnt German, not because the words are English."""
    import shutil

    from mlclip_cli.artifacts import manifest_from_rows, write_manifest
    from mlclip_cli.mla.method import MlaConfig, train_mla
    from mlclip_cli.mla.train import LoopConfig, StageConfig
    from mlclip_cli.world.generate import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("german-gallery")
    world = generate_world(root / "world", WorldConfig(seed=5, train_scenes=100, val_scenes=16, test_scenes=1),
                           workers=1)
    manifest = write_manifest(manifest_from_rows(world.rows), root / "world.parquet")
    loop = LoopConfig(stages="nlt", nlt=StageConfig(*GALLERY_NLT, 0.05), batch_size=64,
                      eval_every=10**6, checkpoint_every=10**6, checkpoint_seconds=None)
    train_mla(MlaConfig(manifest=manifest, out=root / "mla", languages=("de",), features_root=root / "features",
                        vocab_size=1000, embedding_init="clip", loop=loop))
    collection = root / "collection"
    collection.mkdir()
    captions: dict[str, list[tuple[str, str]]] = {"en": [], "de": []}
    for row in world.rows:
        if row["split"] == "val" and row["language"] in captions:
            name = Path(row["image_path"]).name
            if not (collection / name).exists():
                shutil.copy(row["image_path"], collection / name)
            captions[row["language"]].append((name, row["caption"]))
    return {"extension": str(root / "mla"), "collection": collection, "captions": captions}
