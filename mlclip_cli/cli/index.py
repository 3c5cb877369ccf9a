"""`mlclip index build`: a FAISS index file from a feature folder, built once and reused."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.errors import MlclipError

commands = Commands()

index_app = typer.Typer(help="Build FAISS index files from cached features.", no_args_is_help=True)
commands.group(index_app, "index")

KIND_HELP = ("flat (exact, 4 x dim bytes a vector), ivf (inverted lists of raw vectors), ivfpq (inverted lists of "
             "product-quantised codes: pq-m bytes a vector) or hnsw (a graph, CPU only).")


@index_app.command(
    "build",
    help="""Index one part of a feature folder (`mlclip features`: image-00000.parquet, ...) with
FAISS, inner product over the L2-normalised embeddings, and save it as FILE.faiss plus its keys
(image_id or sample_id per FAISS id) in FILE.keys.parquet (docs/artifacts.md).

The shards are read one at a time: ivf and ivfpq train once on a sample drawn over all shards
(--train-size vectors, default 64 per list), then each shard is added, so the features never sit
in memory at once (the index does). flat, ivf and ivfpq are built on the GPU when faiss-gpu sees one.

Example: [bold]mlclip index build --features mlclip-workspace/features/xtd10/all/mlclip-tiny --kind ivfpq --out xtd10.faiss[/]""",
    short_help="Build a FAISS index file from a feature folder.",
)
def build(
    features: Path = typer.Option(..., "--features", help="Feature folder written by `mlclip features`."),
    part: str = typer.Option("image", "--part", help="Part to index: image, or text-<lang> (e.g. text-en)."),
    kind: str = typer.Option("ivfpq", "--kind", help=KIND_HELP),
    out_path: Path = typer.Option(..., "--out", help="Index file to write (FILE.faiss; keys go to FILE.keys.parquet)."),
    nlist: int = typer.Option(None, "--nlist", min=1, help="ivf/ivfpq: inverted lists \\[default: min(4 sqrt(n), n/39)]."),
    nprobe: int = typer.Option(32, "--nprobe", min=1, help="ivf/ivfpq: lists visited per query (saved in the file)."),
    pq_m: int = typer.Option(None, "--pq-m", min=1, help="ivfpq: sub-quantisers of 8 bits, dividing the dimension "
                             "\\[default: dim/4, at most 64, GPU-compatible]."),
    refine: bool = typer.Option(False, "--refine", help="ivfpq: keep the raw vectors too and re-rank the top "
                                "candidates exactly (4 x dim more bytes a vector)."),
    train_size: int = typer.Option(None, "--train-size", min=1, help="ivf/ivfpq: training vectors sampled over all "
                                   "shards \\[default: 64 per list, at least 9984 for ivfpq]."),
    hnsw_m: int = typer.Option(32, "--hnsw-m", min=1, help="hnsw: links per node."),
    gpu: bool = typer.Option(None, "--gpu/--cpu", help="Build on the GPU or the CPU \\[default: the GPU when FAISS sees one; hnsw: CPU]."),
) -> None:
    from mlclip_cli.cli.progress import progress_bar, progress_callback
    from mlclip_cli.search import INDEX_KINDS, IndexConfig, build_feature_index

    if kind not in INDEX_KINDS:
        raise MlclipError(f"unknown index kind '{kind}' (choose {', '.join(INDEX_KINDS)})")
    if not features.is_dir():
        raise MlclipError(f"{features}: no such feature folder (run `mlclip features` first)")
    config = IndexConfig(kind=kind, nlist=nlist, nprobe=nprobe, pq_m=pq_m, refine=refine, hnsw_m=hnsw_m,
                         use_gpu=gpu, train_size=train_size)
    with progress_bar() as bar:
        result = build_feature_index(features, out_path, config, part=part, progress=progress_callback(bar))
    table = Table(title=f"{result.kind} index of {part}")
    table.add_column("setting")
    table.add_column("value", justify="right")
    resolved = result.config
    rows = [("vectors", f"{result.rows:,}"), ("dimension", str(result.dim)), ("shards read", str(result.shards))]
    if resolved.kind in ("ivf", "ivfpq"):
        rows += [("nlist", str(resolved.nlist)), ("nprobe", str(min(resolved.nprobe, resolved.nlist))),
                 ("training vectors", f"{min(resolved.train_size, result.rows):,}")]
    if resolved.kind == "ivfpq":
        rows += [("pq_m x bits", f"{resolved.pq_m} x {resolved.pq_bits}"), ("refine", "yes" if resolved.refine else "no")]
    if resolved.kind == "hnsw":
        rows += [("M", str(resolved.hnsw_m)), ("efConstruction", str(resolved.ef_construction))]
    rows += [("device", "GPU" if result.on_gpu else "CPU"), ("file size", _size(result.index_bytes)),
             ("seconds (train / add / save)", " / ".join(f"{result.seconds[s]:.1f}" for s in ("train", "add", "save")))]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    for note in result.notes:
        out.print(f"note: {note}")
    out.print(f"index: {result.path}\nkeys:  {result.keys_path}")


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)
