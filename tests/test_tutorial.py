"""The real-data part of docs/tutorial.md runs, command for command, on miniatures of the real data.

Each data set the tutorial names is written in its upstream layout (a few rows, tiny images) under
the very folder names the tutorial uses, and every `mlclip` command of "Part 2" is run as written,
from that folder. Two things are changed, and only these: `ViT-B-32:openai` (hub weights) becomes an
untrained micro CLIP on disk, and training gets a few steps and a small vocabulary appended (click
takes the last value of an option). So a renamed option, a missing `-w`, a folder name that does not
match the layout, or a language trained but never prepared fails here.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from mlclip_cli.datasets.xtd10 import FILES as XTD10_FILES

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
HUB_MODEL = "ViT-B-32:openai"
SHORT_TRAINING = ["--nlt-steps", "3", "--le-steps", "2", "--vocab-size", "300", "--batch-size", "8",
                  "--eval-every", "1000"]

# the English captions the miniatures share; each data set gets a few of them
CAPTIONS = ["a red bus on a street", "a dog runs on green grass", "a man in an orange hat",
            "two cats on a sofa", "a plate of food on a table", "a boat on a blue lake",
            "children playing football", "a bicycle against a wall", "snow on the mountains",
            "a woman reading a book", "a train at a station", "a bird on a branch"]
GERMAN = ["ein roter Bus", "ein Hund rennt", "ein Mann mit Hut", "zwei Katzen", "ein Teller", "ein Boot",
          "Kinder spielen", "ein Fahrrad", "Schnee", "eine Frau liest", "ein Zug", "ein Vogel"]
FRENCH = ["un bus rouge", "un chien court", "un homme au chapeau", "deux chats", "une assiette", "un bateau",
          "des enfants jouent", "un vélo", "de la neige", "une femme lit", "un train", "un oiseau"]
JAPANESE = ["赤いバス", "走る犬", "帽子の男性", "二匹の猫", "料理の皿", "湖のボート", "遊ぶ子供たち", "自転車",
            "山の雪", "本を読む女性", "駅の電車", "枝の鳥"]


def picture(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (shade * 20 % 256, 90, 255 - shade * 20 % 256)).save(path)


def _lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_cc3m(here: Path) -> None:
    """CC3M's training TSV (caption<TAB>url, no header), img2dataset file shards, one file per language."""
    urls = [f"http://example.com/cc3m/{i}.jpg" for i in range(len(CAPTIONS))]
    _lines(here / "cc3m" / "Train_GCC-training.tsv", [f"{c}\t{u}" for c, u in zip(CAPTIONS, urls)])
    for i, link in enumerate(urls):
        key = f"{i:09d}"
        shard = here / "cc3m-images" / "00000"
        picture(shard / f"{key}.jpg", i)
        (shard / f"{key}.txt").write_text(CAPTIONS[i])
        (shard / f"{key}.json").write_text(json.dumps({"url": link, "key": key, "status": "success"}))
    for language, lines in (("de", GERMAN), ("fr", FRENCH), ("ja", JAPANESE)):
        _lines(here / "translations" / f"{language}.txt", lines)


COCO_NAMES = [f"COCO_val2014_{i:012d}.jpg" for i in (42, 73, 74, 90)]


def write_xtd10(here: Path) -> None:
    """A clone of the XTD10 repository (its three folders) and the COCO 2014 images it names."""
    root = here / "Cross-lingual-Test-Dataset-XTD10"
    _lines(root / "XTD10" / "test_image_names.txt", COCO_NAMES)
    for language, (folder, code) in XTD10_FILES.items():
        _lines(root / folder / f"test_1kcaptions_{code}.txt", [f"{CAPTIONS[i]} ({language})" for i in range(4)])
    for i, name in enumerate(COCO_NAMES):
        picture(here / "coco2014" / "val2014" / name, i)


def write_multi30k(here: Path) -> None:
    """Multi30K task 1: raw/<split>.<lang> and image_splits/<split>.txt, and the Flickr30K images."""
    task1 = here / "multi30k-dataset" / "data" / "task1"
    names = {"train": [f"10{i}.jpg" for i in range(4)], "val": [f"20{i}.jpg" for i in range(3)],
             "test_2016_flickr": [f"30{i}.jpg" for i in range(3)]}
    for (split, images), first in zip(names.items(), (0, 4, 7)):
        _lines(task1 / "image_splits" / f"{split}.txt", images)
        for language, lines in (("en", CAPTIONS), ("de", GERMAN), ("fr", FRENCH), ("cs", CAPTIONS)):
            _lines(task1 / "raw" / f"{split}.{language}", lines[first:first + len(images)])
        for i, name in enumerate(images):
            picture(here / "flickr30k-images" / name, first + i)


