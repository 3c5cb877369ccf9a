"""README's "Your own language in four commands", run as written on a small generated folder of a
user's photos with German captions and their English (the train line gets fewer steps, to stay quick),
then checked: the German pack finds German captions' pictures, far above the English CLIP alone."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
QUICK = ("--nlt-steps", "40", "--stages", "nlt", "--vocab-size", "1000", "--embedding-init", "clip", "--batch-size", "64")


def quickstart_commands() -> list[list[str]]:
    section = README.read_text(encoding="utf-8").split("## Your own language in four commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("mlclip ")]


def write_my_photos(root: Path) -> Path:
    """my-photos/: the world's train and val pictures with captions.csv (image, caption, english)."""
    from mlclip_cli.world.generate import WorldConfig, generate_world

    world = generate_world(root / "world", WorldConfig(seed=5, train_scenes=100, val_scenes=16, test_scenes=1),
                           workers=1)
    photos = root / "my-photos"
    photos.mkdir()
    captions: dict[str, dict[str, list[str]]] = {}
    for row in world.rows:
        if row["split"] in ("train", "val") and row["language"] in ("en", "de"):
            captions.setdefault(row["image_path"], {}).setdefault(row["language"], []).append(row["caption"])
    with open(photos / "captions.csv", "w", newline="", encoding="utf-8") as table:
        writer = csv.writer(table)
        writer.writerow(["image", "caption", "english"])
        for path, by_language in sorted(captions.items()):
            shutil.copy(path, photos / Path(path).name)
            for german, english in zip(by_language["de"], by_language["en"]):
                writer.writerow([Path(path).name, german, english])
    return photos


def test_the_four_commands_teach_german_and_search_it(run_cli, tmp_path, monkeypatch):
    commands = quickstart_commands()
    assert [command[:2] for command in commands] == [["prepare", "pairs"], ["train", "--langs"],
                                                     ["index", "build"], ["search", commands[3][1]]]
    photos = write_my_photos(tmp_path)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        args = [*command, *QUICK] if command[0] == "train" else command
        result = run_cli(*args)
        assert result.code == 0, (command, result.err)
    query = commands[3][1]
    found = json.loads(run_cli("search", query, "--index", "my-index", "--format", "json").out)
    assert found["query"] == query and found["language"] == "de" and len(found["results"]) == 10

    import mlclip_cli
    import pyarrow.parquet as pq

    manifest = pq.read_table(tmp_path / "ws" / "manifests" / "my-photos.parquet").to_pandas()
    val_images = {Path(path).name for path in manifest[manifest.split == "val"].image_path}
    rows = [row for row in csv.DictReader(open(photos / "captions.csv", encoding="utf-8")) if row["image"] in val_images]
    index = mlclip_cli.Index.load("my-index")
    assert len(index) == 116 and len(rows) >= 30

    def recall_at_1(model, lang):
        hits = index.search(model.encode_text([row["caption"] for row in rows], lang=lang), k=1)
        return np.mean([found[0].path == row["image"] for found, row in zip(hits, rows)])

    german = recall_at_1(mlclip_cli.load("my-extension"), "de")  # measured 0.62
    english_only = recall_at_1(mlclip_cli.load("mlclip-tiny"), "en")  # measured 0.07
    assert german >= 0.4 and german >= 4 * english_only, (german, english_only)
