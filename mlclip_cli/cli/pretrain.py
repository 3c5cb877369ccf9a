"""`mlclip pretrain`: train the small English CLIP on a manifest's English captions."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out

commands = Commands()


def metrics_table(title: str, metrics: dict[str, float]) -> Table:
    table = Table(title=title)
    for name in ("R@1", "R@5", "R@10"):
        table.add_column(f"t2i {name}", justify="right")
    for name in ("R@1", "R@5", "R@10"):
        table.add_column(f"i2t {name}", justify="right")
    table.add_column("mean", justify="right")
    keys = [f"image_retrieval_recall@{k}" for k in (1, 5, 10)] + [f"text_retrieval_recall@{k}" for k in (1, 5, 10)]
    table.add_row(*(f"{metrics[k]:.1f}" for k in keys), f"{metrics['mean_recall']:.1f}")
    return table


@commands.command(
    help="""Train the small English CLIP contrastively on the English captions of a manifest
(by default the embedded world's, WORKSPACE/manifests/world.parquet), reporting validation
retrieval on its val split.

Output: a checkpoint folder (model.safetensors + config.json, loadable by every command that
takes --model) with trainer state to resume from; rerunning the same command resumes.
Runs on CPU or one GPU; for several GPUs launch it with torchrun (DDP):
torchrun --nproc_per_node=4 -m mlclip_cli pretrain ...

Example: [bold]mlclip pretrain --steps 6000 --out mlclip-workspace/models/tiny[/]""",
    short_help="Train the small English CLIP on the world's English captions.",
)
def pretrain(
    ctx: typer.Context,
    manifest: Path = typer.Option(None, "--manifest", help="Training manifest \\[default: WORKSPACE/manifests/world.parquet]."),
    out_dir: Path = typer.Option(None, "--out", help="Checkpoint folder \\[default: WORKSPACE/models/mlclip-tiny]."),
    steps: int = typer.Option(6000, "--steps", min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(128, "--batch-size", min=2, help="Image-caption pairs per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (AdamW, warm-up then cosine)."),
    seed: int = typer.Option(0, "--seed", help="Initialisation and data-order seed."),
    eval_every: int = typer.Option(500, "--eval-every", min=1, help="Steps between validation runs and checkpoints."),
    half: bool = typer.Option(False, "--half", help="Save the final weights as float16 (half the size)."),
    arch: str = typer.Option("mlclip-tiny", "--arch", help="open_clip architecture to train from scratch (e.g. mlclip-tiny, mlclip-micro, ViT-B-32)."),
) -> None:
    from mlclip_cli.training.pretrain import PretrainConfig, pretrain as run

    config = PretrainConfig(
        manifest=manifest or ctx.obj.manifest("world"), out=out_dir or ctx.obj.root / "models" / "mlclip-tiny",
        model_name=arch, steps=steps, batch_size=batch_size, lr=lr, seed=seed, eval_every=eval_every,
        checkpoint_every=eval_every, weights_dtype="float16" if half else "float32",
    )
    columns = (TextColumn("pretrain"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    def on_step(step: int, total: int, loss: float) -> None:
        bar.update(task, completed=step, loss=loss)
        if not out.is_terminal and step % 100 == 0:  # logs get a line now and then instead of a bar
            bar.console.print(f"step {step}/{total}: loss {loss:.3f}")

    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        run(config)
        return
    with Progress(*columns, console=out) as bar:
        task = bar.add_task("pretrain", total=steps, loss=float("nan"))
        result = run(
            config,
            on_step=on_step,
            on_eval=lambda step, m: bar.console.print(f"step {step}: val mean recall {m['mean_recall']:.1f}, "
                                                      f"t2i R@1 {m['image_retrieval_recall@1']:.1f}"),
        )
    if result.resumed_from:
        out.print(f"resumed from step {result.resumed_from}")
    if result.val_metrics:
        out.print(metrics_table("validation retrieval (English)", result.val_metrics))
    out.print(f"checkpoint: {result.out} ({result.seconds:.0f} s)")
