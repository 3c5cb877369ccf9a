"""The same bits twice: the same runs in two processes with different Python hash seeds (and the
tokenizer trainer's parallelism on and off) write the same bytes (tokenizers, shared block, packs,
the continual token table, its usage counts): no set or dict order, unseeded draw, thread order
of the BPE trainer or file listing reaches what is learnt."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import world_with_micro_clip

# Train MLA on two languages, extend it by Japanese (its own tokens: the shared BPE saw no Han), and
# run a three-language continual sequence with TEIR: each a few steps on the tiny world.
RUNS = """
import sys
from pathlib import Path

from mlclip_cli.continual.runner import ContinualConfig, TaskLoop, run_continual
from mlclip_cli.continual.teir import TeirConfig
from mlclip_cli.mla.method import MlaConfig, extend_mla, train_mla
from mlclip_cli.mla.train import LoopConfig, StageConfig

root, out = Path(sys.argv[1]), Path(sys.argv[2])
loop = LoopConfig(nlt=StageConfig(6, 5e-3, 0.1), le=StageConfig(2, 1e-3, 0.1), batch_size=16, checkpoint_seconds=None)
common = dict(manifest=root / "world.parquet", features_root=root / "features", model=str(root / "micro"), loop=loop)
train_mla(MlaConfig(out=out / "mla", languages=("de", "ru"), vocab_size=300, **common))
extend_mla(MlaConfig(out=out / "mla", languages=("ja",), **common))
run_continual(ContinualConfig(manifest=root / "world.parquet", out=out / "continual", order=("en", "de", "ja"),
                              features_root=root / "features", model=str(root / "micro"),
                              teir=TeirConfig.parse("both"), loop=TaskLoop(steps=3, batch_size=16)))
"""
CLOCK_KEYS = {"created", "seconds"}  # when and how long: the clock's, not the run's


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_with_micro_clip(tmp_path_factory.mktemp("determinism"), 48, 12, 10)


def _without_clock(value):
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in CLOCK_KEYS}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, a folder that is a link to its current version read
    through the link (hidden entries, locks and versions, left out); a JSON file's is of its
    content less the clock's keys."""
    found = {}
    for where, folders, files in os.walk(folder, followlinks=True):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            path = Path(where) / name
            data = path.read_bytes()
            if path.suffix == ".json":
                data = json.dumps(_without_clock(json.loads(data)), sort_keys=True).encode()
            found[path.relative_to(folder).as_posix()] = hashlib.sha256(data).hexdigest()
    return found


def test_two_processes_with_other_hash_seeds_write_the_same_bytes(world, tmp_path):
    digests = []
    # the second also trains its BPEs on one thread (HF tokenizers' parallelism off)
    for seed, parallel in (("1", "true"), ("2", "false")):
        out = tmp_path / f"seed{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed, "TOKENIZERS_PARALLELISM": parallel}
        done = subprocess.run([sys.executable, "-c", RUNS, str(world["root"]), str(out)], capture_output=True, text=True,
                              env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        digests.append(_digests(out))
    first, second = digests
    for part in ("mla/shared/tokenizer.json", "mla/shared/embedding.safetensors", "mla/packs/de.safetensors",
                 "mla/packs/ja.safetensors", "mla/packs/ja.tokenizer.json", "continual/extension/weights.safetensors",
                 "continual/extension/usage.safetensors", "continual/extension/tokenizer.json"):
        assert part in first, sorted(first)  # what the comparison must cover
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []
