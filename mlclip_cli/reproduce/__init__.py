"""`mlclip reproduce <table>`: the papers' tables re-run on the embedded world.

One registry of tables; each table is a function of a `TableContext` that returns its rows. The
runner prepares the world (the demo's first steps, reused when done), runs the table, and writes
WORKSPACE/reproduce/<table>/table.md and table.json with the paper's figures beside ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from mlclip_cli.reproduce.table import TABLES, ReproduceConfig, Table, TableContext

__all__ = ["ReproduceConfig", "TableResult", "get_table", "run_table", "tables"]


@dataclass
class TableResult:
    name: str
    reproduces: str
    summary: str
    columns: list[str]
    rows: list[list]
    paper: dict
    settings: dict
    notes: list[str]
    seconds: float
    markdown_path: Path | None = None
    json_path: Path | None = None


def tables() -> dict[str, Table]:
    return dict(TABLES.items())


def get_table(name: str) -> Table:
    return TABLES.get(name)


def cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def markdown_table(columns: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def _markdown(result: TableResult) -> str:
    paper = result.paper
    lines = [f"# {result.name}: {result.reproduces} on the embedded world", "", result.summary, "",
             "Settings: " + ", ".join(f"{k} {v}" for k, v in result.settings.items()) + f"; {result.seconds:.0f} s.", ""]
    lines += markdown_table(result.columns, result.rows)
    lines += ["", f"## The paper ({paper['source']})", "", paper["claim"], ""]
    if paper["rows"]:
        lines += markdown_table(paper["columns"], paper["rows"]) + [""]
    if result.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in result.notes] + [""]
    return "\n".join(lines)


def run_table(name: str, config: ReproduceConfig, progress: Callable[[str, int, int], None] | None = None,
              on_row: Callable[[str], None] | None = None) -> TableResult:
    """Prepare the world if needed, run one table, write its Markdown and JSON."""
    from mlclip_cli.atomic import atomic_path, write_json
    from mlclip_cli.demo import DemoConfig, prepare_base

    table = get_table(name)
    began = time.perf_counter()
    if on_row is not None:
        on_row("the world, its English CLIP and the feature cache")
    base = DemoConfig(workspace=config.workspace, quick=config.quick)
    model = prepare_base(base, progress)
    folder = base.space.reproduction(name)
    folder.mkdir(parents=True, exist_ok=True)
    rows = table.run(TableContext(config, folder, model, progress, on_row))
    result = TableResult(name=table.name, reproduces=table.reproduces, summary=table.summary, columns=rows.columns,
                         rows=rows.rows, paper=asdict(table.paper), settings=rows.settings, notes=rows.notes,
                         seconds=time.perf_counter() - began)
    from mlclip_cli.provenance import provenance

    result.json_path = write_json(folder / "table.json", {
        **{k: v for k, v in asdict(result).items() if k not in ("markdown_path", "json_path")},
        "provenance": provenance(f"mlclip reproduce {name}" + (" --quick" if config.quick else ""))})
    result.markdown_path = folder / "table.md"
    with atomic_path(result.markdown_path) as tmp:
        tmp.write_text(_markdown(result), encoding="utf-8")
    return result
