"""`mlclip continual`: learn languages one after another and measure forgetting."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlclip_cli.cli.app import app
from mlclip_cli.cli.console import out
from mlclip_cli.cli.features import MODEL_HELP, TEACHER_HELP, base_model as _base_model

# `--teir` alone means `--teir both` (the paper's method); main() rewrites argv before Typer sees it.
BARE_OPTION_VALUES = {"--teir": "both"}
WORLD_ORDER = "en,it,de,fr,es,pl,tr,ru,ko,zh,ja"
TEIR_HELP = ("TEIR: none, init (new rows from the table's N(mean, std)), reg (usage-scaled gradient and decay) or "
             "both; a bare --teir means both.")


def with_bare_values(args: list[str]) -> list[str]:
    fixed = []
    for i, arg in enumerate(args):
        fixed.append(arg)
        if arg in BARE_OPTION_VALUES and (i + 1 == len(args) or args[i + 1].startswith("-")):
            fixed.append(BARE_OPTION_VALUES[arg])
    return fixed


def progress_callbacks(bar, tasks: dict):
    """on_step / on_features callbacks that drive one rich Progress."""
    def on_step(label: str, step: int, total: int, loss: float) -> None:
        if label not in tasks:
            tasks[label] = bar.add_task(f"language {label}", total=total, loss=float("nan"))
        bar.update(tasks[label], completed=step, loss=loss)

    def on_features(name: str, done: int, total: int) -> None:
        key = f"features {name} ({total})"
        if key not in tasks:
            tasks[key] = bar.add_task(f"features {name}", total=total, loss=float("nan"))
        bar.update(tasks[key], completed=done)
    return on_step, on_features


def scores_table(result, metric: str = "image_retrieval_recall@1", title: str | None = None) -> Table:
    """Steps x languages for one metric, with AA and F per step."""
    block = result.summary["metrics"][metric]
    table = Table(title=title or f"{result.method} (TEIR {result.teir}): {metric} after each step")
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


def run_with_progress(run):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
    with Progress(*columns, console=out) as bar:
        on_step, on_features = progress_callbacks(bar, {})

        def on_task(index: int, record) -> None:
            scores = " ".join(f"{lang} {m['image_retrieval_recall@1']:.1f}" for lang, m in record.scores.items())
            bar.console.print(f"[dim]after {'+'.join(record.languages)} ({record.seconds:.0f} s, "
                              f"{sum(record.new_tokens.values())} new tokens): R@1[/] {scores}")
        return run(on_features, on_step, on_task)


def default_test_manifest(ws) -> Path | None:
    path = ws.manifest("xtd10")
    return path if path.is_file() else None


@app.command(
    help="""Learn languages one after another (continual language learning) and measure forgetting.

