"""The main job end to end, shrunk: a tiny world and a few pretraining steps (`demo --quick` path)."""

import json

from mlclip_cli import demo


def test_quick_demo_runs_every_built_step(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "QUICK_TRAIN_SCENES", 16)
    monkeypatch.setattr(demo, "QUICK_PRETRAIN_STEPS", 2)
    monkeypatch.setattr(demo, "QUICK_MLA_STEPS", (3, 2, 3))
    monkeypatch.setattr(demo, "QUICK_CONTINUAL", (("en", "de"), 2))
    result = run_cli("demo", "--quick")
    assert result.code == 0, result.err
    ran = [line for line in result.out.splitlines() if line.startswith("ran ")]
    not_built = [line for line in result.out.splitlines() if line.startswith("not built yet")]
    assert len(ran) == 10 and not not_built
    assert not (tmp_path / "ws" / "manifests").exists()  # a quick run keeps to WORKSPACE/quick
    assert "AA / F" in result.out and "TEIR" in result.out and "CLL" in result.out and "zh" in result.out  # the comparison closes the demo
    report = tmp_path / "ws" / "quick" / "report"
    assert {p.name for p in report.iterdir()} >= {"report.json", "report.md", "languages.png"}
    assert len(json.loads((report / "report.json").read_text())["languages"]) == 11
    assert "![" in (report / "report.md").read_text()
    results = sorted((tmp_path / "ws" / "quick" / "results").glob("xtd-*.json"))
    assert len(results) == 2
    for path in results:
        languages = json.loads(path.read_text())["languages"]
        assert len(languages) == 11 and all(v["images"] == 1000 for v in languages.values())
    assert {json.loads(p.read_text())["text_encoder"] for p in results} == {"frozen", "mla"}
    again = run_cli("demo", "--quick")  # a rerun reuses the finished packs
    assert again.code == 0, again.err
    assert "reused the finished extension" in again.out and "reused the finished 'ko' pack" in again.out
    assert again.out.count("reused the finished run") == 2  # both continual sequences
    flat = " ".join(result.out.split())  # rich wraps long titles
    assert "CLL-CLIP + TEIR" in flat and "CLL-CLIP (plain)" in flat
    for teir in ("none", "both"):
        run = tmp_path / "ws" / "quick" / "continual" / f"demo-cll-clip-teir-{teir}"
        assert json.loads((run / "results.json").read_text())["order"] == ["en", "de"]
