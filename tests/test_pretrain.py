"""A tiny pretrain run on a tiny world: the loss falls, checkpoints load, resume continues exactly."""

import json

import pytest
import torch
from safetensors.torch import load_file

from mlclip_cli.artifacts import manifest_from_rows, write_manifest
from mlclip_cli.errors import MlclipError
from mlclip_cli.models.clip import load_clip
from mlclip_cli.training.pretrain import PretrainConfig, pretrain
from mlclip_cli.world.generate import WorldConfig, generate_world


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    world = generate_world(folder, WorldConfig(seed=5, train_scenes=64, val_scenes=16, test_scenes=5), workers=1)
    return write_manifest(manifest_from_rows(world.rows), folder / "world.parquet")


def _config(manifest, out, steps):
    # mlclip-micro: the tiny model's shape at a fraction of its size, so tests stay fast
    return PretrainConfig(manifest=manifest, out=out, steps=steps, batch_size=32, lr=3e-3, model_name="mlclip-micro",
                          eval_every=5, checkpoint_every=5, warmup=0.1)


def test_loss_falls_and_checkpoint_loads(manifest, tmp_path):
    result = pretrain(_config(manifest, tmp_path / "run", 30))
    assert len(result.losses) == 6
    assert result.losses[-1] < result.losses[0] - 0.3, result.losses
    assert set(result.val_metrics) >= {"mean_recall", "image_retrieval_recall@1"}
    clip = load_clip(str(tmp_path / "run"))
    assert clip.model_name == "mlclip-micro" and clip.identity.startswith("mlclip-micro@sha256:")
    assert not any(p.requires_grad for p in clip.model.parameters())
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 30


def test_resume_continues_where_it_stopped(manifest, tmp_path):
    straight = tmp_path / "straight"
    pretrain(_config(manifest, straight, 12))
    split = tmp_path / "split"

    def killed(step, total, loss):
        if step == 8:  # after the checkpoint at step 5
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pretrain(_config(manifest, split, 12), on_step=killed)
    resumed = pretrain(_config(manifest, split, 12))
    assert resumed.resumed_from == 5
    a, b = load_file(straight / "model.safetensors"), load_file(split / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-3)


def test_resume_refuses_another_manifest(manifest, tmp_path):
    out = tmp_path / "run"
    pretrain(_config(manifest, out, 5))
    other = tmp_path / "other.parquet"
    other.write_bytes(manifest.read_bytes())
    with pytest.raises(MlclipError, match="another manifest"):
        pretrain(_config(other, out, 10))


def test_load_clip_errors_are_clear(tmp_path):
    with pytest.raises(MlclipError, match="unknown model"):
        load_clip("no-such-model")
    with pytest.raises(MlclipError, match="needs weights"):
        load_clip("ViT-B-32")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MlclipError, match="not a CLIP checkpoint"):
        load_clip(str(tmp_path / "empty"))


def test_pretrain_command_writes_a_checkpoint_and_resumes(manifest, run_cli, tmp_path):
    args = ("pretrain", "--manifest", str(manifest), "--arch", "mlclip-micro", "--steps", "4", "--eval-every", "2",
            "--batch-size", "16", "--out", str(tmp_path / "ckpt"))
    result = run_cli(*args)
    assert result.code == 0, result.err
    assert "validation retrieval" in result.out and (tmp_path / "ckpt" / "model.safetensors").is_file()
    result = run_cli(*args[:6], "6", *args[7:])
    assert result.code == 0 and "resumed from step 4" in result.out
    bad = run_cli("pretrain", "--manifest", str(tmp_path / "none.parquet"), "--arch", "mlclip-micro")
    assert bad.code == 1 and bad.err.startswith("error: ") and "no such manifest file" in bad.err