Each language in --order is one task: CLIP's BPE is continued on that language (English and the
languages before it keep their tokenisation exactly), the new token rows are appended, and the
method trains (cll-clip: the token table only; ewc, er, lwf: the same with online EWC, replay or
distillation; mla: + per-language acquirers; full-ft: the whole text tower; joint: every language
at once, the upper bound). After each task every language seen so far is benched on the test
manifest (default: the world's XTD10-layout test set).

Writes OUT/extension (the state after the last finished language: usable as --model; a killed
run resumes from it with --resume), OUT/results.json (accuracy matrices, AA and F as CLFM's
gather.py), and PNG heatmaps and an AA/F plot.

Example: [bold]mlclip continual --method cll-clip --teir --order en,it,de,fr,es,pl,tr,ru,ko,zh,ja[/]""",
    short_help="Learn languages in sequence; measure forgetting (CLL-CLIP, TEIR, baselines).",
)
def continual(
    ctx: typer.Context,
    order: str = typer.Option(WORLD_ORDER, "--order", help="Languages in the order they arrive, comma-separated."),
    method: str = typer.Option("cll-clip", "--method", help="cll-clip, ewc, er, lwf, mla, full-ft or joint."),
    teir: str = typer.Option("none", "--teir", help=TEIR_HELP),
    teir_reg: str = typer.Option("both", "--teir-reg", help="What TEIR's regulariser scales: grad, decay or both."),
    teir_freq: str = typer.Option("update", "--teir-freq", help="update (1/f scales each row's update: a per-row lr; "
                                  "the default, see docs/continual.md), grad (the paper: 1/f scales gradient and decay, "
                                  "which Adam cancels) or off (the mask only, no 1/f)."),
    data: str = typer.Option("world", "--data", help="Training manifest path or workspace manifest name."),
    test: str = typer.Option(None, "--test", help="Test manifest benched after each task \\[default: the workspace's xtd10; "
                             "--teacher: --data]."),
    test_split: str = typer.Option(None, "--test-split", help="\\[default: test; --teacher: val]."),
    out_dir: Path = typer.Option(None, "--out", help="Run folder \\[default: WORKSPACE/continual/<method>-teir-<teir>]."),
    model: str = typer.Option(None, "--model", help=MODEL_HELP + " \\[default: mlclip-tiny]"),
    teacher: str = typer.Option(None, "--teacher", help=TEACHER_HELP.replace("the packs", "the new rows").replace(
        "validation is text to text on the val split", "each task is benched text to text on --data's val split")),
    steps: int = typer.Option(None, "--steps", min=1, help="Steps per language \\[world default 100; --teacher 200]."),
    lr: float = typer.Option(None, "--lr", help="Peak lr \\[world default 5e-3; --teacher 1e-3; CLFM 5e-5]."),
    batch_size: int = typer.Option(None, "--batch-size", min=2, help="\\[default 128; --teacher 64]."),
    vocab_budget: int = typer.Option(10_000, "--vocab-budget", min=0, help="New BPE merges per language (CLFM: 10,000)."),
    split_han: bool = typer.Option(True, "--split-han/--no-split-han", help="Make each Han/kana character a word before BPE "
                                   "(CLIP's regex keeps unspaced Chinese/Japanese phrases whole, and 100 steps cannot "
                                   "train their 8k phrase tokens); --no-split-han: CLFM's pre-tokenisation."),
    memory: int = typer.Option(8000, "--memory", min=1, help="er: captions kept from earlier languages."),
    ewc_lambda: float = typer.Option(1000.0, "--ewc-lambda", help="ewc: penalty weight."),
    split: str = typer.Option(None, "--split", help="Training split \\[default: train when the manifest has one]."),
    seed: int = typer.Option(0, "--seed"),
    keep_steps: bool = typer.Option(False, "--keep-steps", help="Also keep the state after every language under OUT/steps/."),
    resume: bool = typer.Option(False, "--resume", help="Continue an unfinished run in --out (or reuse a finished one)."),
) -> None:
    from dataclasses import replace

    from mlclip_cli.continual.learners import Settings
    from mlclip_cli.continual.runner import TEXT_LOOP, ContinualConfig, TaskLoop, run_continual
    from mlclip_cli.continual.teir import TeirConfig

    ws = ctx.obj
    teir_config = TeirConfig.parse(teir, teir_reg, teir_freq)
    model = _base_model(model, teacher)
    loop = replace(TEXT_LOOP if teacher else TaskLoop(), seed=seed)
    if batch_size is not None:
        loop = replace(loop, batch_size=batch_size)
    loop = replace(loop, **{k: v for k, v in (("steps", steps), ("lr", lr)) if v is not None})
    config = ContinualConfig(
        manifest=ws.find_manifest(data), out=out_dir or ws.root / "continual" / f"{method}-teir-{teir}",
        order=tuple(code.strip() for code in order.split(",") if code.strip()), features_root=ws.features_root,
        method=method, teir=teir_config, model=model,
        test_manifest=ws.find_manifest(test) if test else ws.find_manifest(data) if teacher else default_test_manifest(ws),
        test_split=test_split or ("val" if teacher else "test"),
        loop=loop, settings=Settings(memory=memory, ewc_lambda=ewc_lambda), vocab_budget=vocab_budget,
        split_han=split_han, split=split, resume=resume, keep_steps=keep_steps)
    print_result(run_with_progress(lambda p, s, t: run_continual(config, p, s, t)))
