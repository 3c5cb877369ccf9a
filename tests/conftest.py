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
