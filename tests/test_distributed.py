"""torchrun + DDP on CPU (gloo): two processes train the weights one process trains with the same
global batch, sharded feature extraction by two ranks equals one, and gradient accumulation
leaves the loss unchanged.

Tolerance: two processes embed their halves of a batch in other length buckets than one process
does, so sums run in another order; after 16 AdamW steps the weights agree to 1e-5 (float32
rounding; a real difference, e.g. a rank training on its half alone, moves them by ~1e-2).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mlclip_cli.features import FeaturesConfig, compute_features, load_features
from mlclip_cli.mla.method import MlaConfig, train_mla
from mlclip_cli.mla.train import LoopConfig, StageConfig

from conftest import world_with_micro_clip

TOLERANCE = 1e-5
# CLL-CLIP's AdamW (lr 5e-3, eps 1e-6) normalises each row's update by its own gradient scale, so a
# rounding-level gradient difference (the ranks bucket captions by length differently) on a row with a
# tiny gradient moves that row by up to ~1e-5 a step: measured 2.5e-5 after 6 steps, in 2 of 49,488 rows.
CONTINUAL_TOLERANCE = 1e-4
LOOP = LoopConfig(stages="nlt,le", nlt=StageConfig(12, 5e-3, 0.1), le=StageConfig(4, 1e-3, 0.1), batch_size=16,
                  eval_every=1000, checkpoint_every=1000)
TRAIN_ARGS = ("--langs", "de,ru", "--nlt-steps", "12", "--nlt-lr", "5e-3", "--le-steps", "4", "--le-lr", "1e-3",
              "--batch-size", "16", "--vocab-size", "300")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_with_micro_clip(tmp_path_factory.mktemp("ddp"), 40, 8, 6)


def _torchrun(world, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`mlclip ARGS` as two gloo processes on this CPU, launched by torchrun."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mlclip_cli", "--workspace", str(tmp_path / "ws"), *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _weights(extension: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for path in sorted(extension.glob("*/*.safetensors")):
        tensors.update({f"{path.relative_to(extension)}:{k}": v for k, v in load_file(path).items()})
    return tensors


def test_two_gloo_processes_train_the_weights_of_one_with_the_same_global_batch(world, tmp_path, run_cli):
    common = ("--data", str(world["manifest"]), "--model", world["model"], *TRAIN_ARGS)
    one = tmp_path / "one"
    result = run_cli("train", "--method", "mla", "--out", str(one), *common)
    assert result.code == 0, result.err
    two = tmp_path / "two"
    launched = _torchrun(world, tmp_path, "train", "--method", "mla", "--out", str(two), *common)
    assert launched.stdout.count("MLA packs in") == 1  # rank 0 alone prints the result
    a, b = _weights(one), _weights(two)
    assert a.keys() == b.keys() and len(a) >= 3
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst <= TOLERANCE, worst
    moved = max(float((a[k].float() - v.float()).abs().max()) for k, v in _weights(_untrained(world, tmp_path)).items())
    assert moved > 100 * TOLERANCE  # training did move the weights: the comparison is not vacuous
    assert not (two / "state").exists()  # rank 0 cleaned the trainer state once the packs were written


def _untrained(world, tmp_path: Path) -> Path:
    """The same run with zero learning rate: where the weights started."""
    out = tmp_path / "start"
    loop = replace(LOOP, nlt=replace(LOOP.nlt, lr=0.0), le=replace(LOOP.le, lr=0.0))
    train_mla(MlaConfig(manifest=world["manifest"], out=out, languages=("de", "ru"), features_root=tmp_path / "f0",
                        model=world["model"], vocab_size=300, loop=loop))
    return out


def test_gradient_accumulation_gives_the_same_weights(world, tmp_path):
    def run(name: str, accumulate: int) -> dict[str, torch.Tensor]:
        out = tmp_path / name
        train_mla(MlaConfig(manifest=world["manifest"], out=out, languages=("de", "ru"), features_root=tmp_path / "f",
                            model=world["model"], vocab_size=300, loop=replace(LOOP, grad_accum=accumulate)))
        return _weights(out)

    whole, micro = run("whole", 1), run("micro", 4)
    assert max(float((whole[k] - micro[k]).abs().max()) for k in whole) <= TOLERANCE


def test_two_ranks_extract_the_features_one_does_and_a_restart_skips_them(world, tmp_path):
    one = tmp_path / "one"
    compute_features(FeaturesConfig(manifest=world["manifest"], out=one, model=world["model"], languages=("all",),
                                    shard_size=64, device="cpu"))
    two = tmp_path / "two"
    args = ("features", str(world["manifest"]), "--model", world["model"], "--langs", "all",
            "--shard-size", "64", "--out", str(two))
    _torchrun(world, tmp_path, *args)
    names = sorted(p.name for p in one.glob("*.parquet"))
    assert names == sorted(p.name for p in two.glob("*.parquet")) and len(names) > 12
    assert (one / "features.json").read_text() == (two / "features.json").read_text()
    for part in ["image"] + [f"text-{lang}" for lang in ("en", "de", "ja")]:
        keys_one, matrix_one = load_features(one, part)
        keys_two, matrix_two = load_features(two, part)
        assert keys_one == keys_two
        np.testing.assert_array_equal(matrix_one, matrix_two)
    again = _torchrun(world, tmp_path, *args)
    assert "shards written 0" in again.stdout  # a finished folder: every rank skips its shards


def test_two_gloo_processes_run_the_continual_sequence_of_one(world, tmp_path, run_cli):
    """CLL-CLIP + TEIR over en -> de: the grown token table and its usage counts of two processes."""
    common = ("--order", "en,de", "--teir", "--steps", "6", "--batch-size", "16", "--data", str(world["manifest"]),
              "--model", world["model"])
    one = tmp_path / "one"
    result = run_cli("continual", "--out", str(one), *common)
    assert result.code == 0, result.err
    two = tmp_path / "two"
    _torchrun(world, tmp_path, "continual", "--out", str(two), *common)
    a = load_file(one / "extension" / "weights.safetensors")
    b = load_file(two / "extension" / "weights.safetensors")
    assert a.keys() == b.keys()
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) <= CONTINUAL_TOLERANCE
    assert torch.equal(load_file(one / "extension" / "usage.safetensors")["usage"],
                       load_file(two / "extension" / "usage.safetensors")["usage"])
