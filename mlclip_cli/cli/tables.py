"""Rich tables of results several commands print."""

from __future__ import annotations

from rich.table import Table

from mlclip_cli.cli.console import out


def scores_table(result, metric: str = "image_retrieval_recall@1", title: str | None = None) -> Table:
    """Steps x languages for one metric, with AA and F per step."""
    block = result.summary["metrics"][metric]
    table = Table(title=title or f"{result.learner} (TEIR {result.teir}): {metric} after each step")
    table.add_column("step")
    for language in result.order:
        table.add_column(language, justify="right")
    table.add_column("AA", justify="right")
    table.add_column("F", justify="right")
    for index, row in enumerate(block["matrix"]):
        name = "+".join(result.tasks[index].languages) if len(result.tasks[index].languages) < 4 else "joint"
        cells = ["" if v is None else f"{v:.1f}" for v in row]
        f = block["f"][index]
        table.add_row(f"{index + 1} {name}", *cells, f"{block['aa'][index]:.1f}", "-" if f is None else f"{f:.1f}")
    return table


def print_result(result) -> None:
    if result.summary:
        out.print(scores_table(result))
        if result.text_only:  # scored text to text: "image" is each caption's English sentence
            out.print("[dim]text-only teacher: image_retrieval = caption -> its English sentence, "
                      "text_retrieval = English sentence -> caption[/]")
        for metric in ("image_retrieval_recall@1", "text_retrieval_recall@1", "mean_recall"):
            block = result.summary["metrics"][metric]
            f = block["final_f"]
            out.print(f"{metric}: AA {block['final_aa']:.1f}, F {'-' if f is None else f'{f:.1f}'}")
    else:
        out.print("[dim]no test manifest: nothing benched[/]")
    if result.resumed_from:
        out.print(f"resumed after {result.resumed_from} finished task(s)")
    out.print(f"{result.trainable_parameters:,} trainable parameters, {result.seconds:.0f} s of training and "
              f"benching -> {result.extension}")
    if result.json_path:
        out.print(f"results: {result.json_path}; plots: {', '.join(p.name for p in result.plots)}")
