"""`mlclip demo`: run every built pipeline step on the embedded default."""

from __future__ import annotations

import typer

from rich.table import Table

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
    from mlclip_cli.demo import DemoConfig, comparison, run_demo

    def show(result) -> None:
        mark = "[green]ran[/]" if result.status == "ran" else "[dim]not built yet[/]"
        out.print(f"{mark}  {result.name}  [dim]({result.command})[/]")
        if result.detail:
            out.print(result.detail)

    out.print(f"workspace: {ctx.obj.root}")
    with out.status("running the pipeline ..."):
        result = run_demo(DemoConfig(workspace=ctx.obj, quick=quick), on_step=show)
    if result.zero_shot is None:
        return
    if result.mla is None:
        out.print(results_table(result.zero_shot))
        return
    table = Table(title="XTD10-layout world test: the frozen English CLIP zero-shot vs with MLA packs")
    for column in ("lang", "zero-shot t2i R@1", "MLA t2i R@1", "zero-shot mean", "MLA mean"):
        table.add_column(column, justify="left" if column == "lang" else "right")
    for row in comparison(result.zero_shot, result.mla):
        table.add_row(row["language"], f"{row['zero_shot_t2i_r1']:.1f}", f"{row.get('mla_t2i_r1', float('nan')):.1f}",
                      f"{row['zero_shot_mean_recall']:.1f}", f"{row.get('mla_mean_recall', float('nan')):.1f}")
    out.print(table)
    out.print("[dim]English goes through the frozen CLIP in both columns; ko was added last by `extend`.[/]")
    if result.continual:
        from mlclip_cli.cli.continual import scores_table

        for teir, run in result.continual.items():
            out.print(scores_table(run, title=f"continual {' -> '.join(run.order)}: CLL-CLIP"
                                              f"{' + TEIR' if teir == 'both' else ' (plain)'}, t2i R@1 after each language"))
