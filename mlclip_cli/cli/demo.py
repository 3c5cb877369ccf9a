"""`mlclip demo`: run every built pipeline step on the embedded default."""

from __future__ import annotations

import typer

from mlclip_cli.cli.app import app
from mlclip_cli.cli.bench import results_table
from mlclip_cli.cli.console import out


@app.command(
    help="""Run the whole pipeline on the embedded default (a procedural image-caption world in
11 languages and a small English CLIP), offline, in minutes on a laptop CPU.

Writes everything under WORKSPACE/ and says which steps ran and which are not built yet.

Example: [bold]mlclip demo[/]  (or [bold]mlclip -w /tmp/ws demo --quick[/])""",
    short_help="Run the pipeline end to end on the embedded default.",
)
def demo(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Smaller world and shorter training (a smoke run)."),
) -> None:
    from mlclip_cli.demo import DemoConfig, run_demo

    def show(result) -> None:
        mark = "[green]ran[/]" if result.status == "ran" else "[dim]not built yet[/]"
        out.print(f"{mark}  {result.name}  [dim]({result.command})[/]")
        if result.detail:
            out.print(result.detail)

    out.print(f"workspace: {ctx.obj.root}")
    with out.status("running the pipeline ..."):
        results = run_demo(DemoConfig(workspace=ctx.obj, quick=quick), on_step=show)
    bench = next((r.data for r in results if r.name == "zero-shot retrieval benchmark" and r.data), None)
    if bench is not None:
        out.print(results_table(bench.result))
