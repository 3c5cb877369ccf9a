"""`mlclip demo`: run every built pipeline step on the embedded default."""

from __future__ import annotations

import typer
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.progress import StepDisplay

commands = Commands()


@commands.command(
    help="""Run the whole pipeline on the embedded default (a procedural image-caption world in
11 languages and a small English CLIP), offline, in minutes on a laptop CPU: prepare, the English
CLIP, the feature cache, zero-shot bench, MLA on nine languages, extend --lang ko, plain CLL-CLIP and
CLL-CLIP + TEIR sequences, and bench with the extension.

Writes everything under WORKSPACE/ (a rerun reuses what is finished and says so) and a report
folder WORKSPACE/report/ (report.json, PNG charts, report.md).

Example: [bold]mlclip demo[/]  (or [bold]mlclip -w /tmp/ws demo --quick[/])""",
    short_help="Run the pipeline end to end on the embedded default.",
)
def demo(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Smaller world and shorter training (a 1-2 minute smoke run)."),
) -> None:
    from mlclip_cli.demo import DemoConfig, run_demo

    config = DemoConfig(workspace=ctx.obj, quick=quick)
    out.print(f"workspace: {config.space.root}")
    with StepDisplay("demo") as display:
        def start(index: int, count: int, step) -> None:
            display.step(f"[bold]step {index + 1}/{count}[/]: {step.name}", completed=index, total=count)

        def finished(result) -> None:
            mark = "[green]ran[/]"
            display.print(f"{mark}  {result.name}  [dim]({result.command}, {result.seconds:.0f} s)[/]")
            if result.detail:
                display.print(result.detail)

        result = run_demo(config, on_step=finished, on_start=start, progress=display.progress)
    if result.zero_shot is None:
        return
    out.print(comparison_table(result))
    if result.continual:
        from mlclip_cli.cli.tables import scores_table

        for teir, run in result.continual.items():
            out.print(scores_table(run, title=f"continual {' -> '.join(run.order)}: CLL-CLIP"
                                              f"{' + TEIR' if teir == 'both' else ' (plain)'}, t2i R@1 after each language"))
    if result.report is not None:
        out.print(f"report: {result.report.markdown_path} (with {len(result.report.plots)} PNG charts and "
                  f"{result.report.json_path.name})")
    out.print(f"total: {sum(step.seconds for step in result.steps):.0f} s")


def comparison_table(result) -> Table:
    from mlclip_cli.demo_report import SEQUENCE_COLUMNS, comparison
    from mlclip_cli.demo_report import MEAN, R1

    rows = comparison(result.zero_shot, result.mla, result.continual)
    methods = [(key, label) for key, label in (("zero_shot", "0-shot"), ("mla", "MLA"), ("cll_clip", "CLL"),
                                               ("cll_clip_teir", "TEIR")) if any(f"{key}/{R1}" in row for row in rows)]
    table = Table(title="World test (XTD10 layout): text->image R@1 | mean recall, per language and method")
    table.add_column("lang")
    for _, label in methods:
        table.add_column(f"{label} R@1", justify="right")
    for _, label in methods:
        table.add_column(f"{label} mean", justify="right")
    for row in rows:
        cells = [row["language"]]
        for metric in (R1, MEAN):
            cells += [f"{row[f'{key}/{metric}']:.1f}" if f"{key}/{metric}" in row else "-" for key, _ in methods]
        table.add_row(*cells)
    if result.continual:
        aa = ["[bold]AA / F[/]"] + [""] * (2 * len(methods))
        for teir, run in result.continual.items():
            key = SEQUENCE_COLUMNS[teir]
            where = [k for k, _ in methods].index(key)
            for m, metric in enumerate((R1, MEAN)):
                block = run.summary["metrics"][metric]
                aa[1 + m * len(methods) + where] = f"{block['final_aa']:.1f} / {block['final_f']:.1f}"
        table.add_row(*aa)
    table.caption = ("0-shot: the frozen English CLIP; CLL: CLL-CLIP; TEIR: CLL-CLIP + TEIR. English goes through "
                     "the frozen CLIP for 0-shot and MLA; ko was added last by `extend`; the continual columns "
                     "cover their sequence's languages (CLL-CLIP trains English too).")
    return table
