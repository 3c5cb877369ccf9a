"""`mlclip reproduce`: the table registry, --list, and two tables end to end on the quick world."""

import json

import pytest

from mlclip_cli import demo
from mlclip_cli.reproduce import tables

TABLES = ("mla-stages", "mla-ablation", "mla-objectives", "extension", "low-resource", "teir", "baselines")


def _tiny_world(monkeypatch):
    monkeypatch.setattr(demo, "QUICK_TRAIN_SCENES", 16)
    monkeypatch.setattr(demo, "QUICK_PRETRAIN_STEPS", 2)


def test_every_table_of_the_issue_is_registered_with_the_papers_claim():
    known = tables()
    assert tuple(known) == TABLES
    for table in known.values():
        assert table.reproduces and table.summary and table.headline and table.paper.claim
        for row in table.paper.rows:
            assert len(row) == len(table.paper.columns)


def test_list_names_all_seven(run_cli):
    result = run_cli("reproduce", "--list")
    assert result.code == 0, result.err
    for name in TABLES:
        assert name in result.out


def test_unknown_table_is_one_line_error(run_cli):
    result = run_cli("reproduce", "mla-stage")
    assert result.code == 1
    assert result.err.strip().startswith("error: unknown table 'mla-stage'") and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("name", ["mla-stages", "teir"])
def test_quick_table_prints_ours_beside_the_papers_and_writes_md_json(run_cli, tmp_path, monkeypatch, name):
    _tiny_world(monkeypatch)
    result = run_cli("reproduce", name, "--quick")
    assert result.code == 0, result.err
    folder = tmp_path / "ws" / "quick" / "reproduce" / name
    saved = json.loads((folder / "table.json").read_text())
    expected_rows = 5 if name == "mla-stages" else 7
    assert len(saved["rows"]) == expected_rows and saved["paper"]["rows"]
    assert all(isinstance(v, float) for row in saved["rows"] for v in row[1:3])
    markdown = (folder / "table.md").read_text()
    assert "## The paper" in markdown and saved["rows"][0][0] in markdown
    flat = " ".join(result.out.split())
    assert "the paper:" in flat and "paper's claim" in flat
    again = run_cli("reproduce", name, "--quick")  # every row is reused: same numbers
    assert again.code == 0, again.err
    assert json.loads((folder / "table.json").read_text())["rows"] == saved["rows"]
