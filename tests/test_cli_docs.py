"""docs/cli.md is generated from the Typer app by scripts/gen_cli_docs.py and must be current."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_cli_docs.py"
DOCS = ROOT / "docs" / "cli.md"
REGENERATE = "run `python scripts/gen_cli_docs.py` and commit docs/cli.md"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_cli_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(gen) -> str:
    return gen.render_cli_docs()


def _click_command_paths(gen) -> list[str]:
    """Every visible command path of the click app, walked here independently of the script."""
    from mlclip_cli.cli import app as app_module

    import typer.main

    paths = []

    def visit(command, path: str) -> None:
        paths.append(path)
        if hasattr(command, "list_commands"):
            ctx = gen.click.Context(command, info_name=path.split()[-1])
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    visit(sub, f"{path} {name}")

    visit(typer.main.get_command(app_module.app), "mlclip")
    return paths


def test_docs_cli_md_is_current(rendered):
    assert DOCS.is_file(), f"docs/cli.md is missing: {REGENERATE}"
    current = DOCS.read_text(encoding="utf-8")
    assert current == rendered, f"docs/cli.md is out of date with the CLI: {REGENERATE}"


def test_every_command_has_a_heading(gen, rendered):
    headings = set(re.findall(r"^#{2,6} (mlclip(?: \S+)*)$", rendered, flags=re.M))
    paths = _click_command_paths(gen)
    assert len(paths) > 1
    missing = [path for path in paths if path not in headings]
    assert not missing, f"commands without a section in the render: {missing}"
    # the ones we know of; a group's sub-commands are nested under it
    for path in ("mlclip bench", "mlclip bench report", "mlclip packs", "mlclip packs list"):
        if path in paths:
            assert f"### {path}\n" in rendered or f"## {path}\n" in rendered


def test_global_options_are_documented(rendered):
    root = rendered.split("\n## mlclip\n", 1)[1].split("\n## ", 1)[0]
    for option in ("`--workspace`", "`-w`", "`--debug`", "`--version`"):
        assert option in root


def test_no_rich_markup_or_machine_paths(rendered):
    leftovers = re.findall(r"\[/?(?:bold|dim|green|red|yellow|blue|cyan|magenta|italic|b|i)\b[^\]]*\]|\[/\]", rendered)
    assert not leftovers, f"rich markup left in the render: {sorted(set(leftovers))}"
    assert "\\[" not in rendered, "an escaped \\[ was left in the render"
    assert str(ROOT) not in rendered, "the render names this checkout's path"


def test_check_flag_reports_a_stale_file(gen, tmp_path, monkeypatch, capsys):
    stale = tmp_path / "cli.md"
    stale.write_text("stale\n", encoding="utf-8")
    monkeypatch.setattr(gen, "DOCS", stale)
    assert gen.main(["--check"]) == 1
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1 and "gen_cli_docs.py" in message
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
