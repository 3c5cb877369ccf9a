"""The main job end to end, shrunk: a tiny world and a few pretraining steps (`demo --quick` path)."""

import json

from mlclip_cli import demo


def test_quick_demo_runs_every_built_step(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "QUICK_TRAIN_SCENES", 16)
    monkeypatch.setattr(demo, "QUICK_PRETRAIN_STEPS", 2)
    result = run_cli("demo", "--quick")
    assert result.code == 0, result.err
    ran = [line for line in result.out.splitlines() if line.startswith("ran ")]
    not_built = [line for line in result.out.splitlines() if line.startswith("not built yet")]
    assert len(ran) == 5 and len(not_built) == 2
    assert "mean" in result.out and "zh" in result.out  # the bench table closes the demo
    results = list((tmp_path / "ws" / "results").glob("xtd-*.json"))
    assert len(results) == 1
    languages = json.loads(results[0].read_text())["languages"]
    assert len(languages) == 11 and all(v["images"] == 1000 for v in languages.values())