def write_coco(here: Path) -> None:
    """Karpathy's dataset_coco.json; its images are the COCO 2014 folder XTD10 uses."""
    images = [{"filepath": "val2014", "filename": name, "split": "test", "cocoid": i, "imgid": i,
               "sentences": [{"raw": CAPTIONS[i], "tokens": CAPTIONS[i].split(), "imgid": i, "sentid": i}]}
              for i, name in enumerate(COCO_NAMES)]
    (here / "coco-karpathy").mkdir()
    (here / "coco-karpathy" / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))


def write_xm3600(here: Path) -> None:
    """Crossmodal-3600's captions.jsonl (several captions per language) and its images by key."""
    rows = []
    for i in range(3):
        key = f"00{i}c2a5b4b6d1e7"
        picture(here / "xm3600-images" / f"{key}.jpg", i)
        entry = {"image/key": key, "image/locale": "en"}
        for language, lines in (("en", CAPTIONS), ("de", GERMAN), ("fr", FRENCH), ("ja", JAPANESE)):
            entry[language] = {"caption": [lines[i], lines[i + 3]]}
        rows.append(json.dumps(entry, ensure_ascii=False))
    _lines(here / "xm3600" / "captions.jsonl", rows)


def write_xflickrco(here: Path) -> None:
    """IGLUE's xFlickr&CO: annotations/<lang>/test.jsonl, one caption per image and language."""
    images = [("1007129816", "1007129816.jpg"), (391895, "COCO_val2014_000000391895.jpg"), ("1009434119", "1009434119.jpg")]
    for i, (_, path) in enumerate(images):
        picture(here / "xflickrco-images" / path, i)
    for language, lines in (("en", CAPTIONS), ("de", GERMAN), ("ja", JAPANESE)):
        _lines(here / "xflickrco" / "annotations" / language / "test.jsonl",
               [json.dumps({"sentences": [lines[i]], "id": image_id, "img_path": path}, ensure_ascii=False)
                for i, (image_id, path) in enumerate(images)])


def part_two_commands() -> list[list[str]]:
    """Every `mlclip` command of the tutorial's part 2, as words, in order (comments dropped)."""
    text = TUTORIAL.read_text(encoding="utf-8")
    part = text.split("## Part 2", 1)[1].split("## Part 3", 1)[0]
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", part, re.S | re.M):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["mlclip"]:
                commands.append(words[1:])
    return commands


def test_part_two_has_the_commands_this_test_expects():
    commands = [" ".join(c) for c in part_two_commands()]
    for expected in ("prepare cc300k", "features cc300k", "train --method mla", "prepare xtd10", "bench xtd",
                     "prepare multi30k", "bench multi30k", "prepare coco", "prepare xm3600", "prepare xflickrco"):
        assert any(expected in command for command in commands), f"part 2 no longer runs `{expected}`"


@pytest.fixture(scope="module")
def micro_clip(tmp_path_factory) -> str:
    import torch

    from mlclip_cli.models.clip import create_untrained
    from mlclip_cli.training.checkpoint import save_weights

    folder = tmp_path_factory.mktemp("clip") / "micro"
    torch.manual_seed(0)
    save_weights(create_untrained("mlclip-micro"), folder, {"model_name": "mlclip-micro"})
    return str(folder)


def test_every_part_two_command_runs_on_miniatures_of_the_real_layouts(tmp_path, monkeypatch, run_cli, micro_clip):
    for write in (write_cc3m, write_xtd10, write_multi30k, write_coco, write_xm3600, write_xflickrco):
        write(tmp_path)
    monkeypatch.chdir(tmp_path)  # the tutorial's relative folders are these
    monkeypatch.delenv("MLCLIP_WORKSPACE", raising=False)
    ran = []
    for words in part_two_commands():
        words = [micro_clip if word == HUB_MODEL else word for word in words]
        if words[words[:1] == ["-w"] and 2:][:1] == ["train"]:
            words += SHORT_TRAINING
        result = run_cli(*words)
        assert result.code == 0, (" ".join(words), result.err or result.out)
        ran.append(" ".join(words))
    extension = json.loads((tmp_path / "ws" / "extensions" / "mla" / "extension.json").read_text())
    assert {p.stem for p in (tmp_path / "ws" / "extensions" / "mla" / "packs").glob("*.safetensors")} == {"de", "fr", "ja"}
    assert extension["method"] == "mla"
    benches = sum(1 for command in ran if " bench " in f" {command} ")
    assert benches >= 6 and len(list((tmp_path / "ws" / "results").glob("*.json"))) == benches  # one each
