"""`mlclip reproduce <table>`: a paper's table re-run on the embedded world."""

from __future__ import annotations

import typer
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.progress import StepDisplay

commands = Commands()


def _rich_table(title: str, columns: list[str], rows: list[list]) -> Table:
    from mlclip_cli.reproduce import cell

    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    return table


def _list() -> None:
    from mlclip_cli.reproduce import tables

    table = Table(title="mlclip reproduce: the papers' tables on the embedded world")
    for column in ("table", "reproduces", "what", "the paper's figure / claim"):
        table.add_column(column)
    for item in tables().values():
        table.add_row(item.name, item.reproduces, item.summary, item.headline)
    out.print(table)


@commands.command(
    help="""Re-run one of the papers' tables on the embedded world and print it beside the paper's
figures: mla-stages, mla-ablation, mla-objectives, extension, low-resource, teir, baselines.

Prepares the world, its English CLIP and the feature cache first when the workspace lacks them (the
demo's first steps). Writes WORKSPACE/reproduce/<table>/table.md and table.json; each row's training
lands beside them and is reused by a rerun with the same settings. Each table takes <= 10 minutes on
2 CPU cores; --quick is a smoke run on the quick world.

Example: [bold]mlclip reproduce --list[/]  or  [bold]mlclip reproduce mla-stages[/]""",
    short_help="Re-run a paper's table on the world (--list to see them).",
)
def reproduce(
    ctx: typer.Context,
    table: str = typer.Argument(None, help="Table to run (see --list)."),
    list_tables: bool = typer.Option(False, "--list", help="List the tables, what each reproduces and the paper's figures."),
    quick: bool = typer.Option(False, "--quick", help="The quick world and a few steps per row (a smoke run)."),
) -> None:
    from mlclip_cli.errors import MlclipError
    from mlclip_cli.reproduce import ReproduceConfig, get_table, run_table

    if list_tables:
        _list()
        return
    if table is None:
        raise MlclipError("name a table (mlclip reproduce mla-stages) or list them with --list")
    get_table(table)  # an unknown name fails before any work
    with StepDisplay(table) as display:
        def on_row(name: str) -> None:
            display.step(f"[bold]{table}[/]: {name}")

        result = run_table(table, ReproduceConfig(workspace=ctx.obj, quick=quick), progress=display.progress, on_row=on_row)
    out.print(_rich_table(f"{result.name}: {result.reproduces} on the world ({result.seconds:.0f} s)", result.columns, result.rows))
    out.print("[dim]" + ", ".join(f"{k} {v}" for k, v in result.settings.items()) + "[/]")
    paper = result.paper
    if paper["rows"]:
        out.print(_rich_table(f"the paper: {paper['source']}", paper["columns"], paper["rows"]))
    out.print(f"paper's claim: {paper['claim']}")
    for note in result.notes:
        out.print(f"[dim]- {note}[/]")
    out.print(f"table: {result.markdown_path}\njson:  {result.json_path}")
