"""What a reproduce table is, and the registry of them: each table module registers its tables
(in the order `mlclip reproduce --list` shows them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlclip_cli.registry import Registry
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


TABLES: Registry[Table] = Registry("table", "mlclip_cli.reproduce", modules=("mla_tables", "continual_tables"),
                                   hint=" (see `mlclip reproduce --list`)")


def register(table: Table) -> Table:
    return TABLES.register(table.name, table)
