"""`mlclip reproduce <table>`: the papers' tables re-run on the embedded world.

One registry of tables; each table is a function of a `TableContext` that returns its rows. The
runner prepares the world (the demo's first steps, reused when done), runs the table, and writes
WORKSPACE/reproduce/<table>/table.md and table.json with the paper's figures beside ours.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlclip_cli.errors import MlclipError
from mlclip_cli.workspace import Workspace


@dataclass(frozen=True)
class PaperFigures:
    source: str  # where the figures come from
    columns: list[str]
    rows: list[list[str]]
    claim: str  # the paper's claim in one sentence, what the world table is judged by


@dataclass(frozen=True)
class Table:
    name: str
    reproduces: str  # "MLA Table 4"
    summary: str  # what it measures, one line
    paper: PaperFigures
    headline: str  # the paper's key figure in a few words, for --list
    run: Callable[["TableContext"], "TableRows"]


@dataclass
class TableRows:
    columns: list[str]
    rows: list[list]  # cells: str, or float (shown with one decimal), or None ("-")
    settings: dict
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReproduceConfig:
    workspace: Workspace
    quick: bool = False  # the quick world and a few steps per row: a smoke run for the tests


@dataclass
class TableContext:
    config: ReproduceConfig
    folder: Path  # WORKSPACE/reproduce/<table>
    model: str  # the English CLIP every row starts from
    progress: Callable[[str, int, int], None] | None = None
    on_row: Callable[[str], None] | None = None  # names the row being trained

    @property
    def workspace(self) -> Workspace:
        """The demo's space: WORKSPACE, or WORKSPACE/quick for a quick run."""
        from mlclip_cli.demo import DemoConfig

        return DemoConfig(self.config.workspace, self.config.quick).space

    @property
    def quick(self) -> bool:
        return self.config.quick

    def row(self, name: str) -> None:
        if self.on_row is not None:
            self.on_row(name)


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


TABLES: dict[str, Table] = {}


def register(table: Table) -> Table:
    if table.name in TABLES:
        raise ValueError(f"table {table.name!r} registered twice")
    TABLES[table.name] = table
    return table


def _load_tables() -> None:
    from mlclip_cli.reproduce import mla_tables, continual_tables  # noqa: F401, I001  (registration order = list order)


def tables() -> dict[str, Table]:
    _load_tables()
    return TABLES


def get_table(name: str) -> Table:
    known = tables()
    if name not in known:
        raise MlclipError(f"unknown table {name!r}; choose one of: {', '.join(known)} (see `mlclip reproduce --list`)")
    return known[name]


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
    folder = base.space.root / "reproduce" / name
    folder.mkdir(parents=True, exist_ok=True)
    rows = table.run(TableContext(config, folder, model, progress, on_row))
    result = TableResult(name=table.name, reproduces=table.reproduces, summary=table.summary, columns=rows.columns,
                         rows=rows.rows, paper=asdict(table.paper), settings=rows.settings, notes=rows.notes,
                         seconds=time.perf_counter() - began)
    result.json_path = write_json(folder / "table.json", {k: v for k, v in asdict(result).items()
                                                          if k not in ("markdown_path", "json_path")})
    result.markdown_path = folder / "table.md"
    with atomic_path(result.markdown_path) as tmp:
        tmp.write_text(_markdown(result), encoding="utf-8")
    return result
